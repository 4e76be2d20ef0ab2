// Degenerate-data warnings (see DataChecks.h).
#include "tools/DataChecks.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

namespace nnc::driver {

namespace {

/// "0, 3, 7" (at most `limit` values, then "...").
template <class T> std::string listOf(const std::vector<T> &v, size_t limit = 8) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < limit; ++i)
    s += (i ? ", " : "") + fmt::format("{}", v[i]);
  return v.size() > limit ? s + ", ..." : s;
}

/// The classes that occur in i64 labels `y`.
std::set<int64_t> classesIn(const runtime::Tensor &y) {
  std::set<int64_t> seen;
  if (y.dtype() == runtime::DType::I64)
    for (int64_t i = 0; i < y.numel(); ++i)
      seen.insert(y.i64()[i]);
  return seen;
}

/// Columns j of f32 `t` [n, k...] whose value is the same in every row.
std::vector<int64_t> constantColumns(const runtime::Tensor &t) {
  std::vector<int64_t> out;
  int64_t n = t.rank() ? t.dim(0) : 0, k = n ? t.numel() / n : 0;
  if (n < 2 || t.dtype() != runtime::DType::F32)
    return out;
  const float *p = t.f32();
  for (int64_t j = 0; j < k; ++j) {
    bool same = true;
    for (int64_t i = 1; i < n && same; ++i)
      same = p[i * k + j] == p[j];
    if (same)
      out.push_back(j);
  }
  return out;
}

} // namespace

std::vector<DataWarning> dataWarnings(const CompiledModel &m, const Data &d) {
  const frontend::LoweredModel &low = m.lowered;
  const frontend::DataSource &src = m.config.data;
  SourceLoc labelAt = src.labelLoc.valid() ? src.labelLoc : src.loc;
  std::vector<DataWarning> out;
  if (d.train.size() < 2)
    return out;
  if (low.classification && d.train.y.dtype() == runtime::DType::I64) {
    std::set<int64_t> train = classesIn(d.train.y);
    if (train.size() == 1)
      out.push_back({labelAt, fmt::format("every training label is {}: the model can only learn to predict that class "
                                          "(is the label the right column?)",
                                          *train.begin())});
    else if (int64_t(train.size()) < low.numClasses) {
      std::vector<int64_t> missing;
      for (int64_t c = 0; c < low.numClasses; ++c)
        if (!train.count(c))
          missing.push_back(c);
      out.push_back(
          {labelAt, fmt::format("the training data has {} of the model's {} classes; no example of {} {}", train.size(),
                                low.numClasses, missing.size() == 1 ? "class" : "classes", listOf(missing))});
    }
    if (d.val.size() && train.size() > 1) {
      std::set<int64_t> val = classesIn(d.val.y);
      std::vector<int64_t> absent;
      for (int64_t c : train)
        if (!val.count(c))
          absent.push_back(c);
      if (!absent.empty())
        out.push_back(
            {src.loc, fmt::format("the validation split ({} example{}) has no example of {} {}, which the "
                                  "training data has; its accuracy says nothing about {}",
                                  d.val.size(), d.val.size() == 1 ? "" : "s", absent.size() == 1 ? "class" : "classes",
                                  listOf(absent), absent.size() == 1 ? "it" : "them")});
    }
  } else if (d.train.y.dtype() == runtime::DType::F32 && !low.labels.empty()) {
    std::vector<int64_t> fixed = constantColumns(d.train.y);
    int64_t k = d.train.y.numel() / d.train.size();
    if (!fixed.empty() && int64_t(fixed.size()) == k)
      out.push_back({labelAt, fmt::format("the label '{}' has one value ({:g}) in every training example{}: there is "
                                          "nothing to learn",
                                          low.labels[0].name, d.train.y.f32()[0], k > 1 ? " and column" : "")});
    else if (!fixed.empty())
      out.push_back({labelAt, fmt::format("label columns {} (counting from 0) of '{}' are the same in every training "
                                          "example",
                                          listOf(fixed), low.labels[0].name)});
  }
  // Constant features of tabular inputs: nothing to learn from, and no
  // scale for standardize. Image rows (a known geometry, or more than 32
  // features such as pixels) often have constant borders: not warned about.
  if (d.image.empty())
    for (size_t i = 0; i < d.train.inputs.size() && i < low.inputs.size(); ++i) {
      const runtime::Tensor &x = d.train.inputs[i];
      int64_t k = x.numel() / d.train.size();
      if (x.dtype() != runtime::DType::F32 || x.rank() != 2 || k > 32)
        continue;
      std::vector<int64_t> fixed = constantColumns(x);
      if (fixed.empty())
        continue;
      out.push_back(
          {src.loc,
           int64_t(fixed.size()) == k
               ? fmt::format("every feature of input '{}' is the same in every training example", low.inputs[i].name)
               : fmt::format("{} {} (counting from 0) of input '{}' {} the same in every training "
                             "example: {} nothing to learn from",
                             fixed.size() == 1 ? "feature" : "features", listOf(fixed), low.inputs[i].name,
                             fixed.size() == 1 ? "is" : "are", fixed.size() == 1 ? "it gives" : "they give")});
    }
  return out;
}

} // namespace nnc::driver
