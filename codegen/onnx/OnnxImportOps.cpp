// ONNX import, one translation per op: the node becomes a line of the .nn
// model (a builtin call over named tensors), an initializer, a shape value,
// or a view the next node takes in (see Val in OnnxImporter.h).
#include "codegen/onnx/OnnxImporter.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>

namespace nnc::onnxio::detail {
namespace {

bool isRecurrent(const std::string &op) { return op == "LSTM" || op == "GRU" || op == "RNN"; }

int64_t normAxis(int64_t axis, size_t rank) { return axis < 0 ? axis + int64_t(rank) : axis; }

runtime::Tensor transposed(const runtime::Tensor &t) {
  runtime::Tensor r(runtime::DType::F32, {t.dim(1), t.dim(0)});
  for (int64_t i = 0; i < t.dim(0); ++i)
    for (int64_t j = 0; j < t.dim(1); ++j)
      r.f32()[j * t.dim(0) + i] = t.f32()[i * t.dim(1) + j];
  return r;
}

runtime::Tensor vector1d(const runtime::Tensor &t) {
  runtime::Tensor r(runtime::DType::F32, {t.numel()});
  std::copy(t.f32(), t.f32() + t.numel(), r.f32());
  return r;
}

std::string list2(const std::vector<int64_t> &v) {
  return v[0] == v[1] ? std::to_string(v[0]) : fmt::format("[{}, {}]", v[0], v[1]);
}

} // namespace

void Importer::translate() {
  const std::string &op = node_->op_type();
  auto f32Init = [&](int i, size_t rank, const char *what) -> const runtime::Tensor & {
    const runtime::Tensor &t = init(i);
    if (t.dtype() != runtime::DType::F32 || (rank && t.rank() != rank))
      fail(fmt::format("its {} must be a float initializer of rank {}", what, rank));
    return t;
  };
  auto pass = [&](const Val &v) { out(0, v); };
  auto unary = [&](const std::string &fn) {
    const Val &x = tensor(0);
    std::string hint = fn == "softmax"                                   ? "probs"
                       : fn == "log_softmax"                             ? "log_probs"
                       : fn == "relu" || fn == "sigmoid" || fn == "tanh" ? "act"
                                                                         : "t";
    out(0, bind(hint, fmt::format("{}({})", fn, x.expr), x.shape));
  };

  if (op == "Constant") {
    Val v;
    v.kind = Val::Init;
    bool found = false;
    for (const auto &a : node_->attribute()) {
      if (a.name() == "value") {
        v.init = tensorOf(a.t(), fmt::format("the constant of node '{}'", node_->name()));
      } else if (a.name() == "value_float") {
        v.init = runtime::Tensor(runtime::DType::F32, {});
        v.init.f32()[0] = a.f();
      } else if (a.name() == "value_int") {
        v.init = runtime::Tensor(runtime::DType::I64, {});
        v.init.i64()[0] = a.i();
      } else if (a.name() == "value_ints") {
        v.init = runtime::Tensor(runtime::DType::I64, {int64_t(a.ints_size())});
        std::copy(a.ints().begin(), a.ints().end(), v.init.i64());
      } else {
        continue;
      }
      found = true;
    }
    if (!found)
      fail("a constant without a value, value_float, value_int or value_ints attribute");
    return out(0, v);
  }
  if (op == "Identity" || op == "Dropout") {
    if (op == "Dropout" && !readers(1).empty())
      fail("its mask output is read; nnc imports inference graphs");
    return pass(in(0));
  }
  if (op == "Shape") {
    const Val &x = in(0);
    if (x.kind != Val::Tensor && x.kind != Val::TimeMajor)
      fail("the shape of something other than a tensor");
    std::vector<int64_t> s = x.shape;
    if (x.kind == Val::TimeMajor)
      std::swap(s[0], s[1]);
    int64_t rank = int64_t(s.size());
    int64_t start = std::clamp(normAxis(attrInt("start", 0), s.size()), int64_t(0), rank);
    int64_t end = std::clamp(normAxis(attrInt("end", rank), s.size()), int64_t(0), rank);
    Val v;
    v.kind = Val::Ints;
    v.ints.assign(s.begin() + start, s.begin() + std::max(start, end));
    return out(0, v);
  }
  if (op == "Cast") {
    const Val &x = in(0);
    int64_t to = attrInt("to", 0);
    if (x.kind == Val::Ints || x.kind == Val::Init)
      return pass(x);
    bool toI64 = to == onnx::TensorProto::INT64, toF32 = to == onnx::TensorProto::FLOAT;
    if ((toI64 && tensor(0).i64) || (toF32 && !tensor(0).i64))
      return pass(x);
    fail("a cast between float and integer tensors (nnc casts only inside its builtins)");
  }
  if (op == "ConstantOfShape") {
    Val v;
    v.kind = Val::Zeros;
    (void)intsOf(0);
    for (const auto &a : node_->attribute())
      if (a.name() == "value") {
        runtime::Tensor t = tensorOf(a.t(), "the fill value");
        v.zero = t.numel() != 1 ? 1.0f : t.dtype() == runtime::DType::F32 ? t.f32()[0] : float(t.i64()[0]);
      }
    return out(0, v);
  }
  if (op == "Gather") {
    const Val &data = in(0);
    int64_t axis = attrInt("axis", 0);
    if (data.kind == Val::Ints) {
      Val v;
      v.kind = Val::Ints;
      std::vector<int64_t> idx = intsOf(1);
      v.scalar = in(1).kind == Val::Init ? in(1).init.rank() == 0 : in(1).scalar;
      for (int64_t i : idx) {
        int64_t k = normAxis(i, data.ints.size());
        if (k < 0 || k >= int64_t(data.ints.size()))
          fail("an index out of range of the shape");
        v.ints.push_back(data.ints[size_t(k)]);
      }
      return out(0, v);
    }
    if (data.kind == Val::Init) { // an embedding: rows of the table
      const runtime::Tensor &table = f32Init(0, 2, "table");
      const Val &ids = tensor(1);
      if (!ids.i64 || axis != 0)
        fail("an embedding needs int64 ids and axis 0");
      std::string name = layerName("emb");
      std::vector<int64_t> shape = ids.shape;
      shape.push_back(table.dim(1));
      Val v;
      v.expr = name;
      v.shape = shape;
      lines_.push_back(fmt::format("  {} = embedding({}, {}, {})", name, ids.expr, table.dim(0), table.dim(1)));
      weight(name + ".table", table);
      return out(0, v);
    }
    if (data.kind == Val::RnnYh && axis == 0 && intsOf(1) == std::vector<int64_t>{0})
      return out(0, recurrentLast(data.rnn));
    const Val &x = tensor(0);
    std::vector<int64_t> idx = intsOf(1);
    bool scalar = in(1).kind == Val::Init ? in(1).init.rank() == 0 : in(1).scalar;
    int64_t a = normAxis(axis, x.shape.size());
    if (a <= 0 || a >= int64_t(x.shape.size()) || idx.size() != 1)
      fail("a gather of one position along an axis other than the batch is what nnc imports");
    int64_t i = normAxis(idx[0], size_t(x.shape[size_t(a)]));
    if (i < 0 || i >= x.shape[size_t(a)])
      fail("an index out of range");
    std::string sliced = fmt::format("slice({}, {}, {}, {})", x.expr, a, i, i + 1);
    std::vector<int64_t> shape = x.shape;
    if (!scalar) {
      shape[size_t(a)] = 1;
      return out(0, bind("slice", sliced, shape));
    }
    shape.erase(shape.begin() + a);
    return out(0, bind("pick", fmt::format("reshape({}, {})", sliced, dimsText(shape)), shape));
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    const Val &x = in(0);
    std::vector<int64_t> axes = hasIn(1) ? intsOf(1) : attrInts("axes", {});
    if (x.kind == Val::Zeros) // an initial state of zeros, reshaped
      return pass(x);
    if (x.kind == Val::Ints) {
      Val v = x;
      v.scalar = op == "Squeeze";
      if ((op == "Unsqueeze" && !x.scalar) || (op == "Squeeze" && x.ints.size() != 1))
        fail("shape arithmetic nnc import does not follow");
      return out(0, v);
    }
    if (op == "Squeeze" && x.kind == Val::RnnY && axes == std::vector<int64_t>{1}) {
      Val v = x;
      v.kind = Val::RnnYSqueezed;
      return out(0, v);
    }
    if (op == "Squeeze" && x.kind == Val::RnnYh && axes == std::vector<int64_t>{0})
      return out(0, recurrentLast(x.rnn));
    const Val &t = tensor(0);
    std::vector<int64_t> shape = t.shape;
    if (op == "Squeeze") {
      size_t rank = shape.size();
      std::vector<bool> drop(rank, false);
      for (int64_t a : axes) {
        int64_t k = normAxis(a, rank);
        if (k <= 0 || k >= int64_t(rank) || shape[size_t(k)] != 1)
          fail("a squeeze of the batch or of an axis whose size is not 1");
        drop[size_t(k)] = true;
      }
      if (axes.empty())
        for (size_t k = 1; k < rank; ++k)
          drop[k] = shape[k] == 1;
      std::vector<int64_t> kept;
      for (size_t k = 0; k < rank; ++k)
        if (!drop[k])
          kept.push_back(shape[k]);
      shape = kept;
    } else {
      std::vector<int64_t> sorted = axes;
      for (int64_t &a : sorted)
        a = normAxis(a, shape.size() + axes.size());
      std::sort(sorted.begin(), sorted.end());
      for (int64_t a : sorted) {
        if (a <= 0 || a > int64_t(shape.size()))
          fail("an unsqueeze before the batch axis");
        shape.insert(shape.begin() + a, 1);
      }
    }
    return out(0, bind("reshaped", fmt::format("reshape({}, {})", t.expr, dimsText(shape)), shape));
  }
  if (op == "Concat") {
    int64_t axis = attrInt("axis", 0);
    if (in(0).kind == Val::Ints || in(0).kind == Val::Init) {
      Val v;
      v.kind = Val::Ints;
      for (int i = 0; i < node_->input_size(); ++i) {
        std::vector<int64_t> part = intsOf(i);
        v.ints.insert(v.ints.end(), part.begin(), part.end());
      }
      return out(0, v);
    }
    std::vector<std::string> parts;
    std::vector<int64_t> shape = tensor(0).shape;
    int64_t a = normAxis(axis, shape.size());
    if (a <= 0 || a >= int64_t(shape.size()))
      fail("a concatenation along the batch axis");
    shape[size_t(a)] = 0;
    for (int i = 0; i < node_->input_size(); ++i) {
      const Val &t = tensor(i);
      if (t.shape.size() != shape.size())
        fail("a concatenation of tensors of different ranks");
      shape[size_t(a)] += t.shape[size_t(a)];
      parts.push_back(t.expr);
    }
    return out(0, bind("concat", fmt::format("concat([{}], axis = {})", fmt::join(parts, ", "), a), shape));
  }
  if (op == "Reshape") {
    const Val &x = tensor(0);
    std::vector<int64_t> target = intsOf(1);
    if (attrInt("allowzero", 0) != 0)
      fail("allowzero = 1");
    int64_t staticIn = 1;
    for (int64_t d : x.shape)
      staticIn *= d == kBatch ? 1 : d;
    int64_t staticOut = 1, infer = -1;
    bool batch = false;
    for (size_t i = 0; i < target.size(); ++i) {
      if (target[i] == 0) {
        if (i >= x.shape.size())
          fail("a 0 in the shape past the input's rank");
        target[i] = x.shape[i];
      }
      if (target[i] == -1) {
        if (infer >= 0)
          fail("two -1 in the shape");
        infer = int64_t(i);
      } else if (target[i] == kBatch) {
        batch = true;
      } else if (target[i] < 1 || target[i] > kMaxDim) {
        fail(fmt::format("a size {} in the shape", target[i]));
      } else if ((staticOut *= target[i]) > kMaxElements) {
        fail("a shape too large");
      }
    }
    if (infer >= 0) {
      if (batch) {
        if (staticIn % staticOut)
          fail("a shape whose -1 does not divide the elements");
        target[size_t(infer)] = staticIn / staticOut;
      } else if (infer == 0 && staticOut == staticIn) {
        target[0] = kBatch;
      } else {
        fail("a reshape that does not keep the batch as the first axis");
      }
    }
    if (target.empty() || target[0] != kBatch || std::count(target.begin(), target.end(), kBatch) != 1)
      fail("a reshape that does not keep the batch as the first axis");
    if (target == x.shape)
      return pass(x);
    return out(0, bind("reshaped", fmt::format("reshape({}, {})", x.expr, dimsText(target)), target));
  }
  if (op == "Flatten") {
    const Val &x = tensor(0);
    if (normAxis(attrInt("axis", 1), x.shape.size()) != 1)
      fail("a flatten at an axis other than 1");
    if (x.shape.size() <= 2)
      return pass(x);
    int64_t n = 1;
    for (size_t i = 1; i < x.shape.size(); ++i)
      n *= x.shape[i];
    return out(0, bind("flat", fmt::format("flatten({})", x.expr), {kBatch, n}));
  }
  if (op == "Transpose") {
    const Val &x = in(0);
    std::vector<int64_t> perm = attrInts("perm", {});
    bool swap01 = perm == std::vector<int64_t>{1, 0, 2};
    if (x.kind == Val::RnnYSqueezed && swap01)
      return out(0, recurrentSequence(x.rnn));
    const Val &t = tensor(0);
    if (perm.empty())
      for (size_t i = t.shape.size(); i-- > 0;)
        perm.push_back(int64_t(i));
    if (swap01 && t.shape.size() == 3) {
      auto rs = readers(0);
      if (!rs.empty() && std::all_of(rs.begin(), rs.end(), [](auto *r) { return isRecurrent(r->op_type()); })) {
        Val v = t;
        v.kind = Val::TimeMajor;
        return out(0, v);
      }
    }
    if (perm.size() != t.shape.size() || perm[0] != 0)
      fail("a transpose that moves the batch axis");
    std::vector<int64_t> shape;
    for (int64_t p : perm) {
      if (p < 0 || p >= int64_t(t.shape.size()))
        fail("a permutation out of range");
      shape.push_back(t.shape[size_t(p)]);
    }
    return out(0, bind("permuted", fmt::format("permute({}, [{}])", t.expr, fmt::join(perm, ", ")), shape));
  }
  if (op == "Expand") {
    // tf2onnx's zero initial states: a zero scalar expanded to a shape.
    const Val &x = in(0);
    bool zero = x.kind == Val::Zeros ||
                (x.kind == Val::Init && x.init.numel() == 1 &&
                 (x.init.dtype() == runtime::DType::F32 ? x.init.f32()[0] == 0.0f : x.init.i64()[0] == 0));
    if (!zero)
      fail("an expand of anything but zeros (nnc has no constant tensors)");
    (void)intsOf(1);
    Val v;
    v.kind = Val::Zeros;
    return out(0, v);
  }
  if (op == "Pad") {
    std::vector<int64_t> pads = hasIn(1) ? intsOf(1) : attrInts("pads", {});
    if (std::any_of(pads.begin(), pads.end(), [](int64_t p) { return p != 0; }))
      fail("padding other than none (nnc pads inside conv2d and the pools)");
    return pass(in(0));
  }
  if (op == "Slice") {
    std::vector<int64_t> starts = intsOf(1), ends = intsOf(2);
    std::vector<int64_t> axes = hasIn(3) ? intsOf(3) : std::vector<int64_t>{};
    std::vector<int64_t> steps = hasIn(4) ? intsOf(4) : std::vector<int64_t>{};
    if (starts.size() != 1 || ends.size() != 1 || axes.size() > 1 || (steps.size() == 1 && steps[0] != 1))
      fail("a slice of more than one axis or with a step");
    const Val &x = in(0);
    if (x.kind == Val::RnnYSqueezed && !axes.empty() && axes[0] == 0) {
      // tf2onnx's last state: the time-major sequence's last step taken.
      const Recurrent &rec = recurrent_.at(size_t(x.rnn));
      int64_t t = rec.inputShape[1], at = rec.reverse ? 0 : t - 1;
      int64_t s0 = std::clamp(starts[0] < 0 ? starts[0] + t : starts[0], int64_t(0), t);
      int64_t e0 = std::clamp(ends[0] < 0 ? ends[0] + t : ends[0], int64_t(0), t);
      if (s0 != at || e0 != at + 1)
        fail("a slice of a recurrent layer's states other than its last step");
      Val v = x;
      v.kind = Val::RnnYh;
      return out(0, v);
    }
    if (x.kind == Val::Ints) {
      int64_t n = int64_t(x.ints.size());
      int64_t s = std::clamp(normAxis(starts[0], size_t(n)), int64_t(0), n);
      int64_t e = std::clamp(normAxis(ends[0], size_t(n)), int64_t(0), n);
      Val v;
      v.kind = Val::Ints;
      if (e > s)
        v.ints.assign(x.ints.begin() + s, x.ints.begin() + e);
      return out(0, v);
    }
    const Val &t = tensor(0);
    int64_t a = axes.empty() ? 0 : normAxis(axes[0], t.shape.size());
    if (a <= 0 || a >= int64_t(t.shape.size()))
      fail("a slice along the batch axis");
    int64_t n = t.shape[size_t(a)];
    int64_t s = std::clamp(starts[0] < 0 ? starts[0] + n : starts[0], int64_t(0), n);
    int64_t e = std::clamp(ends[0] < 0 ? ends[0] + n : ends[0], int64_t(0), n);
    if (e <= s)
      fail("an empty slice");
    std::vector<int64_t> shape = t.shape;
    shape[size_t(a)] = e - s;
    return out(0, bind("slice", fmt::format("slice({}, {}, {}, {})", t.expr, a, s, e), shape));
  }
  if (op == "Gemm") {
    const Val &a = tensor(0);
    if (a.shape.size() != 2 || attrInt("transA", 0) || attrFloat("alpha", 1) != 1.0f || attrFloat("beta", 1) != 1.0f)
      fail("a Gemm other than x·Wᵀ + b or x·W + b over [batch, features] (transA, alpha or beta)");
    const runtime::Tensor &b = f32Init(1, 2, "weights");
    runtime::Tensor w = attrInt("transB", 0) ? transposed(b) : b;
    if (w.dim(0) != a.shape[1])
      fail(fmt::format("weights {} for {} input features", b.typeString(), a.shape[1]));
    std::string name = layerName("fc");
    int64_t units = w.dim(1);
    if (hasIn(2)) {
      const runtime::Tensor &c = f32Init(2, 0, "bias");
      if (c.numel() != units)
        fail("a bias that is not one value per unit");
      weight(name + ".b", vector1d(c));
    }
    weight(name + ".w", w);
    lines_.push_back(fmt::format("  {} = dense({}, {}{})", name, a.expr, units, hasIn(2) ? "" : ", bias = false"));
    Val v;
    v.expr = v.logits = name;
    v.shape = {kBatch, units};
    return out(0, v);
  }
  if (op == "MatMul") {
    const Val &a = tensor(0);
    if (in(1).kind == Val::Tensor) {
      const Val &b = tensor(1);
      if (a.shape.size() != b.shape.size() || a.shape.size() < 2 ||
          !std::equal(a.shape.begin(), a.shape.end() - 2, b.shape.begin()))
        fail("a product of tensors whose leading axes differ");
      std::vector<int64_t> shape = a.shape;
      shape.back() = b.shape.back();
      return out(0, bind("product", fmt::format("matmul({}, {})", a.expr, b.expr), shape));
    }
    const runtime::Tensor &w = f32Init(1, 2, "weights");
    if (w.dim(0) != a.shape.back())
      fail(fmt::format("weights {} for {} input features", w.typeString(), a.shape.back()));
    int64_t units = w.dim(1);
    std::string name = layerName("fc");
    // torch writes Linear on [N, T, F] as MatMul then Add of the bias: one dense.
    auto rs = readers(0);
    const onnx::NodeProto *add = rs.size() == 1 && rs[0]->op_type() == "Add" ? rs[0] : nullptr;
    const runtime::Tensor *bias = nullptr;
    if (add && add->input_size() == 2) {
      int other = add->input(0) == node_->output(0) ? 1 : 0;
      auto it = values_.find(add->input(other));
      if (it != values_.end() && it->second.kind == Val::Init && it->second.init.dtype() == runtime::DType::F32 &&
          it->second.init.numel() == units && it->second.init.rank() <= 2)
        bias = &it->second.init;
    }
    weight(name + ".w", w);
    if (bias)
      weight(name + ".b", vector1d(*bias));
    lines_.push_back(fmt::format("  {} = dense({}, {}{})", name, a.expr, units, bias ? "" : ", bias = false"));
    Val v;
    v.expr = v.logits = name;
    v.shape = a.shape;
    v.shape.back() = units;
    if (!bias)
      return out(0, v);
    folded_.insert(add);
    values_[add->output(0)] = v;
    return;
  }
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") {
    const char *sym = op == "Add" ? "+" : op == "Sub" ? "-" : op == "Mul" ? "*" : "/";
    auto operand = [&](int i, std::vector<int64_t> &shape) -> std::string {
      const Val &v = in(i);
      if (v.kind == Val::Init && v.init.numel() == 1 && v.init.dtype() == runtime::DType::F32)
        return number(v.init.f32()[0]);
      const Val &t = tensor(i);
      shape = t.shape;
      return t.expr;
    };
    std::vector<int64_t> sa, sb;
    std::string a = operand(0, sa), b = operand(1, sb);
    if (sa.empty() && sb.empty())
      fail("arithmetic on constants alone");
    // numpy broadcasting of the two shapes
    std::vector<int64_t> shape(std::max(sa.size(), sb.size()), 1);
    for (size_t k = 0; k < shape.size(); ++k) {
      int64_t x = k < shape.size() - sa.size() ? 1 : sa[k - (shape.size() - sa.size())];
      int64_t y = k < shape.size() - sb.size() ? 1 : sb[k - (shape.size() - sb.size())];
      if (x != y && x != 1 && y != 1)
        fail("operands whose shapes do not broadcast");
      shape[k] = x == 1 ? y : x;
    }
    return out(0, bind(std::string(op == "Add"   ? "sum"
                                   : op == "Sub" ? "difference"
                                   : op == "Mul" ? "product"
                                                 : "quotient"),
                       fmt::format("{} {} {}", a, sym, b), shape));
  }
  if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Exp" || op == "Log" || op == "Sqrt" || op == "Abs") {
    std::string fn = op;
    std::transform(fn.begin(), fn.end(), fn.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return unary(fn);
  }
  if (op == "Neg") {
    const Val &x = tensor(0);
    return out(0, bind("negated", "-" + x.expr, x.shape));
  }
  if (op == "LeakyRelu" || op == "Elu") {
    const Val &x = tensor(0);
    bool leaky = op == "LeakyRelu";
    float alpha = attrFloat("alpha", leaky ? 0.01f : 1.0f);
    return out(0, bind("act",
                       fmt::format("{}({}, {} = {})", leaky ? "leaky_relu" : "elu", x.expr, leaky ? "slope" : "alpha",
                                   number(alpha)),
                       x.shape));
  }
  if (op == "Softmax" || op == "LogSoftmax") {
    const Val &x = tensor(0);
    if (normAxis(attrInt("axis", -1), x.shape.size()) != int64_t(x.shape.size()) - 1)
      fail("a softmax over an axis other than the last");
    std::string logits = x.expr;
    unary(op == "Softmax" ? "softmax" : "log_softmax");
    values_[node_->output(0)].logits = logits;
    return;
  }
  if (op == "Conv") {
    const Val &x = tensor(0);
    const runtime::Tensor &w = f32Init(1, 4, "weights");
    if (x.shape.size() != 4)
      fail("a convolution other than 2-D over [N, C, H, W]");
    std::vector<int64_t> k = {w.dim(2), w.dim(3)};
    std::vector<int64_t> pads = attrIntsIn("pads", {0, 0, 0, 0}, 0, kMaxDim),
                         strides = attrIntsIn("strides", {1, 1}, 1, kMaxDim),
                         dil = attrIntsIn("dilations", {1, 1}, 1, kMaxDim);
    std::string autoPad = attrString("auto_pad", "NOTSET");
    if ((autoPad != "NOTSET" && autoPad != "VALID") || pads.size() != 4 || pads[0] != pads[2] || pads[1] != pads[3] ||
        strides.size() != 2 || dil.size() != 2)
      fail("padding that differs between the two sides of an axis (nnc's is symmetric), or auto_pad");
    int64_t groups = attrInt("group", 1), o = w.dim(0);
    if (groups < 1 || groups > kMaxDim || w.dim(2) > kMaxDim || w.dim(3) > kMaxDim)
      fail("a group count or a kernel out of range");
    std::string name = layerName("conv");
    std::string call = fmt::format("conv2d({}, {}, {}", x.expr, o, list2(k));
    if (strides != std::vector<int64_t>{1, 1})
      call += ", stride = " + list2(strides);
    if (pads[0] || pads[1])
      call += ", padding = " + list2({pads[0], pads[1]});
    if (dil != std::vector<int64_t>{1, 1})
      call += ", dilation = " + list2(dil);
    if (groups != 1)
      call += fmt::format(", groups = {}", groups);
    if (!hasIn(2))
      call += ", bias = false";
    lines_.push_back(fmt::format("  {} = {})", name, call));
    weight(name + ".w", w);
    if (hasIn(2))
      weight(name + ".b", vector1d(f32Init(2, 1, "bias")));
    std::vector<int64_t> shape = {kBatch, o, 0, 0};
    for (int d = 0; d < 2; ++d)
      shape[size_t(2 + d)] = (x.shape[size_t(2 + d)] + 2 * pads[size_t(d)] - dil[size_t(d)] * (k[size_t(d)] - 1) - 1) /
                                 strides[size_t(d)] +
                             1;
    checkSize(shape);
    Val v;
    v.expr = name;
    v.shape = shape;
    return out(0, v);
  }
  if (op == "MaxPool" || op == "AveragePool") {
    const Val &x = tensor(0);
    std::vector<int64_t> k = attrIntsIn("kernel_shape", {}, 1, kMaxDim),
                         pads = attrIntsIn("pads", {0, 0, 0, 0}, 0, kMaxDim);
    std::vector<int64_t> strides = attrIntsIn("strides", {1, 1}, 1, kMaxDim),
                         dil = attrIntsIn("dilations", {1, 1}, 1, kMaxDim);
    if (x.shape.size() != 4 || k.size() != 2 || pads.size() != 4 || pads[0] != pads[2] || pads[1] != pads[3] ||
        strides.size() != 2 || dil != std::vector<int64_t>{1, 1} || attrInt("ceil_mode", 0) ||
        attrString("auto_pad", "NOTSET") != "NOTSET" || attrInt("storage_order", 0) || !readers(1).empty())
      fail("pooling other than 2-D with symmetric padding, no dilation and ceil_mode 0");
    if (op == "AveragePool" && (pads[0] || pads[1]) && !attrInt("count_include_pad", 0))
      fail("an average over padded windows that leaves the padding out (nnc counts it, as torch's default)");
    std::string fn = op == "MaxPool" ? "max_pool2d" : "avg_pool2d";
    std::string call = fmt::format("{}({}, {}, stride = {}", fn, x.expr, list2(k), list2(strides));
    if (pads[0] || pads[1])
      call += ", padding = " + list2({pads[0], pads[1]});
    std::vector<int64_t> shape = {kBatch, x.shape[1], 0, 0};
    for (int d = 0; d < 2; ++d)
      shape[size_t(2 + d)] = (x.shape[size_t(2 + d)] + 2 * pads[size_t(d)] - k[size_t(d)]) / strides[size_t(d)] + 1;
    return out(0, bind(op == "MaxPool" ? "pooled" : "averaged", call + ")", shape));
  }
  if (op == "GlobalAveragePool") {
    const Val &x = tensor(0);
    if (x.shape.size() != 4)
      fail("a global pool other than over [N, C, H, W]");
    std::vector<int64_t> shape = {kBatch, x.shape[1], 1, 1};
    return out(0, bind("averaged", fmt::format("reshape(global_avg_pool({}), {})", x.expr, dimsText(shape)), shape));
  }
  if (op == "LayerNormalization") {
    const Val &x = tensor(0);
    if (normAxis(attrInt("axis", -1), x.shape.size()) != int64_t(x.shape.size()) - 1 || !readers(1).empty() ||
        !readers(2).empty())
      fail("a layer norm over more than the last axis (or its statistics read)");
    int64_t d = x.shape.back();
    const runtime::Tensor &scale = f32Init(1, 1, "scale");
    if (scale.numel() != d)
      fail("a scale that is not one value per feature");
    runtime::Tensor shift(runtime::DType::F32, {d});
    if (hasIn(2) && f32Init(2, 1, "bias").numel() != d)
      fail("a bias that is not one value per feature");
    if (hasIn(2))
      shift = vector1d(f32Init(2, 1, "bias"));
    else
      std::fill(shift.f32(), shift.f32() + d, 0.0f);
    std::string name = layerName("norm");
    lines_.push_back(fmt::format("  {} = layer_norm({}, eps = {})", name, x.expr, number(attrFloat("epsilon", 1e-5f))));
    weight(name + ".scale", scale);
    weight(name + ".shift", shift);
    Val v = x;
    v.expr = name;
    return out(0, v);
  }
  if (op == "BatchNormalization") {
    const Val &x = tensor(0);
    if ((x.shape.size() != 2 && x.shape.size() != 4) || attrInt("training_mode", 0) || node_->output_size() > 1)
      fail("a batch norm other than in inference over [N, C] or [N, C, H, W]");
    std::string name = layerName("norm");
    const char *parts[] = {"scale", "shift", "running_mean", "running_var"};
    for (int i = 0; i < 4; ++i) {
      const runtime::Tensor &t = f32Init(1 + i, 1, parts[i]);
      if (t.numel() != x.shape[1])
        fail(fmt::format("a {} that is not one value per channel", parts[i]));
      weight(name + "." + parts[i], t);
    }
    lines_.push_back(fmt::format("  {} = batch_norm({}, momentum = {}, eps = {})", name, x.expr,
                                 number(1.0 - double(attrFloat("momentum", 0.9f))),
                                 number(attrFloat("epsilon", 1e-5f))));
    Val v = x;
    v.expr = name;
    return out(0, v);
  }
  if (isRecurrent(op)) {
    const Val &x = in(0);
    if (x.kind != Val::TimeMajor)
      fail("the input of a recurrent layer must be a batch-first tensor [N, T, F] made time-major by a transpose, as "
           "torch writes batch_first=True layers");
    std::string direction = attrString("direction", "forward");
    if (direction != "forward" && direction != "reverse")
      fail("a bidirectional layer (import it as two layers, or export each direction on its own)");
    if (hasAttr("clip") || attrInt("layout", 0) || attrInt("input_forget", 0) || hasIn(4) || hasIn(7))
      fail("clip, layout 1, input_forget, sequence lengths or peepholes");
    std::vector<std::string> acts;
    for (const auto &a : node_->attribute())
      if (a.name() == "activations")
        acts.assign(a.strings().begin(), a.strings().end());
    std::vector<std::string> dflt = op == "LSTM"  ? std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"}
                                    : op == "GRU" ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                  : std::vector<std::string>{"Tanh"};
    if (!acts.empty() && acts != dflt)
      fail("activations other than the default ones");
    if (op == "GRU" && attrInt("linear_before_reset", 0) != 1)
      fail("linear_before_reset = 0 (nnc's gru, as torch's, applies the reset gate after the recurrent product)");
    for (int i : {5, 6})
      if (hasIn(i) && !(in(i).kind == Val::Zeros && in(i).zero == 0.0f))
        fail("an initial state other than zeros");
    if (op == "LSTM" && !readers(2).empty())
      fail("its final cell state is read (nnc's lstm gives hidden states)");
    const runtime::Tensor &W = f32Init(1, 3, "input weights"), &R = f32Init(2, 3, "recurrent weights");
    int64_t h = attrInt("hidden_size", R.dim(2));
    if (h < 1 || h > kMaxDim || x.shape.size() != 3)
      fail("a hidden size out of range, or an input other than [N, T, F]");
    int64_t gates = op == "LSTM" ? 4 : op == "GRU" ? 3 : 1, f = x.shape[2];
    if (W.dim(0) != 1 || W.dim(1) != gates * h || W.dim(2) != f || R.dim(0) != 1 || R.dim(1) != gates * h ||
        R.dim(2) != h)
      fail(fmt::format("weights {} and {} for {} inputs and {} units", W.typeString(), R.typeString(), f, h));
    // nnc's gate k is ONNX's gate order[k]: lstm [i, f, g, o] from [i, o, f, c];
    // gru [r, z, n] from [z, r, h].
    std::vector<int64_t> order = op == "LSTM"  ? std::vector<int64_t>{0, 2, 3, 1}
                                 : op == "GRU" ? std::vector<int64_t>{1, 0, 2}
                                               : std::vector<int64_t>{0};
    runtime::Tensor wih(runtime::DType::F32, {f, gates * h}), whh(runtime::DType::F32, {h, gates * h});
    runtime::Tensor bih(runtime::DType::F32, {gates * h}), bhh(runtime::DType::F32, {gates * h});
    const runtime::Tensor *B = hasIn(3) ? &f32Init(3, 2, "biases") : nullptr;
    if (B && (B->dim(0) != 1 || B->dim(1) != 2 * gates * h))
      fail("biases of the wrong size");
    for (int64_t k = 0; k < gates; ++k)
      for (int64_t j = 0; j < h; ++j) {
        int64_t from = order[size_t(k)] * h + j, to = k * h + j;
        for (int64_t i = 0; i < f; ++i)
          wih.f32()[i * gates * h + to] = W.f32()[from * f + i];
        for (int64_t i = 0; i < h; ++i)
          whh.f32()[i * gates * h + to] = R.f32()[from * h + i];
        bih.f32()[to] = B ? B->f32()[from] : 0.0f;
        bhh.f32()[to] = B ? B->f32()[gates * h + from] : 0.0f;
      }
    Recurrent rec;
    rec.kind = op == "LSTM" ? "lstm" : op == "GRU" ? "gru" : "rnn";
    rec.input = x.expr;
    rec.inputShape = x.shape;
    rec.hidden = h;
    rec.reverse = direction == "reverse";
    rec.name = layerName(rec.kind);
    for (auto &[part, t] :
         {std::pair<const char *, runtime::Tensor *>{"w_ih", &wih}, {"w_hh", &whh}, {"b_ih", &bih}, {"b_hh", &bhh}})
      weight(rec.name + "." + part, *t);
    bool sequence = !readers(0).empty();
    std::string opts = rec.reverse ? ", reverse = true" : "";
    if (sequence) {
      lines_.push_back(fmt::format("  {} = {}({}, {}{})", rec.name, rec.kind, x.expr, h, opts));
      rec.sequence = rec.name;
    } else {
      lines_.push_back(fmt::format("  {} = {}({}, {}{}, output = \"last\")", rec.name, rec.kind, x.expr, h, opts));
      rec.last = rec.name;
    }
    recurrent_.push_back(rec);
    Val y, yh;
    y.kind = Val::RnnY;
    yh.kind = Val::RnnYh;
    y.rnn = yh.rnn = int(recurrent_.size() - 1);
    out(0, y);
    out(1, yh);
    return;
  }
  fail("no translation (a bug: the op is listed as supported)");
}

} // namespace nnc::onnxio::detail
