// Shape rules: one case per op of Ops.def.
#include "ir/ShapeRules.h"

#include <algorithm>
#include <map>
#include <optional>

namespace nnc::ir {

std::variant<Shape, std::string> broadcastShapes(const Shape &a, const Shape &b) {
  size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    // Align from the right.
    const Dim *da = i < rank - a.size() ? nullptr : &a[i - (rank - a.size())];
    const Dim *db = i < rank - b.size() ? nullptr : &b[i - (rank - b.size())];
    if (!da)
      out[i] = *db;
    else if (!db)
      out[i] = *da;
    else if (*da == *db)
      out[i] = *da;
    else if (da->isStatic() && da->size == 1)
      out[i] = *db;
    else if (db->isStatic() && db->size == 1)
      out[i] = *da;
    else
      return "shapes " + shapeStr(a) + " and " + shapeStr(b) + " do not broadcast: dimension " + da->str() +
             " does not match " + db->str();
  }
  return out;
}

bool broadcastsTo(const Shape &from, const Shape &to) {
  auto r = broadcastShapes(from, to);
  auto *s = std::get_if<Shape>(&r);
  return s && *s == to;
}

namespace {

template <class T> const T *attrAs(const Attrs &attrs, const char *name) {
  auto it = attrs.find(name);
  return it == attrs.end() ? nullptr : std::get_if<T>(&it->second);
}

bool boolAttr(const Attrs &attrs, const char *name) {
  auto *b = attrAs<bool>(attrs, name);
  return b && *b;
}

/// Static element count and sorted symbol list of a shape, to compare
/// reshape sizes that contain symbols.
std::pair<int64_t, std::vector<std::string>> sizeKey(const Shape &s) {
  int64_t n = 1;
  std::vector<std::string> syms;
  for (const Dim &d : s) {
    if (d.isStatic())
      n *= d.size;
    else
      syms.push_back(d.sym);
  }
  std::sort(syms.begin(), syms.end());
  return {n, syms};
}

std::string checkShapeAttr(const Shape &s) {
  for (const Dim &d : s)
    if (d.isStatic() && d.size < 0)
      return "negative dimension " + std::to_string(d.size) + " in shape " + shapeStr(s);
  return "";
}

} // namespace

std::optional<int64_t> staticElements(const Shape &s) {
  int64_t n = 1;
  for (const Dim &d : s) {
    if (!d.isStatic())
      continue;
    if (d.size < 0 || (d.size != 0 && n > kMaxElements / d.size))
      return std::nullopt;
    n *= d.size;
  }
  return n;
}

static TypeOrError inferTypeUnchecked(OpKind kind, const std::vector<TensorType> &types, const Attrs &attrs);

TypeOrError inferType(OpKind kind, const std::vector<TensorType> &types, const Attrs &attrs) {
  TypeOrError r = inferTypeUnchecked(kind, types, attrs);
  if (auto *t = std::get_if<TensorType>(&r))
    if (!staticElements(t->shape))
      return std::string(opInfo(kind).name) + ": the result " + t->str() + " would have more than 2^40 elements";
  return r;
}

static TypeOrError inferTypeUnchecked(OpKind kind, const std::vector<TensorType> &types, const Attrs &attrs) {
  const OpInfo &info = opInfo(kind);
  if (types.size() != info.arity)
    return std::string(info.name) + " expects " + std::to_string(info.arity) + " operand(s), got " +
           std::to_string(types.size());
  auto needF32 = [&](size_t i) -> std::string {
    if (types[i].dtype != DType::F32)
      return std::string(info.name) + " expects an f32 operand, got " + types[i].str();
    return "";
  };

  switch (kind) {
  case OpKind::Const: {
    Shape s;
    if (auto *sh = attrAs<Shape>(attrs, "shape"))
      s = *sh;
    if (auto err = checkShapeAttr(s); !err.empty())
      return err;
    if (!attrAs<double>(attrs, "value"))
      return std::string("const needs a float 'value' attribute");
    return TensorType{DType::F32, s};
  }
  case OpKind::Add:
  case OpKind::Sub:
  case OpKind::Mul:
  case OpKind::Div:
  case OpKind::Maximum:
  case OpKind::Equal: {
    if (kind != OpKind::Equal) {
      for (size_t i = 0; i < 2; ++i)
        if (auto e = needF32(i); !e.empty())
          return e;
    } else if (types[0].dtype != types[1].dtype) {
      return "equal expects operands of one dtype, got " + types[0].str() + " and " + types[1].str();
    }
    auto r = broadcastShapes(types[0].shape, types[1].shape);
    if (auto *err = std::get_if<std::string>(&r))
      return std::string(info.name) + ": " + *err;
    return TensorType{DType::F32, std::get<Shape>(r)};
  }
  case OpKind::Neg:
  case OpKind::Exp:
  case OpKind::Log:
  case OpKind::Sqrt:
  case OpKind::Abs:
  case OpKind::Sign:
  case OpKind::Step:
  case OpKind::Relu:
  case OpKind::Sigmoid:
  case OpKind::Tanh:
  case OpKind::Erf:
    if (auto e = needF32(0); !e.empty())
      return e;
    return types[0];
  case OpKind::Cast:
    return TensorType{DType::F32, types[0].shape};
  case OpKind::ReduceSum:
  case OpKind::ReduceMean:
  case OpKind::ReduceMax: {
    if (auto e = needF32(0); !e.empty())
      return e;
    auto *axes = attrAs<std::vector<int64_t>>(attrs, "axes");
    if (!axes)
      return std::string(info.name) + " needs an 'axes' attribute";
    int64_t rank = int64_t(types[0].rank());
    std::vector<bool> reduced(rank, false);
    for (int64_t a : *axes) {
      if (a < 0 || a >= rank)
        return std::string(info.name) + ": axis " + std::to_string(a) + " is out of range for " + types[0].str();
      if (reduced[a])
        return std::string(info.name) + ": axis " + std::to_string(a) + " is listed twice";
      reduced[a] = true;
    }
    bool keep = boolAttr(attrs, "keepdims");
    Shape out;
    for (int64_t i = 0; i < rank; ++i) {
      if (!reduced[i])
        out.push_back(types[0].shape[i]);
      else if (keep)
        out.push_back(Dim(1));
    }
    return TensorType{DType::F32, out};
  }
  case OpKind::Softmax:
  case OpKind::LogSoftmax:
  case OpKind::ArgMax: {
    if (auto e = needF32(0); !e.empty())
      return e;
    if (types[0].rank() == 0)
      return std::string(info.name) + " expects at least one dimension, got a scalar";
    if (kind != OpKind::ArgMax)
      return types[0];
    Shape s(types[0].shape.begin(), types[0].shape.end() - 1);
    return TensorType{DType::I64, s};
  }
  case OpKind::OneHot: {
    if (types[0].dtype != DType::I64)
      return "one_hot expects i64 class indices, got " + types[0].str();
    auto *classes = attrAs<int64_t>(attrs, "classes");
    if (!classes || *classes <= 0)
      return std::string("one_hot needs a positive 'classes' attribute");
    Shape s = types[0].shape;
    s.push_back(Dim(*classes));
    return TensorType{DType::F32, s};
  }
  case OpKind::Broadcast: {
    auto *to = attrAs<Shape>(attrs, "shape");
    if (!to)
      return std::string("broadcast needs a 'shape' attribute");
    if (auto err = checkShapeAttr(*to); !err.empty())
      return err;
    if (!broadcastsTo(types[0].shape, *to))
      return "cannot broadcast " + types[0].str() + " to " + shapeStr(*to);
    return TensorType{types[0].dtype, *to};
  }
  case OpKind::Reshape: {
    auto *to = attrAs<Shape>(attrs, "shape");
    if (!to)
      return std::string("reshape needs a 'shape' attribute");
    if (auto err = checkShapeAttr(*to); !err.empty())
      return err;
    if (sizeKey(*to) != sizeKey(types[0].shape))
      return "cannot reshape " + types[0].str() + " to " + shapeStr(*to) + ": the number of elements differs";
    return TensorType{types[0].dtype, *to};
  }
  case OpKind::Transpose: {
    auto *perm = attrAs<std::vector<int64_t>>(attrs, "perm");
    if (!perm)
      return std::string("transpose needs a 'perm' attribute");
    size_t rank = types[0].rank();
    if (perm->size() != rank)
      return "transpose: " + types[0].str() + " needs a permutation of " + std::to_string(rank) + " axes, got " +
             attrStr(*perm);
    std::vector<bool> seen(rank, false);
    Shape out;
    for (int64_t p : *perm) {
      if (p < 0 || size_t(p) >= rank || seen[p])
        return "transpose: " + attrStr(*perm) + " is not a permutation of " + std::to_string(rank) + " axes";
      seen[p] = true;
      out.push_back(types[0].shape[p]);
    }
    return TensorType{types[0].dtype, out};
  }
  case OpKind::MatMul: {
    for (size_t i = 0; i < 2; ++i)
      if (auto e = needF32(i); !e.empty())
        return e;
    if (types[0].rank() != 2 || types[1].rank() != 2)
      return "matmul expects two matrices, got " + types[0].str() + " and " + types[1].str();
    bool ta = boolAttr(attrs, "ta"), tb = boolAttr(attrs, "tb");
    Dim m = types[0].shape[ta ? 1 : 0], ka = types[0].shape[ta ? 0 : 1];
    Dim kb = types[1].shape[tb ? 1 : 0], n = types[1].shape[tb ? 0 : 1];
    if (ka != kb)
      return "matmul: inner dimensions differ: " + types[0].str() + (ta ? "ᵀ" : "") + " times " + types[1].str() +
             (tb ? "ᵀ" : "") + " (" + ka.str() + " vs " + kb.str() + ")";
    return TensorType{DType::F32, {m, n}};
  }
  }
  return std::string("unknown op");
}

} // namespace nnc::ir
