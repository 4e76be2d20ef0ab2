// nnc predict (predictions for a data file, per task) and nnc sample (text
// from a byte-level language model).
#include "runtime/Npy.h"
#include "tools/Commands.h"

#include "frontend/Builtins.h"
#include "ir/Printer.h"
#include "runtime/Checkpoint.h"
#include "runtime/FileUtil.h"
#include "runtime/Metrics.h"
#include "runtime/Plot.h"
#include "runtime/TaskMetrics.h"
#include "runtime/ThreadPool.h"
#include "tools/DataChecks.h"
#include "tools/Driver.h"
#include "tools/Interrupt.h"
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace nnc::cli {

using driver::storedStandardizer;

/// Generates text with a next-byte model: input i64[N, T] and an output of
/// probabilities [N, T, 256]. The window holds the prompt and what has been
/// generated (its last T bytes once longer), padded at the end with spaces,
/// which a causal model never looks at from earlier positions; the next byte
/// is drawn from the output at the window's last real position, sharpened or
/// flattened by the temperature.
int cmdSample(const Options &o, DiagnosticEngine &diags) {
  auto prep = prepare(o, diags);
  if (!prep)
    return 1;
  driver::CompiledModel &m = prep->model;
  const auto &low = m.lowered;
  bool textModel = low.inputs.size() == 1 && low.inputs[0].type.dtype == ir::DType::I64 &&
                   low.inputs[0].type.rank() == 2 && low.inputs[0].type.shape[1].isStatic();
  if (!textModel && (!low.objectives.empty() || !o.outFile.empty()))
    return generateSamples(o, m);
  if (!textModel)
    throw runtime::Error("nnc sample needs a model whose one input is i64[N, T] byte ids, but '" + low.name + "' has " +
                         (low.inputs.empty() ? std::string("no input")
                                             : "input '" + low.inputs[0].name + "' : " + low.inputs[0].type.str()));
  std::string output = o.output.empty() ? (low.outputs.empty() ? "" : low.outputs[0]) : o.output;
  if (std::find(low.outputs.begin(), low.outputs.end(), output) == low.outputs.end())
    throw runtime::Error("model '" + low.name + "' has no output " + (output.empty() ? "" : "'" + output + "' ") +
                         "to sample from; declare one, e.g. 'output probs = softmax(logits)'");
  int64_t T = low.inputs[0].type.shape[1].size;
  driver::Session session(m);
  session.initialize(m.config.seed);
  session.load(o.load);
  std::vector<unsigned char> text(o.prompt.begin(), o.prompt.end());
  if (text.empty())
    text.push_back('\n');
  std::mt19937_64 rng(o.seed ? *o.seed : m.config.seed);
  std::string generated;
  runtime::Tensor x(runtime::DType::I64, {1, T});
  for (int64_t step = 0; step < o.length; ++step) {
    int64_t start = std::max<int64_t>(0, int64_t(text.size()) - T), len = int64_t(text.size()) - start;
    for (int64_t j = 0; j < T; ++j)
      x.i64()[j] = j < len ? text[size_t(start + j)] : ' ';
    runtime::Tensor probs = session.trainer().predict(x, output, 1);
    if (probs.dtype() != runtime::DType::F32 || probs.rank() != 3 || probs.dim(1) != T || probs.dim(2) != 256)
      throw runtime::Error("output '" + output + "' is " + probs.typeString() +
                           "; nnc sample needs probabilities over 256 bytes at each position, [N, " +
                           std::to_string(T) + ", 256]");
    const float *p = probs.f32() + (len - 1) * 256;
    std::vector<double> w(256);
    double maxLog = -1e300;
    for (int c = 0; c < 256; ++c)
      maxLog = std::max(maxLog, std::log(std::max<double>(p[c], 1e-30)) / o.temperature);
    for (int c = 0; c < 256; ++c)
      w[size_t(c)] = std::exp(std::log(std::max<double>(p[c], 1e-30)) / o.temperature - maxLog);
    std::discrete_distribution<int> pick(w.begin(), w.end());
    unsigned char next = static_cast<unsigned char>(pick(rng));
    text.push_back(next);
    generated.push_back(char(next));
  }
  std::cout << o.prompt << generated << "\n";
  return 0;
}

/// nnc predict's rows for a classifier (see cmdPredict).
std::string classPredictions(const driver::CompiledModel &m, runtime::Trainer &trainer, const runtime::Dataset &data,
                             bool labelled, int64_t top, std::string &summary) {
  const auto &low = m.lowered;
  runtime::Tensor scores = classScores(m, trainer, data.inputs, m.config.batch);
  const ir::Value *out = m.function("predict").result(low.outputs[0]);
  bool probabilities = out && out->def && out->def->kind == ir::OpKind::Softmax;
  int64_t n = scores.dim(0), c = scores.dim(1), k = std::min(top, c);
  std::string text = "row";
  for (int64_t j = 1; j <= k; ++j)
    text += k == 1 ? ",class,probability" : fmt::format(",class{},probability{}", j, j);
  if (!m.config.classNames.empty())
    text += ",name";
  if (labelled)
    text += ",label";
  text += "\n";
  std::vector<double> p(static_cast<size_t>(c));
  std::vector<int64_t> order(static_cast<size_t>(c));
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float *s = scores.f32() + i * c;
    double maxS = *std::max_element(s, s + c), sum = 0;
    for (int64_t j = 0; j < c; ++j)
      sum += p[size_t(j)] = probabilities ? double(s[j]) : std::exp(double(s[j]) - maxS);
    for (int64_t j = 0; j < c; ++j)
      p[size_t(j)] /= probabilities ? 1.0 : sum;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[size_t(a)] > p[size_t(b)]; });
    text += std::to_string(i);
    for (int64_t j = 0; j < k; ++j)
      text += fmt::format(",{},{:.6f}", order[size_t(j)], p[size_t(order[size_t(j)])]);
    if (!m.config.classNames.empty())
      text += "," + m.config.classNames[size_t(order[0])];
    if (labelled) {
      text += fmt::format(",{}", data.y.i64()[i]);
      hits += order[0] == data.y.i64()[i];
    }
    text += "\n";
  }
  if (labelled)
    summary += fmt::format("; accuracy {:.4f} against its labels", double(hits) / double(std::max<int64_t>(1, n)));
  return text;
}

/// nnc predict's rows for a binary, multi-label or regression model: each
/// example's values (probabilities and 0/1 classes for logits).
std::string valuePredictions(const driver::CompiledModel &m, runtime::Trainer &trainer, const runtime::Dataset &data,
                             bool labelled, std::string &summary) {
  using Task = frontend::LoweredModel::Task;
  const auto &low = m.lowered;
  runtime::Tensor pred = trainer.predict(data.inputs, "prediction", m.config.batch);
  int64_t n = pred.dim(0), k = n ? pred.numel() / n : 0;
  bool regression = low.task == Task::Regression;
  auto col = [&](const char *name, int64_t j) { return k == 1 ? std::string(name) : fmt::format("{}{}", name, j); };
  std::string text = "row";
  for (int64_t j = 0; j < k; ++j)
    text += regression ? "," + col("prediction", j) : "," + col("class", j) + "," + col("probability", j);
  if (labelled)
    for (int64_t j = 0; j < k; ++j)
      text += "," + col("label", j);
  text += "\n";
  const float *p = pred.f32();
  for (int64_t i = 0; i < n; ++i) {
    text += std::to_string(i);
    for (int64_t j = 0; j < k; ++j) {
      double v = p[i * k + j];
      text += regression ? fmt::format(",{:.6g}", v) : fmt::format(",{},{:.6f}", v > 0 ? 1 : 0, 1 / (1 + std::exp(-v)));
    }
    if (labelled)
      for (int64_t j = 0; j < k; ++j)
        text += fmt::format(",{:g}", data.y.f32()[i * k + j]);
    text += "\n";
  }
  if (labelled && regression) {
    runtime::RegressionReport r = runtime::regressionMetrics(pred, data.y);
    summary += "; against its labels: " + runtime::formatRegression(r);
  } else if (labelled) {
    runtime::BinaryReport r = runtime::binaryMetrics(pred, data.y);
    summary += "; against its labels: " + runtime::formatBinary(r);
  }
  return text;
}

/// Predictions for new data with a trained checkpoint, as CSV: the data goes
/// through the train block's preprocessing (scaling; standardization with the
/// checkpoint's statistics). A classifier gives each row its most likely
/// classes with their probabilities (the output's values when it is a
/// softmax, else the softmax of the scores); a binary or multi-label model
/// the probability of each label and the class at 0.5; a regression model
/// its predicted values. With the label's columns in the file, each row also
/// shows the label, and a summary line the metrics against it. With -o
/// out.npz, every output of the model, raw, as an array each (any model).
int cmdPredict(const Options &o, DiagnosticEngine &diags) {
  auto prep = prepare(o, diags);
  if (!prep)
    return 1;
  driver::CompiledModel &m = prep->model;
  const auto &low = m.lowered;
  bool raw = endsWith(o.output, ".npz");
  if (!raw && !low.classification && !low.hasPrediction())
    throw runtime::Error("nnc predict needs a classification, binary, multi-label or regression model (a "
                         "cross_entropy, bce_with_logits, mse or huber loss against the label); '" +
                         low.name + "' is none of these");
  checkWritable(o.output);
  driver::Session session(m);
  session.initialize(m.config.seed);
  runtime::Checkpoint ck = session.load(o.load);
  bool labelled = false;
  runtime::Dataset data = driver::loadExamples(m, o.input, o.labels, labelled);
  session.checkData(data, "'" + o.input + "'", labelled);
  std::optional<runtime::Standardizer> st;
  if (driver::usesStatistics(m.config)) {
    st = storedStandardizer(ck, o.load, m.config);
    if (!st)
      throw runtime::Error("the train block scales its data by statistics, but '" + o.load +
                           "' holds no standardization statistics (data.mean, data.stddev); save it with this "
                           "version of nnc train --save or checkpoint(...)");
  }
  driver::applyPreprocessing(m.config, data, st ? &*st : nullptr, false, 0);
  std::string text, summary = fmt::format("predicted {} rows of '{}'", data.size(), o.input);
  if (raw) {
    // Every output of predict as it computes it, an array each.
    std::vector<std::pair<std::string, std::string>> arrays;
    std::vector<std::string> written;
    const std::vector<std::string> &names = m.function("predict").resultNames;
    std::vector<runtime::Tensor> values = session.trainer().predict(data.inputs, names, m.config.batch);
    for (size_t k = 0; k < names.size(); ++k) {
      written.push_back(names[k] + " " + values[k].typeString());
      arrays.emplace_back(names[k], runtime::encodeNpy(values[k]));
    }
    runtime::writeFileAtomic(o.output, runtime::encodeNpz(arrays));
    std::cout << summary << "; wrote " << o.output << " (" << fmt::format("{}", fmt::join(written, ", ")) << ")\n";
    return 0;
  }
  if (low.classification)
    text = classPredictions(m, session.trainer(), data, labelled, o.top, summary);
  else
    text = valuePredictions(m, session.trainer(), data, labelled, summary);
  if (o.output.empty())
    std::cout << text;
  else
    runtime::writeFileAtomic(o.output, text);
  (o.output.empty() ? std::cerr : std::cout) << summary << (o.output.empty() ? "" : "; wrote " + o.output) << "\n";
  return 0;
}

} // namespace nnc::cli
