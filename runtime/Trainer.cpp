// Training driver; see Trainer.h.
#include "runtime/Trainer.h"

#include "runtime/Loader.h"
#include "runtime/Seed.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <xmmintrin.h>

namespace nnc::runtime {

void enableFlushToZero() { _mm_setcsr(_mm_getcsr() | 0x8040); }

void initialize(Tensor &t, Init init, int64_t fanIn, int64_t fanOut, std::mt19937_64 &rng) {
  float *p = t.f32();
  int64_t n = t.numel();
  switch (init) {
  case Init::Zeros:
  case Init::Ones:
    for (int64_t i = 0; i < n; ++i)
      p[i] = init == Init::Ones ? 1.0f : 0.0f;
    return;
  case Init::Glorot: {
    double a = std::sqrt(6.0 / double(fanIn + fanOut));
    std::uniform_real_distribution<double> d(-a, a);
    for (int64_t i = 0; i < n; ++i)
      p[i] = float(d(rng));
    return;
  }
  case Init::He:
  case Init::Lecun: {
    double sd = std::sqrt((init == Init::He ? 2.0 : 1.0) / double(fanIn));
    std::normal_distribution<double> d(0.0, sd);
    for (int64_t i = 0; i < n; ++i)
      p[i] = float(d(rng));
    return;
  }
  }
}

void checkLabels(const Dataset &data, int64_t classes, const std::string &what) {
  const int64_t *y = data.y.i64();
  for (int64_t i = 0; i < data.size(); ++i)
    if (y[i] < 0 || y[i] >= classes)
      throw Error(fmt::format("{}: label {} of example {} is outside the model's {} classes [0, {})", what, y[i], i,
                              classes, classes));
}

char *Trainer::arenaFor(const CompiledFn &fn) {
  // A function compiled again (the REPL recompiles changed code) can reuse
  // an old one's address; the arena must then grow to its size.
  auto it = arenas_.find(&fn);
  int64_t words = std::max<int64_t>(16, (fn.arenaBytes + 3) / 4);
  if (it == arenas_.end())
    it = arenas_.emplace(&fn, Tensor(DType::F32, {words})).first;
  else if (it->second.numel() < words)
    it->second = Tensor(DType::F32, {words});
  return static_cast<char *>(it->second.data());
}

void Trainer::call(const CompiledFn &fn, const std::vector<Tensor> *xs, const Tensor *yb, float lr,
                   std::map<std::string, Tensor> &outs) {
  std::vector<void *> bufs;
  bufs.reserve(fn.args.size() + fn.results.size());
  Tensor lrT(DType::F32, {});
  lrT.f32()[0] = lr;
  // Dropout's seed: a fresh, reproducible value for every call.
  Tensor rngT(DType::I64, {});
  rngT.i64()[0] = dropoutSeed(rngSeed_, rngStep_++);
  size_t nextInput = 0; // the model's inputs, in order
  for (const BufferSpec &a : fn.args) {
    const Tensor *t = nullptr;
    switch (a.role) {
    case Role::Input: {
      size_t k = nextInput++;
      if (!inputNames_.empty())
        k = size_t(std::find(inputNames_.begin(), inputNames_.end(), a.name) - inputNames_.begin());
      if (xs && k < xs->size())
        t = &(*xs)[k];
      break;
    }
    case Role::Label:
      t = yb;
      break;
    case Role::Param:
      t = &state_.params.at(a.name);
      break;
    case Role::State:
      t = &state_.state.at(a.name);
      break;
    case Role::Scalar:
      t = a.name == "rng" ? &rngT : &lrT;
      break;
    }
    int64_t want = 1;
    for (int64_t d : a.shape)
      want *= d;
    if (!t || t->numel() != want || t->dtype() != a.dtype)
      throw Error(fmt::format("internal: buffer '{}' has {} elements, the compiled function expects {}", a.name,
                              t ? t->numel() : 0, want));
    bufs.push_back(const_cast<void *>(t->data()));
  }
  size_t nargs = bufs.size();
  for (const BufferSpec &r : fn.results) {
    if (r.inPlaceOf >= 0) {
      if (size_t(r.inPlaceOf) >= nargs)
        throw Error(fmt::format("internal: result '{}' written over argument {} of {}", r.name, r.inPlaceOf, nargs));
      bufs.push_back(bufs[size_t(r.inPlaceOf)]);
      continue;
    }
    Tensor &t = outs[r.name];
    if (!t.data() || t.shape() != r.shape || t.dtype() != r.dtype)
      t = Tensor(r.dtype, r.shape);
    bufs.push_back(t.data());
  }
  fn.entry(bufs.data(), arenaFor(fn));
}

namespace {

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0)
    return "--:--";
  long t = long(s + 0.5);
  if (t >= 3600)
    return fmt::format("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

std::string metrics(const char *prefix, const EvalResult &r, bool accuracy = true,
                    const std::vector<PhaseOptions> &phases = {}) {
  if (!phases.empty() && r.losses.size() == phases.size()) {
    std::string s = prefix;
    for (size_t k = 0; k < phases.size(); ++k) // "-": the phase made no step yet
      s += std::isnan(r.losses[k]) ? fmt::format("{}{} -", k ? " " : "", phases[k].name)
                                   : fmt::format("{}{} {:.4f}", k ? " " : "", phases[k].name, r.losses[k]);
    return s;
  }
  std::string s = fmt::format("{}loss {:.4f}", prefix, r.loss);
  if (accuracy && r.accuracy >= 0)
    s += fmt::format(" acc {:.4f}", r.accuracy);
  return s;
}

/// True when `fn` reads a batch: the model's inputs or its label (a
/// generator's step reads neither, only noise).
bool readsData(const CompiledFn &fn) {
  return std::any_of(fn.args.begin(), fn.args.end(),
                     [](const BufferSpec &a) { return a.role == Role::Input || a.role == Role::Label; });
}

/// Lower is better for losses, higher for accuracies.
double monitored(const EpochRecord &e, const std::string &m, const std::vector<PhaseOptions> &phases = {}) {
  for (size_t k = 0; k < phases.size(); ++k) {
    if (m == "train_" + phases[k].name && k < e.train.losses.size())
      return e.train.losses[k];
    if (m == "val_" + phases[k].name && k < e.val.losses.size())
      return e.val.losses[k];
  }
  if (m == "val_loss")
    return e.val.loss;
  if (m == "val_accuracy")
    return -e.val.accuracy;
  if (m == "train_accuracy")
    return -e.train.accuracy;
  return e.train.loss;
}

} // namespace

void FitState::forgetBest() {
  best = 1e300;
  sinceBest = 0;
  bestEpoch = 0;
  bestParams.clear();
  bestState.clear();
  plateau.best = 1e300;
  plateau.bad = 0;
}

std::string FitState::toJson() const {
  nlohmann::json j = {{"epoch", epoch},
                      {"rng_step", rngStep},
                      {"best", best},
                      {"since_best", sinceBest},
                      {"best_epoch", bestEpoch},
                      {"plateau_scale", plateau.scale},
                      {"plateau_best", plateau.best},
                      {"plateau_bad", plateau.bad},
                      {"phase_pos", phasePos}};
  nlohmann::json h = nlohmann::json::array();
  for (const EpochRecord &r : history) {
    nlohmann::json row = {r.epoch,           r.train.loss,    r.train.accuracy, r.train.examples, r.val.loss,
                          r.val.accuracy,    r.val.examples,  r.lr,             r.seconds};
    if (!r.train.losses.empty()) {
      row.push_back(r.train.losses);
      row.push_back(r.val.losses);
    }
    h.push_back(row);
  }
  j["history"] = h;
  return j.dump();
}

FitState FitState::fromJson(const std::string &text, const std::string &what) {
  FitState st;
  try {
    nlohmann::json j = nlohmann::json::parse(text);
    st.epoch = j.at("epoch").get<int64_t>();
    st.rngStep = j.at("rng_step").get<uint64_t>();
    st.best = j.at("best").get<double>();
    st.sinceBest = j.at("since_best").get<int64_t>();
    st.bestEpoch = j.at("best_epoch").get<int64_t>();
    st.plateau.scale = j.at("plateau_scale").get<double>();
    st.plateau.best = j.at("plateau_best").get<double>();
    st.plateau.bad = j.at("plateau_bad").get<int64_t>();
    st.phasePos = j.value("phase_pos", int64_t(0));
    for (const auto &r : j.at("history")) {
      EpochRecord e;
      e.epoch = r.at(0).get<int64_t>();
      e.train = {r.at(1).get<double>(), r.at(2).get<double>(), r.at(3).get<int64_t>()};
      e.val = {r.at(4).get<double>(), r.at(5).get<double>(), r.at(6).get<int64_t>()};
      e.lr = r.at(7).get<double>();
      e.seconds = r.at(8).get<double>();
      if (r.size() > 10) {
        e.train.losses = r.at(9).get<std::vector<double>>();
        e.val.losses = r.at(10).get<std::vector<double>>();
      }
      st.history.push_back(e);
    }
  } catch (const nlohmann::json::exception &e) {
    throw Error(what + ": the training state is malformed (" + e.what() + ")");
  }
  if (st.phasePos < 0)
    throw Error(what + ": the training state is malformed (phase position " + std::to_string(st.phasePos) + ")");
  if (st.epoch < 0 || st.history.size() != size_t(st.epoch))
    throw Error(what + ": the training state is malformed (epoch " + std::to_string(st.epoch) + " with " +
                std::to_string(st.history.size()) + " history entries)");
  return st;
}

void Trainer::takeUpdates(const CompiledFn &fn, std::map<std::string, Tensor> &outs) {
  for (const BufferSpec &r : fn.results) {
    if (r.name.rfind("new.", 0) != 0 || r.inPlaceOf >= 0)
      continue;
    std::string n = r.name.substr(4);
    auto p = state_.params.find(n);
    std::swap(p != state_.params.end() ? p->second : state_.state.at(n), outs.at(r.name));
  }
}

std::optional<std::pair<std::string, float>> Trainer::firstNonFiniteParam() const {
  for (auto &[name, t] : state_.params)
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(t.f32()[i]))
        return std::pair(name, t.f32()[i]);
  return std::nullopt;
}

TrainResult Trainer::fit(const Dataset &train, const Dataset &val, const TrainOptions &opts, const FitState &from) {
  enableFlushToZero();
  rngSeed_ = opts.seed;
  rngStep_ = from.rngStep;
  FitState st = from;
  using Clock = std::chrono::steady_clock;
  TrainResult result;
  auto start = Clock::now();
  // Batches are gathered (and augmented) on a background thread, unless
  // there is nothing to overlap: without augmentation, a small batch is
  // gathered faster than it can be handed over between threads (digits at
  // batch 1: 55k samples/s inline, 34k through the loader).
  size_t dataBytes = train.y.bytes();
  for (const Tensor &x : train.inputs)
    dataBytes += x.bytes();
  int64_t rowBytes = train.size() ? int64_t(dataBytes) / train.size() : 0;
  bool background = opts.augment.any() || rowBytes * opts.batch >= (64 << 10);
  std::optional<BatchLoader> loader;
  std::optional<BatchIterator> inline_;
  if (background)
    loader.emplace(train, opts.batch, opts.shuffle, opts.seed, opts.augment);
  else
    inline_.emplace(train, opts.batch, opts.shuffle, opts.seed);
  struct {
    std::optional<BatchLoader> &loader;
    std::optional<BatchIterator> &inline_;
    void start(uint64_t epoch) { loader ? loader->start(epoch) : inline_->reset(epoch); }
    bool next(Batch &b) { return loader ? loader->next(b) : inline_->next(b); }
    int64_t numBatches() const { return loader ? loader->numBatches() : inline_->numBatches(); }
  } it{loader, inline_};
  Batch batch;
  std::map<std::string, Tensor> outs;
  int64_t samples = 0;
  double trainSeconds = 0;
  int64_t batches = it.numBatches();
  // Test hook: SIGKILL this process after that many train steps (the
  // resume tests kill a run mid-epoch at a reproducible point).
  // NNC_TEST_SIGNAL=INT or TERM sends that signal instead (a Ctrl-C at a
  // reproducible step, for the tests of nnc train's interrupt handling).
  const char *killEnv = std::getenv("NNC_TEST_KILL_AFTER_STEPS");
  int64_t killAfter = killEnv ? std::atoll(killEnv) : 0, stepsRun = 0;
  const char *sigEnv = std::getenv("NNC_TEST_SIGNAL");
  int killSignal = !sigEnv                         ? SIGKILL
                   : std::string(sigEnv) == "INT"  ? SIGINT
                   : std::string(sigEnv) == "TERM" ? SIGTERM
                                                   : SIGKILL;

  // Compile every specialization the loop will need (full and partial
  // batches) up front, so epoch times and samples/s measure training alone.
  auto compileStart = Clock::now();
  std::vector<std::string> lossNames; // several objectives: what evaluate reports
  std::vector<size_t> round;          // the phase of each step of a round
  for (size_t k = 0; k < opts.phases.size(); ++k) {
    lossNames.push_back("loss." + opts.phases[k].name);
    round.insert(round.end(), size_t(opts.phases[k].steps), k);
  }
  bool anyReadsData = false;
  for (const Dataset *d : {&train, &val}) {
    if (d->size() == 0)
      continue;
    std::vector<std::string> fns = {d == &train ? "train_step" : "evaluate"};
    if (d == &train && !opts.phases.empty()) {
      fns.clear();
      for (const PhaseOptions &ph : opts.phases)
        fns.push_back(ph.function);
    }
    for (const std::string &fn : fns) {
      anyReadsData |= readsData(compile_(fn, std::min(opts.batch, d->size())));
      if (d->size() > opts.batch && d->size() % opts.batch)
        compile_(fn, d->size() % opts.batch);
    }
  }
  if (!opts.phases.empty() && train.size() > 0 && !anyReadsData)
    throw Error("no phase reads the training data, so an epoch has no end: some loss must use the model's inputs");
  if (!round.empty())
    st.phasePos %= int64_t(round.size());
  result.compileSeconds = std::chrono::duration<double>(Clock::now() - compileStart).count();
  if (opts.log && (!opts.continuing || result.compileSeconds >= 0.005))
    *opts.log << fmt::format("compiled in {:.2f}s\n", result.compileSeconds) << std::flush;
  // Monitoring validation metrics needs validation examples (a split can
  // round to none, or --limit leave none).
  for (const std::string &m : {opts.earlyStop ? opts.monitor : std::string(),
                               opts.schedule.kind == LrSchedule::Plateau ? opts.schedule.monitor : std::string()})
    if (m.rfind("val_", 0) == 0 && val.size() == 0)
      throw Error("cannot monitor " + m + ": the validation set is empty (raise 'split')");

  if (opts.continuing)
    st.sinceBest = 0;
  // A run resumed after it stopped early has nothing left to do.
  bool stop = opts.earlyStop && st.sinceBest >= opts.patience;
  if (st.epoch > 0 && opts.log && !opts.continuing)
    *opts.log << (stop ? fmt::format("the run stopped early after epoch {}: nothing left to train\n", st.epoch)
                  : st.epoch < opts.epochs ? fmt::format("resuming after epoch {} of {}\n", st.epoch, opts.epochs)
                                           : fmt::format("the checkpoint is at epoch {}: nothing left of the {} epochs "
                                                         "to train\n",
                                                         st.epoch, opts.epochs));
  result.stoppedEarly = stop;
  auto stopRequested = [&] {
    return (opts.interrupt && opts.interrupt->load(std::memory_order_relaxed)) ||
           (opts.maxSteps && result.steps >= opts.maxSteps);
  };
  auto lrOf = [&](const LrSchedule &schedule, double base, int64_t epoch, int64_t b) {
    return schedule.kind == LrSchedule::Plateau
               ? base * st.plateau.scale
               : scheduledLr(schedule, base, (epoch - 1) * batches + b, epoch, opts.epochs, batches);
  };
  auto lrAt = [&](int64_t epoch, int64_t b) { return lrOf(opts.schedule, opts.lr, epoch, b); };
  // One batch through the round of phases: the steps up to and including
  // the next one that reads data. Returns the first phase's learning rate.
  std::vector<double> phaseSum(opts.phases.size()), phaseRows(opts.phases.size());
  auto phaseSteps = [&](int64_t epoch, int64_t b) {
    int64_t rows = batch.y.dim(0);
    double firstLr = opts.phases.empty() ? 0 : lrOf(opts.phases[0].schedule, opts.phases[0].lr, epoch, b);
    for (bool consumed = false; !consumed;) {
      size_t k = round[size_t(st.phasePos)];
      const PhaseOptions &ph = opts.phases[k];
      const CompiledFn &fn = compile_(ph.function, rows);
      consumed = readsData(fn);
      call(fn, &batch.x, &batch.y, float(lrOf(ph.schedule, ph.lr, epoch, b)), outs);
      double loss = outs.at("loss." + ph.name).f32()[0];
      if (!std::isfinite(loss))
        throw Error(fmt::format("training diverged: loss '{}' is {} at epoch {}, batch {} (try a smaller learning "
                                "rate)",
                                ph.name, loss, epoch, b + 1));
      phaseSum[k] += loss * double(rows);
      phaseRows[k] += double(rows);
      takeUpdates(fn, outs);
      st.phasePos = (st.phasePos + 1) % int64_t(round.size());
    }
    return firstLr;
  };
  // The training loss (and accuracy) over the epoch's steps so far; with
  // phases, each loss's mean over the steps of its phase.
  double lossSum = 0, correct = 0;
  auto trainResult = [&](int64_t seen) {
    if (opts.phases.empty())
      return EvalResult{lossSum / double(std::max<int64_t>(1, seen)),
                        opts.classification ? correct / double(std::max<int64_t>(1, seen)) : -1, seen, {}};
    EvalResult r{0, -1, seen, {}};
    for (size_t k = 0; k < opts.phases.size(); ++k)
      r.losses.push_back(phaseRows[k] > 0 ? phaseSum[k] / phaseRows[k] : NAN);
    r.loss = r.losses[0];
    return r;
  };
  // The weights at the start of the epoch, for replaying it up to a step
  // that went non-finite (only when there is a diagnose callback).
  ModelState epochStartState;
  uint64_t epochStartRng = 0;
  // The snapshot costs a copy of the weights and optimizer state per epoch;
  // above 256 MiB the diagnosis is skipped rather than double the memory.
  size_t stateBytes = 0;
  for (auto *group : {&state_.params, &state_.state})
    for (auto &[name, t] : *group)
      stateBytes += t.bytes();
  bool keepSnapshot = opts.diagnose && opts.phases.empty() && stateBytes <= (size_t(256) << 20);
  auto diverged = [&](int64_t epoch, const std::string &what) {
    if (!keepSnapshot)
      return Error(what + " (try a smaller learning rate)" +
                   (!opts.diagnose        ? ""
                    : opts.phases.empty() ? "; the failing op is not looked for: the model's state is too large to "
                                            "keep a copy of it"
                                          : "; the failing op is not looked for in a model with several losses"));
    state_ = epochStartState;
    rngStep_ = epochStartRng;
    BatchLoader replay(train, opts.batch, opts.shuffle, opts.seed, opts.augment);
    replay.start(uint64_t(epoch));
    Batch rb;
    std::map<std::string, Tensor> ro;
    for (int64_t b = 0; replay.next(rb); ++b) {
      ModelState before = state_;
      uint64_t rngBefore = rngStep_;
      const CompiledFn &fn = compile_("train_step", rb.y.dim(0));
      call(fn, &rb.x, &rb.y, float(lrAt(epoch, b)), ro);
      takeUpdates(fn, ro);
      if (std::isfinite(ro.at("loss").f32()[0]) && !firstNonFiniteParam())
        continue;
      state_ = std::move(before);
      rngStep_ = rngBefore;
      return Error(fmt::format("{} (try a smaller learning rate)\nbatch {} of epoch {} is the first step that goes "
                               "non-finite: {}",
                               what, b + 1, epoch, opts.diagnose(rb.x, rb.y, float(lrAt(epoch, b)))));
    }
    return Error(what + " (a replay of the epoch stayed finite)");
  };
  for (int64_t epoch = st.epoch + 1; epoch <= opts.epochs && !stop; ++epoch) {
    auto epochStart = Clock::now();
    auto lastDraw = epochStart;
    if (keepSnapshot) {
      epochStartState = state_;
      epochStartRng = rngStep_;
    }
    it.start(uint64_t(epoch));
    double lr = opts.phases.empty() ? opts.lr : opts.phases[0].lr;
    lossSum = correct = 0;
    int64_t seen = 0, b = 0;
    std::fill(phaseSum.begin(), phaseSum.end(), 0.0);
    std::fill(phaseRows.begin(), phaseRows.end(), 0.0);
    while (it.next(batch)) {
      int64_t rows = batch.y.dim(0);
      if (!opts.phases.empty()) {
        lr = phaseSteps(epoch, b);
      } else {
        const CompiledFn &fn = compile_("train_step", rows);
        lr = lrAt(epoch, b);
        call(fn, &batch.x, &batch.y, float(lr), outs);
        double loss = outs.at("loss").f32()[0];
        if (!std::isfinite(loss))
          throw diverged(epoch,
                         fmt::format("training diverged: the loss is {} at epoch {}, batch {}", loss, epoch, b + 1));
        lossSum += loss * double(rows);
        if (opts.classification)
          correct += outs.at("correct").f32()[0];
        takeUpdates(fn, outs);
      }
      seen += rows;
      ++b;
      ++result.steps;
      if (killAfter && ++stepsRun == killAfter)
        std::raise(killSignal);
      if (b < batches && stopRequested()) {
        result.stoppedMidEpoch = true;
        break;
      }
      auto now = Clock::now();
      if (opts.interactive && opts.log && std::chrono::duration<double>(now - lastDraw).count() > 0.1) {
        lastDraw = now;
        double el = std::chrono::duration<double>(now - epochStart).count();
        double rate = double(seen) / std::max(el, 1e-9);
        double remaining = (double(batches - b) + double(opts.epochs - epoch) * double(batches)) * el / double(b);
        int width = 20, fill = int(double(width) * double(b) / double(batches));
        std::string bar = std::string(size_t(fill), '=') + (fill < width ? ">" : "") +
                          std::string(size_t(std::max(0, width - fill - 1)), ' ');
        EvalResult cur = trainResult(seen);
        *opts.log << fmt::format("\r\033[Kepoch {}/{} [{}] {}/{} {} | {:.0f} samples/s | ETA {}", epoch, opts.epochs,
                                 bar, b, batches, metrics("", cur, opts.showAccuracy, opts.phases), rate,
                                 duration(remaining))
                  << std::flush;
      }
    }
    // The loss is checked before each update; the update itself can also
    // blow up (on the last batch, say), so look at the weights too.
    if (auto bad = firstNonFiniteParam())
      throw diverged(
          epoch, fmt::format("training diverged: parameter '{}' is {} after epoch {}", bad->first, bad->second, epoch));
    double epochSeconds = std::chrono::duration<double>(Clock::now() - epochStart).count();
    trainSeconds += epochSeconds;
    samples += seen;
    if (result.stoppedMidEpoch) {
      // No validation, early stopping or schedule step for a part of an
      // epoch; the next run starts the following epoch.
      result.interrupted = opts.interrupt && opts.interrupt->load();
      result.partial = trainResult(seen);
      result.partialSteps = b;
      result.partialBatches = batches;
      if (opts.interactive && opts.log)
        *opts.log << "\r\033[K" << std::flush;
      st.epoch = epoch;
      st.rngStep = rngStep_;
      break;
    }
    EpochRecord rec;
    rec.epoch = epoch;
    rec.seconds = epochSeconds;
    rec.lr = lr;
    rec.train = trainResult(seen);
    if (val.size() > 0) {
      rec.val = evaluate(val, opts.batch, opts.classification, lossNames);
      if (!std::isfinite(rec.val.loss))
        throw Error(fmt::format("training diverged: the validation loss is {} after epoch {} (try a smaller "
                                "learning rate)",
                                rec.val.loss, epoch));
    }
    if (opts.log) {
      double remaining = double(opts.epochs - epoch) * trainSeconds / double(epoch - from.epoch);
      std::string line =
          fmt::format("epoch {}/{}  train {}", epoch, opts.epochs, metrics("", rec.train, opts.showAccuracy, opts.phases));
      if (val.size() > 0)
        line += fmt::format(" | val {}", metrics("", rec.val, opts.showAccuracy, opts.phases));
      if (opts.schedule.kind != LrSchedule::Constant && opts.phases.empty())
        line += fmt::format(" | lr {:.3g}", lr);
      line += fmt::format(" | {:.0f} samples/s | {:.1f}s", double(seen) / std::max(epochSeconds, 1e-9), epochSeconds);
      if (epoch < opts.epochs)
        line += " | ETA " + duration(remaining);
      *opts.log << (opts.interactive ? "\r\033[K" : "") << line << "\n" << std::flush;
    }
    if (opts.schedule.kind == LrSchedule::Plateau &&
        plateauStep(opts.schedule, opts.lr, monitored(rec, opts.schedule.monitor, opts.phases), st.plateau) && opts.log)
      *opts.log << fmt::format("{} has not improved for {} epoch{}: learning rate now {:.3g}\n", opts.schedule.monitor,
                               opts.schedule.patience + 1, opts.schedule.patience ? "s" : "",
                               opts.lr * st.plateau.scale);
    // Early stopping on the monitored metric, keeping the best weights.
    double m = monitored(rec, opts.monitor, opts.phases);
    if (m < st.best - opts.minDelta) {
      st.best = m;
      st.sinceBest = 0;
      st.bestEpoch = epoch;
      if (opts.earlyStop) {
        st.bestParams = state_.params;
        st.bestState = state_.state;
      }
    } else if (opts.earlyStop && ++st.sinceBest >= opts.patience) {
      stop = result.stoppedEarly = true;
      if (opts.log)
        *opts.log << fmt::format("early stop: {} has not improved for {} epoch{}; restoring the weights of epoch {}\n",
                                 opts.monitor, opts.patience, opts.patience == 1 ? "" : "s", st.bestEpoch);
    }
    st.epoch = epoch;
    st.rngStep = rngStep_;
    st.history.push_back(rec);
    if (opts.afterEpoch)
      opts.afterEpoch(st);
    if (stopRequested()) {
      result.interrupted = opts.interrupt && opts.interrupt->load();
      break;
    }
  }
  result.history = st.history;
  result.epochsRun = st.epoch;
  result.bestEpoch = st.bestEpoch;
  // Early stopping keeps the best epoch's weights, also when the run used
  // all its epochs without stopping.
  if (opts.earlyStop && !result.interrupted && !result.stoppedMidEpoch && st.bestEpoch != st.epoch &&
      !st.bestParams.empty()) {
    state_.params = st.bestParams;
    state_.state = st.bestState;
    if (!result.stoppedEarly && opts.log)
      *opts.log << fmt::format("restoring the weights of epoch {}, the best by {}\n", st.bestEpoch, opts.monitor);
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.trainSeconds = trainSeconds;
  result.samplesPerSecond = double(samples) / std::max(trainSeconds, 1e-9);
  result.state = std::move(st);
  return result;
}

EvalResult Trainer::evaluate(const Dataset &data, int64_t batch, bool classification,
                             const std::vector<std::string> &losses) {
  enableFlushToZero();
  BatchIterator it(data, batch, false, 0);
  it.reset(0);
  Batch b;
  std::map<std::string, Tensor> outs;
  double lossSum = 0, correct = 0;
  std::vector<double> sums(losses.size());
  int64_t seen = 0;
  while (it.next(b)) {
    int64_t rows = b.y.dim(0);
    const CompiledFn &fn = compile_("evaluate", rows);
    call(fn, &b.x, &b.y, 0.0f, outs);
    for (size_t k = 0; k < losses.size(); ++k)
      sums[k] += outs.at(losses[k]).f32()[0] * double(rows);
    if (!losses.empty()) {
      seen += rows;
      continue;
    }
    lossSum += outs.at("loss").f32()[0] * double(rows);
    if (classification)
      correct += outs.at("correct").f32()[0];
    seen += rows;
  }
  EvalResult r;
  r.examples = seen;
  r.loss = seen ? lossSum / double(seen) : NAN;
  r.accuracy = classification && seen ? correct / double(seen) : -1;
  for (double x : sums)
    r.losses.push_back(seen ? x / double(seen) : NAN);
  if (!r.losses.empty())
    r.loss = r.losses[0];
  return r;
}

std::map<std::string, Tensor> Trainer::run(const std::string &function, const std::vector<Tensor> &xb, const Tensor *yb,
                                           float lr) {
  enableFlushToZero();
  std::map<std::string, Tensor> outs;
  const CompiledFn &fn = compile_(function, xb.at(0).dim(0));
  call(fn, &xb, yb, lr, outs);
  // Results written over their arguments are returned too, as copies.
  for (const BufferSpec &r : fn.results) {
    if (r.inPlaceOf < 0)
      continue;
    const BufferSpec &a = fn.args[size_t(r.inPlaceOf)];
    auto p = state_.params.find(a.name);
    outs[r.name] = p != state_.params.end() ? p->second : state_.state.at(a.name); // a copy
  }
  return outs;
}

std::vector<double> Trainer::timeCalls(const std::string &function, const std::vector<Tensor> &xb, const Tensor *yb,
                                       float lr, int64_t warmup, int64_t minCalls, int64_t maxCalls,
                                       double minSeconds) {
  return timeCalls(std::vector<std::string>{function}, xb, yb, std::vector<float>{lr}, warmup, minCalls, maxCalls,
                   minSeconds);
}

std::vector<double> Trainer::timeCalls(const std::vector<std::string> &functions, const std::vector<Tensor> &xb,
                                       const Tensor *yb, const std::vector<float> &lrs, int64_t warmup,
                                       int64_t minCalls, int64_t maxCalls, double minSeconds) {
  using Clock = std::chrono::steady_clock;
  enableFlushToZero();
  std::vector<const CompiledFn *> fns;
  for (const std::string &f : functions)
    fns.push_back(&compile_(f, xb.at(0).dim(0)));
  std::map<std::string, Tensor> outs;
  auto sequence = [&] {
    for (size_t k = 0; k < fns.size(); ++k)
      call(*fns[k], &xb, yb, lrs.at(k), outs);
  };
  for (int64_t i = 0; i < warmup; ++i)
    sequence();
  std::vector<double> times;
  Clock::time_point start = Clock::now();
  while (
      int64_t(times.size()) < maxCalls &&
      (int64_t(times.size()) < minCalls || std::chrono::duration<double>(Clock::now() - start).count() < minSeconds)) {
    Clock::time_point t0 = Clock::now();
    sequence();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return times;
}

Tensor Trainer::predict(const Tensor &x, const std::string &output, int64_t batch) {
  return predict(std::vector<Tensor>{x}, output, batch);
}

Tensor Trainer::predict(const std::vector<Tensor> &inputs, const std::string &output, int64_t batch) {
  return std::move(predict(inputs, std::vector<std::string>{output}, batch).front());
}

std::vector<Tensor> Trainer::predict(const std::vector<Tensor> &inputs, const std::vector<std::string> &outputs,
                                     int64_t batch) {
  enableFlushToZero();
  Dataset d;
  d.inputs = inputs;
  int64_t n = inputs.at(0).dim(0);
  d.y = Tensor(DType::I64, {n});
  BatchIterator it(d, batch, false, 0);
  it.reset(0);
  Batch b;
  std::map<std::string, Tensor> outs;
  std::vector<Tensor> all(outputs.size());
  int64_t row = 0;
  while (it.next(b)) {
    const CompiledFn &fn = compile_("predict", b.y.dim(0));
    call(fn, &b.x, nullptr, 0.0f, outs);
    for (size_t k = 0; k < outputs.size(); ++k) {
      const Tensor &o = outs.at(outputs[k]);
      if (all[k].rank() == 0) {
        std::vector<int64_t> shape = o.shape();
        shape[0] = n;
        all[k] = Tensor(o.dtype(), shape);
      }
      size_t rowBytes = o.bytes() / size_t(o.dim(0));
      std::memcpy(static_cast<char *>(all[k].data()) + size_t(row) * rowBytes, o.data(), o.bytes());
    }
    row += b.y.dim(0);
  }
  return all;
}

Tensor Trainer::generate(const std::string &function, const std::string &output, int64_t count, int64_t batch) {
  enableFlushToZero();
  std::map<std::string, Tensor> outs;
  Tensor all;
  for (int64_t row = 0; row < count;) {
    int64_t b = std::min(batch, count - row);
    const CompiledFn &fn = compile_(function, b);
    for (const BufferSpec &a : fn.args)
      if (a.role == Role::Input || a.role == Role::Label)
        throw Error("'" + output + "' depends on the model's input '" + a.name +
                    "'; only outputs computed from noise alone can be generated");
    call(fn, nullptr, nullptr, 0.0f, outs);
    const Tensor &o = outs.at(output);
    if (o.rank() == 0 || o.dim(0) != b)
      throw Error("output '" + output + "' is not one row per example (it is " + o.typeString() + ")");
    if (all.rank() == 0) {
      std::vector<int64_t> shape = o.shape();
      shape[0] = count;
      all = Tensor(o.dtype(), shape);
    }
    size_t rowBytes = o.bytes() / size_t(b);
    std::memcpy(static_cast<char *>(all.data()) + size_t(row) * rowBytes, o.data(), o.bytes());
    row += b;
  }
  return all;
}

} // namespace nnc::runtime
