// Tests for training logs (CSV and JSON lines, and the located errors for
// malformed ones) and for the SVG curves drawn from them: the structure a
// viewer needs, one path per series with one point per finite value, and
// coordinates that stay finite and inside the picture for degenerate logs.
#include "runtime/Plot.h"

#include "runtime/Tensor.h"
#include "test/unit/TempDirTest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <string>
#include <vector>

using namespace nnc::runtime;

namespace {

class PlotTest : public nnc::test::TempDirTest {
protected:
  /// The message of the Error that reading `text` as a log file throws.
  std::string readError(const std::string &text) {
    std::string p = write("log", text);
    try {
      readTrainingLog(p);
    } catch (const Error &e) {
      return e.what();
    }
    ADD_FAILURE() << "expected an Error for:\n" << text;
    return "";
  }
};

const char *const kHeader = "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n";

/// A log with the columns nnc writes, `n` epochs of plausible values.
TrainingLog sampleLog(int n, bool accuracy = true) {
  TrainingLog log{{"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"}, {}};
  for (int e = 1; e <= n; ++e) {
    double acc = accuracy ? 1 - 0.5 * std::exp(-0.3 * e) : NAN;
    log.rows.push_back({double(e), 2.0 * std::exp(-0.25 * e), acc, 2.1 * std::exp(-0.2 * e) + 0.1, acc - 0.02,
                        0.01 * std::pow(0.5, (e - 1) / 3), 1.5});
  }
  return log;
}

/// The `d` attribute of every series path, by column.
std::map<std::string, std::string> seriesPaths(const std::string &svg) {
  std::map<std::string, std::string> paths;
  std::regex re("<path class=\"series\" data-series=\"([^\"]*)\" d=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), re); it != std::sregex_iterator(); ++it)
    paths[(*it)[1]] = (*it)[2];
  return paths;
}

/// The number of points in path data made of M and L commands.
size_t pointCount(const std::string &d) {
  return size_t(std::count_if(d.begin(), d.end(), [](char c) { return c == 'M' || c == 'L'; }));
}

/// Checks the outline of the document and that every coordinate of a series
/// point, marker or text lies in the viewBox.
void expectWellFormed(const std::string &svg) {
  ASSERT_EQ(svg.rfind("<svg", 0), 0u);
  ASSERT_GE(svg.size(), 7u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("viewBox=\"0 0 ([0-9.]+) ([0-9.]+)\"")));
  double width = std::stod(m[1]), height = std::stod(m[2]);
  auto inBox = [&](double x, double y, const std::string &what) {
    EXPECT_TRUE(x >= 0 && x <= width && y >= 0 && y <= height) << what << ": " << x << ", " << y;
  };
  for (const auto &[column, d] : seriesPaths(svg)) {
    std::regex point("[ML](-?[0-9.]+) (-?[0-9.]+)");
    for (auto it = std::sregex_iterator(d.begin(), d.end(), point); it != std::sregex_iterator(); ++it)
      inBox(std::stod((*it)[1]), std::stod((*it)[2]), column);
  }
  std::regex attrs("(?:cx|x)=\"(-?[0-9.]+)\" (?:cy|y)=\"(-?[0-9.]+)\"");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), attrs); it != std::sregex_iterator(); ++it)
    inBox(std::stod((*it)[1]), std::stod((*it)[2]), (*it)[0]);
}

} // namespace

TEST_F(PlotTest, ReadsCsvWithEmptyFieldsAsNaN) {
  TrainingLog log = readTrainingLog(write("log.csv", std::string(kHeader) + "1,2.5,,2.75,,0.01,3.5\n"
                                                                            "2,1.25,0.5,1.5,0.25,0.005,3\n\n"));
  ASSERT_EQ(log.columns.size(), 7u);
  EXPECT_EQ(log.columns[3], "val_loss");
  EXPECT_EQ(log.column("lr"), 5);
  EXPECT_EQ(log.column("missing"), -1);
  ASSERT_EQ(log.rows.size(), 2u);
  EXPECT_EQ(log.rows[0][1], 2.5);
  EXPECT_TRUE(std::isnan(log.rows[0][2]));
  EXPECT_TRUE(std::isnan(log.rows[0][4]));
  EXPECT_EQ(log.rows[1][4], 0.25);
}

TEST_F(PlotTest, ReadsCsvWithCrlfLineEnds) {
  TrainingLog log = readTrainingLog(write("log.csv", "epoch,train_loss\r\n1,0.5\r\n2,0.25\r\n"));
  EXPECT_EQ(log.columns, (std::vector<std::string>{"epoch", "train_loss"}));
  ASSERT_EQ(log.rows.size(), 2u);
  EXPECT_EQ(log.rows[1][1], 0.25);
}

TEST_F(PlotTest, ReadsJsonLinesWithNullAndMissingKeys) {
  TrainingLog log = readTrainingLog(write("log.jsonl", "\n  {\"epoch\": 1, \"train_loss\": 2.5, \"val_loss\": null}\n"
                                                       "{\"epoch\": 2, \"train_loss\": 1.5, \"lr\": 0.1}\n"
                                                       "{\"train_loss\": 1.0, \"epoch\": 3}\n"));
  EXPECT_EQ(log.columns, (std::vector<std::string>{"epoch", "train_loss", "val_loss", "lr"}));
  ASSERT_EQ(log.rows.size(), 3u);
  for (const std::vector<double> &row : log.rows)
    EXPECT_EQ(row.size(), 4u);
  EXPECT_TRUE(std::isnan(log.rows[0][2]));
  EXPECT_TRUE(std::isnan(log.rows[0][3])); // lr first appears on the next line
  EXPECT_EQ(log.rows[1][3], 0.1);
  EXPECT_TRUE(std::isnan(log.rows[1][2]));
  EXPECT_EQ(log.rows[2][0], 3);
  EXPECT_EQ(log.rows[2][1], 1.0);
}

TEST_F(PlotTest, CsvErrorsNameTheLine) {
  std::string p = path("log");
  EXPECT_EQ(readError("epoch,train_loss\n1,0.5\n2,0.4,9\n"), p + ":3: expected 2 fields, found 3");
  EXPECT_EQ(readError("epoch,train_loss\n1,abc\n"), p + ":2: 'abc' in column 'train_loss' is not a number");
  EXPECT_EQ(readError("epoch,train_loss\n1,0.5x\n"), p + ":2: '0.5x' in column 'train_loss' is not a number");
  EXPECT_EQ(readError("\nstep,train_loss\n1,0.5\n"), p + ":2: no 'epoch' column in the header");
  EXPECT_EQ(readError("epoch,loss,loss\n"), p + ":1: duplicate column name 'loss' in the header");
  EXPECT_EQ(readError("epoch,train_loss\n"), p + ":1: no rows");
  EXPECT_EQ(readError(""), p + ":1: no rows");
  EXPECT_EQ(readError("epoch,train_loss\n1,0.5\n,0.4\n"),
            p + ":3: the 'epoch' value is missing or not a finite number");
}

TEST_F(PlotTest, JsonLinesErrorsNameTheLine) {
  std::string p = path("log");
  EXPECT_EQ(readError("{\"epoch\": 1}\n{\"epoch\": 2,\n").rfind(p + ":2: invalid JSON: ", 0), 0u);
  EXPECT_EQ(readError("{\"epoch\": 1}\n\n[1, 2]\n"), p + ":3: expected a JSON object");
  EXPECT_EQ(readError("{\"epoch\": 1, \"lr\": \"fast\"}\n"), p + ":1: 'lr' is not a number");
  EXPECT_EQ(readError("{\"epoch\": 1}\n{\"train_loss\": 1}\n"), p + ":2: no 'epoch' key");
  EXPECT_EQ(readError("{\"epoch\": null}\n"), p + ":1: the 'epoch' value is missing or not a finite number");
}

TEST_F(PlotTest, MissingFileIsAnError) {
  std::string p = path("absent.csv");
  try {
    readTrainingLog(p);
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    EXPECT_EQ(std::string(e.what()).rfind("cannot open '" + p + "'", 0), 0u) << e.what();
  }
}

TEST(PlotSvg, DrawsOnePathPerSeriesWithAllPanels) {
  std::string svg = plotSvg(sampleLog(10), "mnist <mlp> & \"adam\"");
  expectWellFormed(svg);
  std::map<std::string, std::string> paths = seriesPaths(svg);
  ASSERT_EQ(paths.size(), 5u);
  for (const char *column : {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"})
    EXPECT_EQ(pointCount(paths[column]), 10u) << column;
  for (const char *title : {">loss</text>", ">accuracy</text>", ">learning rate</text>", ">epoch</text>"})
    EXPECT_NE(svg.find(title), std::string::npos) << title;
  EXPECT_NE(svg.find(">mnist &lt;mlp&gt; &amp; &quot;adam&quot;</text>"), std::string::npos);
  EXPECT_EQ(svg.find("<mlp>"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '<') - std::count(svg.begin(), svg.end(), '>'), 0);
}

TEST(PlotSvg, OmitsAccuracyPanelWithoutAccuracyAndConstantLr) {
  TrainingLog log = sampleLog(5, /*accuracy=*/false);
  for (std::vector<double> &row : log.rows)
    row[5] = 0.001;
  std::string svg = plotSvg(log, "");
  expectWellFormed(svg);
  EXPECT_EQ(seriesPaths(svg).size(), 2u);
  EXPECT_EQ(svg.find(">accuracy</text>"), std::string::npos);
  EXPECT_EQ(svg.find(">learning rate</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss</text>"), std::string::npos);
}

TEST(PlotSvg, NaNBreaksTheLine) {
  TrainingLog log = sampleLog(6);
  log.rows[2][3] = NAN;
  log.rows[3][3] = INFINITY;
  std::string svg = plotSvg(log, "gaps");
  expectWellFormed(svg);
  std::string d = seriesPaths(svg)["val_loss"];
  EXPECT_EQ(pointCount(d), 4u);
  EXPECT_EQ(std::count(d.begin(), d.end(), 'M'), 2);
}

TEST(PlotSvg, SingleRowShowsPoints) {
  TrainingLog log = sampleLog(1);
  std::string svg = plotSvg(log, "one epoch");
  expectWellFormed(svg);
  std::map<std::string, std::string> paths = seriesPaths(svg);
  EXPECT_EQ(paths.size(), 4u); // one lr value does not vary
  EXPECT_EQ(pointCount(paths["train_loss"]), 1u);
  EXPECT_NE(svg.find("<circle"), std::string::npos);
}

TEST(PlotSvg, ConstantAndDegenerateValuesStayFinite) {
  TrainingLog constant{{"epoch", "train_loss", "val_loss"}, {}};
  for (int e = 1; e <= 4; ++e)
    constant.rows.push_back({double(e), 0.0, 0.7});
  expectWellFormed(plotSvg(constant, "constant"));

  TrainingLog allNaN{{"epoch", "train_loss"}, {{1, NAN}, {2, NAN}}};
  std::string svg = plotSvg(allNaN, "nothing");
  expectWellFormed(svg);
  EXPECT_TRUE(seriesPaths(svg).empty());

  TrainingLog noEpoch{{"train_loss"}, {{3}, {2}, {1e-9}}};
  expectWellFormed(plotSvg(noEpoch, "by row"));
  expectWellFormed(plotSvg(TrainingLog{}, ""));
}

TEST_F(PlotTest, PlotsAFileWrittenLikeNncTrain) {
  TrainingLog log = readTrainingLog(write("log.csv", std::string(kHeader) + "1,0.9,,0.95,,0.1,2\n"
                                                                            "2,0.6,,0.7,,0.1,2\n"
                                                                            "3,0.5,,,,0.05,2\n"));
  std::string svg = plotSvg(log, "run");
  expectWellFormed(svg);
  std::map<std::string, std::string> paths = seriesPaths(svg);
  EXPECT_EQ(paths.size(), 3u);
  EXPECT_EQ(pointCount(paths["val_loss"]), 2u);
  EXPECT_EQ(pointCount(paths["lr"]), 3u);
}
