// Reading a train block into a TrainConfig, with located errors for unknown
// settings, wrong value kinds and out-of-range values: the settings, the
// optimizer, parameter groups, the schedule, checkpoints and early stopping,
// and the argument helpers the data pipeline shares (TrainData.cpp).
#include "frontend/ParamSelect.h"
#include "frontend/TrainReader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

namespace nnc::frontend {

std::optional<TrainConfig> TrainReader::run(const ast::TrainDecl *t) {
  unsigned before = d_.errorCount();
  if (t) {
    for (auto &it : t->items)
      item(it);
    if (cfg_.data.kind == DataSource::None && !seen_.count("data"))
      d_.error(t->modelLoc,
               "train block for '" + t->model + "' has no data (add 'data = csv(\"file.csv\") |> batch(32)')");
  }
  applyGroups(cfg_.optimizer);
  phases();
  if (cfg_.schedule.kind == runtime::LrSchedule::Plateau && cfg_.split <= 0 && !splitRejected_ &&
      cfg_.schedule.monitor.rfind("val_", 0) == 0)
    d_.error(scheduleMonitorLoc_.valid() ? scheduleMonitorLoc_ : scheduleLoc_,
             "reduce_on_plateau monitors '" + cfg_.schedule.monitor +
                 "' but there is no validation split (set 'split = 0.1' or monitor train_loss)");
  if (cfg_.earlyStop && monitorOk_ && cfg_.split <= 0 && !splitRejected_ && cfg_.monitor.rfind("val_", 0) == 0)
    d_.error(earlyLoc_,
             "early_stop monitors '" + cfg_.monitor + "' but there is no validation split (set 'split = 0.1')");
  if (d_.errorCount() != before)
    return std::nullopt;
  return cfg_;
}

std::optional<double> TrainReader::number(const ast::Expr &top) {
  std::vector<const ast::Expr *> c = ast::chain(top);
  std::optional<double> v;
  if (c.back()->kind == ast::Expr::Number)
    v = c.back()->number;
  for (size_t i = c.size() - 1; i-- > 0;) {
    const ast::Expr &e = *c[i];
    if (e.kind == ast::Expr::Neg) {
      v = v ? std::optional<double>(-*v) : std::nullopt;
    } else if (e.kind == ast::Expr::Binary) {
      auto b = number(*e.rhs);
      if (!v || !b)
        v = std::nullopt;
      else
        v = e.op == '+'   ? *v + *b
            : e.op == '-' ? *v - *b
            : e.op == '*' ? *v * *b
            : e.op == '^' ? std::pow(*v, *b)
                          : *v / *b;
    } else {
      v = std::nullopt; // a piped call
    }
  }
  return v;
}

std::optional<double> TrainReader::numberIn(const ast::Expr &e, const std::string &what, double lo, double hi,
                                            bool integer) {
  auto v = number(e);
  if (!v || !std::isfinite(*v) || *v < lo || *v > hi || (integer && std::floor(*v) != *v)) {
    std::string range = integer ? "an integer" : "a number";
    range += " in [" + fmt(lo) + ", " + fmt(hi) + "]";
    d_.error(e.loc, what + " must be " + range + ", got " + ast::toSource(e));
    return std::nullopt;
  }
  return v;
}

std::string TrainReader::fmt(double v) {
  char buf[40];
  if (std::floor(v) == v && std::fabs(v) < 1e18)
    snprintf(buf, sizeof buf, "%lld", (long long)v);
  else
    snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

std::string TrainReader::path(const std::string &p) {
  if (p.empty() || p[0] == '/' || baseDir_.empty() || baseDir_ == ".")
    return p;
  return baseDir_ + "/" + p;
}

std::optional<bool> TrainReader::boolean(const ast::Expr &e, const std::string &what) {
  if (e.kind == ast::Expr::Name && (e.name == "true" || e.name == "false"))
    return e.name == "true";
  d_.error(e.loc, what + " must be true or false");
  return std::nullopt;
}

std::optional<TrainReader::Args> TrainReader::callArgs(const ast::Expr &e, const std::vector<std::string> &extra) {
  const Builtin *b = findBuiltin(e.name, Builtin::Train);
  if (!b) {
    std::vector<std::string> names;
    for (auto &x : builtins())
      if (x.where == Builtin::Train)
        names.push_back(x.name);
    d_.error(e.loc, "unknown function '" + e.name + "' in a train block" + didYouMean(e.name, names));
    return std::nullopt;
  }
  std::vector<std::string> names;
  for (auto &p : b->params)
    names.push_back(p.name);
  size_t positional = names.size();
  names.insert(names.end(), extra.begin(), extra.end());
  Args out;
  size_t pos = 0;
  for (auto &a : e.args) {
    std::string n = a.name;
    if (n.empty()) {
      if (pos >= positional) {
        d_.error(a.value->loc, "too many arguments to '" + e.name + "'");
        return std::nullopt;
      }
      n = names[pos++];
    } else if (std::find(names.begin(), names.end(), n) == names.end()) {
      d_.error(a.nameLoc, "'" + e.name + "' has no parameter named '" + n + "'" + didYouMean(n, names));
      return std::nullopt;
    }
    if (find(out, n)) {
      d_.error(a.value->loc, "argument '" + n + "' given twice in call to '" + e.name + "'");
      return std::nullopt;
    }
    out.push_back({n, a.value.get()});
  }
  for (auto &p : b->params)
    if (p.required && !find(out, p.name)) {
      d_.error(e.loc, "missing argument '" + std::string(p.name) + "' in call to '" + e.name + "'");
      return std::nullopt;
    }
  return out;
}

std::optional<std::string> TrainReader::stringArg(const ast::Expr &e, const std::string &what) {
  if (e.kind != ast::Expr::String) {
    d_.error(e.loc, what + " must be a string");
    return std::nullopt;
  }
  return e.name;
}

void TrainReader::optimizer(const ast::Expr &e) {
  using K = ir::OptimizerSpec::Kind;
  static const std::map<std::string, K> kinds = {
      {"sgd", K::SGD}, {"adam", K::Adam}, {"adamw", K::AdamW}, {"rmsprop", K::RMSProp}, {"adagrad", K::Adagrad}};
  auto kind = e.kind == ast::Expr::Call ? kinds.find(e.name) : kinds.end();
  if (kind == kinds.end()) {
    d_.error(e.loc,
             "optimizer must be sgd(...), adam(...), adamw(...), rmsprop(...) or adagrad(...)" + calledName(e, kinds));
    return;
  }
  auto args = callArgs(e);
  if (!args)
    return;
  ir::OptimizerSpec &o = cfg_.optimizer;
  o = ir::OptimizerSpec();
  o.kind = kind->second;
  o.loc = e.loc;
  bool adam = o.kind == K::Adam || o.kind == K::AdamW;
  cfg_.lr = adam ? 1e-3 : 0.01; // PyTorch's defaults
  if (o.kind == K::AdamW)
    o.weightDecay = 0.01;
  if (o.kind == K::Adagrad)
    o.eps = 1e-10;
  for (auto &[k, v] : *args) {
    auto set = [&, &k = k, &v = v](double &field, double lo, double hi) {
      if (auto x = numberIn(*v, k, lo, hi))
        field = *x;
    };
    if (k == "lr")
      set(cfg_.lr, 0, 10);
    else if (k == "momentum")
      set(o.momentum, 0, 0.9999);
    else if (k == "weight_decay")
      set(o.weightDecay, 0, 1);
    else if (k == "beta1")
      set(o.beta1, 0, 0.9999999);
    else if (k == "beta2")
      set(o.beta2, 0, 0.9999999);
    else if (k == "eps")
      set(o.eps, 0, 1);
    else if (k == "alpha")
      set(o.alpha, 0, 0.9999999);
    else if (k == "clip_norm")
      set(o.clipNorm, 1e-12, 1e12);
    else if (k == "clip_value")
      set(o.clipValue, 1e-12, 1e12);
    else if (k == "nesterov" || k == "centered")
      if (auto x = boolean(*v, k))
        (k == "nesterov" ? o.nesterov : o.centered) = *x;
  }
  if (o.nesterov && o.momentum == 0)
    d_.error(e.loc, "sgd: nesterov needs a momentum > 0");
}

void TrainReader::paramGroup(const ast::Expr &e) {
  auto args = callArgs(e);
  if (!args)
    return;
  Group g;
  g.loc = e.loc;
  const ast::Expr &sel = *find(*args, "params");
  for (const ast::Expr *x : oneOrList(sel)) {
    bool setName = x->kind == ast::Expr::Name && isParamSetName(x->name);
    if (!setName && x->kind != ast::Expr::String) {
      d_.error(x->loc, "param_group: select parameters with weights, biases, norms, params, a layer instance "
                       "(\"h1\") or a parameter name (\"h1.w\"), got " +
                           ast::toSource(*x));
      return;
    }
    std::vector<std::string> picked = selectParams(model_.params, x->name, setName);
    if (picked.empty() && !setName) {
      d_.error(x->loc, "param_group: model '" + model_.name + "' has no parameter or layer instance \"" + x->name +
                           "\"" + paramSuggestion(model_.params, x->name));
      return;
    }
    g.params.insert(g.params.end(), picked.begin(), picked.end());
  }
  for (auto &[k, v] : *args) {
    if (k == "weight_decay") {
      if (auto x = numberIn(*v, "weight_decay", 0, 1))
        g.weightDecay = *x;
    } else if (k == "lr_scale") {
      if (auto x = numberIn(*v, "lr_scale", 0, 1e6))
        g.lrScale = *x;
    }
  }
  if (!g.weightDecay && !g.lrScale)
    d_.warning(e.loc, "param_group sets nothing (give weight_decay or lr_scale)");
  groups_.push_back(g);
}

void TrainReader::applyGroups(ir::OptimizerSpec &o) {
  for (const Group &g : groups_)
    for (const std::string &p : g.params) {
      ir::ParamSettings s = o.settingsFor(p);
      if (g.weightDecay)
        s.weightDecay = *g.weightDecay;
      if (g.lrScale)
        s.lrScale = *g.lrScale;
      o.perParam[p] = s;
    }
}

void TrainReader::schedule(const ast::Expr &e) {
  using S = runtime::LrSchedule;
  static const std::map<std::string, S::Kind> kinds = {{"step", S::Step},
                                                       {"exponential", S::Exponential},
                                                       {"cosine", S::Cosine},
                                                       {"one_cycle", S::OneCycle},
                                                       {"reduce_on_plateau", S::Plateau}};
  auto kind = e.kind == ast::Expr::Call ? kinds.find(e.name) : kinds.end();
  if (kind == kinds.end()) {
    d_.error(e.loc,
             "schedule must be step(...), exponential(...), cosine(...), one_cycle(...) or reduce_on_plateau(...)" +
                 calledName(e, kinds));
    return;
  }
  auto args = callArgs(e);
  if (!args)
    return;
  S &s = cfg_.schedule;
  s = S();
  scheduleLoc_ = e.loc;
  s.kind = kind->second;
  for (auto &[k, v] : *args) {
    auto set = [&, &k = k, &v = v](double &field, double lo, double hi) {
      if (auto x = numberIn(*v, k, lo, hi))
        field = *x;
    };
    if (k == "every" || k == "patience") {
      if (auto x = numberIn(*v, k, k == "every" ? 1 : 0, 1e6, true))
        (k == "every" ? s.every : s.patience) = int64_t(*x);
    } else if (k == "gamma") {
      set(s.gamma, 1e-9, 1);
    } else if (k == "warmup") {
      set(s.warmup, 0, 1e6);
    } else if (k == "min_lr") {
      set(s.minLr, 0, 10);
    } else if (k == "max_lr") {
      set(s.maxLr, 1e-12, 10);
    } else if (k == "pct_start") {
      set(s.pctStart, 0, 1);
    } else if (k == "div_factor" || k == "final_div_factor") {
      set(k == "div_factor" ? s.divFactor : s.finalDivFactor, 1, 1e12);
    } else if (k == "factor") {
      set(s.factor, 1e-9, 0.9999999);
    } else if (k == "threshold") {
      set(s.threshold, 0, 1);
    } else if (k == "monitor") {
      if (auto m = monitorName(*v, "reduce_on_plateau")) {
        s.monitor = *m;
        scheduleMonitorLoc_ = v->loc;
      } else {
        s.monitor.clear(); // reported; no second error about the split
      }
    }
  }
}

void TrainReader::checkpoint(const ast::Expr &e) {
  auto args = callArgs(e);
  if (!args)
    return;
  if (auto p = stringArg(*find(*args, "path"), "checkpoint: 'path'")) {
    if (p->empty())
      d_.error(find(*args, "path")->loc, "checkpoint: 'path' is empty");
    cfg_.checkpointPath = path(*p); // like data paths: relative to the .nn file
  }
  if (const ast::Expr *every = find(*args, "every"))
    if (auto x = numberIn(*every, "checkpoint: 'every'", 1, 1e6, true))
      cfg_.checkpointEvery = int64_t(*x);
}

std::optional<std::string> TrainReader::monitorName(const ast::Expr &v, const char *who) {
  std::vector<std::string> names = monitorNames();
  if (v.kind == ast::Expr::Name && std::find(names.begin(), names.end(), v.name) != names.end())
    return v.name;
  std::string known;
  for (auto &n : names)
    known += (known.empty() ? "" : ", ") + n;
  std::string m = v.kind == ast::Expr::Name ? closestMatch(v.name, names) : "";
  d_.error(v.loc, std::string(who) + " cannot monitor '" + ast::toSource(v) + "'" +
                      (m.empty() ? "" : "; did you mean '" + m + "'?") + " (known: " + known + ")");
  return std::nullopt;
}

std::vector<std::string> TrainReader::monitorNames() const {
  if (!model_.objectives.empty()) {
    std::vector<std::string> r;
    for (const auto &o : model_.objectives)
      r.insert(r.end(), {"val_" + o.name, "train_" + o.name});
    return r;
  }
  std::vector<std::string> r = {"val_loss", "train_loss"};
  if (model_.classification) {
    r.push_back("val_accuracy");
    r.push_back("train_accuracy");
  }
  return r;
}

void TrainReader::earlyStop(const ast::Expr &e) {
  auto args = callArgs(e);
  if (!args)
    return;
  cfg_.earlyStop = true;
  earlyLoc_ = e.loc;
  for (auto &[k, v] : *args) {
    if (k == "monitor") {
      if (auto m = monitorName(*v, "early_stop"))
        cfg_.monitor = *m;
      else
        monitorOk_ = false;
    } else if (k == "patience") {
      if (auto x = numberIn(*v, "patience", 1, 1e6, true))
        cfg_.patience = int64_t(*x);
    } else if (k == "min_delta") {
      if (auto x = numberIn(*v, "min_delta", 0, 1e9))
        cfg_.minDelta = *x;
    }
  }
}

void TrainReader::item(const ast::TrainItem &it) {
  static const std::vector<std::string> settings = {"data", "test",  "split",   "optimizer", "schedule", "epochs",
                                                    "seed", "batch", "metrics", "log",       "classes"};
  if (it.kind == ast::TrainItem::Block) {
    if (it.key == "phase" && !inPhase_)
      phaseBlocks_.push_back(&it);
    else
      d_.error(it.loc, inPhase_ ? "a phase cannot hold another block" : "unknown block '" + it.key + "' in a train block");
    return;
  }
  if (inPhase_ && it.key != "optimizer" && it.key != "schedule" && it.key != "steps") {
    d_.error(it.loc, "'" + it.key + "' cannot be set per phase (a phase sets optimizer, schedule and steps)");
    return;
  }
  if (it.kind == ast::TrainItem::Call) {
    if (it.key == "early_stop") {
      earlyStop(*it.value);
      return;
    }
    if (it.key == "param_group") {
      paramGroup(*it.value);
      return;
    }
    if (it.key == "checkpoint") {
      checkpoint(*it.value);
      return;
    }
    d_.error(it.loc, "'" + it.key + "(...)' cannot stand alone in a train block" +
                         (findBuiltin(it.key, Builtin::Train) ? " (did you mean 'data = ...'?)" : ""));
    return;
  }
  if (!seen_.insert(it.key).second) {
    d_.error(it.loc, "'" + it.key + "' is set twice in this train block");
    return;
  }
  const ast::Expr &v = *it.value;
  if (it.key == "data") {
    sawShuffle_ = false;
    cfg_.transforms.clear();
    cfg_.augment = runtime::Augmentation();
    if (pipeline(v, cfg_.data, false))
      cfg_.shuffle = sawShuffle_;
  } else if (it.key == "test") {
    pipeline(v, cfg_.test, true);
  } else if (it.key == "split") {
    if (auto x = numberIn(v, "split", 0, 0.9))
      cfg_.split = *x;
    else
      splitRejected_ = true; // reported; no "there is no validation split" on top
  } else if (it.key == "optimizer") {
    optimizer(v);
  } else if (it.key == "steps" && inPhase_) {
    if (auto x = numberIn(v, "steps", 1, 1e6, true))
      cfg_.phases.back().steps = int64_t(*x);
  } else if (it.key == "schedule") {
    schedule(v);
  } else if (it.key == "log") {
    if (auto p = stringArg(v, "log")) {
      if (!logFormatKnown(*p))
        d_.error(v.loc, "log must name a .csv or .jsonl (or .json) file, got \"" + *p + "\"");
      else
        cfg_.logPath = path(*p); // like data paths: relative to the .nn file
    }
  } else if (it.key == "epochs") {
    if (auto x = numberIn(v, "epochs", 1, 1e6, true))
      cfg_.epochs = int64_t(*x);
  } else if (it.key == "seed") {
    if (auto x = numberIn(v, "seed", 0, 9007199254740992.0, true))
      cfg_.seed = uint64_t(*x);
  } else if (it.key == "batch") {
    if (auto x = numberIn(v, "batch", 1, 1 << 20, true))
      cfg_.batch = int64_t(*x);
  } else if (it.key == "metrics") {
    static const std::vector<std::string> known = {"loss", "accuracy", "top_k", "per_class", "confusion"};
    cfg_.metrics.clear();
    for (auto *x : oneOrList(v)) {
      bool call = x->kind == ast::Expr::Call && x->name == "top_k";
      if (!call && (x->kind != ast::Expr::Name || std::find(known.begin(), known.end(), x->name) == known.end() ||
                    x->name == "top_k")) {
        std::string m = x->kind == ast::Expr::Name || x->kind == ast::Expr::Call ? closestMatch(x->name, known) : "";
        d_.error(x->loc, "unknown metric '" + ast::toSource(*x) + "'" +
                             (m.empty() ? "" : "; did you mean '" + m + "'?") +
                             " (known: loss, accuracy, top_k(k), per_class, confusion)");
        continue;
      }
      if (x->name != "loss" && x->name != "accuracy" && model_.classification && model_.outputs.empty()) {
        d_.error(x->loc, x->name + " is computed from the model's class scores: declare them as its first output, "
                                   "e.g. 'output probs = softmax(logits)'");
        continue;
      }
      if (x->name != "loss" && !model_.classification) {
        d_.error(x->loc, x->name + " needs a classification model: class scores [N, C] (the first output, or the "
                                   "logits of cross_entropy) and an i64 label [N]");
        continue;
      }
      if (call) {
        auto args = callArgs(*x);
        if (!args)
          continue;
        if (auto k =
                numberIn(*find(*args, "k"), "top_k: 'k'", 1, double(std::max<int64_t>(1, model_.numClasses)), true))
          cfg_.topK = int64_t(*k);
        continue;
      }
      cfg_.perClass |= x->name == "per_class";
      cfg_.confusion |= x->name == "confusion";
      if (x->name == "loss" || x->name == "accuracy")
        cfg_.metrics.push_back(x->name);
    }
  } else if (it.key == "classes") {
    std::vector<const ast::Expr *> items;
    if (v.kind == ast::Expr::List)
      for (auto &x : v.elems)
        items.push_back(x.get());
    for (auto *x : items)
      if (auto s = stringArg(*x, "classes: each name"))
        cfg_.classNames.push_back(*s);
    if (v.kind != ast::Expr::List)
      d_.error(v.loc, "classes must be a list of names, e.g. [\"cat\", \"dog\"]");
    else if (!model_.classification)
      d_.error(v.loc, "classes names the classes of a classification model, and '" + model_.name + "' is not one");
    else if (int64_t(cfg_.classNames.size()) != model_.numClasses)
      d_.error(v.loc, "classes has " + std::to_string(cfg_.classNames.size()) + " names but the model has " +
                          std::to_string(model_.numClasses) + " classes");
  } else {
    d_.error(it.loc, "unknown train setting '" + it.key + "'" + didYouMean(it.key, settings));
  }
}

bool logFormatKnown(const std::string &path) {
  auto ends = [&](const char *suffix) {
    size_t n = std::strlen(suffix);
    return path.size() > n && path.compare(path.size() - n, n, suffix) == 0;
  };
  return ends(".csv") || ends(".jsonl") || ends(".json");
}

std::optional<TrainConfig> readTrainConfig(const ast::Program &p, const LoweredModel &model, const std::string &baseDir,
                                           DiagnosticEngine &diags) {
  return TrainReader(model, baseDir, diags).run(p.train(model.name));
}

} // namespace nnc::frontend
