// A train block's data: the source calls (csv, idx, text, npy, npz), their
// columns and files, and the pipeline steps around them (preprocessing,
// augmentation, shuffle, batch), read into TrainConfig's DataSource and
// transforms with located errors.
#include "frontend/TrainReader.h"

#include <algorithm>
#include <cmath>

namespace nnc::frontend {

const std::set<std::string> &TrainReader::pipelineSteps() {
  static const std::set<std::string> steps = {"scale", "standardize",  "min_max",        "one_hot", "random_crop",
                                              "hflip", "random_shift", "gaussian_noise", "shuffle", "batch"};
  return steps;
}

bool TrainReader::pipeline(const ast::Expr &e, DataSource &src, bool isTest) {
  std::vector<std::pair<const ast::Expr *, Args>> steps;
  const ast::Expr *cur = &e;
  for (;;) {
    if (cur->kind != ast::Expr::Call) {
      d_.error(cur->loc, "expected a data source such as csv(\"file.csv\"), idx(images = ..., labels = ...) or "
                         "text(\"file.txt\", context = 64)");
      return false;
    }
    std::vector<std::string> inputs;
    if (cur->name == "csv" || cur->name == "npy" || cur->name == "npz")
      for (const TensorDecl &in : model_.inputs)
        inputs.push_back(in.name);
    auto args = callArgs(*cur, inputs);
    if (!args)
      return false;
    if (cur->name == "text" || cur->name == "csv" || cur->name == "idx" || cur->name == "npy" || cur->name == "npz" ||
        cur->name == "ring") {
      if (!source(*cur, *args, src))
        return false;
      break;
    }
    if (!pipelineSteps().count(cur->name)) {
      d_.error(cur->loc, "'" + cur->name + "' is not a data-pipeline step");
      return false;
    }
    const ast::Expr *inner = find(*args, "data");
    if (!inner)
      return false;
    steps.push_back({cur, std::move(*args)});
    cur = inner;
  }
  for (auto it = steps.rbegin(); it != steps.rend(); ++it)
    if (!step(*it->first, it->second, isTest))
      return false;
  return true;
}

bool TrainReader::numpySource(const ast::Expr &e, const Args &args, DataSource &src) {
  bool npz = e.name == "npz";
  src.loc = e.loc;
  src.kind = npz ? DataSource::NPZ : DataSource::NPY;
  auto text = [&](const ast::Expr &a, const std::string &what) -> std::optional<std::string> {
    auto v = stringArg(a, what);
    if (v && v->empty()) {
      d_.error(a.loc, what + " is empty");
      return std::nullopt;
    }
    return v;
  };
  if (const ast::Expr *p = find(args, "path")) {
    auto v = text(*p, e.name + ": 'path'");
    if (!v)
      return false;
    src.path = npz ? path(*v) : "";
    if (!npz && !model_.inputs.empty())
      src.arrays.push_back({model_.inputs[0].name, path(*v)});
  }
  for (const TensorDecl &in : model_.inputs)
    if (const ast::Expr *a = find(args, in.name)) {
      auto v = text(*a, e.name + ": input '" + in.name + "'");
      if (!v)
        return false;
      if (!npz && !src.arrays.empty() && src.arrays[0].first == in.name) {
        d_.error(a->loc, "npy: input '" + in.name + "' is given twice (the path argument is the first input's file)");
        return false;
      }
      src.arrays.push_back({in.name, npz ? *v : path(*v)});
    }
  if (const ast::Expr *l = find(args, "label")) {
    auto v = text(*l, e.name + ": 'label'");
    if (!v)
      return false;
    src.labelArray = npz ? *v : path(*v);
    src.labelLoc = l->loc;
  }
  if (!npz)
    for (const TensorDecl &in : model_.inputs)
      if (std::none_of(src.arrays.begin(), src.arrays.end(), [&](const auto &a) { return a.first == in.name; })) {
        d_.error(e.loc, "npy: no file for input '" + in.name + "'; give it as " + in.name + " = \"" + in.name +
                            ".npy\"" + (model_.inputs.size() == 1 ? " or as the first argument" : ""));
        return false;
      }
  if (!npz && !model_.labels.empty() && src.labelArray.empty()) {
    d_.error(e.loc, "npy: no file for label '" + model_.labels[0].name + "'; add label = \"" + model_.labels[0].name +
                        ".npy\"");
    return false;
  }
  return true;
}

bool TrainReader::source(const ast::Expr &e, const Args &argv, DataSource &src) {
  const Args *args = &argv;
  const std::string &f = e.name;
  if (f == "npy" || f == "npz")
    return numpySource(e, argv, src);
  if (f == "ring") {
    src.loc = e.loc;
    src.kind = DataSource::Ring;
    auto n = numberIn(*find(*args, "n"), "ring: 'n'", 1, 1e8, true);
    if (!n)
      return false;
    src.examples = int64_t(*n);
    if (const ast::Expr *a = find(*args, "modes")) {
      auto v = numberIn(*a, "ring: 'modes'", 1, 1e4, true);
      if (!v)
        return false;
      src.ring.modes = int64_t(*v);
    }
    for (const char *k : {"radius", "std"})
      if (const ast::Expr *a = find(*args, k)) {
        auto v = numberIn(*a, std::string("ring: '") + k + "'", 1e-9, 1e6);
        if (!v)
          return false;
        (std::string(k) == "radius" ? src.ring.radius : src.ring.stddev) = *v;
      }
    return true;
  }
  if (f == "text") {
    src.loc = e.loc;
    src.kind = DataSource::Text;
    auto p = stringArg(*find(*args, "path"), "text: 'path'");
    if (!p)
      return false;
    src.path = path(*p);
    for (const char *name : {"context", "stride"}) {
      const ast::Expr *a = find(*args, name);
      if (!a)
        continue;
      auto v = number(*a);
      if (!v || *v < 1 || *v > 1e6 || std::floor(*v) != *v) {
        d_.error(a->loc,
                 std::string("text: '") + name + "' must be an integer in [1, 1000000], got " + ast::toSource(*a));
        return false;
      }
      (std::string(name) == "context" ? src.context : src.stride) = int64_t(*v);
    }
    if (!src.stride)
      src.stride = src.context;
    return true;
  }
  if (f == "csv" || f == "idx") {
    src.loc = e.loc;
    if (f == "csv") {
      src.kind = DataSource::CSV;
      auto p = stringArg(*find(*args, "path"), "csv: 'path'");
      if (!p)
        return false;
      src.path = path(*p);
      if (const ast::Expr *im = find(*args, "image")) {
        std::vector<int64_t> dims;
        if (im->kind == ast::Expr::List && (im->elems.size() == 2 || im->elems.size() == 3))
          for (auto &x : im->elems)
            if (auto v = number(*x); v && *v >= 1 && *v <= 65536 && std::floor(*v) == *v)
              dims.push_back(int64_t(*v));
        if (dims.size() != im->elems.size() || dims.empty()) {
          d_.error(im->loc, "csv: 'image' must be [height, width] or [channels, height, width] in whole pixels, got " +
                                ast::toSource(*im));
          return false;
        }
        src.image = dims;
      }
      if (const ast::Expr *l = find(*args, "label")) {
        auto refs = columnRefs(*l, "csv: 'label'", false);
        if (!refs)
          return false;
        src.label = refs->first;
        src.labelLoc = l->loc;
      }
      for (const TensorDecl &in : model_.inputs)
        if (const ast::Expr *a = find(*args, in.name)) {
          auto refs = columnRefs(*a, "csv: input '" + in.name + "'", true);
          if (!refs)
            return false;
          src.columns.push_back({in.name, refs->first, refs->second, a->loc});
        }
    } else {
      src.kind = DataSource::IDX;
      auto im = stringArg(*find(*args, "images"), "idx: 'images'");
      auto lb = stringArg(*find(*args, "labels"), "idx: 'labels'");
      if (!im || !lb)
        return false;
      src.images = path(*im);
      src.labels = path(*lb);
    }
    return true;
  }
  return false;
}

std::optional<std::pair<std::vector<runtime::ColumnRef>, bool>>
TrainReader::columnRefs(const ast::Expr &e, const std::string &what, bool rest) {
  std::vector<runtime::ColumnRef> out;
  if (rest && e.kind == ast::Expr::Name && e.name == "rest")
    return std::make_pair(out, true);
  for (const ast::Expr *x : oneOrList(e)) {
    // (Not `cond ? number(*x) : nullopt`: GCC 12 then warns that the
    // optional's value may be used uninitialized.)
    std::optional<double> c;
    if (x->kind == ast::Expr::Number)
      c = number(*x);
    if (x->kind == ast::Expr::String && !x->name.empty()) {
      out.push_back({x->name, 0});
    } else if (x->kind == ast::Expr::Name && (x->name == "last" || x->name == "first")) {
      out.push_back({"", x->name == "last" ? -1 : 0});
    } else if (c && *c >= 0 && *c <= 1e6 && std::floor(*c) == *c) {
      out.push_back({"", int64_t(*c)});
    } else {
      d_.error(x->loc, what + " must be a column: a header name (\"age\"), a number (0 is the first), first, last" +
                           std::string(rest ? ", rest" : "") + " or a list of columns, got " + ast::toSource(*x));
      return std::nullopt;
    }
  }
  if (out.empty()) {
    d_.error(e.loc, what + ": the list of columns is empty");
    return std::nullopt;
  }
  return std::make_pair(out, false);
}

bool TrainReader::step(const ast::Expr &e, const Args &argv, bool isTest) {
  const Args *args = &argv;
  const std::string &f = e.name;
  if (isTest) {
    d_.error(e.loc, "the test set is preprocessed like 'data' (and never augmented); give only its source here");
    return false;
  }
  if (f == "scale") {
    auto v = number(*find(*args, "factor"));
    if (!v || !std::isfinite(*v)) {
      d_.error(find(*args, "factor")->loc, "scale: 'factor' must be a number");
      return false;
    }
    cfg_.transforms.push_back({Transform::Scale, *v});
  } else if (f == "standardize" || f == "min_max") {
    for (const Transform &t : cfg_.transforms)
      if (t.kind == Transform::Standardize || t.kind == Transform::MinMax) {
        d_.error(e.loc, "the data is already " +
                            std::string(t.kind == Transform::MinMax ? "min-max scaled" : "standardized") +
                            "; use one of standardize and min_max");
        return false;
      }
    cfg_.transforms.push_back({f == "min_max" ? Transform::MinMax : Transform::Standardize, 1});
  } else if (f == "one_hot") {
    const auto &labels = model_.labels;
    if (labels.empty() || labels[0].type.dtype != ir::DType::F32 || labels[0].type.rank() != 2 ||
        !labels[0].type.shape[1].isStatic()) {
      d_.error(e.loc,
               "one_hot makes f32 label rows [N, C]: declare the label so, e.g. 'label y : f32[N, 10]'" +
                   (labels.empty() ? std::string() : ", not '" + labels[0].name + " : " + labels[0].type.str() + "'"));
      return false;
    }
    cfg_.transforms.push_back({Transform::OneHot, 1});
  } else if (f == "random_crop" || f == "random_shift") {
    const char *arg = f == "random_crop" ? "padding" : "pixels";
    auto v = numberIn(*find(*args, arg), f + ": '" + arg + "'", 1, 1024, true);
    if (!v)
      return false;
    (f == "random_crop" ? cfg_.augment.cropPadding : cfg_.augment.shift) = int64_t(*v);
  } else if (f == "hflip") {
    cfg_.augment.hflip = true;
  } else if (f == "gaussian_noise") {
    auto v = numberIn(*find(*args, "std"), "gaussian_noise: 'std'", 1e-12, 1e6);
    if (!v)
      return false;
    cfg_.augment.noiseStd = *v;
  } else if (f == "shuffle") {
    cfg_.shuffle = true;
    sawShuffle_ = true;
  } else {
    auto v = numberIn(*find(*args, "size"), "batch size", 1, 1 << 20, true);
    if (!v)
      return false;
    cfg_.batch = int64_t(*v);
  }
  return true;
}

} // namespace nnc::frontend
