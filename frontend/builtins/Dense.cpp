// dense, matmul and embedding: the lowerings of these builtins into IR.
// Each is an Elaborator member named in the table in frontend/Builtins.cpp.
#include "frontend/Elaborator.h"

namespace nnc::frontend {

Val Elaborator::dense(const ast::Expr &e, const ArgMap &args) {
  Val x = tensorArg(args, "x", e.loc);
  auto units = intArg(args, "units", "dense");
  auto bias = boolArg(args, "bias", "dense", true);
  if (!x.ok() || !units || !bias)
    return Val::error();
  ParamInfo::Init init = ParamInfo::He;
  if (auto it = args.find("init"); it != args.end()) {
    const Val &v = it->second.first;
    static const std::map<std::string, ParamInfo::Init> inits = {
        {"he", ParamInfo::He}, {"glorot", ParamInfo::Glorot}, {"lecun", ParamInfo::Lecun}, {"zeros", ParamInfo::Zeros}};
    auto found = v.kind == Val::String ? inits.find(v.str) : inits.end();
    if (found == inits.end()) {
      d_.error(it->second.second->loc, "dense: 'init' must be one of \"he\", "
                                       "\"glorot\", \"lecun\", \"zeros\"");
      return Val::error();
    }
    init = found->second;
  }
  const ir::TensorType &xt = x.v->type;
  if (xt.dtype != ir::DType::F32 || xt.rank() < 2) {
    d_.error(e.loc, "dense expects an f32 matrix [N, K] (or a stack [N, ..., K]), but its input has type " + xt.str());
    noteOperands({x});
    return Val::error();
  }
  if (!xt.shape.back().isStatic()) {
    d_.error(e.loc, "dense needs a static number of input features, but the input has type " + xt.str());
    return Val::error();
  }
  int64_t k = xt.shape.back().size;
  if (!ir::staticElements({ir::Dim(k), ir::Dim(*units)})) {
    d_.error(e.loc, "dense: a weight matrix of " + std::to_string(k) + " x " + std::to_string(*units) +
                        " would have more than 2^40 elements");
    return Val::error();
  }
  std::string inst = instanceName(e);
  ir::Value *w = param(inst, "w", {k, *units}, init, k, *units, false, e.loc);
  if (!w)
    return Val::error();
  b_->setLoc(e.loc);
  ir::Value *y = project(x.v, w, nullptr);
  if (*bias) {
    ir::Value *bv = param(inst, "b", {*units}, ParamInfo::Zeros, k, *units, true, e.loc);
    if (!bv)
      return Val::error();
    y = b_->add(y, bv);
  }
  return tensorVal(y);
}

Val Elaborator::matmul(const ast::Expr &e, const ArgMap &args) {
  Val a = tensorArg(args, "a", e.loc), b = tensorArg(args, "b", e.loc);
  if (!a.ok() || !b.ok())
    return Val::error();
  ir::Value *r = build(ir::OpKind::MatMul, {a.v, b.v}, {}, e.loc, "", {a, b});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::embedding(const ast::Expr &e, const ArgMap &args) {
  Val ids = tensorArg(args, "ids", e.loc);
  auto vocab = intArg(args, "vocab", "embedding"), dim = intArg(args, "dim", "embedding");
  if (!ids.ok() || !vocab || !dim)
    return Val::error();
  if (ids.v->type.dtype != ir::DType::I64) {
    d_.error(e.loc, "embedding expects i64 token ids, got " + ids.v->type.str());
    noteOperands({ids});
    return Val::error();
  }
  if (!ir::staticElements({ir::Dim(*vocab), ir::Dim(*dim)})) {
    d_.error(e.loc, "embedding: a table of " + std::to_string(*vocab) + " x " + std::to_string(*dim) +
                        " would have more than 2^40 elements");
    return Val::error();
  }
  // N(0, 1) initialization, as torch.nn.Embedding: LeCun normal with
  // fan-in 1.
  ir::Value *table = param(instanceName(e), "table", {*vocab, *dim}, ParamInfo::Lecun, 1, *dim, false, e.loc);
  if (!table)
    return Val::error();
  ir::Value *r = build(ir::OpKind::Gather, {table, ids.v}, {}, e.loc, "embedding", {ids});
  return r ? tensorVal(r) : Val::error();
}

} // namespace nnc::frontend
