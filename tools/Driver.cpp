// The compiler driver; see Driver.h.
#include "tools/Driver.h"

#include "frontend/ASTBuilder.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "ir/transforms/Passes.h"
#include "runtime/Checkpoint.h"
#include "runtime/Csv.h"
#include "runtime/FileUtil.h"
#include "runtime/Npy.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace nnc::driver {

std::optional<Source> parseFile(const std::string &path, DiagnosticEngine &diags) {
  Source src;
  src.file = std::make_unique<SourceFile>();
  src.file->name = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.error(SourceLoc{}, "cannot open '" + path + "': " + std::strerror(errno));
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  src.file->text = ss.str();
  src.program = frontend::parseProgram(*src.file, diags);
  if (!src.program)
    return std::nullopt;
  return src;
}

static std::string dirOf(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

CompiledModel compileModel(const Source &src, const std::string &modelName, DiagnosticEngine &diags,
                           bool withTrainConfig) {
  return compileModel(*src.program, modelName, src.file.get(), diags, withTrainConfig);
}

CompiledModel compileModel(const ast::Program &p, const std::string &modelName, const SourceFile *anchor,
                           DiagnosticEngine &diags, bool withTrainConfig) {
  if (!frontend::checkProgram(p, diags))
    throw CompileFailed{};
  const ast::ModelDecl *model = nullptr;
  if (!modelName.empty()) {
    model = p.model(modelName);
    if (!model) {
      std::vector<std::string> names;
      for (auto &m : p.models)
        names.push_back(m.name);
      std::string hint = closestMatch(modelName, names);
      diags.error(SourceLoc{anchor, 0, 0, 1},
                  "no model named '" + modelName + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      throw CompileFailed{};
    }
  } else if (!p.trains.empty() && p.model(p.trains.front().model)) {
    model = p.model(p.trains.front().model);
  } else if (p.models.size() == 1) {
    model = &p.models.front();
  } else {
    diags.error(SourceLoc{anchor, 0, 0, 1}, p.models.empty() ? "the file declares no model"
                                                             : "the file has several models; choose one with --model");
    throw CompileFailed{};
  }
  auto lowered = frontend::lowerModel(p, *model, diags);
  if (!lowered)
    throw CompileFailed{};
  CompiledModel cm;
  // Data paths are relative to the file that holds the train block.
  const ast::TrainDecl *train = p.train(model->name);
  cm.baseDir = dirOf(train && train->loc.file ? train->loc.file->name : anchor ? anchor->name : std::string("."));
  cm.lowered = std::move(*lowered);
  if (withTrainConfig) {
    auto cfg = frontend::readTrainConfig(p, cm.lowered, cm.baseDir, diags);
    if (!cfg)
      throw CompileFailed{};
    cm.config = *cfg;
  }
  cm.buildFunctions();
  return cm;
}

void CompiledModel::buildFunctions() {
  ir::Module &src = *lowered.module;
  ir::Function *forward = src.get("forward");
  ir::simplify(*forward);
  module.functions.clear();
  // Copy forward into our module so all functions live together.
  ir::Function *fwd = module.addFunction("forward");
  std::unordered_map<const ir::Value *, ir::Value *> map;
  for (size_t i = 0; i < forward->args.size(); ++i)
    map[forward->args[i]] = fwd->addArg(forward->args[i]->name, forward->args[i]->type, forward->argRoles[i]);
  map = fwd->cloneBody(*forward, map);
  for (size_t i = 0; i < forward->results.size(); ++i)
    fwd->addResult(forward->resultNames[i], map.at(forward->results[i]));

  ir::Function *grad = ir::differentiate(module, *fwd, "loss", "grad");
  ir::simplify(*grad);
  ir::Function *step = ir::appendOptimizer(module, *grad, config.optimizer, "train_step");
  // Training needs only the loss, the hit count and the updates.
  std::vector<std::string> keep;
  for (size_t i = 0; i < step->results.size(); ++i) {
    const std::string &n = step->resultNames[i];
    if (n == "loss" || n == "correct" || n.rfind("new.", 0) == 0)
      keep.push_back(n);
  }
  ir::Function *trainStep = ir::extractResults(module, *step, keep, "train_step.tmp");
  ir::simplify(*trainStep);
  // Evaluation and prediction run the model in inference mode: no dropout.
  ir::Function *infer = ir::extractResults(module, *fwd, fwd->resultNames, "inference");
  ir::disableDropout(*infer);
  ir::simplify(*infer);
  std::vector<std::string> evalResults = {"loss"};
  if (lowered.accuracy)
    evalResults.push_back("correct");
  ir::Function *eval = ir::extractResults(module, *infer, evalResults, "evaluate");
  ir::simplify(*eval);
  ir::Function *pred = nullptr;
  // predict: the outputs, and what the loss compares with the label when
  // that is not one of them (binary, multi-label and regression models).
  std::vector<std::string> predResults = lowered.outputs;
  if (lowered.hasPrediction())
    predResults.push_back("prediction");
  if (!predResults.empty()) {
    pred = ir::extractResults(module, *infer, predResults, "predict");
    ir::simplify(*pred);
  }
  // Keep: forward, grad, train_step, evaluate, predict (in that order).
  std::vector<std::unique_ptr<ir::Function>> kept;
  for (auto &f : module.functions) {
    if (f.get() == step || f.get() == infer)
      continue;
    if (f.get() == trainStep)
      f->name = "train_step";
    kept.push_back(std::move(f));
  }
  std::stable_sort(kept.begin(), kept.end(), [](auto &a, auto &b) {
    auto rank = [](const std::string &n) {
      static const char *order[] = {"forward", "grad", "train_step", "evaluate", "predict"};
      for (int i = 0; i < 5; ++i)
        if (n == order[i])
          return i;
      return 5;
    };
    return rank(a->name) < rank(b->name);
  });
  module.functions = std::move(kept);
  auto errs = ir::verify(module);
  NNC_ASSERT(errs.empty()) << "pipeline produced invalid IR: " << errs.front();
}

ir::Bindings CompiledModel::bindings(int64_t batch) const {
  ir::Bindings b;
  for (auto *list : {&lowered.inputs, &lowered.labels})
    for (auto &decl : *list)
      if (!decl.type.shape.empty() && !decl.type.shape[0].isStatic())
        b[decl.type.shape[0].sym] = batch;
  return b;
}

void printWithBodies(const ir::Function &f, std::ostream &os) {
  ir::print(f, os);
  for (const auto &op : f.ops)
    if (op->body) {
      os << "\n";
      ir::print(*op->body, os);
    }
}

const ir::Function &CompiledModel::function(const std::string &name) const {
  const ir::Function *f = module.get(name);
  if (!f)
    throw runtime::Error("model '" + lowered.name + "' has no function '" + name + "'" +
                         (name == "predict" ? " (it declares no output)" : ""));
  return *f;
}

const ir::Function &CompiledModel::checked(const std::string &name) {
  if (const ir::Function *f = module.get(name + ".checked"))
    return *f;
  const ir::Function &src = function(name);
  ir::Function *f = module.addFunction(name + ".checked");
  std::unordered_map<const ir::Value *, ir::Value *> map;
  for (size_t i = 0; i < src.args.size(); ++i)
    map[src.args[i]] = f->addArg(src.args[i]->name, src.args[i]->type, src.argRoles[i]);
  map = f->cloneBody(src, map);
  for (size_t i = 0; i < src.results.size(); ++i)
    f->addResult(src.resultNames[i], map.at(src.results[i]));
  for (size_t i = 0; i < f->ops.size(); ++i) {
    const ir::Op &op = *f->ops[i];
    if (op.result && op.result->type.dtype == ir::DType::F32 && op.kind != ir::OpKind::Const)
      f->addResult("v." + std::to_string(i), op.result);
  }
  return *f;
}

int64_t CompiledModel::parameterCount() const {
  int64_t n = 0;
  for (auto &p : lowered.params)
    n += ir::numElements(p.shape);
  return n;
}

//===----------------------------------------------------------------------===//
// Data
//===----------------------------------------------------------------------===//

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

void applyPreprocessing(const frontend::TrainConfig &c, runtime::Dataset &d, runtime::Standardizer *st, bool fit,
                        int64_t oneHotClasses) {
  if (d.size() == 0)
    return;
  for (const frontend::Transform &t : c.transforms)
    if (t.kind == frontend::Transform::Scale)
      runtime::scale(d, float(t.factor));
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

//===----------------------------------------------------------------------===//
// Session
//===----------------------------------------------------------------------===//

static runtime::Role toRole(ir::ArgRole r) {
  switch (r) {
  case ir::ArgRole::Input:
    return runtime::Role::Input;
  case ir::ArgRole::Label:
    return runtime::Role::Label;
  case ir::ArgRole::Param:
    return runtime::Role::Param;
  case ir::ArgRole::State:
    return runtime::Role::State;
  case ir::ArgRole::Scalar:
    return runtime::Role::Scalar;
  }
  return runtime::Role::Input;
}

static runtime::DType toDType(ir::DType t) { return t == ir::DType::F32 ? runtime::DType::F32 : runtime::DType::I64; }

Session::Session(CompiledModel &model) : model_(&model) {
  checkSignature();
  jit_ = std::make_unique<codegen::JIT>();
  trainer_ = std::make_unique<runtime::Trainer>(
      [this](const std::string &fn, int64_t batch) -> const runtime::CompiledFn & { return compiled(fn, batch); },
      state_);
}

void Session::checkSignature() const {
  const auto &inputs = model_->lowered.inputs;
  if (inputs.empty())
    throw runtime::Error("model '" + model_->lowered.name + "' has no inputs; training from a data file needs one");
  for (const frontend::TensorDecl &in : inputs) {
    const ir::TensorType &t = in.type;
    if (t.shape.empty() || t.shape[0].isStatic()) {
      ir::TensorType want = t;
      if (want.shape.empty())
        want.shape.push_back(ir::Dim::symbol("N"));
      else
        want.shape[0] = ir::Dim::symbol("N");
      throw runtime::Error("input '" + in.name + "' : " + t.str() + " needs a symbolic batch dimension first, as in " +
                           want.str());
    }
    for (size_t i = 1; i < t.shape.size(); ++i)
      if (!t.shape[i].isStatic())
        throw runtime::Error("input '" + in.name + "' : " + t.str() +
                             ": only the first (batch) dimension may be symbolic when training from a file");
    if (t.shape[0] != inputs[0].type.shape[0])
      throw runtime::Error("inputs '" + inputs[0].name + "' : " + inputs[0].type.str() + " and '" + in.name +
                           "' : " + t.str() + " must share the batch dimension when training from a file");
  }
  const auto &labels = model_->lowered.labels;
  if (labels.size() > 1)
    throw runtime::Error("model '" + model_->lowered.name + "' has " + std::to_string(labels.size()) +
                         " labels; training from a data file needs at most one");
  if (labels.size() == 1) {
    const ir::TensorType &lt = labels[0].type;
    bool staticRest = true;
    for (size_t i = 1; i < lt.shape.size(); ++i)
      staticRest &= lt.shape[i].isStatic();
    if (lt.rank() < 1 || lt.shape[0] != inputs[0].type.shape[0] || !staticRest)
      throw runtime::Error("label '" + labels[0].name + "' : " + lt.str() + ": a data file gives one target per " +
                           "example, so the label must be [" + inputs[0].type.shape[0].str() +
                           ", ...] with the inputs' batch dimension first and static sizes after it");
  }
}

namespace {

/// The first NaN or infinity in an f32 tensor, as text, or "".
std::string firstNonFinite(const runtime::Tensor &t) {
  if (t.dtype() != runtime::DType::F32)
    return "";
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (!std::isfinite(t.f32()[i]))
      return fmt::format("{} (element {} of {})",
                         std::isnan(t.f32()[i]) ? "nan"
                         : t.f32()[i] > 0       ? "inf"
                                                : "-inf",
                         i, n);
  return "";
}

} // namespace

std::string Session::explainNonFinite(const std::string &fn, const std::vector<runtime::Tensor> &xb,
                                      const runtime::Tensor *yb, float lr) {
  for (auto *group : {&state_.params, &state_.state})
    for (auto &[name, t] : *group)
      if (std::string v = firstNonFinite(t); !v.empty())
        return fmt::format("'{}' already holds {} before this step", name, v);
  for (const runtime::Tensor &x : xb)
    if (std::string v = firstNonFinite(x); !v.empty())
      return "the input batch holds " + v;
  const ir::Function &f = model_->checked(fn);
  std::map<std::string, runtime::Tensor> outs = trainer_->run(f.name, xb, yb, lr);
  std::unordered_set<const ir::Value *> bad;
  std::vector<std::string> lines;
  for (size_t i = 0; i < f.ops.size(); ++i) {
    const ir::Op &op = *f.ops[i];
    auto it = outs.find("v." + std::to_string(i));
    if (it == outs.end())
      continue;
    std::string v = firstNonFinite(it->second);
    if (v.empty())
      continue;
    bool inherited = false;
    for (const ir::Value *x : op.operands)
      inherited |= bad.count(x) > 0;
    bad.insert(op.result);
    if (inherited)
      continue;
    if (lines.empty()) {
      std::istringstream in(ir::toString(f));
      for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    }
    std::string text = i + 1 < lines.size() ? lines[i + 1] : ir::opName(op.kind);
    text.erase(0, text.find_first_not_of(' '));
    std::string where = "an op nnc added";
    if (op.loc.valid()) {
      std::string src = op.loc.file->lineText(op.loc.line);
      src.erase(0, src.find_first_not_of(" \t"));
      where = fmt::format("{} (`{}`)", op.loc.str(), src);
    }
    return fmt::format("the first non-finite value, {}, comes from `{}` at {}, whose operands are finite", v, text,
                       where);
  }
  return "a re-run of the step with every intermediate checked stayed finite: the optimized step rounds differently "
         "here (it fuses ops, e.g. it applies the learning rate to a factor of a product before multiplying, which "
         "overflows for values near the f32 limit)";
}

void Session::checkData(const runtime::Dataset &d, const std::string &what, bool withLabel) const {
  // Each example must fill one row of the input (and label) declaration.
  auto check = [&](const runtime::Tensor &t, const frontend::TensorDecl &decl, const char *kind, const char *unit) {
    int64_t have = 1, want = 1;
    for (size_t i = 1; i < t.rank(); ++i)
      have *= t.dim(i);
    for (size_t i = 1; i < decl.type.shape.size(); ++i)
      want *= decl.type.shape[i].size;
    if (want != have)
      throw runtime::Error(fmt::format("{}: examples have {} {}, but {} '{}' : {} expects {}", what, have, unit, kind,
                                       decl.name, decl.type.str(), want));
    if ((t.dtype() == runtime::DType::F32) != (decl.type.dtype == ir::DType::F32))
      throw runtime::Error(fmt::format("{}: examples hold {} values, but {} '{}' is {}", what,
                                       runtime::dtypeName(t.dtype()), kind, decl.name, decl.type.str()));
  };
  if (d.inputs.size() != model_->lowered.inputs.size())
    throw runtime::Error(fmt::format("{}: examples have {} input tensors, but model '{}' has {} inputs", what,
                                     d.inputs.size(), model_->lowered.name, model_->lowered.inputs.size()));
  for (size_t i = 0; i < d.inputs.size(); ++i)
    check(d.inputs[i], model_->lowered.inputs[i], "input", "features");
  if (!withLabel)
    return;
  if (!model_->lowered.labels.empty())
    check(d.y, model_->lowered.labels[0], "label", "label values");
  if (model_->lowered.classification)
    runtime::checkLabels(d, model_->lowered.numClasses, what);
}

void Session::checkData(const Data &d) const {
  const frontend::TrainConfig &c = model_->config;
  auto located = [&](const runtime::Dataset &ds, const char *what, SourceLoc at) {
    try {
      checkData(ds, what);
    } catch (const LocatedError &) {
      throw;
    } catch (const runtime::Error &e) {
      throw LocatedError(at, e.what());
    }
  };
  located(d.train, "training data", c.data.loc);
  if (d.test.size())
    located(d.test, "test data", c.test.loc.valid() ? c.test.loc : c.data.loc);
}

void Session::checkBatchNorm(int64_t examples) const {
  const frontend::LoweredModel &low = model_->lowered;
  if (!low.batchNormPerExample || examples <= 0)
    return;
  // A training batch of b examples gives b * perExample values per channel;
  // one value has no variance (PyTorch refuses it the same way).
  int64_t batch = model_->config.batch, last = examples % batch;
  int64_t smallest = examples < batch ? examples : last ? last : batch;
  if (smallest * low.batchNormPerExample > 1)
    return;
  throw LocatedError(low.batchNormLoc,
                     fmt::format("batch_norm needs more than one value per channel in every training batch (PyTorch: "
                                 "\"Expected more than 1 value per channel when training\"), but {} training "
                                 "example{} in batches of {} leave{} a batch of 1; change the batch size or the split",
                                 examples, examples == 1 ? "" : "s", batch, examples == 1 ? "s" : ""));
}

void Session::checkMemory(const ir::Function &f, int64_t batch) const {
  // Every buffer the function touches, at its concrete size, before anything
  // is allocated; the arena is at most the sum of its intermediates.
  ir::Bindings b = model_->bindings(batch);
  double bytes = 0;
  auto add = [&](const ir::Value *v) {
    double n = 1;
    for (int64_t d : ir::concreteShape(v->type.shape, b))
      n *= double(d);
    bytes += n * (v->type.dtype == ir::DType::F32 ? 4 : 8);
  };
  for (const ir::Value *a : f.args)
    add(a);
  for (const auto &op : f.ops)
    add(op->result);
  double physical = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
  if (physical > 0 && bytes > physical)
    throw runtime::Error(fmt::format("{} of model '{}' at batch size {} needs up to {:.1f} GiB of memory, more than "
                                     "this machine's {:.1f} GiB",
                                     f.name, model_->lowered.name, batch, bytes / (1 << 30), physical / (1 << 30)));
}

runtime::CompiledFn Session::toRuntime(const codegen::CompiledFunction &c) {
  runtime::CompiledFn r;
  r.entry = c.entry;
  r.arenaBytes = c.arenaBytes;
  for (auto &a : c.args)
    r.args.push_back({a.name, toDType(a.dtype), a.shape, toRole(a.role)});
  for (size_t j = 0; j < c.results.size(); ++j) {
    const codegen::BufferSpec &a = c.results[j];
    r.results.push_back({a.name, toDType(a.dtype), a.shape, runtime::Role::Input, c.resultArg[j]});
  }
  return r;
}

const runtime::CompiledFn &Session::compiled(const std::string &fn, int64_t batch) {
  auto key = std::make_pair(fn, batch);
  auto it = cache_.find(key);
  if (it != cache_.end())
    return it->second;
  const ir::Function &f = model_->function(fn);
  checkMemory(f, batch);
  codegen::CodegenOptions opts;
  opts.profile = profiling_;
  // The trainer binds "new.X" results written over X (see runtime::BufferSpec);
  // a checked run must leave the weights as they were.
  opts.inPlaceUpdates = fn.size() < 8 || fn.compare(fn.size() - 8, 8, ".checked") != 0;
  codegen::CompiledFunction c = jit_->compile(f, model_->bindings(batch), opts);
  compileSeconds_ += c.compileSeconds;
  fromCache_ += c.fromCache ? 1 : 0;
  memory_[key] = {c.arenaBytes, c.unplannedBytes};
  if (c.profile)
    profiles_[key] = c;
  return cache_.emplace(key, toRuntime(c)).first->second;
}

const codegen::CompiledFunction *Session::profile(const std::string &fn, int64_t batch) const {
  auto it = profiles_.find({fn, batch});
  return it == profiles_.end() ? nullptr : &it->second;
}

runtime::Tensor Session::initialValue(const std::string &name, std::mt19937_64 &rng) const {
  for (const frontend::ParamInfo &p : model_->lowered.params)
    if (p.name == name) {
      runtime::Tensor t(runtime::DType::F32, p.shape);
      runtime::initialize(t, runtime::Init(int(p.init)), p.fanIn, p.fanOut, rng);
      return t;
    }
  const ir::Function &f = model_->function("train_step");
  for (size_t i = 0; i < f.args.size(); ++i) {
    if (f.argRoles[i] != ir::ArgRole::State || f.args[i]->name != name)
      continue;
    runtime::Tensor t(runtime::DType::F32, ir::concreteShape(f.args[i]->type.shape, {}));
    // The model's own state (running statistics) starts as it declares;
    // optimizer state starts at zero.
    for (const frontend::ParamInfo &st : model_->lowered.states)
      if (st.name == name)
        runtime::initialize(t, runtime::Init(int(st.init)), 1, 1, rng);
    return t;
  }
  NNC_UNREACHABLE("no model tensor named " << name);
}

void Session::initialize(uint64_t seed) {
  // Refuse absurd models before allocating their parameters.
  checkMemory(model_->function("train_step"), std::max<int64_t>(1, model_->config.batch));
  std::mt19937_64 rng(seed ^ 0x6e6e63ULL);
  state_.params.clear();
  state_.state.clear();
  for (const frontend::ParamInfo &p : model_->lowered.params)
    state_.params.emplace(p.name, initialValue(p.name, rng));
  const ir::Function &f = model_->function("train_step");
  for (size_t i = 0; i < f.args.size(); ++i)
    if (f.argRoles[i] == ir::ArgRole::State)
      state_.state.emplace(f.args[i]->name, initialValue(f.args[i]->name, rng));
}

Session::Rebind Session::rebind(CompiledModel &model, uint64_t seed) {
  checkMemory(model.function("train_step"), std::max<int64_t>(1, model.config.batch));
  CompiledModel *old = model_;
  model_ = &model;
  try {
    checkSignature();
  } catch (...) {
    model_ = old;
    throw;
  }
  Rebind r;
  // Compiled code: kept where the function's IR is the same as the old
  // model's (what it was compiled from); REPL expressions ("adhoc.<n>") are
  // cached by their own IR.
  std::set<std::string> same;
  for (const auto &g : model.module.functions) {
    const ir::Function *o = old->module.get(g->name);
    bool unchanged = o && ir::toString(*o) == ir::toString(*g);
    (unchanged ? r.unchanged : r.recompile).push_back(g->name);
    if (unchanged)
      same.insert(g->name);
  }
  auto stale = [&](const std::pair<std::string, int64_t> &key) {
    return !same.count(key.first) && key.first.rfind("adhoc.", 0) != 0;
  };
  for (auto c = cache_.begin(); c != cache_.end();)
    c = stale(c->first) ? cache_.erase(c) : std::next(c);
  for (auto c = memory_.begin(); c != memory_.end();)
    c = stale(c->first) ? memory_.erase(c) : std::next(c);
  for (auto c = profiles_.begin(); c != profiles_.end();)
    c = stale(c->first) ? profiles_.erase(c) : std::next(c);
  // Tensors: kept where name and shape match, else initialized.
  runtime::ModelState next;
  std::mt19937_64 rng(seed ^ 0x6e6e63ULL);
  auto carry = [&](const std::string &name, std::map<std::string, runtime::Tensor> &from,
                   std::map<std::string, runtime::Tensor> &to) {
    runtime::Tensor init = initialValue(name, rng);
    auto it = from.find(name);
    if (it != from.end() && it->second.shape() == init.shape()) {
      to.emplace(name, std::move(it->second));
      r.kept.push_back(name);
    } else {
      to.emplace(name, std::move(init));
      r.fresh.push_back(name);
    }
    if (it != from.end())
      from.erase(it);
  };
  for (const frontend::ParamInfo &p : model.lowered.params)
    carry(p.name, state_.params, next.params);
  const ir::Function &step = model.function("train_step");
  for (size_t i = 0; i < step.args.size(); ++i)
    if (step.argRoles[i] == ir::ArgRole::State)
      carry(step.args[i]->name, state_.state, next.state);
  for (auto *group : {&state_.params, &state_.state})
    for (auto &[name, t] : *group)
      r.dropped.push_back(name);
  state_ = std::move(next);
  return r;
}

std::map<std::string, runtime::Tensor>
Session::runFunction(const ir::Function &f, const std::vector<runtime::Tensor> &x, const runtime::Tensor *y) {
  int64_t batch = x.at(0).rank() ? x[0].dim(0) : 1;
  // The trainer runs functions by name through the session's cache; each
  // distinct function gets a name of its own there ("adhoc.<n>").
  auto key = std::make_pair(ir::toString(f), batch);
  auto it = adhoc_.find(key);
  if (it == adhoc_.end()) {
    checkMemory(f, batch);
    codegen::CompiledFunction c = jit_->compile(f, model_->bindings(batch));
    compileSeconds_ += c.compileSeconds;
    std::string name = "adhoc." + std::to_string(adhoc_.size());
    cache_.emplace(std::make_pair(name, batch), toRuntime(c));
    it = adhoc_.emplace(key, name).first;
  }
  return trainer_->run(it->second, x, y, 0.0f);
}

runtime::Checkpoint Session::load(const std::string &path) {
  runtime::Checkpoint ck = runtime::loadSafetensors(path);
  runtime::Checkpoint rest;
  rest.metadata = ck.metadata;
  // Everything is checked before anything is replaced, and every mismatch is
  // listed at once (as PyTorch's load_state_dict does): missing, unexpected
  // and mis-shaped tensors.
  runtime::ModelState next = state_;
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, runtime::Tensor *>> matched;
  for (auto &[name, t] : ck.tensors) {
    runtime::Tensor *dst = nullptr;
    if (auto p = next.params.find(name); p != next.params.end())
      dst = &p->second;
    else if (auto s = next.state.find(name); s != next.state.end())
      dst = &s->second;
    else if (name.rfind("best.", 0) == 0 || name.rfind("data.", 0) == 0) {
      rest.tensors[name] = t; // a training run's state (also best.<optimizer state>); the caller's
      continue;
    } else if (ir::isOptimizerStateName(name))
      continue; // state of another optimizer: start this one fresh
    else {
      problems.push_back("unexpected: '" + name + "' " + t.typeString() + " is not a parameter of the model");
      continue;
    }
    if (t.shape() != dst->shape() || t.dtype() != dst->dtype())
      problems.push_back("mis-shaped: '" + name + "' is " + t.typeString() + " but the model needs " +
                         dst->typeString());
    else
      matched.push_back({name, dst});
  }
  for (auto &[name, t] : next.params)
    if (!ck.tensors.count(name))
      problems.push_back("missing: parameter '" + name + "' " + t.typeString() + " is not in the file");
  if (!problems.empty()) {
    std::string msg = "'" + path + "' does not fit model '" + model_->lowered.name + "'";
    if (auto w = ck.metadata.find("nnc.model"); w != ck.metadata.end() && w->second != model_->lowered.name)
      msg += " (the file was written for model '" + w->second + "')";
    msg += fmt::format(": {} {}", problems.size(), problems.size() == 1 ? "mismatch" : "mismatches");
    const size_t shown = 20;
    for (size_t i = 0; i < problems.size() && i < shown; ++i)
      msg += "\n  " + problems[i];
    if (problems.size() > shown)
      msg += fmt::format("\n  ... and {} more", problems.size() - shown);
    throw runtime::Error(msg);
  }
  for (auto &[name, dst] : matched) {
    const runtime::Tensor &t = ck.tensors.at(name);
    if (t.dtype() == runtime::DType::F32)
      for (int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(t.f32()[i]))
          throw runtime::Error(
              fmt::format("'{}': tensor '{}' holds a non-finite value ({}) at element {}", path, name, t.f32()[i], i));
    *dst = t;
  }
  state_ = std::move(next);
  return rest;
}

void Session::save(const std::string &path, const std::map<std::string, std::string> &metadata,
                   const std::map<std::string, runtime::Tensor> &extra) {
  std::vector<std::pair<std::string, const runtime::Tensor *>> tensors;
  for (auto &[n, t] : state_.params)
    tensors.push_back({n, &t});
  for (auto &[n, t] : state_.state)
    tensors.push_back({n, &t});
  // load() refuses non-finite weights, so they are never written.
  for (auto &[n, t] : tensors)
    if (std::string v = firstNonFinite(*t); !v.empty())
      throw runtime::Error(fmt::format("not writing '{}': '{}' holds {}, and nnc could not read it back", path, n, v));
  for (auto &[n, t] : extra)
    tensors.push_back({n, &t});
  runtime::saveSafetensors(path, tensors, metadata);
}

//===----------------------------------------------------------------------===//
// Settings and checkpoints shared by the CLI and the REPL
//===----------------------------------------------------------------------===//

runtime::TrainOptions trainOptions(const CompiledModel &m) {
  const frontend::TrainConfig &c = m.config;
  runtime::TrainOptions t;
  t.epochs = c.epochs;
  t.batch = c.batch;
  t.lr = c.lr;
  t.schedule = c.schedule;
  t.shuffle = c.shuffle;
  t.seed = c.seed;
  t.earlyStop = c.earlyStop;
  t.monitor = c.monitor;
  t.patience = c.patience;
  t.minDelta = c.minDelta;
  t.classification = m.lowered.accuracy;
  t.showAccuracy = std::find(c.metrics.begin(), c.metrics.end(), "accuracy") != c.metrics.end();
  return t;
}

std::string optimizerText(const frontend::TrainConfig &c) {
  const ir::OptimizerSpec &o = c.optimizer;
  using K = ir::OptimizerSpec::Kind;
  std::string s = fmt::format("{}(lr = {:g}", ir::OptimizerSpec::name(o.kind), c.lr);
  if (o.momentum && (o.kind == K::SGD || o.kind == K::RMSProp))
    s += fmt::format(", momentum = {:g}{}", o.momentum, o.nesterov ? ", nesterov" : "");
  if (o.centered && o.kind == K::RMSProp)
    s += ", centered";
  if (o.weightDecay)
    s += fmt::format(", weight_decay = {:g}", o.weightDecay);
  if (o.clipNorm)
    s += fmt::format(", clip_norm = {:g}", o.clipNorm);
  if (o.clipValue)
    s += fmt::format(", clip_value = {:g}", o.clipValue);
  if (!o.perParam.empty())
    s += fmt::format(", {} parameter{} with own settings", o.perParam.size(), o.perParam.size() == 1 ? "" : "s");
  return s + ")";
}

std::string scheduleText(const runtime::LrSchedule &s) {
  using S = runtime::LrSchedule;
  switch (s.kind) {
  case S::Constant:
    return "constant";
  case S::Step:
    return fmt::format("step(every = {}, gamma = {:g})", s.every, s.gamma);
  case S::Exponential:
    return fmt::format("exponential(gamma = {:g})", s.gamma);
  case S::Cosine:
    return fmt::format("cosine(warmup = {:g}, min_lr = {:g})", s.warmup, s.minLr);
  case S::OneCycle:
    return fmt::format("one_cycle(max_lr = {:g}, pct_start = {:g}, div_factor = {:g}, final_div_factor = {:g})",
                       s.maxLr, s.pctStart, s.divFactor, s.finalDivFactor);
  case S::Plateau:
    return fmt::format("reduce_on_plateau(monitor = {}, factor = {:g}, patience = {}, min_lr = {:g})", s.monitor,
                       s.factor, s.patience, s.minLr);
  }
  return "?";
}

/// What a resumed run must share with the run that wrote its checkpoint:
/// everything that changes the sequence of steps, numbers to 9 digits.
std::string resumeKey(const CompiledModel &m, const Data &d) {
  const frontend::TrainConfig &c = m.config;
  const ir::OptimizerSpec &o = c.optimizer;
  const runtime::LrSchedule &s = c.schedule;
  std::string key = fmt::format(
      "model {}, {} lr {:.9g} momentum {:.9g}{} decay {:.9g} betas {:.9g} {:.9g} eps {:.9g} alpha {:.9g}{} clip {:.9g} "
      "{:.9g}",
      m.lowered.name, ir::OptimizerSpec::name(o.kind), c.lr, o.momentum, o.nesterov ? " nesterov" : "", o.weightDecay,
      o.beta1, o.beta2, o.eps, o.alpha, o.centered ? " centered" : "", o.clipNorm, o.clipValue);
  for (const auto &[name, ps] : o.perParam)
    key += fmt::format(", {} decay {:.9g} lr x{:.9g}", name, ps.weightDecay, ps.lrScale);
  key += ", schedule " + scheduleText(s) +
         fmt::format(" {:.9g} {:.9g} {:.9g} {:.9g} {:.9g} {:.9g} {:.9g}", s.gamma, s.warmup, s.minLr, s.maxLr,
                     s.pctStart, s.factor, s.threshold);
  if (c.earlyStop)
    key += fmt::format(", early_stop {} {} {:.9g}", c.monitor, c.patience, c.minDelta);
  key += fmt::format(", batch {}, seed {}, {} training and {} validation examples", c.batch, c.seed, d.train.size(),
                     d.val.size());
  for (const frontend::Transform &t : c.transforms)
    key += t.kind == frontend::Transform::Scale         ? fmt::format(", scale {:.9g}", t.factor)
           : t.kind == frontend::Transform::Standardize ? std::string(", standardize")
           : t.kind == frontend::Transform::MinMax      ? std::string(", min_max")
                                                        : std::string(", one_hot");
  const runtime::Augmentation &a = c.augment;
  if (a.any())
    key += fmt::format(", augment crop {} flip {} shift {} noise {:.9g}", a.cropPadding, a.hflip, a.shift, a.noiseStd);
  if (!c.shuffle)
    key += ", no shuffle";
  return key;
}

/// The fitted scaling of a train block's pipeline: "standardize", "min_max" or "".
std::string fittedScaling(const frontend::TrainConfig &c) {
  for (const frontend::Transform &t : c.transforms)
    if (t.kind == frontend::Transform::Standardize || t.kind == frontend::Transform::MinMax)
      return t.kind == frontend::Transform::Standardize ? "standardize" : "min_max";
  return "";
}

/// The scaling statistics a checkpoint carries for this train block's
/// pipeline, if any (none when the pipeline fits none). Throws Error when
/// they were fitted by another kind of scaling.
std::optional<runtime::Standardizer> storedStandardizer(const runtime::Checkpoint &ck, const std::string &path,
                                                        const frontend::TrainConfig &cfg) {
  auto mean = ck.tensors.find("data.mean"), sd = ck.tensors.find("data.stddev");
  std::string kind = fittedScaling(cfg);
  if ((mean == ck.tensors.end() && sd == ck.tensors.end()) || kind.empty())
    return std::nullopt;
  if (auto it = ck.metadata.find("nnc.preprocess"); it != ck.metadata.end() && it->second != kind)
    throw runtime::Error("'" + path + "' holds the statistics of |> " + it->second + ", but the train block uses |> " +
                         kind);
  if (mean == ck.tensors.end() || sd == ck.tensors.end() || mean->second.dtype() != runtime::DType::F32 ||
      sd->second.dtype() != runtime::DType::F32 || mean->second.numel() != sd->second.numel())
    throw runtime::Error("'" + path + "': data.mean and data.stddev must be two f32 tensors of the same size");
  runtime::Standardizer st;
  st.mean.assign(mean->second.f32(), mean->second.f32() + mean->second.numel());
  st.stddev.assign(sd->second.f32(), sd->second.f32() + sd->second.numel());
  return st;
}

namespace {

std::vector<std::string> splitOn(const std::string &s, const std::string &sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos)
      return out;
    start = at + sep.size();
  }
}

bool isNumber(const std::string &w) {
  return !w.empty() && (std::isdigit(static_cast<unsigned char>(w[0])) || w[0] == '-' || w[0] == 'x');
}

/// The setting an item of a resume key is about: its first word ("batch",
/// "seed", "adam", "schedule"), or for "N training and M validation
/// examples" its last.
std::string itemHead(const std::vector<std::string> &words) {
  return words.empty() ? "" : isNumber(words[0]) ? words.back() : words[0];
}

} // namespace

std::string resumeDiff(const std::string &stored, const std::string &now) {
  std::vector<std::string> a = splitOn(stored, ", "), b = splitOn(now, ", ");
  std::vector<bool> usedB(b.size(), false);
  std::string out;
  auto line = [&](const std::string &what, const std::string &x, const std::string &y) {
    out += "\n  " + what + ": " + x + " in the checkpoint, " + y + " in this run";
  };
  for (const std::string &itemA : a) {
    std::vector<std::string> wa = splitOn(itemA, " ");
    size_t j = 0;
    while (j < b.size() && (usedB[j] || itemHead(splitOn(b[j], " ")) != itemHead(wa)))
      ++j;
    if (j == b.size()) {
      out += "\n  only in the checkpoint: " + itemA;
      continue;
    }
    usedB[j] = true;
    if (b[j] == itemA)
      continue;
    std::vector<std::string> wb = splitOn(b[j], " ");
    if (wa.size() != wb.size()) {
      line(itemHead(wa), "'" + itemA + "'", "'" + b[j] + "'");
      continue;
    }
    for (size_t i = 0; i < wa.size(); ++i) {
      if (wa[i] == wb[i])
        continue;
      // Name a value by the word before it (lr 0.01, betas 0.9 0.999),
      // else the word after it (1438 training).
      std::string label = itemHead(wa);
      size_t k = i;
      while (k > 0 && isNumber(wa[k - 1]))
        --k;
      if (k > 0 && wa[k - 1] != "and")
        label = wa[k - 1];
      else if (i + 1 < wa.size() && !isNumber(wa[i + 1]))
        label = wa[i + 1];
      line(label, wa[i], wb[i]);
    }
  }
  for (size_t j = 0; j < b.size(); ++j)
    if (!usedB[j])
      out += "\n  only in this run: " + b[j];
  return out;
}

std::map<std::string, std::string> checkpointMetadata(const CompiledModel &m, const Data &d, int64_t epochs) {
  std::map<std::string, std::string> meta = {{"nnc.model", m.lowered.name},
                                             {"nnc.seed", std::to_string(m.config.seed)},
                                             {"nnc.epochs", std::to_string(epochs)},
                                             {"nnc.format", "1"}};
  if (d.standardized)
    meta["nnc.preprocess"] = fittedScaling(m.config);
  return meta;
}

std::map<std::string, runtime::Tensor> dataTensors(const Data &d) {
  std::map<std::string, runtime::Tensor> t;
  if (d.standardized) {
    int64_t n = int64_t(d.standardizer.mean.size());
    t.emplace("data.mean", runtime::Tensor(runtime::DType::F32, {n}));
    t.emplace("data.stddev", runtime::Tensor(runtime::DType::F32, {n}));
    std::copy_n(d.standardizer.mean.data(), n, t.at("data.mean").f32());
    std::copy_n(d.standardizer.stddev.data(), n, t.at("data.stddev").f32());
  }
  return t;
}

std::optional<uint64_t> storedSeed(const runtime::Checkpoint &ck, const std::string &path) {
  auto it = ck.metadata.find("nnc.seed");
  if (it == ck.metadata.end())
    return std::nullopt;
  const std::string &v = it->second;
  char *end = nullptr;
  errno = 0;
  unsigned long long seed = v.empty() || v[0] == '-' ? 0 : std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || errno || *end)
    throw runtime::Error("'" + path + "': metadata nnc.seed is not a seed: '" + v + "'");
  return seed;
}

void saveCheckpoint(Session &session, const Data &d, const runtime::FitState &st, const std::string &path) {
  const CompiledModel &m = session.model();
  std::map<std::string, runtime::Tensor> extra = dataTensors(d);
  for (auto *best : {&st.bestParams, &st.bestState})
    for (auto &[n, t] : *best)
      extra.emplace("best." + n, t);
  std::map<std::string, std::string> meta = checkpointMetadata(m, d, st.epoch);
  meta["nnc.fit_state"] = st.toJson();
  meta["nnc.resume_key"] = resumeKey(m, d);
  session.save(path, meta, extra);
}

runtime::FitState storedFitState(const runtime::Checkpoint &ck, const std::string &path, const runtime::ModelState &s) {
  auto json = ck.metadata.find("nnc.fit_state");
  if (json == ck.metadata.end())
    throw runtime::Error("'" + path +
                         "' holds weights but no training state (it was written by --save, not by "
                         "checkpoint(...) or --checkpoint); start from its weights with --load instead");
  runtime::FitState fit = runtime::FitState::fromJson(json->second, "'" + path + "'");
  for (auto &[name, t] : ck.tensors) {
    if (name.rfind("best.", 0) != 0)
      continue;
    std::string n = name.substr(5);
    if (!s.params.count(n) && !s.state.count(n))
      throw runtime::Error("'" + path + "': '" + name + "' is not the best value of any model tensor");
    (s.params.count(n) ? fit.bestParams : fit.bestState)[n] = t;
  }
  return fit;
}

} // namespace nnc::driver
