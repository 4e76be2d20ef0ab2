// The nnc commands' shared prelude (parse, compile, overrides, threads) and
// the helpers several commands use.
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

std::unique_ptr<Prepared> prepare(const Options &o, DiagnosticEngine &diags) {
  auto src = driver::parseFile(o.file, diags);
  if (!src)
    return nullptr;
  driver::CompiledModel m = driver::compileModel(*src, o.model, diags);
  auto p = std::make_unique<Prepared>(Prepared{std::move(*src), std::move(m)});
  frontend::TrainConfig &c = p->model.config;
  if (o.epochs)
    c.epochs = *o.epochs;
  if (o.batch)
    c.batch = *o.batch;
  if (o.lr)
    c.lr = *o.lr;
  if (o.seed)
    c.seed = *o.seed;
  if (!o.checkpoint.empty())
    c.checkpointPath = o.checkpoint;
  if (o.checkpointEvery)
    c.checkpointEvery = *o.checkpointEvery;
  if (!o.log.empty())
    c.logPath = o.log;
  if (o.threads)
    runtime::setGlobalThreads(int(*o.threads));
  return p;
}

/// The per-epoch log of a run, as `nnc plot` reads it.
runtime::TrainingLog trainingLog(const std::vector<runtime::EpochRecord> &history, bool classification,
                                 const std::vector<std::string> &phases) {
  runtime::TrainingLog log;
  if (!phases.empty()) { // several objectives: each loss's column, then lr and time
    log.columns = {"epoch"};
    for (const char *set : {"train_", "val_"})
      for (const std::string &p : phases)
        log.columns.push_back(set + p);
    log.columns.insert(log.columns.end(), {"lr", "seconds"});
    for (const runtime::EpochRecord &r : history) {
      std::vector<double> row = {double(r.epoch)};
      for (const runtime::EvalResult *e : {&r.train, &r.val})
        for (size_t k = 0; k < phases.size(); ++k)
          row.push_back(k < e->losses.size() && e->examples > 0 ? e->losses[k] : NAN);
      row.insert(row.end(), {r.lr, r.seconds});
      log.rows.push_back(std::move(row));
    }
    return log;
  }
  log.columns = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"};
  for (const runtime::EpochRecord &r : history) {
    bool val = r.val.examples > 0;
    log.rows.push_back({double(r.epoch), r.train.loss, classification ? r.train.accuracy : NAN, val ? r.val.loss : NAN,
                        val && classification ? r.val.accuracy : NAN, r.lr, r.seconds});
  }
  return log;
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// `path` made absolute, for the lines that say where a file was written.
std::string where(const std::string &path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

/// Writes the training log so far to `path` (CSV when it ends in .csv, else
/// JSON lines), atomically: a run stopped mid-write keeps the previous log.
void writeTrainingLog(const std::string &path, const std::vector<runtime::EpochRecord> &history, bool classification,
                      const std::vector<std::string> &phases) {
  runtime::writeFileAtomic(
      path, runtime::formatTrainingLog(trainingLog(history, classification, phases), !endsWith(path, ".csv")));
}

void writeMetrics(const std::string &path, const nlohmann::json &j) {
  runtime::writeFileAtomic(path, j.dump(2) + "\n");
}

std::string accText(double a) { return a >= 0 ? fmt::format("{:.4f}", a) : "n/a"; }

/// The class scores [n, classes] of a classification model (its first
/// output) for every row of `x`.
runtime::Tensor classScores(const driver::CompiledModel &m, runtime::Trainer &trainer,
                            const std::vector<runtime::Tensor> &x, int64_t batch) {
  const auto &low = m.lowered;
  if (low.outputs.empty())
    throw runtime::Error("class metrics and predictions need an output of class scores; '" + low.name +
                         "' declares none (add e.g. 'output probs = softmax(logits)')");
  runtime::Tensor s = trainer.predict(x, low.outputs[0], batch);
  if (s.dtype() != runtime::DType::F32 || s.rank() != 2 || s.dim(1) != low.numClasses)
    throw runtime::Error(fmt::format("class metrics and predictions need the first output of '{}' to be class scores "
                                     "[N, {}], but '{}' is {}",
                                     low.name, low.numClasses, low.outputs[0], s.typeString()));
  return s;
}

/// Plots are SVG: a name with another extension (x.png) is refused before
/// any work, instead of writing SVG text under it.
void checkPlotPath(const std::string &path, const char *flag) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char &c : ext)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".svg")
    return;
  std::string svg = std::filesystem::path(path).replace_extension(".svg").string();
  throw runtime::Error(fmt::format("{} '{}': nnc draws plots as SVG, so the file must end in .svg (e.g. '{}'); for "
                                   "{}, convert it, e.g. 'rsvg-convert {} -o {}' (Debian package librsvg2-bin)",
                                   flag, path, svg, ext.empty() ? "another format" : ext.substr(1), svg, path));
}

/// Fails before any work when `out` could not be written.
void checkWritable(const std::string &out) {
  if (out.empty())
    return;
  size_t slash = out.rfind('/');
  std::string dir = slash == std::string::npos ? "." : out.substr(0, slash == 0 ? 1 : slash);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw runtime::Error("cannot write '" + out + "': directory '" + dir + "' does not exist");
  if (stat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw runtime::Error("cannot write '" + out + "': it is a directory");
}

StartingWeights startingWeights(const Options &o, driver::CompiledModel &m, driver::Session &session) {
  StartingWeights w;
  session.initialize(m.config.seed);
  if (!o.load.empty()) {
    runtime::Checkpoint ck = session.load(o.load);
    // What a weights file says of its run, without a training run's
    // resumable state (best.* copies stay behind).
    for (const char *k : {"nnc.model", "nnc.seed", "nnc.epochs", "nnc.format", "nnc.preprocess"})
      if (ck.metadata.count(k))
        w.metadata[k] = ck.metadata.at(k);
    for (auto &[name, t] : ck.tensors)
      if (name.rfind("data.", 0) == 0)
        w.data.emplace(name, t);
    // Statistics fitted by another scaling than the file's are refused.
    (void)driver::storedStandardizer(ck, o.load, m.config);
    if (driver::usesStatistics(m.config) && !w.data.count("data.mean"))
      throw runtime::Error(fmt::format("'{}' has no data statistics (data.mean, data.stddev), which the model's {} "
                                       "needs; use a checkpoint nnc train wrote",
                                       o.load, driver::fittedScaling(m.config)));
    return w;
  }
  driver::Data d;
  if (driver::usesStatistics(m.config)) {
    d = driver::loadData(m);
    session.checkData(d);
  }
  w.metadata = driver::checkpointMetadata(m, d, 0);
  w.data = driver::dataTensors(d);
  return w;
}

} // namespace nnc::cli
