// Classification metrics over a whole data set: accuracy, top-k accuracy,
// per-class precision and recall, and the confusion matrix, from the model's
// class scores (probabilities or logits: only their order matters).
#pragma once

#include "runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace nnc::runtime {

struct ClassReport {
  int64_t classes = 0, examples = 0;
  int64_t k = 1;       ///< of topK
  double accuracy = 0; ///< the top-scored class is the label
  double topK = 0;     ///< the label is among the k top-scored classes
  /// confusion[t * classes + p]: examples of true class t predicted as p.
  std::vector<int64_t> confusion;
  /// Per class: tp / (tp + fp) and tp / (tp + fn); NaN when the denominator is 0.
  std::vector<double> precision, recall;
  std::vector<int64_t> support;               ///< examples of each true class
  double macroPrecision = 0, macroRecall = 0; ///< means over classes with a defined value
};

/// Scores f32 [n, classes] against labels i64 [n] in [0, classes). Ties go
/// to the lower class index, as argmax does; top-k counts a label tied with
/// the k-th score as inside. Throws Error on mismatched shapes or labels out
/// of range.
ClassReport classify(const Tensor &scores, const Tensor &labels, int64_t k = 5);

/// The report as text: the accuracy and top-k line, then with `perClass` a
/// table of precision and recall per class (named by `names` when given) and
/// with `confusion` the confusion matrix (for at most `maxMatrix` classes).
std::string formatReport(const ClassReport &r, const std::string &split, const std::vector<std::string> &names,
                         bool perClass, bool confusion, int64_t maxMatrix = 20);

} // namespace nnc::runtime
