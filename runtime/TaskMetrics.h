// Metrics of regression and binary / multi-label models over a whole data
// set, from their predictions and targets (what `nnc eval`, the end of
// `nnc train` and --metrics-json report besides the loss):
//   regression: MAE, RMSE and R² (1 - SSres/SStot per target column,
//     averaged over the columns, a constant column counting 1 when predicted
//     exactly and else 0, as scikit-learn's r2_score does);
//   binary: accuracy, precision, recall, F1 at logit 0 (probability 0.5) and
//     the ROC AUC (the Mann-Whitney statistic, ties counted half). Several
//     labels per example (multi-label) are pooled: micro-averaged.
#pragma once

#include "runtime/Tensor.h"

#include <cstdint>
#include <string>

namespace nnc::runtime {

struct RegressionReport {
  int64_t values = 0; ///< predicted values compared
  double mae = 0, rmse = 0;
  double r2 = 0;
};

/// `pred` and `target`: f32 of the same shape [n, ...]. Throws Error otherwise.
RegressionReport regressionMetrics(const Tensor &pred, const Tensor &target);

struct BinaryReport {
  int64_t values = 0, positives = 0;
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  double accuracy = 0;
  double precision = 0, recall = 0, f1 = 0; ///< NaN when undefined (no predicted / true positives)
  double auc = 0;                           ///< NaN when the targets hold one class only
};

/// `logits` and `targets` (0/1; above 0.5 counts as 1): f32 of one shape.
BinaryReport binaryMetrics(const Tensor &logits, const Tensor &targets);

/// A metric as the summaries print it: four decimals, "n/a" for NaN.
std::string metricText(double v);

/// One line: "mae 0.41 rmse 0.55 r2 0.62" / "acc ... precision ... auc ...".
std::string formatRegression(const RegressionReport &r);
std::string formatBinary(const BinaryReport &r);

} // namespace nnc::runtime
