// Regression and binary metrics against values scikit-learn documents, and
// the CSV column loader's selections.
#include "runtime/TaskMetrics.h"
#include "runtime/Csv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

using namespace nnc::runtime;

namespace {

Tensor f32(std::vector<float> v, std::vector<int64_t> shape = {}) {
  if (shape.empty())
    shape = {int64_t(v.size())};
  Tensor t(DType::F32, shape);
  std::copy(v.begin(), v.end(), t.f32());
  return t;
}

std::string writeTemp(const std::string &name, const std::string &text) {
  std::string p = ::testing::TempDir() + name;
  std::ofstream(p) << text;
  return p;
}

} // namespace

TEST(TaskMetricsTest, RegressionMatchesScikitLearn) {
  // r2_score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]) = 0.948608137...
  RegressionReport r = regressionMetrics(f32({2.5f, 0.0f, 2, 8}), f32({3, -0.5f, 2, 7}));
  EXPECT_NEAR(r.r2, 0.9486081370449679, 1e-6);
  EXPECT_NEAR(r.mae, 0.5, 1e-7);
  EXPECT_NEAR(r.rmse, std::sqrt(0.375), 1e-7);
  // Several columns: R² is averaged over them (uniform_average); a constant
  // target column counts 0 unless predicted exactly (then 1). Column 0:
  // 1 - 6/33.5; column 1 is constant and mispredicted.
  RegressionReport two = regressionMetrics(f32({0.5f, 1, -1, 1, 7, -6}, {3, 2}), f32({2.5f, 1, 0, 1, 8, 1}, {3, 2}));
  EXPECT_NEAR(two.r2, (1 - 6 / 33.5 + 0) / 2, 1e-6);
  EXPECT_DOUBLE_EQ(regressionMetrics(f32({1, 2}), f32({3, 3})).r2, 0.0);
  EXPECT_DOUBLE_EQ(regressionMetrics(f32({3, 3}), f32({3, 3})).r2, 1.0);
  EXPECT_EQ(formatRegression(r), "mae 0.5000 rmse 0.6124 r2 0.9486");
}

TEST(TaskMetricsTest, BinaryMatchesScikitLearn) {
  // roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75 (as logits: order only)
  BinaryReport r = binaryMetrics(f32({-2.2f, -0.4f, -0.6f, 1.4f}), f32({0, 0, 1, 1}));
  EXPECT_DOUBLE_EQ(r.auc, 0.75);
  EXPECT_EQ(r.tp, 1);
  EXPECT_EQ(r.fn, 1);
  EXPECT_EQ(r.tn, 2);
  EXPECT_EQ(r.fp, 0);
  EXPECT_DOUBLE_EQ(r.precision, 1.0);
  EXPECT_DOUBLE_EQ(r.recall, 0.5);
  EXPECT_NEAR(r.f1, 2.0 / 3.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.75);
  // Ties count half: a positive tied with a negative.
  EXPECT_DOUBLE_EQ(binaryMetrics(f32({1, 1, 2}), f32({0, 1, 1})).auc, 0.75);
  // One class only: no AUC; no predicted positives: no precision.
  BinaryReport one = binaryMetrics(f32({-1, -2}), f32({1, 1}));
  EXPECT_TRUE(std::isnan(one.auc));
  EXPECT_TRUE(std::isnan(one.precision));
  EXPECT_DOUBLE_EQ(one.recall, 0.0);
  EXPECT_EQ(formatBinary(one), "acc 0.0000 precision n/a recall 0.0000 f1 0.0000 auc n/a");
  EXPECT_EQ(formatBinary(r), "acc 0.7500 precision 1.0000 recall 0.5000 f1 0.6667 auc 0.7500");
  EXPECT_THROW(binaryMetrics(f32({1, 2, 3}), f32({1, 0})), Error);
}

TEST(CsvColumnsTest, SelectsColumnsByNameNumberAndRest) {
  std::string p = writeTemp("cols.csv", "id,a,b,name,y\n7,1.5,2,alice,0.25\n8,3,4.5,bob,0.75\n");
  ColumnSelection ids{"input 'id'", DType::I64, {1}, false, {{"id", 0}}};
  ColumnSelection rest{"input 'x'", DType::F32, {}, true, {}};
  ColumnSelection label{"label 'y'", DType::F32, {1}, false, {{"", -1}}};
  ColumnSelection x{"input 'x'", DType::F32, {2}, false, {{"b", 0}, {"", 1}}};
  Dataset d = loadCSVColumns(p, {ids, x}, &label);
  ASSERT_EQ(d.inputs.size(), 2u);
  EXPECT_EQ(d.inputs[0].dtype(), DType::I64);
  EXPECT_EQ(d.inputs[0].i64()[1], 8);
  EXPECT_EQ(d.inputs[1].shape(), (std::vector<int64_t>{2, 2}));
  EXPECT_FLOAT_EQ(d.inputs[1].f32()[0], 2.0f); // b first, then column 1 (a)
  EXPECT_FLOAT_EQ(d.inputs[1].f32()[1], 1.5f);
  EXPECT_FLOAT_EQ(d.y.f32()[1], 0.75f);
  // rest takes the text column too, which is then an error naming it.
  try {
    loadCSVColumns(p, {ids, rest}, &label);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("field 4 is not a number: \"alice\""), std::string::npos) << e.what();
  }
  CsvHead head = csvHead(p);
  EXPECT_EQ(head.names, (std::vector<std::string>{"id", "a", "b", "name", "y"}));
  EXPECT_EQ(head.columns, 5);
  std::remove(p.c_str());
}
