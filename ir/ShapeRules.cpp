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
  case OpKind::ModeSelect:
    if (types[0] != types[1])
      return "mode_select expects operands of one type, got " + types[0].str() + " and " + types[1].str();
    return types[0];
  case OpKind::DropoutMask: {
    if (types[0].dtype != DType::I64 || types[0].rank() != 0)
      return "dropout_mask expects an i64[] seed, got " + types[0].str();
    const auto *p = attrAs<double>(attrs, "p");
    const auto *shape = attrAs<Shape>(attrs, "shape");
    if (!p || !(*p >= 0 && *p < 1) || !shape || !attrAs<int64_t>(attrs, "stream"))
      return std::string("dropout_mask needs 'p' in [0, 1), a 'shape' and a 'stream' attribute");
    if (auto err = checkShapeAttr(*shape); !err.empty())
      return err;
    return TensorType{DType::F32, *shape};
  }
  case OpKind::Slice:
  case OpKind::Pad: {
    const auto *axis = attrAs<int64_t>(attrs, "axis");
    const char *a1 = kind == OpKind::Slice ? "start" : "before", *a2 = kind == OpKind::Slice ? "end" : "after";
    const auto *p1 = attrAs<int64_t>(attrs, a1), *p2 = attrAs<int64_t>(attrs, a2);
    if (!axis || !p1 || !p2)
      return std::string(info.name) + " needs 'axis', '" + a1 + "' and '" + a2 + "' attributes";
    int64_t rank = int64_t(types[0].rank());
    if (*axis < 0 || *axis >= rank)
      return std::string(info.name) + ": axis " + std::to_string(*axis) + " is out of range for " + types[0].str();
    const Dim &d = types[0].shape[*axis];
    if (!d.isStatic())
      return std::string(info.name) + ": axis " + std::to_string(*axis) + " of " + types[0].str() +
             " must have a static size";
    Shape out = types[0].shape;
    if (kind == OpKind::Slice) {
      if (*p1 < 0 || *p1 >= *p2 || *p2 > d.size)
        return "slice: [" + std::to_string(*p1) + ", " + std::to_string(*p2) + ") is not a non-empty range within the " +
               std::to_string(d.size) + " entries of axis " + std::to_string(*axis) + " of " + types[0].str();
      out[*axis] = Dim(*p2 - *p1);
    } else {
      if (*p1 < 0 || *p2 < 0 || *p1 > kMaxElements || *p2 > kMaxElements)
        return std::string("pad: 'before' and 'after' must be non-negative");
      out[*axis] = Dim(d.size + *p1 + *p2);
    }
    return TensorType{types[0].dtype, out};
  }
  case OpKind::Concat: {
    const auto *axis = attrAs<int64_t>(attrs, "axis");
    if (!axis)
      return std::string("concat needs an 'axis' attribute");
    const TensorType &a = types[0], &b = types[1];
    if (a.dtype != b.dtype || a.rank() != b.rank())
      return "concat: " + a.str() + " and " + b.str() + " differ in element type or rank";
    int64_t rank = int64_t(a.rank());
    if (*axis < 0 || *axis >= rank)
      return "concat: axis " + std::to_string(*axis) + " is out of range for " + a.str();
    for (int64_t i = 0; i < rank; ++i)
      if (i != *axis && a.shape[i] != b.shape[i])
        return "concat: " + a.str() + " and " + b.str() + " differ in dimension " + std::to_string(i) +
               " (only the concatenation axis " + std::to_string(*axis) + " may differ)";
    if (!a.shape[*axis].isStatic() || !b.shape[*axis].isStatic())
      return "concat: the concatenation axis of " + a.str() + " and " + b.str() + " must have static sizes";
    Shape out = a.shape;
    out[*axis] = Dim(a.shape[*axis].size + b.shape[*axis].size);
    return TensorType{a.dtype, out};
  }
  case OpKind::Gather: {
    const TensorType &table = types[0], &ids = types[1];
    if (table.dtype != DType::F32 || table.rank() != 2 || !table.shape[0].isStatic())
      return "gather expects an f32 table [rows, features] with a static number of rows, got " + table.str();
    if (ids.dtype != DType::I64)
      return "gather expects i64 row indices, got " + ids.str();
    Shape out = ids.shape;
    out.push_back(table.shape[1]);
    return TensorType{DType::F32, out};
  }
  case OpKind::ScatterAdd: {
    const TensorType &upd = types[0], &ids = types[1];
    const auto *rows = attrAs<int64_t>(attrs, "rows");
    if (!rows || *rows <= 0)
      return std::string("scatter_add needs a positive 'rows' attribute");
    if (upd.dtype != DType::F32 || ids.dtype != DType::I64 || upd.rank() != ids.rank() + 1 ||
        !std::equal(ids.shape.begin(), ids.shape.end(), upd.shape.begin()))
      return "scatter_add expects updates [ids..., features] and i64 ids, got " + upd.str() + " and " + ids.str();
    return TensorType{DType::F32, {Dim(*rows), upd.shape.back()}};
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
