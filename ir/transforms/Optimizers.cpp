// Optimizer updates as IR. The optimizer's state (momentum buffers, Adam's
// moments and step count) are ordinary State arguments and `new.<name>`
// results, so forward + backward + update is one function and a checkpoint
// is just a set of tensors.
#include "ir/transforms/Passes.h"

#include "ir/Builder.h"

#include <cmath>
#include <unordered_map>
#include <unordered_set>

namespace nnc::ir {

std::vector<std::string> optimizerStateNames(const OptimizerSpec &spec, const std::string &param) {
  if (spec.kind == OptimizerSpec::Adam)
    return {param + ".adam_m", param + ".adam_v"};
  if (spec.momentum != 0)
    return {param + ".momentum"};
  return {};
}

Function *appendOptimizer(Module &m, const Function &grad, const OptimizerSpec &spec, const std::string &name) {
  Function *f = m.addFunction(name);
  std::unordered_map<const Value *, Value *> map;
  std::vector<Value *> params;
  for (size_t i = 0; i < grad.args.size(); ++i) {
    map[grad.args[i]] = f->addArg(grad.args[i]->name, grad.args[i]->type, grad.argRoles[i]);
    // Only parameters with a gradient are trained (differentiate skips i64 ones).
    if (grad.argRoles[i] == ArgRole::Param && grad.result("grad." + grad.args[i]->name))
      params.push_back(map[grad.args[i]]);
  }
  std::vector<std::pair<std::string, Value *>> stateArgs;
  for (Value *p : params)
    for (const std::string &s : optimizerStateNames(spec, p->name))
      stateArgs.push_back({s, f->addArg(s, p->type, ArgRole::State)});
  Value *step = spec.kind == OptimizerSpec::Adam ? f->addArg("opt.t", {DType::F32, {}}, ArgRole::State) : nullptr;
  Value *lr = f->addArg("lr", {DType::F32, {}}, ArgRole::Scalar);
  map = f->cloneBody(grad, map);

  for (size_t i = 0; i < grad.results.size(); ++i)
    if (grad.resultNames[i].rfind("grad.", 0) != 0)
      f->addResult(grad.resultNames[i], map.at(grad.results[i]));

  Builder b(*f);
  Value *newStep = nullptr, *bc1 = nullptr, *bc2 = nullptr;
  if (step) {
    // t' = t + 1; bias corrections 1 - beta^t' computed as 1 - exp(t' log beta).
    newStep = b.add(step, b.constant(1.0));
    bc1 = b.sub(b.constant(1.0), b.unary(OpKind::Exp, b.mul(newStep, b.constant(std::log(spec.beta1)))));
    bc2 = b.sub(b.constant(1.0), b.unary(OpKind::Exp, b.mul(newStep, b.constant(std::log(spec.beta2)))));
  }
  size_t s = 0;
  std::vector<std::pair<std::string, Value *>> newStates;
  for (Value *p : params) {
    Value *g = map.at(grad.result("grad." + p->name));
    if (spec.weightDecay != 0) // g += wd * p
      g = b.add(g, b.mul(b.constant(spec.weightDecay), p));
    Value *update;
    if (spec.kind == OptimizerSpec::SGD) {
      update = g;
      if (spec.momentum != 0) {
        // v' = mu*v + g; step along v' (or g + mu*v' for Nesterov), as PyTorch does.
        auto &[vname, v] = stateArgs[s++];
        Value *nv = b.add(b.mul(b.constant(spec.momentum), v), g);
        newStates.push_back({vname, nv});
        update = spec.nesterov ? b.add(g, b.mul(b.constant(spec.momentum), nv)) : nv;
      }
      update = b.mul(lr, update);
    } else {
      // m' = b1 m + (1-b1) g; v' = b2 v + (1-b2) g^2;
      // p' = p - lr * (m'/bc1) / (sqrt(v'/bc2) + eps)
      auto &[mname, mv] = stateArgs[s++];
      auto &[vname, vv] = stateArgs[s++];
      Value *nm = b.add(b.mul(b.constant(spec.beta1), mv), b.mul(b.constant(1 - spec.beta1), g));
      Value *nv = b.add(b.mul(b.constant(spec.beta2), vv), b.mul(b.constant(1 - spec.beta2), b.mul(g, g)));
      newStates.push_back({mname, nm});
      newStates.push_back({vname, nv});
      Value *denom = b.add(b.unary(OpKind::Sqrt, b.div(nv, bc2)), b.constant(spec.eps));
      update = b.div(b.mul(b.div(lr, bc1), nm), denom);
    }
    f->addResult("new." + p->name, b.sub(p, update));
  }
  for (auto &[n, v] : newStates)
    f->addResult("new." + n, v);
  if (newStep)
    f->addResult("new.opt.t", newStep);
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
