// Shape rules: one case per op of Ops.def.
#include "ir/ShapeRules.h"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>

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

/// Sorted symbol list of a shape, to compare reshape sizes that contain
/// symbols (the static part is compared through staticElements).
std::vector<std::string> sortedSymbols(const Shape &s) {
  std::vector<std::string> syms;
  for (const Dim &d : s)
    if (!d.isStatic())
      syms.push_back(d.sym);
  std::sort(syms.begin(), syms.end());
  return syms;
}

std::string checkShapeAttr(const Shape &s) {
  for (const Dim &d : s)
    if (d.isStatic() && d.size < 0)
      return "negative dimension " + std::to_string(d.size) + " in shape " + shapeStr(s);
  return "";
}

bool isConvOp(OpKind k) { return k == OpKind::Conv2D || k == OpKind::Conv2DGradInput || k == OpKind::Conv2DGradWeight; }

/// A two-element attribute of positive integers (stride, dilation, kernel,
/// size), `dflt` when absent.
std::optional<std::pair<int64_t, int64_t>> pairAttr(const Attrs &attrs, const char *name, int64_t dflt, bool required,
                                                    std::string &err, const char *op, int64_t lo = 1) {
  auto *v = attrAs<std::vector<int64_t>>(attrs, name);
  if (!v) {
    if (!required)
      return std::make_pair(dflt, dflt);
    err = std::string(op) + " needs a '" + name + "' attribute of two integers";
    return std::nullopt;
  }
  if (v->size() != 2 || (*v)[0] < lo || (*v)[1] < lo || (*v)[0] > (1 << 20) || (*v)[1] > (1 << 20)) {
    err = std::string(op) + ": '" + name + "' must be two integers in [" + std::to_string(lo) + ", 1048576], got " +
          attrStr(*v);
    return std::nullopt;
  }
  return std::make_pair((*v)[0], (*v)[1]);
}

/// Reads stride, dilation (convolutions), pad and, when `kernel` is null,
/// the 'kernel' attribute.
std::optional<Window2D> readWindow(OpKind kind, const Attrs &attrs, const std::pair<int64_t, int64_t> *kernel,
                                   std::string &err) {
  const char *op = opInfo(kind).name;
  Window2D w;
  auto k = kernel ? std::optional(*kernel) : pairAttr(attrs, "kernel", 1, true, err, op);
  auto s = pairAttr(attrs, "stride", 1, false, err, op);
  auto d = isConvOp(kind) ? pairAttr(attrs, "dilation", 1, false, err, op) : std::optional(std::make_pair(1L, 1L));
  if (!k || !s || !d)
    return std::nullopt;
  std::tie(w.kh, w.kw) = *k;
  std::tie(w.sh, w.sw) = *s;
  std::tie(w.dh, w.dw) = *d;
  if (auto *p = attrAs<std::vector<int64_t>>(attrs, "pad")) {
    if (p->size() != 4 || std::any_of(p->begin(), p->end(), [](int64_t x) { return x < 0 || x > (1 << 20); })) {
      err = std::string(op) +
            ": 'pad' must be four integers in [0, 1048576] (top, left, bottom, "
            "right), got " +
            attrStr(*p);
      return std::nullopt;
    }
    w.pt = (*p)[0], w.pl = (*p)[1], w.pb = (*p)[2], w.pr = (*p)[3];
  }
  if (!isConvOp(kind) && (2 * std::max(w.pt, w.pb) > w.kh || 2 * std::max(w.pl, w.pr) > w.kw)) {
    err = std::string(op) + ": padding " + attrStr(std::vector<int64_t>{w.pt, w.pl, w.pb, w.pr}) +
          " must be at most half the kernel " + attrStr(std::vector<int64_t>{w.kh, w.kw});
    return std::nullopt;
  }
  return w;
}

/// [N, C, H, W] with static C, H, W.
bool isImageBatch(const TensorType &t) {
  return t.dtype == DType::F32 && t.rank() == 4 && t.shape[1].isStatic() && t.shape[2].isStatic() &&
         t.shape[3].isStatic();
}

} // namespace

Window2D window2DOf(const Op &op) {
  std::string err;
  std::pair<int64_t, int64_t> k;
  const std::pair<int64_t, int64_t> *kp = nullptr;
  if (op.kind == OpKind::Conv2D || op.kind == OpKind::Conv2DGradInput) {
    const Shape &ws = op.operand(1)->type.shape;
    k = {ws[2].size, ws[3].size};
    kp = &k;
  }
  auto w = readWindow(op.kind, op.attrs, kp, err);
  NNC_ASSERT(w) << "window of an unchecked op: " << err;
  return *w;
}

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

/// scan: operands [init (mode carry)], `nseq` sequences [T, ...] (static T,
/// sliced along axis 0), then invariants; 'out' is the per-step result
/// shape (the carry's in mode carry). The body's signature is checked by the
/// verifier, which sees the module.
static TypeOrError scanType(const std::vector<TensorType> &types, const Attrs &attrs) {
  auto *mode = attrAs<std::string>(attrs, "mode");
  auto *nseq = attrAs<int64_t>(attrs, "nseq");
  auto *out = attrAs<Shape>(attrs, "out");
  if (!attrAs<std::string>(attrs, "body") || !mode || (*mode != "carry" && *mode != "map" && *mode != "sum") || !nseq ||
      !out)
    return std::string("scan needs 'body', 'mode' (carry, map or sum), 'nseq' and 'out' attributes");
  if (auto err = checkShapeAttr(*out); !err.empty())
    return err;
  size_t first = *mode == "carry" ? 1 : 0;
  if (*nseq < 1 || size_t(*nseq) + first > types.size())
    return "scan: " + std::to_string(types.size()) + " operands cannot hold " + (first ? "an initial carry and " : "") +
           std::to_string(*nseq) + " sequence(s) (nseq must be at least 1)";
  const TensorType &s0 = types[first];
  if (s0.rank() < 1 || !s0.shape[0].isStatic() || s0.shape[0].size < 1)
    return "scan: sequences must be [T, ...] with a static T >= 1, got " + s0.str();
  for (size_t i = first; i < first + size_t(*nseq); ++i)
    if (types[i].rank() < 1 || types[i].shape[0] != s0.shape[0])
      return "scan: sequence " + types[i].str() + " does not have the " + s0.shape[0].str() + " steps of " + s0.str();
  if (first) {
    if (types[0].dtype != DType::F32 || types[0].shape != *out)
      return "scan: the initial carry " + types[0].str() + " must be f32 with the step shape " + shapeStr(*out);
  }
  Shape rs = *out;
  if (*mode != "sum")
    rs.insert(rs.begin(), s0.shape[0]);
  return TensorType{DType::F32, rs};
}

/// Convolution and pooling. Shapes: x [N, C, H, W], w [O, C/groups, KH, KW],
/// y [N, O, OH, OW]; every dimension but N static.
static TypeOrError windowOpType(OpKind kind, const std::vector<TensorType> &types, const Attrs &attrs) {
  const char *op = opInfo(kind).name;
  std::string err;
  // The operand that plays x (or, for the gradients w.r.t. x, dy).
  const TensorType &first = types[0];
  if (!isImageBatch(first))
    return std::string(op) +
           " expects an f32 batch of images [N, C, H, W] with static C, H and "
           "W, got " +
           first.str();
  if (isConvOp(kind)) {
    const TensorType &second = types[1];
    int64_t groups = 1;
    if (auto *g = attrAs<int64_t>(attrs, "groups"))
      groups = *g;
    if (groups < 1 || groups > (1 << 20))
      return std::string(op) + ": 'groups' must be a positive integer";
    std::pair<int64_t, int64_t> k;
    const TensorType *wt = kind == OpKind::Conv2DGradWeight ? nullptr : &second;
    if (wt) {
      if (wt->dtype != DType::F32 || wt->rank() != 4 || !staticElements(wt->shape) ||
          std::any_of(wt->shape.begin(), wt->shape.end(), [](const Dim &d) { return !d.isStatic() || d.size < 1; }))
        return std::string(op) + " expects static f32 weights [O, C/groups, KH, KW], got " + wt->str();
      k = {wt->shape[2].size, wt->shape[3].size};
    }
    auto w = readWindow(kind, attrs, wt ? &k : nullptr, err);
    if (!w)
      return err;
    if (kind == OpKind::Conv2D) {
      int64_t c = first.shape[1].size, o = wt->shape[0].size, cg = wt->shape[1].size;
      if (c % groups || o % groups)
        return "conv2d: " + std::to_string(c) + " input and " + std::to_string(o) +
               " output channels must both be divisible by groups = " + std::to_string(groups);
      if (cg * groups != c)
        return "conv2d: weights " + wt->str() + " expect " + std::to_string(cg * groups) + " input channels (" +
               std::to_string(cg) + " per group x " + std::to_string(groups) + " groups), but the input " +
               first.str() + " has " + std::to_string(c);
      int64_t oh = w->outH(first.shape[2].size), ow = w->outW(first.shape[3].size);
      if (oh < 1 || ow < 1)
        return "conv2d: a " + std::to_string(w->kh) + "x" + std::to_string(w->kw) + " kernel (dilation " +
               std::to_string(w->dh) + "x" + std::to_string(w->dw) + ") does not fit the padded " +
               std::to_string(first.shape[2].size + w->pt + w->pb) + "x" +
               std::to_string(first.shape[3].size + w->pl + w->pr) + " input " + first.str();
      return TensorType{DType::F32, {first.shape[0], Dim(o), Dim(oh), Dim(ow)}};
    }
    // The gradients: first is dy [N, O, OH, OW].
    auto size = kind == OpKind::Conv2DGradInput ? pairAttr(attrs, "size", 1, true, err, op) : std::nullopt;
    if (kind == OpKind::Conv2DGradInput && !size)
      return err;
    const TensorType *xt = kind == OpKind::Conv2DGradWeight ? &second : nullptr;
    if (xt && !isImageBatch(*xt))
      return std::string(op) +
             " expects an f32 batch of images [N, C, H, W] with static C, H "
             "and W, got " +
             xt->str();
    if (xt && xt->shape[0] != first.shape[0])
      return std::string(op) + ": dy " + first.str() + " and x " + xt->str() + " differ in batch size";
    int64_t h = xt ? xt->shape[2].size : size->first, wd = xt ? xt->shape[3].size : size->second;
    int64_t o = first.shape[1].size;
    int64_t c = xt ? xt->shape[1].size : wt->shape[1].size * groups;
    if (c % groups || o % groups || (wt && wt->shape[0].size != o))
      return std::string(op) + ": channels of " + first.str() + " and " + second.str() +
             " do not match groups = " + std::to_string(groups);
    if (first.shape[2].size != w->outH(h) || first.shape[3].size != w->outW(wd))
      return std::string(op) + ": dy " + first.str() + " is not the output size of a " + std::to_string(h) + "x" +
             std::to_string(wd) + " input under this window";
    if (kind == OpKind::Conv2DGradInput)
      return TensorType{DType::F32, {first.shape[0], Dim(c), Dim(h), Dim(wd)}};
    return TensorType{DType::F32, {Dim(o), Dim(c / groups), Dim(w->kh), Dim(w->kw)}};
  }
  auto w = readWindow(kind, attrs, nullptr, err);
  if (!w)
    return err;
  if (kind == OpKind::AvgPool2DGrad) {
    auto size = pairAttr(attrs, "size", 1, true, err, op);
    if (!size)
      return err;
    if (first.shape[2].size != w->outH(size->first) || first.shape[3].size != w->outW(size->second))
      return std::string(op) + ": dy " + first.str() + " is not the output size of a " + std::to_string(size->first) +
             "x" + std::to_string(size->second) + " input under this window";
    return TensorType{DType::F32, {first.shape[0], first.shape[1], Dim(size->first), Dim(size->second)}};
  }
  // x is the last operand of max_pool2d_grad and max_pool2d_pick.
  const TensorType &x = types.back();
  if (!isImageBatch(x))
    return std::string(op) +
           " expects an f32 batch of images [N, C, H, W] with static C, H and "
           "W, got " +
           x.str();
  int64_t oh = w->outH(x.shape[2].size), ow = w->outW(x.shape[3].size);
  if (oh < 1 || ow < 1)
    return std::string(op) + ": a " + std::to_string(w->kh) + "x" + std::to_string(w->kw) +
           " window does not fit the input " + x.str();
  TensorType pooled{DType::F32, {x.shape[0], x.shape[1], Dim(oh), Dim(ow)}};
  if (kind == OpKind::MaxPool2DGrad) {
    if (first != pooled)
      return "max_pool2d_grad: dy " + first.str() + " must have the pooled type " + pooled.str();
    return x;
  }
  if (kind == OpKind::MaxPool2DPick && first != x)
    return "max_pool2d_pick: the values " + first.str() + " and the keys " + x.str() + " must have one type";
  return pooled;
}

TypeOrError inferType(OpKind kind, const std::vector<TensorType> &types, const Attrs &attrs) {
  TypeOrError r = inferTypeUnchecked(kind, types, attrs);
  if (auto *t = std::get_if<TensorType>(&r))
    if (!staticElements(t->shape))
      return std::string(opInfo(kind).name) + ": the result " + t->str() + " would have more than 2^40 elements";
  return r;
}

static TypeOrError inferTypeUnchecked(OpKind kind, const std::vector<TensorType> &types, const Attrs &attrs) {
  const OpInfo &info = opInfo(kind);
  if (info.arity != kVariadic && types.size() != info.arity)
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
  case OpKind::Scan:
    return scanType(types, attrs);
  case OpKind::CausalMask:
  case OpKind::Sinusoid: {
    auto *sh = attrAs<Shape>(attrs, "shape");
    if (!sh || sh->size() < 2 || !std::all_of(sh->begin(), sh->end(), [](const Dim &d) { return d.isStatic(); }))
      return std::string(info.name) + " needs a static 'shape' attribute of at least two dimensions";
    if (auto err = checkShapeAttr(*sh); !err.empty())
      return err;
    if (kind == OpKind::Sinusoid && sh->size() != 2)
      return std::string("sinusoid: 'shape' must be [positions, features]");
    if (kind == OpKind::CausalMask && !attrAs<double>(attrs, "value"))
      return std::string("causal_mask needs a float 'value' attribute");
    return TensorType{DType::F32, *sh};
  }
  case OpKind::Add:
  case OpKind::Sub:
  case OpKind::Mul:
  case OpKind::Div:
  case OpKind::Maximum:
  case OpKind::Minimum:
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
  case OpKind::StopGradient:
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
    auto toElems = staticElements(*to);
    if (!toElems)
      return "reshape to " + shapeStr(*to) + ": the shape has more than 2^40 elements";
    if (toElems != staticElements(types[0].shape) || sortedSymbols(*to) != sortedSymbols(types[0].shape))
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
      return std::string("dropout_mask needs 'p' in [0, 1), a 'shape' and a "
                         "'stream' attribute");
    if (auto err = checkShapeAttr(*shape); !err.empty())
      return err;
    return TensorType{DType::F32, *shape};
  }
  case OpKind::Random: {
    if (types[0].dtype != DType::I64 || types[0].rank() != 0)
      return "random expects an i64[] seed, got " + types[0].str();
    const auto *dist = attrAs<std::string>(attrs, "dist");
    const auto *shape = attrAs<Shape>(attrs, "shape");
    if (!dist || (*dist != "uniform" && *dist != "normal") || !shape || !attrAs<int64_t>(attrs, "stream"))
      return std::string("random needs 'dist' (uniform or normal), a 'shape' and a 'stream' attribute");
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
        return "slice: [" + std::to_string(*p1) + ", " + std::to_string(*p2) +
               ") is not a non-empty range within the " + std::to_string(d.size) + " entries of axis " +
               std::to_string(*axis) + " of " + types[0].str();
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
      return "gather expects an f32 table [rows, features] with a static "
             "number of rows, got " +
             table.str();
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
      return "scatter_add expects updates [ids..., features] and i64 ids, "
             "got " +
             upd.str() + " and " + ids.str();
    return TensorType{DType::F32, {Dim(*rows), upd.shape.back()}};
  }
  case OpKind::MatMul: {
    for (size_t i = 0; i < 2; ++i)
      if (auto e = needF32(i); !e.empty())
        return e;
    const TensorType &ta_ = types[0], &tb_ = types[1];
    size_t rank = ta_.rank();
    if (rank < 2 || tb_.rank() != rank || !std::equal(ta_.shape.begin(), ta_.shape.end() - 2, tb_.shape.begin()))
      return "matmul expects two matrices, or two stacks of matrices with the same leading dimensions, got " +
             ta_.str() + " and " + tb_.str();
    bool ta = boolAttr(attrs, "ta"), tb = boolAttr(attrs, "tb");
    Dim m = ta_.shape[rank - (ta ? 1 : 2)], ka = ta_.shape[rank - (ta ? 2 : 1)];
    Dim kb = tb_.shape[rank - (tb ? 1 : 2)], n = tb_.shape[rank - (tb ? 2 : 1)];
    if (ka != kb)
      return "matmul: inner dimensions differ: " + ta_.str() + (ta ? "ᵀ" : "") + " times " + tb_.str() +
             (tb ? "ᵀ" : "") + " (" + ka.str() + " vs " + kb.str() + ")";
    Shape out(ta_.shape.begin(), ta_.shape.end() - 2);
    out.push_back(m);
    out.push_back(n);
    return TensorType{DType::F32, out};
  }
  case OpKind::Conv2D:
  case OpKind::Conv2DGradInput:
  case OpKind::Conv2DGradWeight:
  case OpKind::MaxPool2D:
  case OpKind::MaxPool2DGrad:
  case OpKind::MaxPool2DPick:
  case OpKind::AvgPool2D:
  case OpKind::AvgPool2DGrad:
    return windowOpType(kind, types, attrs);
  }
  return std::string("unknown op");
}

} // namespace nnc::ir
