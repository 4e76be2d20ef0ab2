// The phases of a train block for a model with several objectives (a GAN):
//
//   phase critic { optimizer = adam(lr = 1e-4, beta1 = 0.5); steps = 5 }
//   phase gen    { optimizer = adam(lr = 1e-4, beta1 = 0.5) }
//
// Each phase steps one loss (named after it) with its own optimizer, learning
// rate and schedule, `steps` times per round; the rounds repeat in the order
// the blocks are written. A phase starts from the train block's own optimizer
// and schedule, so settings shared by every phase are written once.
#include "frontend/ParamSelect.h"
#include "frontend/TrainReader.h"

#include <algorithm>
#include <map>

namespace nnc::frontend {

namespace {

/// Two optimizers that update a parameter the same way.
bool sameOptimizer(const Phase &a, const Phase &b, const std::string &param) {
  const ir::OptimizerSpec &x = a.optimizer, &y = b.optimizer;
  ir::ParamSettings sx = x.settingsFor(param), sy = y.settingsFor(param);
  return x.kind == y.kind && x.momentum == y.momentum && x.nesterov == y.nesterov && x.beta1 == y.beta1 &&
         x.beta2 == y.beta2 && x.eps == y.eps && x.alpha == y.alpha && x.centered == y.centered &&
         x.clipNorm == y.clipNorm && x.clipValue == y.clipValue && sx.weightDecay == sy.weightDecay &&
         sx.lrScale == sy.lrScale && a.lr == b.lr;
}

} // namespace

std::vector<Phase> defaultPhases(const LoweredModel &model, const TrainConfig &c) {
  std::vector<Phase> r;
  for (const auto &o : model.objectives) {
    Phase p;
    p.loss = o.name;
    p.optimizer = c.optimizer;
    p.optimizer.stepName = "opt.t." + o.name;
    p.lr = c.lr;
    p.schedule = c.schedule;
    r.push_back(p);
  }
  return r;
}

void TrainReader::phase(const ast::TrainItem &block, const std::vector<std::string> &names) {
  if (block.name.empty()) {
    d_.error(block.loc, "a phase is named after the loss it steps: phase " + names.front() + " { ... }");
    return;
  }
  if (std::find(names.begin(), names.end(), block.name) == names.end()) {
    std::string known;
    for (const std::string &n : names)
      known += (known.empty() ? "" : ", ") + n;
    d_.error(block.loc, "phase '" + block.name + "': model '" + model_.name + "' has no loss of that name" +
                            didYouMean(block.name, names) + " (its losses: " + known + ")");
    return;
  }
  for (const Phase &p : cfg_.phases)
    if (p.loss == block.name) {
      d_.error(block.loc, "a second phase for loss '" + block.name + "'");
      d_.note(p.loc, "the first is here");
      return;
    }
  // Read the block's items over the train block's settings, then put those back.
  ir::OptimizerSpec topOptimizer = cfg_.optimizer;
  double topLr = cfg_.lr;
  runtime::LrSchedule topSchedule = cfg_.schedule;
  std::set<std::string> topSeen = std::move(seen_);
  seen_.clear();
  Phase ph;
  ph.loss = block.name;
  ph.loc = block.loc;
  cfg_.phases.push_back(ph);
  inPhase_ = true;
  for (const ast::TrainItem &it : block.items)
    item(it);
  inPhase_ = false;
  Phase &p = cfg_.phases.back();
  p.optimizer = cfg_.optimizer;
  p.lr = cfg_.lr;
  p.schedule = cfg_.schedule;
  cfg_.optimizer = topOptimizer;
  cfg_.lr = topLr;
  cfg_.schedule = topSchedule;
  seen_ = std::move(topSeen);
}

void TrainReader::phases() {
  std::vector<std::string> names;
  for (const auto &o : model_.objectives)
    names.push_back(o.name);
  if (names.empty()) {
    for (const ast::TrainItem *b : phaseBlocks_)
      d_.error(b->loc, "phases step losses that say what they update ('loss d updates D = ...'), and model '" +
                           model_.name + "' has one loss");
    return;
  }
  for (const ast::TrainItem *b : phaseBlocks_)
    phase(*b, names);
  if (phaseBlocks_.empty()) {
    cfg_.phases = defaultPhases(model_, cfg_);
  } else {
    for (const auto &o : model_.objectives)
      if (std::none_of(cfg_.phases.begin(), cfg_.phases.end(), [&](const Phase &p) { return p.loss == o.name; }))
        d_.error(phaseBlocks_.back()->loc, "the phases leave out loss '" + o.name + "': add 'phase " + o.name +
                                               " { }' where it should run (phases run in the order written)");
  }
  // Each phase counts its optimizer's steps apart; a parameter stepped by
  // two phases keeps one optimizer state, so both must update it alike.
  std::map<std::string, const Phase *> owner;
  for (Phase &p : cfg_.phases) {
    applyGroups(p.optimizer);
    p.optimizer.stepName = "opt.t." + p.loss;
    const auto &o = *std::find_if(model_.objectives.begin(), model_.objectives.end(),
                                  [&](const LoweredModel::Objective &x) { return x.name == p.loss; });
    for (const std::string &param : o.params) {
      auto [it, fresh] = owner.emplace(param, &p);
      if (fresh || sameOptimizer(*it->second, p, param))
        continue;
      d_.error(p.loc, "losses '" + it->second->loss + "' and '" + p.loss + "' both update '" + param +
                          "' but with different optimizers or learning rates; one parameter has one optimizer "
                          "state, so give both phases the same optimizer, or let one loss update it");
      d_.note(it->second->loc.valid() ? it->second->loc : o.loc, "the phase of loss '" + it->second->loss + "'");
      break;
    }
  }
}

} // namespace nnc::frontend
