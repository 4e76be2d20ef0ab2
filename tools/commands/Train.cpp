// nnc train and nnc eval: the training run (progress, checkpoints, logs,
// plots, Ctrl-C that keeps the run), the final metrics; and nnc plot.
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

using driver::phaseNames;
using driver::phasesText;
using driver::optimizerText;
using driver::resumeKey;
using driver::scheduleText;
using driver::storedStandardizer;
using driver::trainOptions;

/// Regression and binary metrics of `d` into `metrics` ("<split>_mae", ...)
/// and the summary line; nothing for other tasks.
void taskMetrics(const driver::CompiledModel &m, runtime::Trainer &trainer, const runtime::Dataset &d, int64_t batch,
                 const std::string &split, nlohmann::json &metrics, std::string &summary) {
  using Task = frontend::LoweredModel::Task;
  if (!m.lowered.hasPrediction())
    return;
  runtime::Tensor pred = trainer.predict(d.inputs, "prediction", batch);
  auto put = [&](const char *name, double v) {
    metrics[split + "_" + name] = std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
  };
  if (m.lowered.task == Task::Regression) {
    runtime::RegressionReport r = runtime::regressionMetrics(pred, d.y);
    put("mae", r.mae);
    put("rmse", r.rmse);
    put("r2", r.r2);
    summary += " " + runtime::formatRegression(r);
    return;
  }
  runtime::BinaryReport r = runtime::binaryMetrics(pred, d.y);
  put("precision", r.precision);
  put("recall", r.recall);
  put("f1", r.f1);
  put("auc", r.auc);
  summary += " f1 " + runtime::metricText(r.f1) + " auc " + runtime::metricText(r.auc);
}

/// What nnc train does when a signal stopped it: writes the checkpoint (the
/// train block's, counting a part-done epoch as done, as --resume expects),
/// the log and the --save file, says where each went, and returns 130.
int interruptedRun(const driver::CompiledModel &m, driver::Session &session, const driver::Data &data,
                   const runtime::TrainResult &result, const Options &o, std::ostream &log, bool interactive) {
  const frontend::TrainConfig &cfg = m.config;
  const char *what = driver::interruptSignal == SIGTERM ? "SIGTERM" : "interrupt (Ctrl-C)";
  if (interactive)
    log << "\n";
  if (result.stoppedMidEpoch)
    log << fmt::format("nnc: {}: stopped after step {} of {} in epoch {} ({} steps in all)\n", what,
                       result.partialSteps, result.partialBatches, result.state.epoch, result.steps);
  else
    log << fmt::format("nnc: {}: stopped after epoch {}\n", what, result.state.epoch);
  // A part-done epoch counts as done (its record holds the training loss
  // over the steps made): --resume continues with the next one.
  runtime::FitState st = result.state;
  if (result.stoppedMidEpoch && int64_t(st.history.size()) < st.epoch) {
    runtime::EpochRecord r;
    r.epoch = st.epoch;
    r.train = result.partial;
    st.history.push_back(r);
  }
  if (!cfg.checkpointPath.empty()) {
    driver::saveCheckpoint(session, data, st, cfg.checkpointPath);
    log << "wrote checkpoint " << where(cfg.checkpointPath) << " (epoch " << st.epoch
        << " counts as done; continue with --resume " << cfg.checkpointPath << ")\n";
  }
  if (!cfg.logPath.empty()) {
    writeTrainingLog(cfg.logPath, st.history, m.lowered.accuracy, phaseNames(cfg));
    log << "wrote log " << where(cfg.logPath) << "\n";
  }
  if (!o.save.empty()) {
    session.save(o.save, driver::checkpointMetadata(m, data, result.epochsRun), driver::dataTensors(data));
    log << "saved " << where(o.save) << " (the weights after the last step)\n";
  }
  if (cfg.checkpointPath.empty() && o.save.empty())
    log << "nothing saved: give --save FILE or checkpoint(...) in the train block to keep the weights\n";
  log << std::flush;
  driver::interrupted = false;
  return 130;
}

int cmdTrain(const Options &o, DiagnosticEngine &diags, bool evalOnly) {
  auto prep = prepare(o, diags);
  if (!prep)
    return 1;
  driver::CompiledModel &m = prep->model;
  const frontend::TrainConfig &cfg = m.config;
  if (o.checkpointEvery && cfg.checkpointPath.empty())
    throw runtime::Error("--checkpoint-every needs a checkpoint path: --checkpoint FILE or checkpoint(path = ...) in "
                         "the train block");
  if (!cfg.logPath.empty() && !frontend::logFormatKnown(cfg.logPath))
    throw runtime::Error("--log must name a .csv or .jsonl (or .json) file, got '" + cfg.logPath + "'");
  std::ostream &log = std::cout;
  bool interactive = isatty(STDOUT_FILENO);

  // Fail before training, not after, when a result could not be written.
  if (!o.plot.empty())
    checkPlotPath(o.plot, "--plot");
  for (const std::string &out : {o.save, o.metricsJson, o.plot})
    checkWritable(out);
  if (!evalOnly) {
    checkWritable(cfg.checkpointPath);
    checkWritable(cfg.logPath);
  }
  driver::Session session(m);
  session.initialize(cfg.seed);
  runtime::Checkpoint ck;
  const std::string &from = o.resume.empty() ? o.load : o.resume;
  runtime::FitState fit;
  if (!from.empty()) {
    ck = session.load(from);
    // Evaluate on the same validation split the checkpoint was trained with.
    if (evalOnly && !o.seed)
      if (std::optional<uint64_t> seed = driver::storedSeed(ck, from))
        m.config.seed = *seed;
  }
  if (!o.resume.empty())
    fit = driver::storedFitState(ck, o.resume, session.state());
  std::optional<runtime::Standardizer> stored = storedStandardizer(ck, from, m.config);
  driver::Data data = driver::loadData(m, stored ? &*stored : nullptr);
  if (o.limit) {
    data.train = runtime::take(data.train, *o.limit);
    data.val = runtime::take(data.val, *o.limit);
    data.test = runtime::take(data.test, *o.limit);
  }
  session.checkData(data);
  if (!evalOnly)
    for (const driver::DataWarning &w : driver::dataWarnings(m, data))
      diags.warning(w.loc, w.message);
  if (!o.resume.empty()) {
    auto key = ck.metadata.find("nnc.resume_key");
    if (key == ck.metadata.end())
      throw runtime::Error("'" + o.resume + "' does not say which run wrote it; start from its weights with --load " +
                           o.resume);
    if (std::string now = resumeKey(m, data); key->second != now)
      throw runtime::Error("'" + o.resume + "' was written by a run with other settings, and --resume continues " +
                           "that run exactly:" + driver::resumeDiff(key->second, now) +
                           "\n(to start a new run from its weights, use --load " + o.resume + ")");
  }

  runtime::TrainOptions topts = trainOptions(m);
  topts.augment = driver::augmentation(m, data);
  topts.diagnose = [&](const std::vector<runtime::Tensor> &xb, const runtime::Tensor &yb, float lr) {
    return session.explainNonFinite("train_step", xb, &yb, lr);
  };
  topts.interactive = interactive && !o.quiet;
  topts.log = o.quiet ? nullptr : &log;
  bool cls = m.lowered.accuracy;
  auto saveCheckpoint = [&](const runtime::FitState &st) {
    driver::saveCheckpoint(session, data, st, cfg.checkpointPath);
  };
  runtime::FitState last; // for the final checkpoint after early stopping's restore
  std::string wrote;      // "wrote log ..." lines, printed after the final metrics
  topts.afterEpoch = [&](const runtime::FitState &st) {
    if (!cfg.logPath.empty())
      writeTrainingLog(cfg.logPath, st.history, cls, phaseNames(cfg));
    if (cfg.checkpointPath.empty())
      return;
    if (topts.earlyStop)
      last = st;
    bool stopping = topts.earlyStop && st.sinceBest >= topts.patience;
    if (st.epoch % cfg.checkpointEvery == 0 || st.epoch == topts.epochs || stopping)
      saveCheckpoint(st);
  };
  runtime::Trainer &trainer = session.trainer();
  nlohmann::json metrics;
  metrics["task"] = frontend::taskName(m.lowered.task);
  runtime::TrainResult result;
  if (!evalOnly) {
    session.checkBatchNorm(data.train.size());
    if (!o.quiet)
      log << fmt::format("nnc: training {} ({} parameters) on {} examples, validating on {}; batch {}, {}{}, {} "
                         "epoch{}, {} thread{}\n",
                         m.lowered.name, m.parameterCount(), data.train.size(), data.val.size(), topts.batch,
                         cfg.phases.empty() ? optimizerText(cfg) : phasesText(cfg),
                         cfg.schedule.kind == runtime::LrSchedule::Constant || !cfg.phases.empty()
                             ? ""
                             : ", " + scheduleText(cfg.schedule),
                         topts.epochs, topts.epochs == 1 ? "" : "s", runtime::globalThreadPool().threads(),
                         runtime::globalThreadPool().threads() == 1 ? "" : "s");
    // Ctrl-C or SIGTERM: the step in progress finishes, then the run keeps
    // what it did (checkpoint, --save, log) and exits with 130.
    driver::CatchInterrupts catcher(true);
    topts.interrupt = &driver::interrupted;
    result = trainer.fit(data.train, data.val, topts, fit);
    if (result.interrupted)
      return interruptedRun(m, session, data, result, o, log, interactive);
    // The run's last checkpoint holds its final weights: the best epoch's
    // when early stopping restored them (eval and predict read those).
    if (!cfg.checkpointPath.empty() && topts.earlyStop && result.bestEpoch != result.epochsRun && last.epoch)
      saveCheckpoint(last);
    metrics["parameters"] = m.parameterCount();
    metrics["epochs"] = result.epochsRun;
    metrics["resumed_after_epoch"] = fit.epoch;
    metrics["seconds"] = result.seconds;
    metrics["samples_per_second"] = result.samplesPerSecond;
    metrics["compile_seconds"] = session.compileSeconds();
    metrics["train_seconds"] = result.trainSeconds;
    metrics["stopped_early"] = result.stoppedEarly;
    metrics["best_epoch"] = result.bestEpoch;
    if (!o.plot.empty())
      runtime::writeFileAtomic(o.plot,
                               runtime::plotSvg(trainingLog(result.history, cls, phaseNames(cfg)),
                                                o.title.empty() ? m.lowered.name + " (" + o.file + ")" : o.title));
    // Where each file went (paths in the .nn file are relative to it, those
    // on the command line to the working directory).
    if (!cfg.checkpointPath.empty() && result.epochsRun > fit.epoch)
      wrote += "wrote checkpoint " + where(cfg.checkpointPath) + " (after epoch " + std::to_string(result.epochsRun) +
               "; continue with --resume " + cfg.checkpointPath + ")\n";
    if (!cfg.logPath.empty())
      wrote += "wrote log " + where(cfg.logPath) + "\n";
    if (!o.plot.empty())
      wrote += "wrote plot " + where(o.plot) + "\n";
  }
  // Final metrics are measured on the final weights (after any restore).
  std::string summary;
  auto report = [&](const char *split, const runtime::Dataset &d) {
    if (!d.size())
      return;
    std::vector<std::string> losses;
    for (const std::string &p : phaseNames(cfg))
      losses.push_back("loss." + p);
    runtime::EvalResult r = trainer.evaluate(d, topts.batch, cls, losses);
    // Weights can be finite and still overflow the loss; never save those.
    if (!std::isfinite(r.loss))
      throw runtime::Error(fmt::format(
          "{}the loss on the {} data is {} with the {} weights{}", evalOnly ? "" : "training diverged: ", split, r.loss,
          evalOnly ? "checkpoint's" : "final", evalOnly ? "" : " (try a smaller learning rate)"));
    if (!losses.empty()) { // several objectives: each loss
      summary += fmt::format("{}{}", summary.empty() ? "" : " | ", split);
      for (size_t k = 0; k < losses.size(); ++k) {
        metrics[std::string(split) + "_" + cfg.phases[k].loss] = r.losses[k];
        summary += fmt::format(" {} {:.4f}", cfg.phases[k].loss, r.losses[k]);
      }
      return;
    }
    metrics[std::string(split) + "_loss"] = r.loss;
    if (cls)
      metrics[std::string(split) + "_accuracy"] = r.accuracy;
    summary += fmt::format("{}{} loss {:.4f}", summary.empty() ? "" : " | ", split, r.loss);
    if (cls)
      summary += " acc " + accText(r.accuracy);
    taskMetrics(m, trainer, d, topts.batch, split, metrics, summary);
  };
  report("train", data.train);
  report("val", data.val);
  report("test", data.test);
  log << "final: " << summary << "\n";
  if (m.lowered.classification && (cfg.topK || cfg.perClass || cfg.confusion)) {
    // On the data the run did not learn from: test, else validation.
    bool test = data.test.size() > 0, val = !test && data.val.size() > 0;
    const runtime::Dataset &d = test ? data.test : val ? data.val : data.train;
    std::string split = test ? "test" : val ? "val" : "train";
    runtime::ClassReport r =
        runtime::classify(classScores(m, trainer, d.inputs, topts.batch), d.y, cfg.topK ? cfg.topK : 5);
    if (cfg.topK)
      metrics[fmt::format("{}_top{}_accuracy", split, r.k)] = r.topK;
    auto list = [](const std::vector<double> &v) {
      nlohmann::json j = nlohmann::json::array();
      for (double x : v)
        j.push_back(std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x));
      return j;
    };
    if (cfg.perClass) {
      metrics[split + "_precision"] = list(r.precision);
      metrics[split + "_recall"] = list(r.recall);
    }
    if (cfg.confusion) {
      nlohmann::json rows = nlohmann::json::array();
      for (int64_t t = 0; t < r.classes; ++t)
        rows.push_back(
            std::vector<int64_t>(r.confusion.begin() + t * r.classes, r.confusion.begin() + (t + 1) * r.classes));
      metrics[split + "_confusion"] = rows;
    }
    log << runtime::formatReport(r, split, cfg.classNames, cfg.perClass, cfg.confusion);
  }
  log << wrote;
  if (!o.save.empty()) {
    session.save(o.save, driver::checkpointMetadata(m, data, result.epochsRun), driver::dataTensors(data));
    log << "saved " << where(o.save) << "\n";
  }
  if (!o.metricsJson.empty()) {
    writeMetrics(o.metricsJson, metrics);
    log << "wrote metrics " << where(o.metricsJson) << "\n";
  }
  return 0;
}

/// Draws a training log (CSV or JSON lines, as nnc train --log writes) as SVG curves.
int cmdPlot(const Options &o) {
  checkPlotPath(o.output, "-o");
  runtime::TrainingLog log = runtime::readTrainingLog(o.file);
  checkWritable(o.output);
  std::string title = o.title.empty() ? o.file : o.title;
  runtime::writeFileAtomic(o.output, runtime::plotSvg(log, title));
  std::cout << fmt::format("wrote {} ({} epoch{})\n", where(o.output), log.rows.size(),
                           log.rows.size() == 1 ? "" : "s");
  return 0;
}

} // namespace nnc::cli
