// Normalization (layer_norm, batch_norm) and dropout: the lowerings of these builtins into IR.
// Each is an Elaborator member named in the table in frontend/Builtins.cpp.
#include "frontend/Elaborator.h"

namespace nnc::frontend {

Val Elaborator::layerNorm(const ast::Expr &e, const ArgMap &args) {
  Val xv = requireF32(args, "x", e);
  auto eps = floatArg(args, "eps", e.name, 1e-5, 1e-12, 1);
  if (!xv.ok() || !eps)
    return Val::error();
  ir::Value *x = xv.v;
  if (x->type.rank() == 0 || !x->type.shape.back().isStatic()) {
    d_.error(e.loc, "layer_norm needs a last axis of static size, got " + x->type.str());
    noteOperands({xv});
    return Val::error();
  }
  int64_t last = int64_t(x->type.rank()) - 1, width = x->type.shape.back().size;
  std::string inst = instanceName(e);
  ir::Value *scale = param(inst, "scale", {width}, ParamInfo::Ones, width, width, false, e.loc);
  ir::Value *shift = param(inst, "shift", {width}, ParamInfo::Zeros, width, width, true, e.loc);
  markNorm(inst);
  if (!scale || !shift)
    return Val::error();
  b_->setLoc(e.loc);
  ir::Value *centered = b_->sub(x, b_->reduce(ir::OpKind::ReduceMean, x, {last}, true));
  ir::Value *var = b_->reduce(ir::OpKind::ReduceMean, b_->mul(centered, centered), {last}, true);
  ir::Value *inv = b_->div(b_->constant(1.0), b_->unary(ir::OpKind::Sqrt, b_->add(var, b_->constant(*eps))));
  return tensorVal(b_->add(b_->mul(b_->mul(centered, inv), scale), shift));
}

Val Elaborator::batchNorm(const ast::Expr &e, const ArgMap &args) {
  Val xv = requireF32(args, "x", e);
  auto momentum = floatArg(args, "momentum", e.name, 0.1, 0, 1);
  auto eps = floatArg(args, "eps", e.name, 1e-5, 1e-12, 1);
  if (!xv.ok() || !momentum || !eps)
    return Val::error();
  ir::Value *x = xv.v;
  // [N, C] (BatchNorm1d) or [N, C, ...] (BatchNorm2d for images): one
  // statistic per channel over the batch and every other axis.
  bool okShape = x->type.rank() >= 2;
  for (size_t i = 1; okShape && i < x->type.rank(); ++i)
    okShape = x->type.shape[i].isStatic();
  if (!okShape) {
    d_.error(e.loc, "batch_norm expects features [N, C] (or images [N, C, H, W]) with static sizes after N, got " +
                        x->type.str());
    noteOperands({xv});
    return Val::error();
  }
  int64_t c = x->type.shape[1].size, perExample = 1;
  std::vector<int64_t> axes{0};
  ir::Shape row{ir::Dim(1), ir::Dim(c)}, chan{ir::Dim(c)};
  for (size_t i = 2; i < x->type.rank(); ++i) {
    axes.push_back(int64_t(i));
    row.push_back(ir::Dim(1));
    chan.push_back(ir::Dim(1));
    perExample *= x->type.shape[i].size;
  }
  std::string inst = instanceName(e);
  if (shared_) {
    d_.error(e.instanceLoc, "batch_norm instances cannot be shared: each "
                            "keeps its own running statistics");
    return Val::error();
  }
  ir::Value *scale = param(inst, "scale", {c}, ParamInfo::Ones, c, c, false, e.loc);
  ir::Value *shift = param(inst, "shift", {c}, ParamInfo::Zeros, c, c, true, e.loc);
  markNorm(inst);
  ir::Value *runMean = state(inst + ".running_mean", c, ParamInfo::Zeros, e.loc);
  ir::Value *runVar = state(inst + ".running_var", c, ParamInfo::Ones, e.loc);
  if (!scale || !shift)
    return Val::error();
  b_->setLoc(e.loc);
  ir::Value *mean = b_->reduce(ir::OpKind::ReduceMean, x, axes, true);
  ir::Value *centered = b_->sub(x, mean);
  ir::Value *var = b_->reduce(ir::OpKind::ReduceMean, b_->mul(centered, centered), axes, true);
  ir::Value *useMean = b_->create(ir::OpKind::ModeSelect, {mean, b_->reshape(runMean, row)});
  ir::Value *useVar = b_->create(ir::OpKind::ModeSelect, {var, b_->reshape(runVar, row)});
  ir::Value *inv = b_->div(b_->constant(1.0), b_->unary(ir::OpKind::Sqrt, b_->add(useVar, b_->constant(*eps))));
  ir::Value *y =
      b_->add(b_->mul(b_->mul(b_->sub(x, useMean), inv), b_->reshape(scale, chan)), b_->reshape(shift, chan));
  // Running statistics: r' = (1 - m) r + m * batch, the variance unbiased
  // by n / (n - 1) with n (examples x positions) counted at run time (the
  // batch size is symbolic).
  ir::Value *n = b_->reduce(ir::OpKind::ReduceSum, b_->constant(double(perExample), {x->type.shape[0], ir::Dim(1)}),
                            {0, 1}, false);
  ir::Value *unbiased = b_->mul(var, b_->div(n, b_->sub(n, b_->constant(1.0))));
  auto blend = [&](ir::Value *r, ir::Value *batch) {
    return b_->add(b_->mul(b_->constant(1 - *momentum), r),
                   b_->mul(b_->constant(*momentum), b_->reshape(batch, {ir::Dim(c)})));
  };
  if (!out_.batchNormPerExample || perExample < out_.batchNormPerExample) {
    out_.batchNormPerExample = perExample;
    out_.batchNormLoc = e.loc;
  }
  stateUpdates_.push_back({inst + ".running_mean", blend(runMean, mean)});
  stateUpdates_.push_back({inst + ".running_var", blend(runVar, unbiased)});
  return tensorVal(y);
}

ir::Value *Elaborator::state(const std::string &name, int64_t size, ParamInfo::Init init, SourceLoc at) {
  ParamInfo info;
  info.name = name;
  info.shape = {size};
  info.init = init;
  info.loc = at;
  out_.states.push_back(info);
  return fn_->addArg(name, {ir::DType::F32, {ir::Dim(size)}}, ir::ArgRole::State);
}

Val Elaborator::dropout(const ast::Expr &e, const ArgMap &args) {
  Val xv = requireF32(args, "x", e);
  auto p = floatArg(args, "p", e.name, 0.5, 0, 0.999);
  if (!xv.ok() || !p)
    return Val::error();
  if (*p == 0)
    return xv;
  ir::Value *rng = fn_->arg("rng");
  if (!rng)
    rng = fn_->addArg("rng", {ir::DType::I64, {}}, ir::ArgRole::Scalar);
  ir::Value *mask =
      build(ir::OpKind::DropoutMask, {rng},
            {{"p", *p}, {"shape", xv.v->type.shape}, {"stream", int64_t(dropoutStreams_++)}}, e.loc, "dropout", {xv});
  if (!mask)
    return Val::error();
  b_->setLoc(e.loc);
  return tensorVal(b_->mul(xv.v, mask));
}

} // namespace nnc::frontend
