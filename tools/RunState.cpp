// Settings and checkpoints shared by the CLI and the REPL: trainer options,
// the texts of the optimizer and schedule, the resume key and its diff, and
// what a checkpoint stores of a run besides the weights.
#include "tools/Driver.h"

#include "runtime/Checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>

namespace nnc::driver {

runtime::TrainOptions trainOptions(const CompiledModel &m) {
  const frontend::TrainConfig &c = m.config;
  runtime::TrainOptions t;
  t.epochs = c.epochs;
  t.batch = c.batch;
  t.lr = c.lr;
  t.schedule = c.schedule;
  t.shuffle = c.shuffle;
  t.seed = c.seed;
  t.earlyStop = c.earlyStop;
  t.monitor = c.monitor;
  t.patience = c.patience;
  t.minDelta = c.minDelta;
  t.classification = m.lowered.accuracy;
  t.showAccuracy = std::find(c.metrics.begin(), c.metrics.end(), "accuracy") != c.metrics.end();
  for (const frontend::Phase &p : c.phases)
    t.phases.push_back({p.loss, "train_step." + p.loss, p.lr, p.schedule, p.steps});
  return t;
}

std::string optimizerText(const frontend::TrainConfig &c) {
  const ir::OptimizerSpec &o = c.optimizer;
  using K = ir::OptimizerSpec::Kind;
  std::string s = fmt::format("{}(lr = {:g}", ir::OptimizerSpec::name(o.kind), c.lr);
  if (o.momentum && (o.kind == K::SGD || o.kind == K::RMSProp))
    s += fmt::format(", momentum = {:g}{}", o.momentum, o.nesterov ? ", nesterov" : "");
  if (o.centered && o.kind == K::RMSProp)
    s += ", centered";
  if (o.weightDecay)
    s += fmt::format(", weight_decay = {:g}", o.weightDecay);
  if (o.clipNorm)
    s += fmt::format(", clip_norm = {:g}", o.clipNorm);
  if (o.clipValue)
    s += fmt::format(", clip_value = {:g}", o.clipValue);
  if (!o.perParam.empty())
    s += fmt::format(", {} parameter{} with own settings", o.perParam.size(), o.perParam.size() == 1 ? "" : "s");
  return s + ")";
}

std::string phasesText(const frontend::TrainConfig &c) {
  std::string s;
  for (const frontend::Phase &p : c.phases) {
    frontend::TrainConfig one = c;
    one.optimizer = p.optimizer;
    one.lr = p.lr;
    s += (s.empty() ? "" : ", ") + p.loss + (p.steps > 1 ? fmt::format(" x{}", p.steps) : "") + " " +
         optimizerText(one);
    if (p.schedule.kind != runtime::LrSchedule::Constant)
      s += " " + scheduleText(p.schedule);
  }
  return s;
}

std::vector<std::string> phaseNames(const frontend::TrainConfig &c) {
  std::vector<std::string> r;
  for (const frontend::Phase &p : c.phases)
    r.push_back(p.loss);
  return r;
}

std::string scheduleText(const runtime::LrSchedule &s) {
  using S = runtime::LrSchedule;
  switch (s.kind) {
  case S::Constant:
    return "constant";
  case S::Step:
    return fmt::format("step(every = {}, gamma = {:g})", s.every, s.gamma);
  case S::Exponential:
    return fmt::format("exponential(gamma = {:g})", s.gamma);
  case S::Cosine:
    return fmt::format("cosine(warmup = {:g}, min_lr = {:g})", s.warmup, s.minLr);
  case S::OneCycle:
    return fmt::format("one_cycle(max_lr = {:g}, pct_start = {:g}, div_factor = {:g}, final_div_factor = {:g})",
                       s.maxLr, s.pctStart, s.divFactor, s.finalDivFactor);
  case S::Plateau:
    return fmt::format("reduce_on_plateau(monitor = {}, factor = {:g}, patience = {}, min_lr = {:g})", s.monitor,
                       s.factor, s.patience, s.minLr);
  }
  return "?";
}

/// What a resumed run must share with the run that wrote its checkpoint:
/// everything that changes the sequence of steps, numbers to 9 digits.
std::string resumeKey(const CompiledModel &m, const Data &d) {
  const frontend::TrainConfig &c = m.config;
  auto optimizerKey = [](const ir::OptimizerSpec &o, double lr, const runtime::LrSchedule &s) {
    std::string key = fmt::format(
        "{} lr {:.9g} momentum {:.9g}{} decay {:.9g} betas {:.9g} {:.9g} eps {:.9g} alpha {:.9g}{} clip {:.9g} {:.9g}",
        ir::OptimizerSpec::name(o.kind), lr, o.momentum, o.nesterov ? " nesterov" : "", o.weightDecay, o.beta1,
        o.beta2, o.eps, o.alpha, o.centered ? " centered" : "", o.clipNorm, o.clipValue);
    for (const auto &[name, ps] : o.perParam)
      key += fmt::format(", {} decay {:.9g} lr x{:.9g}", name, ps.weightDecay, ps.lrScale);
    return key + ", schedule " + scheduleText(s) +
           fmt::format(" {:.9g} {:.9g} {:.9g} {:.9g} {:.9g} {:.9g} {:.9g}", s.gamma, s.warmup, s.minLr, s.maxLr,
                       s.pctStart, s.factor, s.threshold);
  };
  std::string key = "model " + m.lowered.name;
  if (c.phases.empty())
    key += ", " + optimizerKey(c.optimizer, c.lr, c.schedule);
  for (const frontend::Phase &p : c.phases)
    key += fmt::format(", phase {} x{}: ", p.loss, p.steps) + optimizerKey(p.optimizer, p.lr, p.schedule);
  if (c.earlyStop)
    key += fmt::format(", early_stop {} {} {:.9g}", c.monitor, c.patience, c.minDelta);
  key += fmt::format(", batch {}, seed {}, {} training and {} validation examples", c.batch, c.seed, d.train.size(),
                     d.val.size());
  for (const frontend::Transform &t : c.transforms)
    key += t.kind == frontend::Transform::Scale         ? fmt::format(", scale {:.9g}", t.factor)
           : t.kind == frontend::Transform::Standardize ? std::string(", standardize")
           : t.kind == frontend::Transform::MinMax      ? std::string(", min_max")
                                                        : std::string(", one_hot");
  const runtime::Augmentation &a = c.augment;
  if (a.any())
    key += fmt::format(", augment crop {} flip {} shift {} noise {:.9g}", a.cropPadding, a.hflip, a.shift, a.noiseStd);
  if (!c.shuffle)
    key += ", no shuffle";
  return key;
}

/// The fitted scaling of a train block's pipeline: "standardize", "min_max" or "".
std::string fittedScaling(const frontend::TrainConfig &c) {
  for (const frontend::Transform &t : c.transforms)
    if (t.kind == frontend::Transform::Standardize || t.kind == frontend::Transform::MinMax)
      return t.kind == frontend::Transform::Standardize ? "standardize" : "min_max";
  return "";
}

/// The scaling statistics a checkpoint carries for this train block's
/// pipeline, if any (none when the pipeline fits none). Throws Error when
/// they were fitted by another kind of scaling.
std::optional<runtime::Standardizer> storedStandardizer(const runtime::Checkpoint &ck, const std::string &path,
                                                        const frontend::TrainConfig &cfg) {
  auto mean = ck.tensors.find("data.mean"), sd = ck.tensors.find("data.stddev");
  std::string kind = fittedScaling(cfg);
  if ((mean == ck.tensors.end() && sd == ck.tensors.end()) || kind.empty())
    return std::nullopt;
  if (auto it = ck.metadata.find("nnc.preprocess"); it != ck.metadata.end() && it->second != kind)
    throw runtime::Error("'" + path + "' holds the statistics of |> " + it->second + ", but the train block uses |> " +
                         kind);
  if (mean == ck.tensors.end() || sd == ck.tensors.end() || mean->second.dtype() != runtime::DType::F32 ||
      sd->second.dtype() != runtime::DType::F32 || mean->second.numel() != sd->second.numel())
    throw runtime::Error("'" + path + "': data.mean and data.stddev must be two f32 tensors of the same size");
  runtime::Standardizer st;
  st.mean.assign(mean->second.f32(), mean->second.f32() + mean->second.numel());
  st.stddev.assign(sd->second.f32(), sd->second.f32() + sd->second.numel());
  return st;
}

namespace {

std::vector<std::string> splitOn(const std::string &s, const std::string &sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos)
      return out;
    start = at + sep.size();
  }
}

bool isNumber(const std::string &w) {
  return !w.empty() && (std::isdigit(static_cast<unsigned char>(w[0])) || w[0] == '-' || w[0] == 'x');
}

/// The setting an item of a resume key is about: its first word ("batch",
/// "seed", "adam", "schedule"), or for "N training and M validation
/// examples" its last.
std::string itemHead(const std::vector<std::string> &words) {
  return words.empty() ? "" : isNumber(words[0]) ? words.back() : words[0];
}

} // namespace

std::string resumeDiff(const std::string &stored, const std::string &now) {
  std::vector<std::string> a = splitOn(stored, ", "), b = splitOn(now, ", ");
  std::vector<bool> usedB(b.size(), false);
  std::string out;
  auto line = [&](const std::string &what, const std::string &x, const std::string &y) {
    out += "\n  " + what + ": " + x + " in the checkpoint, " + y + " in this run";
  };
  for (const std::string &itemA : a) {
    std::vector<std::string> wa = splitOn(itemA, " ");
    size_t j = 0;
    while (j < b.size() && (usedB[j] || itemHead(splitOn(b[j], " ")) != itemHead(wa)))
      ++j;
    if (j == b.size()) {
      out += "\n  only in the checkpoint: " + itemA;
      continue;
    }
    usedB[j] = true;
    if (b[j] == itemA)
      continue;
    std::vector<std::string> wb = splitOn(b[j], " ");
    if (wa.size() != wb.size()) {
      line(itemHead(wa), "'" + itemA + "'", "'" + b[j] + "'");
      continue;
    }
    for (size_t i = 0; i < wa.size(); ++i) {
      if (wa[i] == wb[i])
        continue;
      // Name a value by the word before it (lr 0.01, betas 0.9 0.999),
      // else the word after it (1438 training).
      std::string label = itemHead(wa);
      size_t k = i;
      while (k > 0 && isNumber(wa[k - 1]))
        --k;
      if (k > 0 && wa[k - 1] != "and")
        label = wa[k - 1];
      else if (i + 1 < wa.size() && !isNumber(wa[i + 1]))
        label = wa[i + 1];
      line(label, wa[i], wb[i]);
    }
  }
  for (size_t j = 0; j < b.size(); ++j)
    if (!usedB[j])
      out += "\n  only in this run: " + b[j];
  return out;
}

std::map<std::string, std::string> checkpointMetadata(const CompiledModel &m, const Data &d, int64_t epochs) {
  std::map<std::string, std::string> meta = {{"nnc.model", m.lowered.name},
                                             {"nnc.seed", std::to_string(m.config.seed)},
                                             {"nnc.epochs", std::to_string(epochs)},
                                             {"nnc.format", "1"}};
  if (d.standardized)
    meta["nnc.preprocess"] = fittedScaling(m.config);
  return meta;
}

std::map<std::string, runtime::Tensor> dataTensors(const Data &d) {
  std::map<std::string, runtime::Tensor> t;
  if (d.standardized) {
    int64_t n = int64_t(d.standardizer.mean.size());
    t.emplace("data.mean", runtime::Tensor(runtime::DType::F32, {n}));
    t.emplace("data.stddev", runtime::Tensor(runtime::DType::F32, {n}));
    std::copy_n(d.standardizer.mean.data(), n, t.at("data.mean").f32());
    std::copy_n(d.standardizer.stddev.data(), n, t.at("data.stddev").f32());
  }
  return t;
}

std::optional<uint64_t> storedSeed(const runtime::Checkpoint &ck, const std::string &path) {
  auto it = ck.metadata.find("nnc.seed");
  if (it == ck.metadata.end())
    return std::nullopt;
  const std::string &v = it->second;
  char *end = nullptr;
  errno = 0;
  unsigned long long seed = v.empty() || v[0] == '-' ? 0 : std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || v[0] == '-' || errno || *end)
    throw runtime::Error("'" + path + "': metadata nnc.seed is not a seed: '" + v + "'");
  return seed;
}

void saveCheckpoint(Session &session, const Data &d, const runtime::FitState &st, const std::string &path) {
  const CompiledModel &m = session.model();
  std::map<std::string, runtime::Tensor> extra = dataTensors(d);
  for (auto *best : {&st.bestParams, &st.bestState})
    for (auto &[n, t] : *best)
      extra.emplace("best." + n, t);
  std::map<std::string, std::string> meta = checkpointMetadata(m, d, st.epoch);
  meta["nnc.fit_state"] = st.toJson();
  meta["nnc.resume_key"] = resumeKey(m, d);
  session.save(path, meta, extra);
}

runtime::FitState storedFitState(const runtime::Checkpoint &ck, const std::string &path, const runtime::ModelState &s) {
  auto json = ck.metadata.find("nnc.fit_state");
  if (json == ck.metadata.end())
    throw runtime::Error("'" + path +
                         "' holds weights but no training state (it was written by --save, not by "
                         "checkpoint(...) or --checkpoint); start from its weights with --load instead");
  runtime::FitState fit = runtime::FitState::fromJson(json->second, "'" + path + "'");
  for (auto &[name, t] : ck.tensors) {
    if (name.rfind("best.", 0) != 0)
      continue;
    std::string n = name.substr(5);
    if (!s.params.count(n) && !s.state.count(n))
      throw runtime::Error("'" + path + "': '" + name + "' is not the best value of any model tensor");
    (s.params.count(n) ? fit.bestParams : fit.bestState)[n] = t;
  }
  return fit;
}

} // namespace nnc::driver
