// Simplification: dead-code elimination, common-subexpression elimination,
// constant folding and algebraic identities, run to a fixed point. Runs before
// and after differentiation: AD emits many trivially simplifiable ops
// (multiplications by one, sums to the same shape, reshapes of reshapes).
#include "ir/transforms/Passes.h"

#include "ir/Builder.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace nnc::ir {

bool eliminateDeadCode(Function &f) {
  std::unordered_set<const Value *> live(f.results.begin(), f.results.end());
  for (auto it = f.ops.rbegin(); it != f.ops.rend(); ++it) {
    if (!live.count((*it)->result))
      continue;
    for (Value *v : (*it)->operands)
      live.insert(v);
  }
  size_t before = f.ops.size();
  f.eraseOpsIf([&](Op *op) { return !live.count(op->result); });
  return f.ops.size() != before;
}

bool eliminateCommonSubexpressions(Function &f) {
  std::map<std::string, Value *> seen;
  std::unordered_map<const Value *, size_t> ids;
  for (size_t i = 0; i < f.args.size(); ++i)
    ids[f.args[i]] = i;
  bool changed = false;
  PendingUses pending;
  for (auto &op : f.ops) {
    // Operands may have been replaced by earlier merges in this walk.
    pending.rewrite(*op);
    std::vector<size_t> opIds;
    for (Value *v : op->operands)
      opIds.push_back(ids.at(v));
    if (hasTrait(op->kind, OpTrait::Commutative))
      std::sort(opIds.begin(), opIds.end());
    std::string key = opName(op->kind);
    for (size_t id : opIds)
      key += " " + std::to_string(id);
    for (const auto &[k, v] : op->attrs)
      key += " " + k + "=" + attrStr(v);
    key += " : " + op->result->type.str();
    auto it = seen.find(key);
    if (it != seen.end() && hasTrait(op->kind, OpTrait::Pure)) {
      pending.replace(op->result, it->second);
      ids[op->result] = ids.at(it->second);
      changed = true;
    } else {
      seen.emplace(key, op->result);
      ids[op->result] = ids.size();
    }
  }
  pending.rewriteResults(f);
  if (changed)
    eliminateDeadCode(f);
  return changed;
}

namespace {

/// The value of a scalar constant without a symbolic divisor, if `v` is one.
std::optional<double> scalarConst(const Value *v) {
  if (!v->def || v->def->kind != OpKind::Const || !v->def->getShape("shape").empty())
    return std::nullopt;
  const Shape div = v->def->getShape("divisor");
  if (!div.empty())
    return std::nullopt;
  return v->def->getFloat("value");
}

/// The value of a constant of any shape (a splat), if `v` is one.
std::optional<double> splatConst(const Value *v) {
  if (!v->def || v->def->kind != OpKind::Const || !v->def->getShape("divisor").empty())
    return std::nullopt;
  return v->def->getFloat("value");
}

std::optional<double> foldUnary(OpKind k, double x) {
  switch (k) {
  case OpKind::Neg:
    return -x;
  case OpKind::Exp:
    return std::exp(x);
  case OpKind::Log:
    return std::log(x);
  case OpKind::Sqrt:
    return std::sqrt(x);
  case OpKind::Abs:
    return std::fabs(x);
  case OpKind::Sign:
    return double((x > 0) - (x < 0));
  case OpKind::Step:
    return x > 0 ? 1.0 : 0.0;
  case OpKind::Relu:
    return x > 0 ? x : 0.0;
  case OpKind::Sigmoid:
    return 1 / (1 + std::exp(-x));
  case OpKind::Tanh:
    return std::tanh(x);
  case OpKind::Erf:
    return std::erf(x);
  case OpKind::StopGradient:
    return x;
  default:
    return std::nullopt;
  }
}

std::optional<double> foldBinary(OpKind k, double a, double b) {
  switch (k) {
  case OpKind::Add:
    return a + b;
  case OpKind::Sub:
    return a - b;
  case OpKind::Mul:
    return a * b;
  case OpKind::Div:
    return a / b;
  case OpKind::Maximum:
    return std::max(a, b);
  case OpKind::Minimum:
    return std::min(a, b);
  default:
    return std::nullopt;
  }
}

class Simplifier {
public:
  explicit Simplifier(Function &f) : f_(f) {}

  bool run() {
    bool changed = false;
    // Rewrites append replacement ops at the end; they are moved into place
    // right after the op they replace so that program order stays valid.
    PendingUses pending;
    for (size_t i = 0; i < f_.ops.size(); ++i) {
      Op *op = f_.ops[i].get();
      pending.rewrite(*op);
      size_t before = f_.ops.size();
      Value *r = rewrite(*op);
      if (!r || r == op->result) {
        // Drop anything a failed rewrite created.
        while (f_.ops.size() > before)
          f_.ops.pop_back();
        continue;
      }
      NNC_ASSERT(r->type == op->result->type) << "simplify changed a type: " << opName(op->kind);
      // Move new ops (appended at the end) to just before op i.
      size_t added = f_.ops.size() - before;
      std::rotate(f_.ops.begin() + i, f_.ops.begin() + before, f_.ops.end());
      i += added;
      pending.replace(op->result, r);
      changed = true;
    }
    pending.rewriteResults(f_);
    if (changed)
      eliminateDeadCode(f_);
    return changed;
  }

private:
  Value *rewrite(Op &op) {
    Builder b(f_);
    b.setLoc(op.loc);
    Value *x = op.operands.empty() ? nullptr : op.operand(0);
    Value *y = op.operands.size() > 1 ? op.operand(1) : nullptr;
    const TensorType &t = op.result->type;
    switch (op.kind) {
    case OpKind::Const: {
      // A divisor of static sizes folds into the value.
      Shape div = op.getShape("divisor");
      if (div.empty())
        return nullptr;
      double v = op.getFloat("value");
      for (const Dim &d : div)
        if (!d.isStatic())
          return nullptr;
      for (const Dim &d : div)
        v /= double(d.size);
      return b.constant(v, op.getShape("shape"));
    }
    case OpKind::Add:
    case OpKind::Sub:
    case OpKind::Mul:
    case OpKind::Div:
    case OpKind::Maximum:
    case OpKind::Minimum: {
      auto cx = scalarConst(x), cy = scalarConst(y);
      if (cx && cy)
        if (auto v = foldBinary(op.kind, *cx, *cy))
          return b.constant(*v);
      auto sx = splatConst(x), sy = splatConst(y);
      bool yIsResultType = y->type == t, xIsResultType = x->type == t;
      if (op.kind == OpKind::Add) {
        if (sy && *sy == 0 && xIsResultType)
          return x;
        if (sx && *sx == 0 && yIsResultType)
          return y;
      }
      if (op.kind == OpKind::Sub) {
        if (sy && *sy == 0 && xIsResultType)
          return x;
        if (sx && *sx == 0 && yIsResultType)
          return b.neg(y);
        // a - neg(b) = a + b
        if (y->def && y->def->kind == OpKind::Neg)
          return typed(b, OpKind::Add, {x, y->def->operand(0)}, t);
      }
      if (op.kind == OpKind::Mul) {
        if (sy && *sy == 1 && xIsResultType)
          return x;
        if (sx && *sx == 1 && yIsResultType)
          return y;
        if (sy && *sy == -1 && xIsResultType)
          return b.neg(x);
        if (sx && *sx == -1 && yIsResultType)
          return b.neg(y);
        // c1 * (c2 * z) = (c1*c2) * z
        if (cx && y->def && y->def->kind == OpKind::Mul)
          if (auto c2 = scalarConst(y->def->operand(0)))
            return typed(b, OpKind::Mul, {b.constant(*cx * *c2), y->def->operand(1)}, t);
        // Move scalar constants to the left for the rule above and for CSE.
        if (cy && !cx)
          return b.mul(y, x);
        // neg(a) * neg(b) = a * b
        if (x->def && x->def->kind == OpKind::Neg && y->def && y->def->kind == OpKind::Neg)
          return typed(b, OpKind::Mul, {x->def->operand(0), y->def->operand(0)}, t);
      }
      if (op.kind == OpKind::Div && sy && *sy == 1 && xIsResultType)
        return x;
      return nullptr;
    }
    case OpKind::Neg:
      if (x->def && x->def->kind == OpKind::Neg)
        return x->def->operand(0);
      return foldConstant(b, op);
    case OpKind::Reshape:
    case OpKind::Broadcast:
      if (x->type == t)
        return x;
      if (op.kind == OpKind::Reshape && x->def && x->def->kind == OpKind::Reshape)
        return b.reshape(x->def->operand(0), t.shape);
      if (x->def && x->def->kind == OpKind::Const && x->def->getShape("divisor").empty())
        return b.constant(x->def->getFloat("value"), t.shape);
      return nullptr;
    case OpKind::Transpose: {
      std::vector<int64_t> perm = op.getInts("perm");
      bool identity = true;
      for (size_t i = 0; i < perm.size(); ++i)
        identity &= perm[i] == int64_t(i);
      if (identity)
        return x;
      if (x->def && x->def->kind == OpKind::Transpose) {
        std::vector<int64_t> inner = x->def->getInts("perm"), composed(perm.size());
        for (size_t i = 0; i < perm.size(); ++i)
          composed[i] = inner[perm[i]];
        return b.transpose(x->def->operand(0), composed);
      }
      return nullptr;
    }
    case OpKind::ReduceSum:
    case OpKind::ReduceMean:
    case OpKind::ReduceMax:
      if (op.getInts("axes").empty() && x->type == t)
        return x;
      return nullptr;
    default:
      return foldConstant(b, op);
    }
  }

  /// A unary elementwise op of a scalar constant, folded.
  Value *foldConstant(Builder &b, const Op &op) {
    if (op.operands.size() != 1 || !hasTrait(op.kind, OpTrait::Elementwise))
      return nullptr;
    if (auto c = scalarConst(op.operand(0)))
      if (auto v = foldUnary(op.kind, *c))
        return b.constant(*v);
    return nullptr;
  }

  /// Builds `kind` and returns it only if it has the expected type (a rewrite
  /// must not change types; broadcasting can make it differ).
  Value *typed(Builder &b, OpKind kind, std::vector<Value *> operands, const TensorType &t) {
    auto r = b.tryCreate(kind, operands);
    if (auto *v = std::get_if<Value *>(&r))
      if ((*v)->type == t)
        return *v;
    return nullptr;
  }

  Function &f_;
};

} // namespace

bool simplifyAlgebra(Function &f) { return Simplifier(f).run(); }

bool disableDropout(Function &f) {
  bool changed = false;
  for (auto &op : f.ops)
    if (op->kind == OpKind::ModeSelect) {
      f.replaceAllUses(op->result, op->operand(1));
      changed = true;
    }
  for (auto &op : f.ops)
    if (op->kind == OpKind::DropoutMask) {
      Shape shape = op->getShape("shape");
      op->kind = OpKind::Const;
      op->operands.clear();
      op->attrs = {{"value", 1.0}};
      if (!shape.empty())
        op->attrs["shape"] = shape;
      changed = true;
    }
  return changed;
}

void simplify(Function &f) {
  for (int iter = 0; iter < 20; ++iter) {
    bool changed = eliminateDeadCode(f);
    changed |= simplifyAlgebra(f);
    changed |= eliminateCommonSubexpressions(f);
    if (!changed)
      return;
  }
}

} // namespace nnc::ir
