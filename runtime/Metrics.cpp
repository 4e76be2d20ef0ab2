// Classification metrics; see Metrics.h.
#include "runtime/Metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace nnc::runtime {

ClassReport classify(const Tensor &scores, const Tensor &labels, int64_t k) {
  if (scores.dtype() != DType::F32 || scores.rank() != 2 || labels.dtype() != DType::I64 || labels.rank() != 1 ||
      labels.dim(0) != scores.dim(0))
    throw Error("classification metrics need scores f32[n, classes] and labels i64[n], got " + scores.typeString() +
                " and " + labels.typeString());
  ClassReport r;
  int64_t n = scores.dim(0), c = scores.dim(1);
  r.classes = c;
  r.examples = n;
  r.k = std::max<int64_t>(1, std::min(k, c));
  r.confusion.assign(size_t(c * c), 0);
  r.support.assign(size_t(c), 0);
  int64_t hits = 0, topHits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float *s = scores.f32() + i * c;
    int64_t y = labels.i64()[i];
    if (y < 0 || y >= c)
      throw Error(fmt::format("label {} of example {} is outside the {} classes", y, i, c));
    int64_t best = 0, above = 0; // classes scored strictly above the label
    for (int64_t j = 0; j < c; ++j) {
      if (s[j] > s[best])
        best = j;
      above += s[j] > s[y];
    }
    hits += best == y;
    topHits += above < r.k;
    ++r.confusion[size_t(y * c + best)];
    ++r.support[size_t(y)];
  }
  r.accuracy = n ? double(hits) / double(n) : NAN;
  r.topK = n ? double(topHits) / double(n) : NAN;
  double pSum = 0, rSum = 0;
  int pCount = 0, rCount = 0;
  for (int64_t j = 0; j < c; ++j) {
    int64_t tp = r.confusion[size_t(j * c + j)], predicted = 0;
    for (int64_t t = 0; t < c; ++t)
      predicted += r.confusion[size_t(t * c + j)];
    r.precision.push_back(predicted ? double(tp) / double(predicted) : NAN);
    r.recall.push_back(r.support[size_t(j)] ? double(tp) / double(r.support[size_t(j)]) : NAN);
    if (predicted)
      pSum += r.precision.back(), ++pCount;
    if (r.support[size_t(j)])
      rSum += r.recall.back(), ++rCount;
  }
  r.macroPrecision = pCount ? pSum / pCount : NAN;
  r.macroRecall = rCount ? rSum / rCount : NAN;
  return r;
}

std::string formatReport(const ClassReport &r, const std::string &split, const std::vector<std::string> &names,
                         bool perClass, bool confusion, int64_t maxMatrix) {
  auto name = [&](int64_t j) {
    return size_t(j) < names.size() ? fmt::format("{} {}", j, names[size_t(j)]) : std::to_string(j);
  };
  auto num = [](double v) { return std::isnan(v) ? std::string("  n/a") : fmt::format("{:.3f}", v); };
  size_t width = 5;
  for (int64_t j = 0; j < r.classes; ++j)
    width = std::max(width, name(j).size());
  std::string out = fmt::format("{}: accuracy {:.4f}, top-{} accuracy {:.4f} on {} examples\n", split, r.accuracy, r.k,
                                r.topK, r.examples);
  if (perClass) {
    out += fmt::format("{:<{}}  precision  recall  support\n", "class", width);
    for (int64_t j = 0; j < r.classes; ++j)
      out += fmt::format("{:<{}}      {}   {}  {:>7}\n", name(j), width, num(r.precision[size_t(j)]),
                         num(r.recall[size_t(j)]), r.support[size_t(j)]);
    out += fmt::format("{:<{}}      {}   {}  {:>7}\n", "mean", width, num(r.macroPrecision), num(r.macroRecall),
                       r.examples);
  }
  if (!confusion)
    return out;
  if (r.classes > maxMatrix)
    return out + fmt::format("(confusion matrix not shown for {} classes)\n", r.classes);
  int64_t cell = 4;
  for (int64_t v : r.confusion)
    cell = std::max<int64_t>(cell, int64_t(std::to_string(v).size()) + 1);
  out += fmt::format("confusion matrix ({}; rows: true class, columns: predicted class):\n", split);
  out += fmt::format("{:>{}}", "", width);
  for (int64_t j = 0; j < r.classes; ++j)
    out += fmt::format("{:>{}}", j, cell);
  out += "\n";
  for (int64_t t = 0; t < r.classes; ++t) {
    out += fmt::format("{:<{}}", name(t), width);
    for (int64_t p = 0; p < r.classes; ++p)
      out += fmt::format("{:>{}}", r.confusion[size_t(t * r.classes + p)], cell);
    out += "\n";
  }
  return out;
}

} // namespace nnc::runtime
