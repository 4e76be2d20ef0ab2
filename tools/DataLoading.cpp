// The driver's data: each source a train block names (csv, idx, npy, npz,
// text) read and fitted to the model's declared inputs and label, the
// examples nnc predict and nnc eval read, the one preprocessing, and the
// augmentation with its image geometry.
#include "tools/Driver.h"

#include "runtime/Csv.h"
#include "runtime/FileUtil.h"
#include "runtime/Npy.h"
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fmt/format.h>

namespace nnc::driver {

namespace {
std::vector<int64_t> exampleShape(const ir::TensorType &t) {
  std::vector<int64_t> shape;
  for (size_t i = 1; i < t.shape.size(); ++i)
    shape.push_back(t.shape[i].size);
  return shape;
}

bool oneHot(const frontend::TrainConfig &c) {
  for (const frontend::Transform &x : c.transforms)
    if (x.kind == frontend::Transform::OneHot)
      return true;
  return false;
}

/// The columns of a CSV file each input and (`withLabel`) the label of `m`
/// take; without the label every column is the inputs' to take.
runtime::Dataset loadCSVFor(const CompiledModel &m, const frontend::DataSource &s, bool withLabel = true) {
  const frontend::LoweredModel &low = m.lowered;
  std::vector<runtime::ColumnSelection> in;
  std::vector<std::string> unnamed;
  for (const frontend::TensorDecl &decl : low.inputs) {
    runtime::ColumnSelection sel;
    sel.tensor = "input '" + decl.name + "'";
    sel.dtype = decl.type.dtype == ir::DType::I64 ? runtime::DType::I64 : runtime::DType::F32;
    sel.rowShape = exampleShape(decl.type);
    if (sel.rowShape.empty())
      sel.rowShape = {1}; // [N]: one value, flattened below
    auto named = std::find_if(s.columns.begin(), s.columns.end(), [&](const auto &c) { return c.input == decl.name; });
    if (named != s.columns.end()) {
      sel.columns = named->refs;
      sel.rest = named->rest;
    } else {
      sel.rest = true;
    }
    in.push_back(std::move(sel));
  }
  int rests = 0;
  for (const runtime::ColumnSelection &sel : in)
    rests += sel.rest;
  if (rests > 1) {
    std::string list, example;
    for (size_t i = 0; i < low.inputs.size(); ++i) {
      list += (i ? ", " : "") + low.inputs[i].name;
      example += ", " + low.inputs[i].name + (i + 1 == low.inputs.size() ? " = rest" : " = [\"...\"]");
    }
    throw LocatedError(s.loc, fmt::format("model '{}' has inputs {}: say which columns feed each, e.g. csv(\"{}\"{})",
                                          low.name, list, std::filesystem::path(s.path).filename().string(), example));
  }
  std::optional<runtime::ColumnSelection> label;
  if (withLabel && !low.labels.empty()) {
    const frontend::TensorDecl &decl = low.labels[0];
    label.emplace();
    label->tensor = "label '" + decl.name + "'";
    label->columns = s.label;
    if (oneHot(m.config) || (decl.type.dtype == ir::DType::I64 && decl.type.rank() == 1)) {
      label->dtype = runtime::DType::I64;
      label->classes = true;
    } else {
      label->dtype = decl.type.dtype == ir::DType::I64 ? runtime::DType::I64 : runtime::DType::F32;
      label->rowShape = exampleShape(decl.type);
      if (label->rowShape.empty())
        label->rowShape = {1}; // [N]: one value, flattened below
    }
  }
  runtime::Dataset d = runtime::loadCSVColumns(s.path, in, label ? &*label : nullptr);
  // An input or label of one value per example ([N]) came as [n, 1].
  auto flatten = [](runtime::Tensor &t, const ir::TensorType &want) {
    if (want.rank() != 1 || t.rank() != 2)
      return;
    runtime::Tensor flat(t.dtype(), {t.dim(0)});
    std::memcpy(flat.data(), t.data(), t.bytes());
    t = std::move(flat);
  };
  for (size_t i = 0; i < d.inputs.size(); ++i)
    flatten(d.inputs[i], low.inputs[i].type);
  if (label && !label->classes)
    flatten(d.y, low.labels[0].type);
  return d;
}

/// The arrays of npy(...) or npz(...) as a dataset: each input's and the
/// label's, converted to the declaration's dtype and reshaped to its
/// [n, ...] when the element counts agree (checkData reports them when not).
/// `t` as [n] + the declaration's example shape, when the counts agree (an
/// array of [n] targets for a label f32[N, 1]); else unchanged, for the
/// data checks to report.
runtime::Tensor inDeclaredShape(runtime::Tensor t, const frontend::TensorDecl &decl) {
  std::vector<int64_t> shape = {t.dim(0)};
  for (int64_t d : exampleShape(decl.type))
    shape.push_back(d);
  if (ir::numElements(shape) == t.numel() && shape != t.shape()) {
    runtime::Tensor r(t.dtype(), shape);
    std::memcpy(r.data(), t.data(), t.bytes());
    t = std::move(r);
  }
  return t;
}

/// idx(images = ..., labels = ...): classes for an i64 label, else real
/// targets (an IDX array of any type and shape) for an f32 label.
runtime::Dataset loadIDXFor(const CompiledModel &m, const std::string &images, const std::string &labels) {
  const frontend::LoweredModel &low = m.lowered;
  bool real = low.labels.size() == 1 && low.labels[0].type.dtype == ir::DType::F32 && !oneHot(m.config);
  runtime::Dataset d = runtime::loadIDX(images, labels, real);
  if (real && !labels.empty())
    d.y = inDeclaredShape(std::move(d.y), low.labels[0]);
  return d;
}

runtime::Dataset loadNumpy(const CompiledModel &m, const frontend::DataSource &s, bool withLabel = true) {
  const frontend::LoweredModel &low = m.lowered;
  bool npz = s.kind == frontend::DataSource::NPZ;
  std::vector<std::pair<std::string, std::string>> members;
  if (npz)
    members = runtime::loadNpz(s.path);
  auto load = [&](const std::string &key, const frontend::TensorDecl &decl, const char *role) {
    runtime::DType want = decl.type.dtype == ir::DType::I64 ? runtime::DType::I64 : runtime::DType::F32;
    std::string what = fmt::format("{} '{}'", role, decl.name);
    runtime::Tensor t;
    if (!npz) {
      t = runtime::loadNpy(key, want);
    } else {
      auto it = std::find_if(members.begin(), members.end(), [&](const auto &mem) { return mem.first == key; });
      if (it == members.end()) {
        std::vector<std::string> names;
        std::string list;
        for (const auto &mem : members) {
          names.push_back(mem.first);
          list += (list.empty() ? "" : ", ") + mem.first;
        }
        std::string hint = closestMatch(key, names);
        throw runtime::Error(fmt::format("'{}' has no array '{}' for {} (it holds: {}){}; name it with {} = \"...\"",
                                         s.path, key, what, list.empty() ? "nothing" : list,
                                         hint.empty() ? "" : "; did you mean '" + hint + "'?",
                                         std::string(role) == "label" ? "label" : decl.name));
      }
      t = runtime::parseNpy(it->second, want, fmt::format("'{}' array '{}'", s.path, key));
    }
    if (t.rank() == 0)
      throw runtime::Error(what + ": the array is empty");
    return inDeclaredShape(std::move(t), decl);
  };
  runtime::Dataset d;
  d.inputs.clear();
  for (const frontend::TensorDecl &decl : low.inputs) {
    auto it = std::find_if(s.arrays.begin(), s.arrays.end(), [&](const auto &a) { return a.first == decl.name; });
    d.inputs.push_back(load(it != s.arrays.end() ? it->second : decl.name, decl, "input"));
  }
  if (!low.labels.empty() && withLabel) {
    const frontend::TensorDecl &decl = low.labels[0];
    d.y = load(s.labelArray.empty() ? decl.name : s.labelArray, decl, "label");
  }
  int64_t n = d.inputs.empty() ? 0 : d.inputs[0].dim(0);
  for (size_t i = 0; i < d.inputs.size(); ++i)
    if (d.inputs[i].dim(0) != n)
      throw runtime::Error(fmt::format("input '{}' has {} examples but input '{}' has {}", low.inputs[i].name,
                                       d.inputs[i].dim(0), low.inputs[0].name, n));
  if (low.labels.empty()) // nothing reads it, but batches are counted by their labels
    d.y = runtime::Tensor(runtime::DType::I64, {n});
  if (d.y.rank() && d.y.dim(0) != n)
    throw runtime::Error(fmt::format("label '{}' has {} examples but input '{}' has {}", low.labels[0].name, d.y.dim(0),
                                     low.inputs[0].name, n));
  if (d.y.dtype() == runtime::DType::I64 && d.y.numel())
    d.numClasses = *std::max_element(d.y.i64(), d.y.i64() + d.y.numel()) + 1;
  return d;
}

/// For a data file that does not exist: "; did you mean 'digits.csv'?" (a
/// file of that directory with a close name), or that the directory itself
/// is missing; "" when the file exists.
std::string missingFileHint(const std::string &path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path p(path);
  if (fs::exists(p, ec))
    return "";
  fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  if (!fs::is_directory(dir, ec))
    return " (the directory '" + dir.string() + "' does not exist either)";
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (names.size() < 10000)
      names.push_back(it->path().filename().string());
  std::string m = closestMatch(p.filename().string(), names);
  if (m.empty())
    return "";
  return "; did you mean '" + m + "'" + (p.parent_path().empty() ? "" : " (in " + dir.string() + ")") + "?";
}

runtime::Dataset loadSource(const CompiledModel &m, const frontend::DataSource &s) {
  try {
    if (s.kind == frontend::DataSource::CSV) {
      runtime::Dataset d = loadCSVFor(m, s);
      if (!s.image.empty()) {
        d.imageShape = s.image;
        if (d.imageShape.size() == 2)
          d.imageShape.insert(d.imageShape.begin(), 1);
        int64_t n = d.imageShape[0] * d.imageShape[1] * d.imageShape[2];
        if (n != runtime::featuresPerExample(d.x()))
          throw runtime::Error(fmt::format("'{}': rows have {} features, not the {} of image [{}, {}, {}]", s.path,
                                           runtime::featuresPerExample(d.x()), n, d.imageShape[0], d.imageShape[1],
                                           d.imageShape[2]));
      }
      return d;
    }
    if (s.kind == frontend::DataSource::NPY || s.kind == frontend::DataSource::NPZ)
      return loadNumpy(m, s);
    if (s.kind == frontend::DataSource::Ring) {
      const auto &in = m.lowered.inputs;
      if (in.size() != 1 || in[0].type.rank() != 2 || in[0].type.shape[1] != ir::Dim(2) ||
          in[0].type.dtype != ir::DType::F32)
        throw LocatedError(s.loc, "ring(...) gives points f32[N, 2], so the model needs one input of that type");
      // The test set (test = ring(...)) draws other points than the training set.
      return runtime::ringData(s.ring, s.examples, m.config.seed + (&s == &m.config.test ? 1 : 0));
    }
    const char *kind = s.kind == frontend::DataSource::Text ? "text(...)" : "idx(...)";
    if (m.lowered.inputs.size() != 1)
      throw LocatedError(s.loc, fmt::format("model '{}' has {} inputs; {} gives one (read several from a CSV file "
                                            "with a header, one column list per input)",
                                            m.lowered.name, m.lowered.inputs.size(), kind));
    if (m.lowered.labels.size() == 1 && !oneHot(m.config)) {
      const ir::TensorType &lt = m.lowered.labels[0].type;
      if (s.kind == frontend::DataSource::Text && lt.dtype != ir::DType::I64)
        throw LocatedError(s.loc, fmt::format("{} gives integer classes per example, so label '{}' must be i64, not "
                                              "{} (or f32[N, C] with |> one_hot)",
                                              kind, m.lowered.labels[0].name, lt.str()));
      if (s.kind == frontend::DataSource::IDX && lt.dtype != ir::DType::I64 && s.labels.empty())
        throw LocatedError(s.loc, fmt::format("label '{}' is {}: idx(...) needs labels = \"...\", an IDX array of "
                                              "the targets",
                                              m.lowered.labels[0].name, lt.str()));
    }
    if (s.kind == frontend::DataSource::Text)
      return runtime::loadText(s.path, s.context, s.stride);
    return loadIDXFor(m, s.images, s.labels);
  } catch (const LocatedError &) {
    throw;
  } catch (const runtime::Error &e) {
    // A data file's problem points at the source call that names the file,
    // with a did-you-mean when the file does not exist.
    std::string msg = e.what();
    std::vector<std::string> files = {s.path, s.images, s.labels};
    if (s.kind == frontend::DataSource::NPY) {
      for (const auto &a : s.arrays)
        files.push_back(a.second);
      files.push_back(s.labelArray);
    }
    for (const std::string &p : files)
      if (!p.empty() && msg.find("'" + p + "'") != std::string::npos) {
        msg += missingFileHint(p);
        break;
      }
    throw LocatedError(s.loc, msg);
  }
}

/// nnc predict/eval --input for NumPy files (by their magic): an .npy array
/// feeds a model's one input, with --labels an .npy of the labels; an .npz
/// archive holds every input's array (and the label's, when it has it) under
/// the names the train block's npz(...) uses. nullopt for other files.
std::optional<runtime::Dataset> loadNumpyExamples(const CompiledModel &m, const std::string &path,
                                                  const std::string &magic, const std::string &labelsPath,
                                                  bool &labelled) {
  const frontend::LoweredModel &low = m.lowered;
  frontend::DataSource s;
  if (magic.compare(0, 4, "\x93NUM") == 0) {
    if (low.inputs.size() != 1)
      throw runtime::Error(fmt::format("'{}' is an .npy file, which holds one array; model '{}' has {} inputs (give "
                                       "an .npz with an array per input)",
                                       path, low.name, low.inputs.size()));
    s.kind = frontend::DataSource::NPY;
    s.arrays = {{low.inputs[0].name, path}};
    s.labelArray = labelsPath;
    labelled = !labelsPath.empty() && !low.labels.empty();
  } else if (magic.compare(0, 4, std::string("PK\x03\x04", 4)) == 0) {
    if (!labelsPath.empty())
      throw runtime::Error(
          fmt::format("--labels does not go with an .npz input: '{}' holds the labels as an array", path));
    if (m.config.data.kind == frontend::DataSource::NPZ)
      s = m.config.data;
    s.kind = frontend::DataSource::NPZ;
    s.path = path;
    labelled = false;
    if (!low.labels.empty()) {
      std::string key = s.labelArray.empty() ? low.labels[0].name : s.labelArray;
      for (const auto &member : runtime::loadNpz(path))
        labelled |= member.first == key;
    }
  } else {
    return std::nullopt;
  }
  runtime::Dataset d = loadNumpy(m, s, labelled);
  if (labelled && low.classification)
    runtime::checkLabels(d, low.numClasses, "'" + path + "'");
  return d;
}

} // namespace

runtime::Dataset loadExamples(const CompiledModel &m, const std::string &path, const std::string &labelsPath,
                              bool &labelled) {
  const frontend::LoweredModel &low = m.lowered;
  labelled = !labelsPath.empty();
  std::string magic = runtime::readFile(path).substr(0, 4);
  bool idx = magic.size() == 4 && magic[0] == 0 && magic[1] == 0 && magic[2] == 8 && magic[3] == 3;
  idx |= magic.size() >= 2 && uint8_t(magic[0]) == 0x1f && uint8_t(magic[1]) == 0x8b && path.size() > 8 &&
         path.compare(path.size() - 8, 8, "ubyte.gz") == 0;
  if (idx) {
    if (low.inputs.size() != 1)
      throw runtime::Error(fmt::format("'{}' is an IDX file, which gives one input; model '{}' has {}", path, low.name,
                                       low.inputs.size()));
    return loadIDXFor(m, path, labelsPath);
  }
  if (auto d = loadNumpyExamples(m, path, magic, labelsPath, labelled))
    return std::move(*d);
  if (!labelsPath.empty())
    throw runtime::Error("--labels goes with IDX images or an .npy input; a CSV input carries its labels in a "
                         "column, an .npz input in an array");
  // The columns the train block's csv(...) names, from this file; the
  // label's columns are read when the file has them.
  frontend::DataSource s;
  if (m.config.data.kind == frontend::DataSource::CSV)
    s = m.config.data;
  s.kind = frontend::DataSource::CSV;
  s.path = path;
  runtime::CsvHead head = runtime::csvHead(path);
  bool named = !s.label.empty();
  for (const runtime::ColumnRef &r : s.label)
    named &= !r.name.empty();
  if (low.labels.empty()) {
    labelled = false;
  } else if (named) {
    labelled = true;
    for (const runtime::ColumnRef &r : s.label)
      labelled &= std::find(head.names.begin(), head.names.end(), r.name) != head.names.end();
  } else {
    // Unnamed columns: the file has the label when it has more columns than the inputs take.
    int64_t features = 0;
    for (const frontend::TensorDecl &in : low.inputs)
      features += ir::numElements(exampleShape(in.type));
    labelled = head.columns > features;
  }
  runtime::Dataset d = loadCSVFor(m, s, labelled);
  if (labelled && low.classification)
    runtime::checkLabels(d, low.numClasses, "'" + path + "'");
  return d;
}

bool usesStatistics(const frontend::TrainConfig &c) {
  return std::any_of(c.transforms.begin(), c.transforms.end(), [](const frontend::Transform &t) {
    return t.kind == frontend::Transform::Standardize || t.kind == frontend::Transform::MinMax;
  });
}

std::vector<double> scaleFactors(const frontend::TrainConfig &c) {
  std::vector<double> factors;
  for (const frontend::Transform &t : c.transforms)
    if (t.kind == frontend::Transform::Scale)
      factors.push_back(t.factor);
  return factors;
}

void applyPreprocessing(const frontend::TrainConfig &c, runtime::Dataset &d, runtime::Standardizer *st, bool fit,
                        int64_t oneHotClasses) {
  if (d.size() == 0)
    return;
  for (double factor : scaleFactors(c))
    runtime::scale(d, float(factor));
  for (const frontend::Transform &t : c.transforms) {
    if (t.kind == frontend::Transform::OneHot && oneHotClasses > 0)
      runtime::oneHotLabels(d, oneHotClasses);
    if (t.kind != frontend::Transform::Standardize && t.kind != frontend::Transform::MinMax)
      continue;
    NNC_ASSERT(st) << "standardization without statistics";
    if (fit)
      *st = runtime::fitStandardizer(d, t.kind == frontend::Transform::MinMax);
    runtime::applyStandardizer(*st, d);
  }
}

Data loadData(const CompiledModel &m, const runtime::Standardizer *fitted) {
  const frontend::TrainConfig &c = m.config;
  if (c.data.kind == frontend::DataSource::None)
    throw runtime::Error("model '" + m.lowered.name + "' has no train block naming its data; add 'train " +
                         m.lowered.name + " { data = csv(\"file.csv\") |> batch(32) }'");
  Data d;
  runtime::Dataset all = loadSource(m, c.data);
  d.image = all.imageShape;
  if (all.size() == 0)
    throw runtime::Error("the training data is empty");
  if (c.test.kind != frontend::DataSource::None)
    d.test = loadSource(m, c.test);
  if (c.split > 0) {
    auto [train, val] = runtime::splitValidation(all, c.split, c.seed);
    if (train.size() == 0)
      throw runtime::Error(fmt::format("the validation split ({:g}) of {} example{} leaves none for training", c.split,
                                       all.size(), all.size() == 1 ? "" : "s"));
    d.train = std::move(train);
    d.val = std::move(val);
  } else {
    d.train = std::move(all);
  }
  // Statistics from the training rows only (or a checkpoint's), applied everywhere.
  d.standardized = usesStatistics(c);
  if (fitted)
    d.standardizer = *fitted;
  bool oneHot = std::any_of(c.transforms.begin(), c.transforms.end(),
                            [](const frontend::Transform &t) { return t.kind == frontend::Transform::OneHot; });
  int64_t classes = oneHot ? m.lowered.labels.at(0).type.shape.at(1).size : 0;
  applyPreprocessing(c, d.train, &d.standardizer, !fitted, classes);
  applyPreprocessing(c, d.val, &d.standardizer, false, classes);
  applyPreprocessing(c, d.test, &d.standardizer, false, classes);
  return d;
}

runtime::Augmentation augmentation(const CompiledModel &m, const Data &d) {
  runtime::Augmentation a = m.config.augment;
  if (!a.geometric())
    return a;
  std::vector<int64_t> image = d.image;
  const ir::TensorType &in = m.lowered.inputs.at(0).type;
  if (image.empty() && (in.rank() == 3 || in.rank() == 4)) {
    for (size_t i = 1; i < in.rank(); ++i)
      image.push_back(in.shape[i].size);
    if (image.size() == 2)
      image.insert(image.begin(), 1);
  }
  if (image.empty())
    throw runtime::Error("image augmentation needs the images' geometry: load IDX images, give csv(..., image = "
                         "[height, width]) or declare the input as [N, C, H, W]");
  a.channels = image[0];
  a.height = image[1];
  a.width = image[2];
  return a;
}

} // namespace nnc::driver
