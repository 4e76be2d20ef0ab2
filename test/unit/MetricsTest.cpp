// Classification metrics against counts worked out by hand.
#include "runtime/Metrics.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace nnc::runtime;

namespace {

Tensor scores(std::vector<std::vector<float>> rows) {
  Tensor t(DType::F32, {int64_t(rows.size()), int64_t(rows[0].size())});
  for (size_t i = 0; i < rows.size(); ++i)
    for (size_t j = 0; j < rows[i].size(); ++j)
      t.f32()[i * rows[i].size() + j] = rows[i][j];
  return t;
}

Tensor labels(std::vector<int64_t> ys) {
  Tensor t(DType::I64, {int64_t(ys.size())});
  for (size_t i = 0; i < ys.size(); ++i)
    t.i64()[i] = ys[i];
  return t;
}

} // namespace

TEST(Metrics, ConfusionPrecisionRecallTopK) {
  // Predictions (argmax): 0, 1, 1, 2, 0; labels: 0, 1, 2, 2, 1.
  Tensor s =
      scores({{0.7f, 0.2f, 0.1f}, {0.1f, 0.8f, 0.1f}, {0.2f, 0.5f, 0.3f}, {0.1f, 0.1f, 0.8f}, {0.5f, 0.1f, 0.4f}});
  ClassReport r = classify(s, labels({0, 1, 2, 2, 1}), 2);
  EXPECT_EQ(r.classes, 3);
  EXPECT_EQ(r.examples, 5);
  EXPECT_DOUBLE_EQ(r.accuracy, 3.0 / 5);
  // Top-2: row 2's label 2 scores 0.3, second best (in); row 4's label 1 scores 0.1, last (out).
  EXPECT_DOUBLE_EQ(r.topK, 4.0 / 5);
  std::vector<int64_t> want = {1, 0, 0, /**/ 1, 1, 0, /**/ 0, 1, 1};
  EXPECT_EQ(r.confusion, want);
  EXPECT_DOUBLE_EQ(r.precision[0], 1.0 / 2); // predicted 0 twice, once right
  EXPECT_DOUBLE_EQ(r.precision[1], 1.0 / 2);
  EXPECT_DOUBLE_EQ(r.precision[2], 1.0);
  EXPECT_DOUBLE_EQ(r.recall[0], 1.0);
  EXPECT_DOUBLE_EQ(r.recall[1], 1.0 / 2);
  EXPECT_DOUBLE_EQ(r.recall[2], 1.0 / 2);
  EXPECT_EQ(r.support, (std::vector<int64_t>{1, 2, 2}));
  EXPECT_DOUBLE_EQ(r.macroPrecision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.macroRecall, 2.0 / 3);
}

TEST(Metrics, TiesGoToTheLowerClassAndUndefinedValuesAreNaN) {
  // Both rows tie between classes 0 and 2; class 1 is never predicted nor present.
  ClassReport r = classify(scores({{0.4f, 0.2f, 0.4f}, {0.4f, 0.2f, 0.4f}}), labels({0, 2}), 1);
  EXPECT_EQ(r.confusion, (std::vector<int64_t>{1, 0, 0, 0, 0, 0, 1, 0, 0}));
  EXPECT_TRUE(std::isnan(r.precision[1]));
  EXPECT_TRUE(std::isnan(r.recall[1]));
  EXPECT_DOUBLE_EQ(r.precision[0], 0.5);
  // Top-1 counts a label tied with the best score as inside.
  EXPECT_DOUBLE_EQ(r.topK, 1.0);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.5);
}

TEST(Metrics, RejectsBadShapesAndLabels) {
  EXPECT_THROW(classify(scores({{0.5f, 0.5f}}), labels({2})), Error);
  EXPECT_THROW(classify(scores({{0.5f, 0.5f}}), labels({0, 1})), Error);
}

TEST(Metrics, ReportNamesClassesAndShowsTheMatrix) {
  ClassReport r = classify(scores({{0.9f, 0.1f}, {0.2f, 0.8f}, {0.6f, 0.4f}}), labels({0, 1, 1}), 1);
  std::string text = formatReport(r, "test", {"cat", "dog"}, true, true);
  EXPECT_NE(text.find("test: accuracy 0.6667, top-1 accuracy 0.6667 on 3 examples"), std::string::npos) << text;
  EXPECT_NE(text.find("1 dog      1.000   0.500        2"), std::string::npos) << text;
  EXPECT_NE(text.find("0 cat   1   0"), std::string::npos) << text;
  EXPECT_NE(text.find("1 dog   1   1"), std::string::npos) << text;
  EXPECT_EQ(formatReport(r, "test", {}, false, false).find("precision"), std::string::npos);
}
