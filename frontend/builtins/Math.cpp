// Elementwise functions, activations and reductions: the lowerings of these builtins into IR.
// Each is an Elaborator member named in the table in frontend/Builtins.cpp.
#include "frontend/Elaborator.h"

#include <cmath>

namespace nnc::frontend {

Val Elaborator::unaryBuiltin(const ast::Expr &e, const ArgMap &args) {
  static const std::map<std::string, ir::OpKind> ops = {
      {"relu", ir::OpKind::Relu},    {"sigmoid", ir::OpKind::Sigmoid}, {"tanh", ir::OpKind::Tanh},
      {"exp", ir::OpKind::Exp},      {"log", ir::OpKind::Log},         {"sqrt", ir::OpKind::Sqrt},
      {"abs", ir::OpKind::Abs},      {"softmax", ir::OpKind::Softmax}, {"log_softmax", ir::OpKind::LogSoftmax},
      {"argmax", ir::OpKind::ArgMax}, {"stop_gradient", ir::OpKind::StopGradient}};
  auto k = ops.find(e.name);
  NNC_ASSERT(k != ops.end()) << "unary builtin without an op: " << e.name;
  Val x = tensorArg(args, "x", e.loc);
  if (!x.ok())
    return x;
  ir::Value *r = build(k->second, {x.v}, {}, e.loc, e.name, {x});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::minMax(const ast::Expr &e, const ArgMap &args) {
  Val a = tensorArg(args, "a", e.loc), b = tensorArg(args, "b", e.loc);
  if (!a.ok() || !b.ok())
    return Val::error();
  ir::OpKind k = e.name == "minimum" ? ir::OpKind::Minimum : ir::OpKind::Maximum;
  ir::Value *r = build(k, {a.v, b.v}, {}, e.loc, "", {a, b});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::clamp(const ast::Expr &e, const ArgMap &args) {
  Val x = requireF32(args, "x", e);
  if (!x.ok())
    return x;
  if (!args.count("lo") && !args.count("hi")) {
    d_.error(e.loc, "clamp needs a bound: give lo, hi or both, e.g. clamp(x, lo = 0, hi = 6)");
    return Val::error();
  }
  std::vector<Val> context{x};
  ir::Value *r = x.v;
  // maximum and minimum send ties to their second operand, so x keeps the
  // gradient at x == lo and at x == hi.
  for (auto [name, kind] : {std::pair{"lo", ir::OpKind::Maximum}, std::pair{"hi", ir::OpKind::Minimum}}) {
    std::optional<Val> bound = optionalTensorArg(args, name, e.loc);
    if (!bound)
      continue;
    if (!bound->ok())
      return Val::error();
    context.push_back(*bound);
    r = build(kind, {bound->v, r}, {}, e.loc, "clamp", context);
    if (!r)
      return Val::error();
  }
  return tensorVal(r);
}

Val Elaborator::reduction(const ast::Expr &e, const ArgMap &args) {
  const std::string &f = e.name;
  Val x = tensorArg(args, "x", e.loc);
  if (!x.ok())
    return x;
  auto axes = axesArg(args, int64_t(x.v->type.rank()), f.c_str());
  auto keep = boolArg(args, "keepdims", f.c_str(), false);
  if (!axes || !keep)
    return Val::error();
  ir::OpKind k = f == "sum" ? ir::OpKind::ReduceSum : f == "mean" ? ir::OpKind::ReduceMean : ir::OpKind::ReduceMax;
  ir::Value *r = build(k, {x.v}, {{"axes", *axes}, {"keepdims", *keep}}, e.loc, f, {x});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::activation(const ast::Expr &e, const ArgMap &args) {
  Val xv = requireF32(args, "x", e);
  if (!xv.ok())
    return xv;
  ir::Value *x = xv.v;
  b_->setLoc(e.loc);
  auto relu = [&](ir::Value *v) { return b_->unary(ir::OpKind::Relu, v); };
  if (e.name == "gelu") { // x/2 * (1 + erf(x / sqrt 2))
    ir::Value *cdf = b_->add(b_->constant(1.0), b_->unary(ir::OpKind::Erf, b_->mul(b_->constant(M_SQRT1_2), x)));
    return tensorVal(b_->mul(b_->mul(b_->constant(0.5), x), cdf));
  }
  if (e.name == "leaky_relu") { // relu(x) - slope * relu(-x)
    auto slope = floatArg(args, "slope", e.name, 0.01, 0, 1e6);
    if (!slope)
      return Val::error();
    return tensorVal(b_->sub(relu(x), b_->mul(b_->constant(*slope), relu(b_->neg(x)))));
  }
  if (e.name == "elu") { // relu(x) + alpha * (exp(-relu(-x)) - 1): exp sees only x <= 0
    auto alpha = floatArg(args, "alpha", e.name, 1.0, 0, 1e6);
    if (!alpha)
      return Val::error();
    ir::Value *neg = b_->sub(b_->unary(ir::OpKind::Exp, b_->neg(relu(b_->neg(x)))), b_->constant(1.0));
    return tensorVal(b_->add(relu(x), b_->mul(b_->constant(*alpha), neg)));
  }
  // softplus: relu(x) + log(1 + exp(-|x|))
  ir::Value *tail = b_->unary(
      ir::OpKind::Log, b_->add(b_->constant(1.0), b_->unary(ir::OpKind::Exp, b_->neg(b_->unary(ir::OpKind::Abs, x)))));
  return tensorVal(b_->add(relu(x), tail));
}

} // namespace nnc::frontend
