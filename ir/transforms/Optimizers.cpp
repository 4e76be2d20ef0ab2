// Optimizer updates as IR. The optimizer's state (momentum buffers, Adam's
// moments and step count) are ordinary State arguments and `new.<name>`
// results, so forward + backward + update is one function and a checkpoint
// is just a set of tensors.
#include "ir/transforms/Passes.h"

#include "ir/Builder.h"

#include <cmath>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

namespace nnc::ir {

const char *OptimizerSpec::name(Kind k) {
  switch (k) {
  case SGD:
    return "sgd";
  case Adam:
    return "adam";
  case AdamW:
    return "adamw";
  case RMSProp:
    return "rmsprop";
  case Adagrad:
    return "adagrad";
  }
  return "?";
}

std::vector<std::string> optimizerStateNames(const OptimizerSpec &spec, const std::string &param) {
  switch (spec.kind) {
  case OptimizerSpec::Adam:
  case OptimizerSpec::AdamW:
    return {param + ".adam_m", param + ".adam_v"};
  case OptimizerSpec::RMSProp: {
    std::vector<std::string> r = {param + ".rms_sq"};
    if (spec.centered)
      r.push_back(param + ".rms_avg");
    if (spec.momentum != 0)
      r.push_back(param + ".rms_momentum");
    return r;
  }
  case OptimizerSpec::Adagrad:
    return {param + ".adagrad_sum"};
  case OptimizerSpec::SGD:
    break;
  }
  if (spec.momentum != 0)
    return {param + ".momentum"};
  return {};
}

bool isOptimizerStateName(const std::string &name) {
  if (name == "opt.t" || name.rfind("opt.t.", 0) == 0)
    return true;
  for (const char *suffix :
       {".momentum", ".adam_m", ".adam_v", ".rms_sq", ".rms_avg", ".rms_momentum", ".adagrad_sum"}) {
    size_t n = std::strlen(suffix);
    if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0)
      return true;
  }
  return false;
}

namespace {

/// The sum of squares of every element of `g`, as a scalar.
Value *sumOfSquares(Builder &b, Value *g) {
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < int64_t(g->type.rank()); ++i)
    axes.push_back(i);
  Value *sq = b.mul(g, g);
  return axes.empty() ? sq : b.reduce(OpKind::ReduceSum, sq, axes, false);
}

} // namespace

Function *appendOptimizer(Module &m, const Function &grad, const OptimizerSpec &spec, const std::string &name) {
  using K = OptimizerSpec::Kind;
  Function *f = m.addFunction(name);
  std::unordered_map<const Value *, Value *> map;
  std::vector<Value *> params;
  for (size_t i = 0; i < grad.args.size(); ++i) {
    map[grad.args[i]] = f->addArg(grad.args[i]->name, grad.args[i]->type, grad.argRoles[i]);
    // Only parameters with a gradient are trained (differentiate skips i64 ones).
    if (grad.argRoles[i] == ArgRole::Param && grad.result("grad." + grad.args[i]->name))
      params.push_back(map[grad.args[i]]);
  }
  std::unordered_map<std::string, Value *> stateArgs;
  for (Value *p : params)
    for (const std::string &s : optimizerStateNames(spec, p->name))
      stateArgs[s] = f->addArg(s, p->type, ArgRole::State);
  bool adam = spec.kind == K::Adam || spec.kind == K::AdamW;
  Value *step = adam ? f->addArg(spec.stepName, {DType::F32, {}}, ArgRole::State) : nullptr;
  Value *lr = f->addArg("lr", {DType::F32, {}}, ArgRole::Scalar);
  map = f->cloneBody(grad, map);

  for (size_t i = 0; i < grad.results.size(); ++i)
    if (grad.resultNames[i].rfind("grad.", 0) != 0)
      f->addResult(grad.resultNames[i], map.at(grad.results[i]));

  Builder b(*f);
  b.setLoc(spec.loc);
  auto c = [&](double v) { return b.constant(v); };
  std::vector<Value *> grads;
  for (Value *p : params)
    grads.push_back(map.at(grad.result("grad." + p->name)));
  // Clipping sees the raw gradients: by value, then by the joint norm
  // (coefficient max_norm / (norm + 1e-6), capped at 1, as clip_grad_norm_).
  if (spec.clipValue > 0)
    for (Value *&g : grads)
      g = b.create(OpKind::Maximum, {b.create(OpKind::Minimum, {g, c(spec.clipValue)}), c(-spec.clipValue)});
  if (spec.clipNorm > 0 && !grads.empty()) {
    Value *total = nullptr;
    for (Value *g : grads)
      total = total ? b.add(total, sumOfSquares(b, g)) : sumOfSquares(b, g);
    Value *norm = b.unary(OpKind::Sqrt, total);
    Value *coef = b.create(OpKind::Minimum, {c(1.0), b.div(c(spec.clipNorm), b.add(norm, c(1e-6)))});
    for (Value *&g : grads)
      g = b.mul(g, coef);
  }

  Value *newStep = nullptr, *bc1 = nullptr, *bc2 = nullptr;
  if (step) {
    // t' = t + 1; bias corrections 1 - beta^t' computed as 1 - exp(t' log beta).
    newStep = b.add(step, c(1.0));
    bc1 = b.sub(c(1.0), b.unary(OpKind::Exp, b.mul(newStep, c(std::log(spec.beta1)))));
    bc2 = b.sub(c(1.0), b.unary(OpKind::Exp, b.mul(newStep, c(std::log(spec.beta2)))));
  }
  std::vector<std::pair<std::string, Value *>> newStates;
  auto state = [&](const std::string &p, const char *suffix) { return stateArgs.at(p + suffix); };
  for (size_t i = 0; i < params.size(); ++i) {
    Value *p = params[i], *g = grads[i];
    ParamSettings ps = spec.settingsFor(p->name);
    Value *plr = ps.lrScale == 1 ? lr : b.mul(lr, c(ps.lrScale));
    Value *base = p; // AdamW decays the weights themselves
    if (ps.weightDecay != 0) {
      if (spec.kind == K::AdamW)
        base = b.mul(p, b.sub(c(1.0), b.mul(plr, c(ps.weightDecay))));
      else
        g = b.add(g, b.mul(c(ps.weightDecay), p));
    }
    Value *update = nullptr;
    switch (spec.kind) {
    case K::SGD:
      update = g;
      if (spec.momentum != 0) {
        // v' = mu*v + g; step along v' (or g + mu*v' for Nesterov), as PyTorch does.
        Value *nv = b.add(b.mul(c(spec.momentum), state(p->name, ".momentum")), g);
        newStates.push_back({p->name + ".momentum", nv});
        update = spec.nesterov ? b.add(g, b.mul(c(spec.momentum), nv)) : nv;
      }
      update = b.mul(plr, update);
      break;
    case K::Adam:
    case K::AdamW: {
      // m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2;
      // p' = p - lr * (m'/bc1) / (sqrt(v'/bc2) + eps)
      Value *nm = b.add(b.mul(c(spec.beta1), state(p->name, ".adam_m")), b.mul(c(1 - spec.beta1), g));
      Value *nv = b.add(b.mul(c(spec.beta2), state(p->name, ".adam_v")), b.mul(c(1 - spec.beta2), b.mul(g, g)));
      newStates.push_back({p->name + ".adam_m", nm});
      newStates.push_back({p->name + ".adam_v", nv});
      Value *denom = b.add(b.unary(OpKind::Sqrt, b.div(nv, bc2)), c(spec.eps));
      update = b.div(b.mul(b.div(plr, bc1), nm), denom);
      break;
    }
    case K::RMSProp: {
      // s' = a s + (1-a) g^2; centered: m' = a m + (1-a) g, s' - m'^2 under
      // the root; d = sqrt(.) + eps; with momentum b' = mu b + g/d, step lr b'.
      Value *ns = b.add(b.mul(c(spec.alpha), state(p->name, ".rms_sq")), b.mul(c(1 - spec.alpha), b.mul(g, g)));
      newStates.push_back({p->name + ".rms_sq", ns});
      Value *var = ns;
      if (spec.centered) {
        Value *na = b.add(b.mul(c(spec.alpha), state(p->name, ".rms_avg")), b.mul(c(1 - spec.alpha), g));
        newStates.push_back({p->name + ".rms_avg", na});
        var = b.sub(ns, b.mul(na, na));
      }
      update = b.div(g, b.add(b.unary(OpKind::Sqrt, var), c(spec.eps)));
      if (spec.momentum != 0) {
        update = b.add(b.mul(c(spec.momentum), state(p->name, ".rms_momentum")), update);
        newStates.push_back({p->name + ".rms_momentum", update});
      }
      update = b.mul(plr, update);
      break;
    }
    case K::Adagrad: {
      // s' = s + g^2; p' = p - lr g / (sqrt(s') + eps)
      Value *ns = b.add(state(p->name, ".adagrad_sum"), b.mul(g, g));
      newStates.push_back({p->name + ".adagrad_sum", ns});
      update = b.div(b.mul(plr, g), b.add(b.unary(OpKind::Sqrt, ns), c(spec.eps)));
      break;
    }
    }
    f->addResult("new." + p->name, b.sub(base, update));
  }
  for (auto &[n, v] : newStates)
    f->addResult("new." + n, v);
  if (newStep)
    f->addResult("new." + spec.stepName, newStep);
  return f;
}

Function *extractResults(Module &m, const Function &src, const std::vector<std::string> &results,
                         const std::string &name) {
  Function *f = m.addFunction(name);
  std::unordered_map<const Value *, Value *> map;
  for (size_t i = 0; i < src.args.size(); ++i)
    map[src.args[i]] = f->addArg(src.args[i]->name, src.args[i]->type, src.argRoles[i]);
  map = f->cloneBody(src, map);
  for (const std::string &r : results) {
    Value *v = src.result(r);
    NNC_ASSERT(v) << "extractResults: no result " << r;
    f->addResult(r, map.at(v));
  }
  eliminateDeadCode(*f);
  f->keepArgs(f->argsUsed()); // drop arguments nothing uses any more
  return f;
}

} // namespace nnc::ir
