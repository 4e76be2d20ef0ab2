// Attention and positional encodings: the lowerings of these builtins into IR.
// Each is an Elaborator member named in the table in frontend/Builtins.cpp.
#include "frontend/Elaborator.h"

#include <cmath>

namespace nnc::frontend {

std::optional<ir::Value *> Elaborator::attend(const ast::Expr &e, ir::Value *q, ir::Value *k, ir::Value *v, bool causal,
                                              const Val *mask, const std::vector<Val> &context) {
  const ir::TensorType &qt = q->type, &kt = k->type, &vt = v->type;
  size_t r = qt.rank();
  if (r < 2 || kt.rank() != r || vt.rank() != r || qt.dtype != ir::DType::F32 || !qt.shape.back().isStatic() ||
      !qt.shape[r - 2].isStatic() || !kt.shape[r - 2].isStatic()) {
    d_.error(e.loc, "attention expects f32 q [..., T, d], k [..., S, d] and v [..., S, dv] of one rank with static "
                    "T, S and d, got " +
                        qt.str() + ", " + kt.str() + " and " + vt.str());
    noteOperands(context);
    return std::nullopt;
  }
  int64_t T = qt.shape[r - 2].size, S = kt.shape[r - 2].size, d = qt.shape.back().size;
  ir::Value *scores = build(ir::OpKind::MatMul, {q, k}, {{"tb", true}}, e.loc, "attention (q kᵀ)", context);
  if (!scores)
    return std::nullopt;
  b_->setLoc(e.loc);
  scores = b_->mul(scores, b_->constant(1.0 / std::sqrt(double(d))));
  if (causal)
    scores = b_->add(
        scores, b_->create(ir::OpKind::CausalMask, {},
                           {{"shape", ir::Shape{ir::Dim(T), ir::Dim(S)}}, {"value", -1e9}, {"offset", int64_t(0)}}));
  if (mask) {
    const ir::TensorType &mt = mask->v->type;
    if (mt.dtype != ir::DType::F32 || mt.rank() != 2 || mt.shape[0] != qt.shape[0] || mt.shape[1] != ir::Dim(S)) {
      d_.error(e.loc, "attention: the padding mask must be f32 [" + qt.shape[0].str() + ", " + std::to_string(S) +
                          "] (1 keeps a key, 0 drops it), got " + mt.str());
      noteOperands({*mask});
      return std::nullopt;
    }
    ir::Shape ms{mt.shape[0]};
    for (size_t i = 1; i + 1 < r; ++i)
      ms.push_back(ir::Dim(1));
    ms.push_back(ir::Dim(S));
    ir::Value *add = b_->mul(b_->sub(mask->v, b_->constant(1.0)), b_->constant(1e9));
    scores = b_->add(scores, b_->reshape(add, ms));
  }
  ir::Value *p = b_->unary(ir::OpKind::Softmax, scores);
  return build(ir::OpKind::MatMul, {p, v}, {}, e.loc, "attention (weights v)", context);
}

Val Elaborator::attentionCall(const ast::Expr &e, const ArgMap &args) {
  Val q = requireF32(args, "q", e), k = requireF32(args, "k", e), v = requireF32(args, "v", e);
  auto causal = boolArg(args, "causal", "attention", false);
  if (!q.ok() || !k.ok() || !v.ok() || !causal)
    return Val::error();
  std::optional<Val> mask = optionalTensorArg(args, "mask", e.loc);
  if (mask && !mask->ok())
    return *mask;
  auto r = attend(e, q.v, k.v, v.v, *causal, mask ? &*mask : nullptr, {q, k, v});
  return r && *r ? tensorVal(*r) : Val::error();
}

Val Elaborator::multiHeadAttention(const ast::Expr &e, const ArgMap &args) {
  Val xv = requireF32(args, "x", e);
  auto heads = intArg(args, "heads", "multi_head_attention");
  auto causal = boolArg(args, "causal", "multi_head_attention", false);
  if (!xv.ok() || !heads || !causal)
    return Val::error();
  std::optional<Val> mask = optionalTensorArg(args, "mask", e.loc);
  if (mask && !mask->ok())
    return *mask;
  const ir::TensorType &xt = xv.v->type;
  if (xt.rank() != 3 || !xt.shape[1].isStatic() || !xt.shape[2].isStatic()) {
    d_.error(e.loc, "multi_head_attention expects a sequence [N, T, D] with static T and D, got " + xt.str());
    noteOperands({xv});
    return Val::error();
  }
  int64_t T = xt.shape[1].size, D = xt.shape[2].size, H = *heads;
  if (D % H) {
    d_.error(e.loc, "multi_head_attention: the model width " + std::to_string(D) + " is not divisible by " +
                        std::to_string(H) + " heads");
    noteOperands({xv});
    return Val::error();
  }
  std::string inst = instanceName(e);
  ir::Value *ws[4], *bs[4];
  const char *names[4] = {"q", "k", "v", "o"};
  for (int i = 0; i < 4; ++i) {
    ws[i] = param(inst, std::string(names[i]) + ".w", {D, D}, ParamInfo::Glorot, D, D, false, e.loc);
    bs[i] = param(inst, std::string(names[i]) + ".b", {D}, ParamInfo::Zeros, D, D, true, e.loc);
    if (!ws[i] || !bs[i])
      return Val::error();
  }
  b_->setLoc(e.loc);
  ir::Dim n = xt.shape[0];
  auto split = [&](ir::Value *y) { // [N, T, D] -> [N, H, T, D/H]
    return b_->transpose(b_->reshape(y, {n, ir::Dim(T), ir::Dim(H), ir::Dim(D / H)}), {0, 2, 1, 3});
  };
  ir::Value *q = split(project(xv.v, ws[0], bs[0])), *k = split(project(xv.v, ws[1], bs[1])),
            *v = split(project(xv.v, ws[2], bs[2]));
  auto att = attend(e, q, k, v, *causal, mask ? &*mask : nullptr, {xv});
  if (!att || !*att)
    return Val::error();
  b_->setLoc(e.loc);
  ir::Value *merged = b_->reshape(b_->transpose(*att, {0, 2, 1, 3}), {n, ir::Dim(T), ir::Dim(D)});
  return tensorVal(project(merged, ws[3], bs[3]));
}

Val Elaborator::positionalEncoding(const ast::Expr &e, const ArgMap &args) {
  Val xv = requireF32(args, "x", e);
  if (!xv.ok())
    return xv;
  std::string kind = "sinusoidal";
  if (auto it = args.find("kind"); it != args.end()) {
    const Val &k = it->second.first;
    if (k.kind != Val::String || (k.str != "sinusoidal" && k.str != "learned")) {
      d_.error(it->second.second->loc, "positional_encoding: 'kind' must be \"sinusoidal\" or \"learned\"");
      return Val::error();
    }
    kind = k.str;
  }
  const ir::TensorType &xt = xv.v->type;
  if (xt.rank() != 3 || !xt.shape[1].isStatic() || !xt.shape[2].isStatic()) {
    d_.error(e.loc, "positional_encoding expects a sequence [N, T, D] with static T and D, got " + xt.str());
    noteOperands({xv});
    return Val::error();
  }
  int64_t T = xt.shape[1].size, D = xt.shape[2].size;
  if (kind == "sinusoidal" && !e.instance.empty()) {
    d_.error(e.instanceLoc,
             "sinusoidal positional encodings have no parameters, so 'as " + e.instance + "' has nothing to share");
    return Val::error();
  }
  ir::Value *table;
  if (kind == "learned") {
    // N(0, 0.02^2)-like scale: LeCun normal with fan-in 2500.
    table = param(instanceName(e), "pos", {T, D}, ParamInfo::Lecun, 2500, D, false, e.loc);
    if (!table)
      return Val::error();
  } else {
    b_->setLoc(e.loc);
    table = b_->create(ir::OpKind::Sinusoid, {}, {{"shape", ir::Shape{ir::Dim(T), ir::Dim(D)}}});
  }
  b_->setLoc(e.loc);
  return tensorVal(b_->add(xv.v, table));
}

} // namespace nnc::frontend
