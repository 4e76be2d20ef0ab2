// Losses (cross_entropy, mse, bce_with_logits, huber) and penalties (l1, l2): the lowerings of these builtins into IR.
// Each is an Elaborator member named in the table in frontend/Builtins.cpp.
#include "frontend/Elaborator.h"
#include "frontend/ParamSelect.h"

#include <algorithm>

namespace nnc::frontend {

Val Elaborator::crossEntropy(const ast::Expr &e, const ArgMap &args) {
  Val logits = tensorArg(args, "logits", e.loc), labels = tensorArg(args, "labels", e.loc);
  if (!logits.ok() || !labels.ok())
    return Val::error();
  const ir::TensorType &lt = logits.v->type, yt = labels.v->type;
  // Logits [N, ..., C] and labels [N, ...]: one class index per position
  // (a sequence model predicts one per time step).
  if (lt.dtype != ir::DType::F32 || lt.rank() < 2 || !lt.shape.back().isStatic()) {
    d_.error(e.loc, "cross_entropy expects logits [N, C] with a static number of classes C, got " + lt.str());
    noteOperands({logits});
    return Val::error();
  }
  ir::Shape lead(lt.shape.begin(), lt.shape.end() - 1);
  if (yt.dtype != ir::DType::I64 || yt.rank() != lead.size()) {
    d_.error(e.loc, "cross_entropy expects labels as i64 class indices " + ir::shapeStr(lead) + ", got " + yt.str());
    noteOperands({labels});
    return Val::error();
  }
  if (yt.shape != lead) {
    d_.error(e.loc,
             "cross_entropy: " + std::string("logits ") + lt.str() + " and labels " + yt.str() +
                 (yt.shape[0] != lt.shape[0] ? " have different batch dimensions" : " have different positions"));
    noteOperands({logits, labels});
    return Val::error();
  }
  // -mean over positions of log_softmax(logits)[..., y], as
  // sum(log_softmax * one_hot) over classes, then the mean.
  if (!ceLogits_)
    ceLogits_ = logits.v;
  b_->setLoc(e.loc);
  int64_t last = int64_t(lt.rank()) - 1;
  ir::Value *lsm = b_->unary(ir::OpKind::LogSoftmax, logits.v);
  ir::Value *oh = b_->create(ir::OpKind::OneHot, {labels.v}, {{"classes", lt.shape.back().size}});
  ir::Value *picked = b_->reduce(ir::OpKind::ReduceSum, b_->mul(lsm, oh), {last}, false);
  std::vector<int64_t> all;
  for (int64_t i = 0; i < last; ++i)
    all.push_back(i);
  return tensorVal(b_->neg(b_->reduce(ir::OpKind::ReduceMean, picked, all, false)));
}

Val Elaborator::pairLoss(const ast::Expr &e, const ArgMap &args) {
  bool bce = e.name == "bce_with_logits";
  Val p = requireF32(args, bce ? "logits" : "pred", e), t = requireF32(args, bce ? "targets" : "target", e);
  if (!p.ok() || !t.ok())
    return Val::error();
  // A scalar target stands for every element (a GAN's real/fake labels:
  // bce_with_logits(d_fake, 1)).
  bool scalarTarget = t.v->type.rank() == 0;
  if (p.v->type.shape != t.v->type.shape && !scalarTarget) {
    d_.error(e.loc, e.name + ": " + (bce ? "logits " : "prediction ") + p.v->type.str() + " and " +
                        (bce ? "targets " : "target ") + t.v->type.str() +
                        " must have the same shape (or the target be one number for every element)");
    noteOperands({p, t});
    return Val::error();
  }
  b_->setLoc(e.loc);
  if (!firstPair_.pred && !scalarTarget)
    firstPair_ = {p.v, t.v, bce};
  ir::Value *z = p.v, *y = t.v, *per;
  if (bce) { // relu(z) - z*y + log(1 + exp(-|z|))
    ir::Value *tail =
        b_->unary(ir::OpKind::Log,
                  b_->add(b_->constant(1.0), b_->unary(ir::OpKind::Exp, b_->neg(b_->unary(ir::OpKind::Abs, z)))));
    per = b_->add(b_->sub(b_->unary(ir::OpKind::Relu, z), b_->mul(z, y)), tail);
  } else { // m = [|d| < delta]: m d^2/2 + (1 - m) delta (|d| - delta/2)
    auto delta = floatArg(args, "delta", e.name, 1.0, 1e-12, 1e12);
    if (!delta)
      return Val::error();
    ir::Value *d = b_->sub(z, y), *a = b_->unary(ir::OpKind::Abs, d);
    ir::Value *m = b_->unary(ir::OpKind::Step, b_->sub(b_->constant(*delta), a));
    ir::Value *quad = b_->mul(b_->mul(b_->constant(0.5), m), b_->mul(d, d));
    ir::Value *lin =
        b_->mul(b_->sub(b_->constant(1.0), m), b_->mul(b_->constant(*delta), b_->sub(a, b_->constant(0.5 * *delta))));
    per = b_->add(quad, lin);
  }
  std::vector<int64_t> all = allAxes(per->type.rank());
  return tensorVal(b_->reduce(ir::OpKind::ReduceMean, per, all, false));
}

Val Elaborator::mse(const ast::Expr &e, const ArgMap &args) {
  Val p = tensorArg(args, "pred", e.loc), t = tensorArg(args, "target", e.loc);
  if (!p.ok() || !t.ok())
    return Val::error();
  if (p.v->type.shape != t.v->type.shape || t.v->type.dtype != ir::DType::F32) {
    d_.error(e.loc,
             "mse: prediction " + p.v->type.str() + " and target " + t.v->type.str() + " must have the same f32 type");
    noteOperands({p, t});
    return Val::error();
  }
  b_->setLoc(e.loc);
  if (!firstPair_.pred)
    firstPair_ = {p.v, t.v, false};
  ir::Value *d = b_->sub(p.v, t.v);
  std::vector<int64_t> all = allAxes(d->type.rank());
  return tensorVal(b_->reduce(ir::OpKind::ReduceMean, b_->mul(d, d), all, false));
}

Val Elaborator::penalty(const ast::Expr &e, const ArgMap &args) {
  auto it = args.find("x");
  const Val &v = it->second.first;
  std::vector<ir::Value *> targets;
  auto add = [&](const std::vector<std::string> &names) {
    for (const std::string &name : names)
      if (std::find(targets.begin(), targets.end(), fn_->arg(name)) == targets.end())
        targets.push_back(fn_->arg(name));
  };
  if (v.kind == Val::ParamSet) {
    add(selectParams(out_.params, v.weightsOnly ? "weights" : "params", true));
    if (targets.empty()) {
      d_.error(it->second.second->loc, e.name + "(" + it->second.second->name +
                                           ") is empty here: no parameters have been created before "
                                           "this statement");
      return Val::error();
    }
  } else if (v.kind == Val::String || (v.kind == Val::List && !v.list.empty() && v.list[0].kind == Val::String)) {
    // Chosen parameters: "h1.w" by name, "h1" for all of a layer instance's.
    std::vector<Val> names = v.kind == Val::String ? std::vector<Val>{v} : v.list;
    for (const Val &n : names) {
      std::vector<std::string> picked;
      if (n.kind == Val::String)
        picked = selectParams(out_.params, n.str);
      if (picked.empty()) {
        d_.error(it->second.second->loc,
                 e.name + ": " +
                     (n.kind == Val::String
                          ? "no parameter or layer instance \"" + n.str + "\" has been created before this statement" +
                                paramSuggestion(out_.params, n.str)
                          : std::string("a list of parameters holds names (strings) only")));
        return Val::error();
      }
      add(picked);
    }
  } else {
    Val t = tensorArg(args, "x", e.loc);
    if (!t.ok())
      return t;
    targets.push_back(t.v);
  }
  b_->setLoc(e.loc);
  ir::Value *total = nullptr;
  for (ir::Value *t : targets) {
    std::vector<int64_t> all = allAxes(t->type.rank());
    ir::Value *term = e.name == "l1" ? b_->unary(ir::OpKind::Abs, t) : b_->mul(t, t);
    term = b_->reduce(ir::OpKind::ReduceSum, term, all, false);
    total = total ? b_->add(total, term) : term;
  }
  return tensorVal(total);
}

} // namespace nnc::frontend
