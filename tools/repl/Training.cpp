// Training from the REPL: :train, :eval, :set, :save, :restore, :time, :reset,
// and the data they share.
#include "tools/repl/ReplImpl.h"

#include "frontend/ASTBuilder.h"
#include "frontend/Sema.h"
#include "ir/Printer.h"
#include "ir/transforms/Passes.h"
#include "runtime/Checkpoint.h"
#include "runtime/ThreadPool.h"
#include "tools/Interrupt.h"
#include "tools/LineEditor.h"
#include "tools/ReplStatements.h"
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

namespace nnc::repl {

using driver::interrupted;

void Session::Impl::applySettings(driver::CompiledModel &m) const {
  if (lr)
    m.config.lr = *lr;
  if (batch)
    m.config.batch = *batch;
  if (epochs)
    m.config.epochs = *epochs;
  if (seed)
    m.config.seed = *seed;
}

std::string Session::Impl::dataKeyOf(const driver::CompiledModel &m) const {
  const frontend::TrainConfig &c = m.config;
  auto src = [](const frontend::DataSource &s) {
    std::string k = fmt::format("{} {} {} {} {} {} [", int(s.kind), s.path, s.context, s.stride, s.images, s.labels);
    for (int64_t d : s.image)
      k += std::to_string(d) + " ";
    k += "] label";
    for (const runtime::ColumnRef &r : s.label)
      k += " " + r.str();
    for (const auto &col : s.columns) {
      k += " " + col.input + (col.rest ? "=rest" : "=");
      for (const runtime::ColumnRef &r : col.refs)
        k += r.str() + ",";
    }
    return k;
  };
  std::string k = src(c.data) + "|" + src(c.test) + fmt::format("|{:.17g}|{}|", c.split, c.seed);
  // Which columns go where depends on the model's inputs and label too.
  for (const auto *decls : {&m.lowered.inputs, &m.lowered.labels})
    for (const frontend::TensorDecl &t : *decls)
      k += t.name + ":" + t.type.str() + " ";
  for (const frontend::Transform &t : c.transforms)
    k += fmt::format("{}:{:.17g} ", int(t.kind), t.factor);
  if (!m.lowered.labels.empty())
    k += m.lowered.labels[0].type.str();
  return k;
}

driver::Data &Session::Impl::loadedData() {
  driver::CompiledModel &m = current();
  std::string key = dataKeyOf(m);
  if (!data || key != dataKey) {
    driver::Data d = driver::loadData(m, fitted ? &*fitted : nullptr);
    data = std::move(d);
    dataKey = key;
  }
  session->checkData(*data);
  return *data;
}

void Session::Impl::train(const std::vector<Word> &args) {
  driver::CompiledModel &m = current();
  int64_t n = m.config.epochs;
  bool steps = false;
  if (!args.empty())
    n = integer(args[0], 1, 100000000, "the number of epochs or steps");
  if (args.size() >= 2) {
    if (args[1].text == "steps" || args[1].text == "step")
      steps = true;
    else if (args[1].text != "epochs" && args[1].text != "epoch")
      throw UsageError{args[1].col, args[1].text.size(), "expected 'epochs' or 'steps', got '" + args[1].text + "'"};
  }
  if (args.size() > 2)
    throw UsageError{args[2].col, args[2].text.size(),
                     "unexpected '" + args[2].text + "'; usage: :train [N] [epochs|steps]"};
  driver::Data &d = loadedData();
  runtime::TrainOptions topts = driver::trainOptions(m);
  int64_t batches = (d.train.size() + topts.batch - 1) / topts.batch;
  if (steps) {
    topts.maxSteps = n;
    topts.epochs = fit.epoch + (n + batches - 1) / batches;
  } else {
    topts.epochs = fit.epoch + n;
  }
  topts.augment = driver::augmentation(m, d);
  topts.diagnose = [&](const std::vector<runtime::Tensor> &xb, const runtime::Tensor &yb, float rate) {
    return session->explainNonFinite("train_step", xb, &yb, rate);
  };
  topts.interactive = isatty(STDOUT_FILENO) != 0;
  topts.log = &out;
  topts.continuing = true;
  topts.interrupt = &interrupted;
  // A failed run (divergence) leaves the model as it was before it.
  runtime::ModelState before = session->state();
  runtime::FitState fitBefore = fit;
  out << fmt::format(
      "training {} from epoch {}: {}{}, batch {}, {} training and {} validation examples\n", m.lowered.name,
      fit.epoch + 1, m.config.phases.empty() ? driver::optimizerText(m.config) : driver::phasesText(m.config),
      m.config.schedule.kind == runtime::LrSchedule::Constant ? "" : ", " + driver::scheduleText(m.config.schedule),
      topts.batch, d.train.size(), d.val.size());
  interrupted = false;
  runtime::TrainResult r;
  try {
    session->checkBatchNorm(d.train.size());
    r = session->trainer().fit(d.train, d.val, topts, fit);
  } catch (...) {
    session->state() = std::move(before);
    fit = std::move(fitBefore);
    interrupted = false;
    throw;
  }
  interrupted = false;
  fit = std::move(r.state);
  if (r.stoppedMidEpoch)
    out << fmt::format("{} after step {} of {} in epoch {}: train {} over those steps\n",
                       r.interrupted ? "interrupted" : "stopped", r.partialSteps, r.partialBatches, fit.epoch,
                       evalText(r.partial));
  else if (r.interrupted)
    out << fmt::format("interrupted after epoch {}\n", fit.epoch);
  out << fmt::format("{} step{} in {:.3g}s; {} epoch{} trained in this session\n", r.steps, r.steps == 1 ? "" : "s",
                     r.seconds, fit.epoch, fit.epoch == 1 ? "" : "s");
}

void Session::Impl::eval(const std::vector<Word> &args) {
  driver::CompiledModel &m = current();
  driver::Data &d = loadedData();
  std::vector<std::pair<std::string, const runtime::Dataset *>> sets;
  for (const Word &w : args) {
    if (w.text == "train" || w.text == "val" || w.text == "test")
      sets.push_back({w.text, w.text == "train" ? &d.train : w.text == "val" ? &d.val : &d.test});
    else
      throw UsageError{w.col, w.text.size(), "expected train, val or test, got '" + w.text + "'"};
  }
  if (sets.empty())
    sets = {{"train", &d.train}, {"val", &d.val}, {"test", &d.test}};
  std::string line;
  for (auto &[name, set] : sets) {
    if (!set->size()) {
      if (args.size())
        throw runtime::Error("the " + name + " set is empty");
      continue;
    }
    runtime::EvalResult r = session->trainer().evaluate(*set, m.config.batch, m.lowered.accuracy);
    line += fmt::format("{}{} {}", line.empty() ? "" : " | ", name, evalText(r));
  }
  out << line << "\n";
}

void Session::Impl::set(const std::vector<Word> &args) {
  if (args.empty()) {
    driver::CompiledModel *m = model.get();
    auto show = [&](const std::string &k, const std::string &v, bool changed) {
      out << fmt::format("  {:<8} {}{}\n", k, v, changed ? "  (set)" : "");
    };
    show("lr", m ? fmt::format("{:g}", m->config.lr) : "-", lr.has_value());
    show("batch", m ? std::to_string(m->config.batch) : "-", batch.has_value());
    show("epochs", m ? std::to_string(m->config.epochs) : "-", epochs.has_value());
    show("seed", m ? std::to_string(m->config.seed) : "-", seed.has_value());
    show("threads", std::to_string(runtime::globalThreadPool().threads()), false);
    show("rows", std::to_string(rows), rows != 4);
    return;
  }
  const Word &k = args[0];
  if (args.size() != 2)
    throw UsageError{k.col, k.text.size(),
                     "usage: :set NAME VALUE (" + std::string("lr, batch, epochs, seed, threads, rows)")};
  const Word &v = args[1];
  if (k.text == "lr") {
    char *end = nullptr;
    double x = std::strtod(v.text.c_str(), &end);
    if (v.text.empty() || *end || !std::isfinite(x) || x <= 0 || x > 10)
      throw UsageError{v.col, v.text.size(), "the learning rate must be a number in (0, 10], got '" + v.text + "'"};
    lr = x;
  } else if (k.text == "batch") {
    batch = integer(v, 1, int64_t(1) << 20, "the batch size");
  } else if (k.text == "epochs") {
    epochs = integer(v, 1, 1000000, "the number of epochs");
  } else if (k.text == "seed") {
    seed = uint64_t(integer(v, 0, INT64_MAX, "the seed"));
  } else if (k.text == "threads") {
    runtime::setGlobalThreads(int(integer(v, 1, 1024, "the number of threads")));
  } else if (k.text == "rows") {
    rows = integer(v, 1, 1000000, "the number of rows");
  } else {
    std::string hint = closestMatch(k.text, kSettings);
    throw UsageError{k.col, k.text.size(),
                     "unknown setting '" + k.text + "'" +
                         (hint.empty() ? "; the settings are lr, batch, epochs, seed, threads, rows"
                                       : "; did you mean '" + hint + "'?")};
  }
  if (model)
    applySettings(*model);
  out << k.text << " = " << v.text << "\n";
}

void Session::Impl::save(const std::vector<Word> &args, const std::string &line) {
  driver::CompiledModel &m = current();
  if (args.size() != 1)
    throw UsageError{0, line.size(), "usage: :save FILE"};
  const std::string &path = args[0].text;
  driver::Data empty;
  const driver::Data &d = m.config.data.kind == frontend::DataSource::None ? empty : loadedData();
  driver::saveCheckpoint(*session, d, fit, path);
  out << fmt::format("saved {} (model {}, {} epoch{} trained)\n", path, m.lowered.name, fit.epoch,
                     fit.epoch == 1 ? "" : "s");
}

void Session::Impl::restore(const std::vector<Word> &args, const std::string &line) {
  driver::CompiledModel &m = current();
  if (args.size() != 1)
    throw UsageError{0, line.size(), "usage: :restore FILE"};
  const std::string &path = args[0].text;
  runtime::ModelState before = session->state();
  runtime::Checkpoint ck = session->load(path);
  std::optional<runtime::Standardizer> stats;
  runtime::FitState nextFit;
  std::optional<uint64_t> ckSeed;
  try {
    if (auto it = ck.metadata.find("nnc.model"); it != ck.metadata.end() && it->second != m.lowered.name)
      throw runtime::Error("'" + path + "' holds model '" + it->second + "', not '" + m.lowered.name + "'");
    stats = driver::storedStandardizer(ck, path, m.config);
    if (ck.metadata.count("nnc.fit_state"))
      nextFit = driver::storedFitState(ck, path, session->state());
    ckSeed = driver::storedSeed(ck, path);
  } catch (...) {
    session->state() = std::move(before);
    throw;
  }
  fit = std::move(nextFit);
  fitted = stats;
  data.reset();
  std::string note;
  if (ckSeed && *ckSeed != m.config.seed) {
    seed = *ckSeed;
    applySettings(m);
    note = fmt::format("; seed set to {}, the checkpoint's (its validation split)", *ckSeed);
  }
  out << fmt::format("restored {} ({} epoch{} trained){}\n", path, fit.epoch, fit.epoch == 1 ? "" : "s", note);
}

void Session::Impl::time(const std::vector<Word> &args) {
  driver::CompiledModel &m = current();
  std::string fn = "train_step";
  int64_t calls = 0;
  for (const Word &w : args) {
    if (std::find(kFunctions.begin() + 2, kFunctions.end(), w.text) != kFunctions.end())
      fn = w.text;
    else
      calls = integer(w, 1, 100000000, "the number of calls");
  }
  m.function(fn); // throws when the model has none
  driver::Data &d = loadedData();
  int64_t b = std::min<int64_t>(m.config.batch, d.train.size());
  runtime::Dataset first = runtime::take(d.train, b);
  double compileBefore = session->compileSeconds();
  runtime::ModelState before = session->state();
  std::vector<double> t;
  try {
    t = session->trainer().timeCalls(fn, first.inputs, fn == "predict" ? nullptr : &first.y, float(m.config.lr), 3,
                                     calls ? calls : 10, calls ? calls : 100000, calls ? 0.0 : 1.0);
  } catch (...) {
    session->state() = std::move(before);
    throw;
  }
  session->state() = std::move(before); // timing steps are not training
  std::sort(t.begin(), t.end());
  double median = t[t.size() / 2];
  out << fmt::format("{} at batch {}: median {:.4f} ms over {} calls (min {:.4f}), {:.0f} samples/s; compiled in "
                     "{:.3f}s\n",
                     fn, b, median * 1e3, t.size(), t.front() * 1e3, double(b) / median,
                     session->compileSeconds() - compileBefore);
}

void Session::Impl::reset(const Call &c) {
  c.noArgs();
  current();
  session->initialize(currentSeed());
  fit = {};
  out << "fresh weights and optimizer state\n";
}

} // namespace nnc::repl
