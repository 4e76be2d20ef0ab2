// Regression and binary metrics (see TaskMetrics.h).
#include "runtime/TaskMetrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace nnc::runtime {

namespace {

void checkPair(const Tensor &a, const Tensor &b, const char *what) {
  if (a.dtype() != DType::F32 || b.dtype() != DType::F32 || a.numel() != b.numel() || a.rank() < 1 || b.rank() < 1 ||
      a.dim(0) != b.dim(0))
    throw Error(fmt::format("{} metrics need predictions and targets f32 of one shape [n, ...], got {} and {}", what,
                            a.typeString(), b.typeString()));
}

} // namespace

RegressionReport regressionMetrics(const Tensor &pred, const Tensor &target) {
  checkPair(pred, target, "regression");
  RegressionReport r;
  int64_t n = pred.dim(0), k = n ? pred.numel() / n : 0;
  r.values = pred.numel();
  const float *p = pred.f32(), *y = target.f32();
  double abs = 0, sq = 0;
  for (int64_t i = 0; i < r.values; ++i) {
    double e = double(p[i]) - double(y[i]);
    abs += std::fabs(e);
    sq += e * e;
  }
  r.mae = r.values ? abs / double(r.values) : NAN;
  r.rmse = r.values ? std::sqrt(sq / double(r.values)) : NAN;
  // R² per target column, averaged over the columns; a constant column
  // scores 1 when predicted exactly, else 0 (scikit-learn's force_finite).
  double sum = 0;
  int64_t cols = 0;
  for (int64_t j = 0; j < k; ++j) {
    double mean = 0;
    for (int64_t i = 0; i < n; ++i)
      mean += y[i * k + j];
    mean /= double(n);
    double res = 0, tot = 0;
    for (int64_t i = 0; i < n; ++i) {
      double e = double(y[i * k + j]) - double(p[i * k + j]), d = double(y[i * k + j]) - mean;
      res += e * e;
      tot += d * d;
    }
    sum += tot > 0 ? 1 - res / tot : res == 0 ? 1.0 : 0.0;
    ++cols;
  }
  r.r2 = cols ? sum / double(cols) : NAN;
  return r;
}

BinaryReport binaryMetrics(const Tensor &logits, const Tensor &targets) {
  checkPair(logits, targets, "binary");
  BinaryReport r;
  r.values = logits.numel();
  const float *z = logits.f32(), *y = targets.f32();
  for (int64_t i = 0; i < r.values; ++i) {
    bool truth = y[i] > 0.5f, pred = z[i] > 0;
    r.positives += truth;
    r.tp += truth && pred;
    r.fp += !truth && pred;
    r.tn += !truth && !pred;
    r.fn += truth && !pred;
  }
  r.accuracy = r.values ? double(r.tp + r.tn) / double(r.values) : NAN;
  r.precision = r.tp + r.fp ? double(r.tp) / double(r.tp + r.fp) : NAN;
  r.recall = r.tp + r.fn ? double(r.tp) / double(r.tp + r.fn) : NAN;
  r.f1 = r.tp ? 2.0 * double(r.tp) / double(2 * r.tp + r.fp + r.fn) : (r.tp + r.fp + r.fn ? 0.0 : NAN);
  // AUC: the probability that a random positive scores above a random
  // negative, from the average ranks of the positives (ties share a rank).
  int64_t neg = r.values - r.positives;
  if (r.positives == 0 || neg == 0) {
    r.auc = NAN;
    return r;
  }
  std::vector<int64_t> order(size_t(r.values));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return z[a] < z[b]; });
  double rankSum = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && z[order[j]] == z[order[i]])
      ++j;
    double rank = (double(i) + double(j - 1)) / 2 + 1; // ranks from 1
    for (size_t t = i; t < j; ++t)
      if (y[order[t]] > 0.5f)
        rankSum += rank;
    i = j;
  }
  double pos = double(r.positives);
  r.auc = (rankSum - pos * (pos + 1) / 2) / (pos * double(neg));
  return r;
}

std::string metricText(double v) { return std::isnan(v) ? "n/a" : fmt::format("{:.4f}", v); }

std::string formatRegression(const RegressionReport &r) {
  return fmt::format("mae {} rmse {} r2 {}", metricText(r.mae), metricText(r.rmse), metricText(r.r2));
}

std::string formatBinary(const BinaryReport &r) {
  return fmt::format("acc {} precision {} recall {} f1 {} auc {}", metricText(r.accuracy), metricText(r.precision),
                     metricText(r.recall), metricText(r.f1), metricText(r.auc));
}

} // namespace nnc::runtime
