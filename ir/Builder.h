// Builder: creates type-checked ops at the end of a function. Passes use it so
// that every op they emit goes through the one shape rule of its kind; a rule
// failure inside a pass is a compiler bug and asserts.
#pragma once

#include "ir/IR.h"
#include "ir/ShapeRules.h"

namespace nnc::ir {

class Builder {
public:
  explicit Builder(Function &f) : f_(f) {}
  Function &function() { return f_; }
  /// Location attached to the ops created from now on.
  void setLoc(SourceLoc loc) { loc_ = loc; }
  SourceLoc loc() const { return loc_; }

  /// Creates `kind`; asserts the shape rule accepts it.
  Value *create(OpKind kind, std::vector<Value *> operands, Attrs attrs = {});
  /// Creates `kind` or returns the shape rule's message.
  std::variant<Value *, std::string> tryCreate(OpKind kind, std::vector<Value *> operands, Attrs attrs = {});

  Value *constant(double v, Shape shape = {});
  Value *add(Value *a, Value *b) { return create(OpKind::Add, {a, b}); }
  Value *sub(Value *a, Value *b) { return create(OpKind::Sub, {a, b}); }
  Value *mul(Value *a, Value *b) { return create(OpKind::Mul, {a, b}); }
  Value *div(Value *a, Value *b) { return create(OpKind::Div, {a, b}); }
  Value *neg(Value *a) { return create(OpKind::Neg, {a}); }
  Value *unary(OpKind k, Value *a) { return create(k, {a}); }
  Value *reduce(OpKind k, Value *a, std::vector<int64_t> axes, bool keepdims);
  Value *broadcast(Value *a, Shape to);
  Value *reshape(Value *a, Shape to);
  Value *transpose(Value *a, std::vector<int64_t> perm);
  Value *matmul(Value *a, Value *b, bool ta = false, bool tb = false);
  /// Sums `v` down to `shape` over the dimensions that broadcasting expanded
  /// (the adjoint of implicit broadcasting).
  Value *sumTo(Value *v, const Shape &shape);

private:
  Function &f_;
  SourceLoc loc_;
};

} // namespace nnc::ir
