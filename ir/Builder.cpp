// Type-checked op construction.
#include "ir/Builder.h"

namespace nnc::ir {

std::variant<Value *, std::string> Builder::tryCreate(OpKind kind, std::vector<Value *> operands, Attrs attrs) {
  std::vector<TensorType> types;
  for (Value *v : operands)
    types.push_back(v->type);
  TypeOrError t = inferType(kind, types, attrs);
  if (auto *err = std::get_if<std::string>(&t))
    return *err;
  return f_.createOp(kind, std::move(operands), std::get<TensorType>(t), std::move(attrs), loc_)->result;
}

Value *Builder::create(OpKind kind, std::vector<Value *> operands, Attrs attrs) {
  auto r = tryCreate(kind, std::move(operands), std::move(attrs));
  if (auto *err = std::get_if<std::string>(&r))
    NNC_UNREACHABLE("ill-typed op built by a pass: " << *err);
  return std::get<Value *>(r);
}

Value *Builder::constant(double v, Shape shape) {
  Attrs a{{"value", v}};
  if (!shape.empty())
    a["shape"] = std::move(shape);
  return create(OpKind::Const, {}, std::move(a));
}

Value *Builder::reduce(OpKind k, Value *a, std::vector<int64_t> axes, bool keepdims) {
  return create(k, {a}, {{"axes", std::move(axes)}, {"keepdims", keepdims}});
}

Value *Builder::broadcast(Value *a, Shape to) { return create(OpKind::Broadcast, {a}, {{"shape", std::move(to)}}); }
Value *Builder::reshape(Value *a, Shape to) { return create(OpKind::Reshape, {a}, {{"shape", std::move(to)}}); }
Value *Builder::transpose(Value *a, std::vector<int64_t> perm) {
  return create(OpKind::Transpose, {a}, {{"perm", std::move(perm)}});
}
Value *Builder::matmul(Value *a, Value *b, bool ta, bool tb) {
  Attrs attrs;
  if (ta)
    attrs["ta"] = true;
  if (tb)
    attrs["tb"] = true;
  return create(OpKind::MatMul, {a, b}, std::move(attrs));
}

Value *Builder::sumTo(Value *v, const Shape &shape) {
  const Shape &from = v->type.shape;
  if (from == shape)
    return v;
  NNC_ASSERT(broadcastsTo(shape, from)) << "sumTo: " << shapeStr(shape) << " does not broadcast to " << shapeStr(from);
  size_t lead = from.size() - shape.size();
  std::vector<int64_t> axes;
  for (size_t i = 0; i < from.size(); ++i) {
    if (i < lead) {
      axes.push_back(int64_t(i));
      continue;
    }
    const Dim &d = shape[i - lead];
    if (d.isStatic() && d.size == 1 && from[i] != d)
      axes.push_back(int64_t(i));
  }
  Value *r = axes.empty() ? v : reduce(OpKind::ReduceSum, v, axes, /*keepdims=*/true);
  if (r->type.shape != shape)
    r = reshape(r, shape);
  return r;
}

} // namespace nnc::ir
