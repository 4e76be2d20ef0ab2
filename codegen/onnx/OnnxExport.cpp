// ONNX export of a predict function: one ONNX node (or a few) per IR op, the
// weights as initializers, scan loops as ONNX Scan with the loop body as a
// subgraph, and symbolic dimensions as dim_params whose sizes, where an op
// needs them as data (a constant or a broadcast of batch size N), are read
// from the inputs with Shape.
#include "codegen/onnx/OnnxExport.h"

#include "ir/ShapeRules.h"
#include "ir/Tables.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <fmt/format.h>

#include <cstring>
#include <set>
#include <unordered_map>

namespace nnc::onnxio {
namespace {

using onnx::AttributeProto;
using onnx::GraphProto;
using onnx::ModelProto;
using onnx::NodeProto;
using onnx::TensorProto;
using onnx::ValueInfoProto;

int32_t elemType(ir::DType t) { return t == ir::DType::F32 ? TensorProto::FLOAT : TensorProto::INT64; }

void setType(ValueInfoProto *vi, const ir::TensorType &t) {
  auto *tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elemType(t.dtype));
  auto *shape = tt->mutable_shape();
  for (const ir::Dim &d : t.shape) {
    auto *dim = shape->add_dim();
    if (d.isStatic())
      dim->set_dim_value(d.size);
    else
      dim->set_dim_param(d.sym);
  }
}

AttributeProto *attribute(NodeProto &n, const char *name, AttributeProto::AttributeType type) {
  AttributeProto *a = n.add_attribute();
  a->set_name(name);
  a->set_type(type);
  return a;
}
void attrInt(NodeProto &n, const char *name, int64_t v) { attribute(n, name, AttributeProto::INT)->set_i(v); }
void attrInts(NodeProto &n, const char *name, const std::vector<int64_t> &v) {
  AttributeProto *a = attribute(n, name, AttributeProto::INTS);
  for (int64_t x : v)
    a->add_ints(x);
}

/// A function being written as an ONNX graph: its nodes in order, and the
/// ONNX name of each IR value it has given one.
struct Graph {
  std::vector<NodeProto> nodes;
  std::unordered_map<const ir::Value *, std::string> names;
  ir::Users users;
  /// An lstm scan's result [T, N, 2H] (h and c) written as ONNX LSTM, which
  /// gives h alone: its slice of the first H columns is this name.
  std::unordered_map<const ir::Value *, std::string> hiddenOnly;
};

class Exporter {
public:
  explicit Exporter(ModelProto &model) : main_(*model.mutable_graph()) {}

  void run(const ir::Function &f, const std::map<std::string, runtime::Tensor> &tensors, const Preprocess &pre) {
    tensors_ = &tensors;
    Graph g;
    size_t feature = 0;
    for (size_t i = 0; i < f.args.size(); ++i) {
      const ir::Value *a = f.args[i];
      switch (f.argRoles[i]) {
      case ir::ArgRole::Input: {
        setType(main_.add_input(), a->type);
        for (size_t d = 0; d < a->type.rank(); ++d)
          if (!a->type.shape[d].isStatic())
            symbolSource_.emplace(a->type.shape[d].sym, std::make_pair(a->name, int64_t(d)));
        main_.mutable_input()->rbegin()->set_name(a->name);
        g.names[a] = a->type.dtype == ir::DType::F32 ? preprocessed(g, a, pre, feature) : a->name;
        break;
      }
      case ir::ArgRole::Param:
      case ir::ArgRole::State: {
        auto it = tensors.find(a->name);
        if (it == tensors.end())
          throw std::runtime_error(fmt::format("no value for the weights '{}'", a->name));
        initializer(a->name, it->second);
        g.names[a] = a->name;
        break;
      }
      case ir::ArgRole::Label:
      case ir::ArgRole::Scalar:
        throw ExportError({}, fmt::format("cannot export '{}': predict takes the {} '{}', which an ONNX model's caller "
                                          "does not have",
                                          f.name, ir::argRoleName(f.argRoles[i]), a->name));
      }
    }
    if (!pre.mean.empty() && feature != pre.mean.size())
      throw std::runtime_error(
          fmt::format("the data statistics have {} features, the f32 inputs {}", pre.mean.size(), feature));
    translate(g, f);
    for (size_t i = 0; i < f.results.size(); ++i) {
      node(g, "Identity", {value(g, f.results[i])}, f.resultNames[i]);
      ValueInfoProto *out = main_.add_output();
      out->set_name(f.resultNames[i]);
      setType(out, f.results[i]->type);
    }
    std::vector<NodeProto> all = std::move(prelude_);
    for (NodeProto &n : g.nodes)
      all.push_back(std::move(n));
    removeDead(all);
  }

private:
  /// Names a node reads, its subgraphs' reads from the outer scope included.
  static void reads(const NodeProto &n, std::set<std::string> &into) {
    for (const std::string &i : n.input())
      into.insert(i);
    for (const AttributeProto &a : n.attribute())
      if (a.has_g())
        for (const NodeProto &m : a.g().node())
          reads(m, into);
  }

  /// Puts `nodes` into the graph without those whose results nothing reads
  /// (a projection an LSTM op took over, shape arithmetic nobody needed),
  /// then drops the initializers nothing reads.
  void removeDead(std::vector<NodeProto> &nodes) {
    std::set<std::string> live;
    for (const ValueInfoProto &o : main_.output())
      live.insert(o.name());
    std::vector<bool> keep(nodes.size(), false);
    for (size_t k = nodes.size(); k-- > 0;) {
      for (const std::string &o : nodes[k].output())
        keep[k] = keep[k] || live.count(o);
      if (keep[k])
        reads(nodes[k], live);
    }
    for (size_t k = 0; k < nodes.size(); ++k)
      if (keep[k])
        *main_.add_node() = std::move(nodes[k]);
    auto *inits = main_.mutable_initializer();
    for (int k = inits->size(); k-- > 0;)
      if (!live.count(inits->Get(k).name()))
        inits->DeleteSubrange(k, 1);
  }

  GraphProto &main_;
  /// Nodes computing symbol sizes and shapes from the inputs: they depend on
  /// the graph's inputs and constants only, so they go first, where every
  /// subgraph can see them.
  std::vector<NodeProto> prelude_;
  std::map<std::string, std::pair<std::string, int64_t>> symbolSource_; ///< symbol -> (input, axis)
  std::map<std::string, std::string> symbols_;                          ///< symbol -> int64[1] of its size
  std::map<std::string, std::string> constants_;                        ///< int64 constants by their text
  const std::map<std::string, runtime::Tensor> *tensors_ = nullptr;
  int next_ = 0;

  std::string fresh(const std::string &hint) { return fmt::format("{}_{}", hint, next_++); }

  NodeProto &node(std::vector<NodeProto> &into, const char *type, const std::vector<std::string> &in,
                  const std::string &out) {
    NodeProto &n = into.emplace_back();
    n.set_op_type(type);
    n.set_name(out + "/" + type);
    for (const std::string &s : in)
      n.add_input(s);
    n.add_output(out);
    return n;
  }
  NodeProto &node(Graph &g, const char *type, const std::vector<std::string> &in, const std::string &out) {
    return node(g.nodes, type, in, out);
  }

  void initializer(const std::string &name, const runtime::Tensor &t) {
    TensorProto *p = main_.add_initializer();
    p->set_name(name);
    p->set_data_type(t.dtype() == runtime::DType::F32 ? TensorProto::FLOAT : TensorProto::INT64);
    for (int64_t d : t.shape())
      p->add_dims(d);
    p->set_raw_data(std::string(static_cast<const char *>(t.data()), t.bytes()));
  }

  std::string constF32(const std::vector<float> &v, const std::vector<int64_t> &dims, const std::string &hint) {
    std::string name = fresh(hint);
    TensorProto *p = main_.add_initializer();
    p->set_name(name);
    p->set_data_type(TensorProto::FLOAT);
    for (int64_t d : dims)
      p->add_dims(d);
    p->set_raw_data(std::string(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(float)));
    return name;
  }

  /// An int64 constant: 1-D, or a scalar with `scalar`.
  std::string constI64(const std::vector<int64_t> &v, bool scalar = false) {
    std::string key = fmt::format("{}{}", scalar ? "s" : "v", fmt::join(v, ","));
    auto it = constants_.find(key);
    if (it != constants_.end())
      return it->second;
    std::string name = fresh("const");
    TensorProto *p = main_.add_initializer();
    p->set_name(name);
    p->set_data_type(TensorProto::INT64);
    if (!scalar)
      p->add_dims(int64_t(v.size()));
    for (int64_t x : v)
      p->add_int64_data(x);
    constants_[key] = name;
    return name;
  }

  /// An int64[1] holding the size of symbol `sym`, read from an input.
  std::string symbol(const std::string &sym, SourceLoc at) {
    auto it = symbols_.find(sym);
    if (it != symbols_.end())
      return it->second;
    auto src = symbolSource_.find(sym);
    if (src == symbolSource_.end())
      throw ExportError(at, fmt::format("cannot export: the size '{}' is not a dimension of any input", sym));
    std::string name = fresh("size_" + sym);
    NodeProto &n = node(prelude_, "Shape", {src->second.first}, name);
    attrInt(n, "start", src->second.second);
    attrInt(n, "end", src->second.second + 1);
    return symbols_[sym] = name;
  }

  /// An int64 tensor of the sizes of `s`; for a reshape, one symbolic
  /// dimension among static ones is -1 (a constant instead of a Shape).
  std::string dims(const ir::Shape &s, bool reshape, SourceLoc at) {
    size_t symbolic = 0;
    for (const ir::Dim &d : s)
      symbolic += !d.isStatic();
    if (symbolic == 0 || (reshape && symbolic == 1)) {
      std::vector<int64_t> v;
      for (const ir::Dim &d : s)
        v.push_back(d.isStatic() ? d.size : -1);
      return constI64(v);
    }
    std::vector<std::string> parts;
    std::vector<int64_t> run;
    for (const ir::Dim &d : s) {
      if (d.isStatic()) {
        run.push_back(d.size);
        continue;
      }
      if (!run.empty())
        parts.push_back(constI64(run));
      run.clear();
      parts.push_back(symbol(d.sym, at));
    }
    if (!run.empty())
      parts.push_back(constI64(run));
    if (parts.size() == 1)
      return parts[0];
    std::string name = fresh("shape");
    attrInt(node(prelude_, "Concat", parts, name), "axis", 0);
    return name;
  }

  std::string value(Graph &g, const ir::Value *v) {
    auto it = g.names.find(v);
    if (it == g.names.end())
      throw std::runtime_error("ONNX export: a value is used before it is defined");
    return it->second;
  }

  /// Input `a` scaled and standardized as the data pipeline does.
  std::string preprocessed(Graph &g, const ir::Value *a, const Preprocess &pre, size_t &feature) {
    std::string x = a->name;
    for (double s : pre.scales) {
      std::string y = fresh(a->name + "_scaled");
      node(g, "Mul", {x, constF32({float(s)}, {}, "scale")}, y);
      x = y;
    }
    if (pre.mean.empty())
      return x;
    std::vector<int64_t> rowDims{1};
    size_t per = 1;
    for (size_t d = 1; d < a->type.rank(); ++d) {
      if (!a->type.shape[d].isStatic())
        throw ExportError({}, fmt::format("cannot export: the input '{}' {} is standardized but has a symbolic size "
                                          "after the batch",
                                          a->name, a->type.str()));
      rowDims.push_back(a->type.shape[d].size);
      per *= size_t(a->type.shape[d].size);
    }
    if (feature + per > pre.mean.size() || feature + per > pre.stddev.size())
      throw std::runtime_error("the data statistics have fewer features than the inputs");
    std::vector<float> mean(pre.mean.begin() + long(feature), pre.mean.begin() + long(feature + per));
    std::vector<float> sd(pre.stddev.begin() + long(feature), pre.stddev.begin() + long(feature + per));
    feature += per;
    std::string centred = fresh(a->name + "_centred"), out = fresh(a->name + "_standardized");
    node(g, "Sub", {x, constF32(mean, rowDims, "data_mean")}, centred);
    node(g, "Div", {centred, constF32(sd, rowDims, "data_stddev")}, out);
    return out;
  }

  void translate(Graph &g, const ir::Function &f) {
    g.users = ir::usersOf(f);
    for (const auto &op : f.ops)
      g.names[op->result] = translate(g, *op);
  }

  [[noreturn]] void unsupported(const ir::Op &op, const std::string &why) {
    throw ExportError(op.loc, fmt::format("cannot export '{}' to ONNX: {}", ir::opName(op.kind), why));
  }

  std::string translate(Graph &g, const ir::Op &op) {
    using K = ir::OpKind;
    std::string out = fresh(ir::opName(op.kind));
    auto in = [&](size_t i) { return value(g, op.operand(i)); };
    auto simple = [&](const char *type) {
      std::vector<std::string> ins;
      for (size_t i = 0; i < op.operands.size(); ++i)
        ins.push_back(in(i));
      return &node(g, type, ins, out);
    };
    auto toFloat = [&](const char *type, std::vector<std::string> ins) {
      std::string b = fresh(std::string(ir::opName(op.kind)) + "_bool");
      node(g, type, ins, b);
      attrInt(node(g, "Cast", {b}, out), "to", TensorProto::FLOAT);
    };
    switch (op.kind) {
    case K::Const: {
      // value / the product of `divisor`'s sizes (e.g. 1/N): static sizes
      // folded as codegen folds them, symbolic ones divided at run time
      double v = op.getFloat("value");
      std::vector<std::string> divideBy;
      for (const ir::Dim &d : op.getShape("divisor")) {
        if (d.isStatic()) {
          v /= double(d.size);
          continue;
        }
        std::string scalar = fresh("size"), f = fresh("size_f32"); // a scalar: [] / [1] would be [1]
        node(prelude_, "Reshape", {symbol(d.sym, op.loc), constI64({})}, scalar);
        attrInt(node(prelude_, "Cast", {scalar}, f), "to", TensorProto::FLOAT);
        divideBy.push_back(f);
      }
      std::string c = divideBy.empty() ? out : fresh("const");
      NodeProto &n = node(g, "ConstantOfShape", {dims(op.result->type.shape, false, op.loc)}, c);
      TensorProto *t = attribute(n, "value", AttributeProto::TENSOR)->mutable_t();
      t->set_data_type(TensorProto::FLOAT);
      t->add_dims(1);
      t->add_float_data(float(v));
      for (size_t i = 0; i < divideBy.size(); ++i) {
        std::string q = i + 1 == divideBy.size() ? out : fresh("const");
        node(g, "Div", {c, divideBy[i]}, q);
        c = q;
      }
      break;
    }
    case K::CausalMask:
    case K::Sinusoid: {
      std::vector<int64_t> shape;
      for (const ir::Dim &d : op.result->type.shape)
        shape.push_back(d.size);
      std::string c = constF32(ir::tableValues(op), shape, ir::opName(op.kind));
      node(g, "Identity", {c}, out);
      break;
    }
    case K::Add:
      simple("Add");
      break;
    case K::Sub:
      simple("Sub");
      break;
    case K::Mul:
      simple("Mul");
      break;
    case K::Div:
      simple("Div");
      break;
    case K::Maximum:
      simple("Max");
      break;
    case K::Minimum:
      simple("Min");
      break;
    case K::Equal:
      toFloat("Equal", {in(0), in(1)});
      break;
    case K::Neg:
      simple("Neg");
      break;
    case K::Exp:
      simple("Exp");
      break;
    case K::Log:
      simple("Log");
      break;
    case K::Sqrt:
      simple("Sqrt");
      break;
    case K::Abs:
      simple("Abs");
      break;
    case K::Sign:
      simple("Sign");
      break;
    case K::Step:
      toFloat("Greater", {in(0), constF32({0.0f}, {}, "zero")});
      break;
    case K::Relu:
      simple("Relu");
      break;
    case K::StopGradient:
      simple("Identity");
      break;
    case K::Sigmoid:
      simple("Sigmoid");
      break;
    case K::Tanh:
      simple("Tanh");
      break;
    case K::Erf:
      simple("Erf");
      break;
    case K::Cast:
      attrInt(*simple("Cast"), "to", TensorProto::FLOAT);
      break;
    case K::ReduceSum:
    case K::ReduceMean:
    case K::ReduceMax: {
      std::vector<int64_t> axes = op.getInts("axes");
      if (axes.empty()) {
        simple("Identity");
        break;
      }
      NodeProto *n;
      if (op.kind == K::ReduceSum) { // axes became an input in opset 13
        n = &node(g, "ReduceSum", {in(0), constI64(axes)}, out);
      } else {
        n = simple(op.kind == K::ReduceMean ? "ReduceMean" : "ReduceMax");
        attrInts(*n, "axes", axes);
      }
      attrInt(*n, "keepdims", op.getBool("keepdims") ? 1 : 0);
      break;
    }
    case K::Softmax:
      attrInt(*simple("Softmax"), "axis", -1);
      break;
    case K::LogSoftmax:
      attrInt(*simple("LogSoftmax"), "axis", -1);
      break;
    case K::ArgMax: {
      NodeProto *n = simple("ArgMax");
      attrInt(*n, "axis", -1);
      attrInt(*n, "keepdims", 0);
      break;
    }
    case K::OneHot: {
      NodeProto &n = node(g, "OneHot",
                          {in(0), constI64({op.getInt("classes")}, true), constF32({0.0f, 1.0f}, {2}, "off_on")}, out);
      attrInt(n, "axis", -1);
      break;
    }
    case K::Broadcast:
      node(g, "Expand", {in(0), dims(op.getShape("shape"), false, op.loc)}, out);
      break;
    case K::Reshape:
      node(g, "Reshape", {in(0), dims(op.getShape("shape"), true, op.loc)}, out);
      break;
    case K::Transpose:
      attrInts(*simple("Transpose"), "perm", op.getInts("perm"));
      break;
    case K::ModeSelect:
      node(g, "Identity", {in(1)}, out);
      break; // inference: the second operand
    case K::Slice: {
      int64_t axis = op.getInt("axis");
      if (auto h = g.hiddenOnly.find(op.operand(0)); h != g.hiddenOnly.end() && axis == 2 && op.getInt("start") == 0 &&
                                                     op.getInt("end") == op.result->type.shape[2].size) {
        node(g, "Identity", {h->second}, out);
        break;
      }
      node(g, "Slice", {in(0), constI64({op.getInt("start")}), constI64({op.getInt("end")}), constI64({axis})}, out);
      break;
    }
    case K::Pad: {
      int64_t rank = int64_t(op.result->type.rank()), axis = op.getInt("axis");
      std::vector<int64_t> pads(size_t(2 * rank), 0);
      pads[size_t(axis)] = op.getInt("before");
      pads[size_t(rank + axis)] = op.getInt("after");
      node(g, "Pad", {in(0), constI64(pads)}, out);
      break;
    }
    case K::Concat:
      attrInt(*simple("Concat"), "axis", op.getInt("axis"));
      break;
    case K::Gather:
      attrInt(node(g, "Gather", {in(0), in(1)}, out), "axis", 0);
      break;
    case K::MatMul: {
      // ta / tb: the operand's last two axes swapped first
      auto side = [&](size_t i, const char *flag) {
        // A weight broadcast over the batch (dense over [N, T, F]): ONNX's
        // MatMul broadcasts by itself, and an Expand would copy the weight
        // per example.
        const ir::Value *v = op.operand(i);
        if (v->def && v->def->kind == ir::OpKind::Broadcast && !op.getBool(flag) &&
            v->def->operand(0)->type.rank() == 2)
          return value(g, v->def->operand(0));
        if (!op.getBool(flag))
          return in(i);
        std::vector<int64_t> perm;
        int64_t rank = int64_t(op.operand(i)->type.rank());
        for (int64_t d = 0; d < rank; ++d)
          perm.push_back(d < rank - 2 ? d : d == rank - 2 ? rank - 1 : rank - 2);
        std::string t = fresh("transposed");
        attrInts(node(g, "Transpose", {in(i)}, t), "perm", perm);
        return t;
      };
      std::string a = side(0, "ta"), b = side(1, "tb");
      node(g, "MatMul", {a, b}, out);
      break;
    }
    case K::Scan:
      if (!recurrent(g, op, out))
        scan(g, op, out);
      break;
    case K::Conv2D:
    case K::MaxPool2D:
    case K::AvgPool2D:
      window(g, op, out);
      break;
    case K::DropoutMask:
      unsupported(op, "a random mask has no place in inference (dropout should be gone from predict)");
    case K::Random:
      unsupported(op, "the export does not write noise drawn inside the model (normal, uniform) yet");
    case K::ScatterAdd:
    case K::Conv2DGradInput:
    case K::Conv2DGradWeight:
    case K::MaxPool2DGrad:
    case K::MaxPool2DPick:
    case K::AvgPool2DGrad:
      unsupported(op, "it belongs to a gradient, which inference does not compute");
    }
    return out;
  }

  void window(Graph &g, const ir::Op &op, const std::string &out) {
    ir::Window2D w = ir::window2DOf(op);
    NodeProto *n;
    if (op.kind == ir::OpKind::Conv2D) {
      n = &node(g, "Conv", {value(g, op.operand(0)), value(g, op.operand(1))}, out);
      attrInts(*n, "dilations", {w.dh, w.dw});
      attrInt(*n, "group", op.getInt("groups", 1));
    } else {
      n = &node(g, op.kind == ir::OpKind::MaxPool2D ? "MaxPool" : "AveragePool", {value(g, op.operand(0))}, out);
      if (op.kind == ir::OpKind::AvgPool2D)
        attrInt(*n, "count_include_pad", 1); // nnc divides by the window's size
    }
    attrInts(*n, "kernel_shape", {w.kh, w.kw});
    attrInts(*n, "strides", {w.sh, w.sw});
    attrInts(*n, "pads", {w.pt, w.pl, w.pb, w.pr});
  }

  /// The weight `v` holds, when it is a parameter argument.
  const runtime::Tensor *paramValue(const ir::Value *v) const {
    if (!v || v->def || v->argIndex < 0)
      return nullptr;
    auto it = tensors_->find(v->name);
    return it == tensors_->end() ? nullptr : &it->second;
  }

  /// A scan an rnn, lstm or gru builtin made (its `cell` attribute), with a
  /// zero initial state and only its hidden states read, as ONNX's RNN, LSTM
  /// or GRU op: the weights in ONNX's gate orders ([i, o, f, c] and
  /// [z, r, h] from nnc's [i, f, g, o] and [r, z, n]). When the input
  /// projection x·W_ih + b_ih (+ b_hh) before the scan is the builtin's,
  /// ONNX's op takes x and the weights; otherwise the projected sequence
  /// with a permutation as W. False: the scan is written as Scan instead.
  bool recurrent(Graph &g, const ir::Op &op, const std::string &out) {
    std::string cell = op.getString("cell");
    if (cell.empty() || op.getString("mode") != "carry" || op.getInt("nseq") != 1 || op.operands.size() < 3)
      return false;
    bool gru = cell == "gru", lstm = cell == "lstm";
    int64_t h = op.getInt("units"), G = lstm ? 4 : gru ? 3 : 1;
    const ir::Value *init = op.operand(0), *xw = op.operand(1);
    const runtime::Tensor *whh = paramValue(op.operand(2));
    const runtime::Tensor *bhhGru = gru && op.operands.size() == 4 ? paramValue(op.operand(3)) : nullptr;
    if (!whh || whh->rank() != 2 || whh->dim(0) != h || whh->dim(1) != G * h || (gru && !bhhGru) ||
        op.operands.size() != (gru ? 4u : 3u))
      return false;
    if (!init->def || init->def->kind != ir::OpKind::Const || init->def->getFloat("value") != 0.0)
      return false;
    for (const ir::Op *user : g.users[op.result]) // lstm: only h may be read
      if (lstm && (user->kind != ir::OpKind::Slice || user->getInt("axis") != 2 || user->getInt("start") != 0 ||
                   user->getInt("end") != h))
        return false;
    // The builtin's projection: [add(] add(matmul(xs, broadcast(w_ih)), b_ih) [, b_hh)].
    auto addOf = [&](const ir::Value *v, const runtime::Tensor *&b) -> const ir::Value * {
      if (!v || !v->def || v->def->kind != ir::OpKind::Add)
        return nullptr;
      for (size_t k = 0; k < 2; ++k)
        if (const runtime::Tensor *p = paramValue(v->def->operand(k)); p && p->rank() == 1 && p->dim(0) == G * h) {
          b = p;
          return v->def->operand(1 - k);
        }
      return nullptr;
    };
    const runtime::Tensor *bih = nullptr, *bhh = nullptr, *wih = nullptr;
    const ir::Value *m = addOf(gru ? xw : addOf(xw, bhh), bih), *xs = xw;
    if (m && m->def && m->def->kind == ir::OpKind::MatMul && !m->def->getBool("ta") && !m->def->getBool("tb")) {
      const ir::Value *w = m->def->operand(1);
      if (w->def && w->def->kind == ir::OpKind::Broadcast)
        w = w->def->operand(0);
      wih = paramValue(w);
      if (wih && wih->rank() == 2 && wih->dim(1) == G * h)
        xs = m->def->operand(0);
      else
        wih = nullptr;
    }
    if (!wih)
      bih = bhh = nullptr; // (they are inside the projected sequence)
    // ONNX block b takes nnc's block from(b).
    auto from = [&](int64_t b) -> int64_t {
      if (lstm)
        return b == 0 ? 0 : b == 1 ? 3 : b == 2 ? 1 : 2;
      if (gru)
        return b == 0 ? 1 : b == 1 ? 0 : 2;
      return 0;
    };
    int64_t in = wih ? wih->dim(0) : G * h;
    std::vector<float> W(size_t(G * h * in), 0.0f), R(size_t(G * h * h)), B(size_t(2 * G * h), 0.0f);
    for (int64_t b = 0; b < G; ++b)
      for (int64_t j = 0; j < h; ++j) {
        int64_t row = b * h + j, col = from(b) * h + j;
        for (int64_t i = 0; i < in; ++i)
          W[size_t(row * in + i)] = wih ? wih->f32()[i * G * h + col] : float(i == col);
        for (int64_t k = 0; k < h; ++k)
          R[size_t(row * h + k)] = whh->f32()[k * G * h + col];
        if (bih)
          B[size_t(row)] = bih->f32()[col];
        if (gru)
          B[size_t(G * h + row)] = bhhGru->f32()[col];
        else if (bhh)
          B[size_t(G * h + row)] = bhh->f32()[col];
      }
    std::string y = fresh(cell + "_y"), hidden = lstm ? fresh(cell + "_hidden") : out;
    std::vector<std::string> ins = {value(g, xs), constF32(W, {1, G * h, in}, cell + "_W"),
                                    constF32(R, {1, G * h, h}, cell + "_R"), constF32(B, {1, 2 * G * h}, cell + "_B")};
    NodeProto &n = node(g, lstm ? "LSTM" : gru ? "GRU" : "RNN", ins, y);
    attrInt(n, "hidden_size", h);
    if (gru)
      attrInt(n, "linear_before_reset", 1);
    if (op.getBool("reverse"))
      attribute(n, "direction", AttributeProto::STRING)->set_s("reverse");
    node(g, "Squeeze", {y, constI64({1})}, hidden); // Y [T, 1, N, H] -> [T, N, H]
    if (lstm)
      g.hiddenOnly[op.result] = hidden; // (`out`, h and c, is never read)
    return true;
  }

  /// scan as ONNX Scan: the carry is Scan's state variable (and, copied, its
  /// per-step output); mode sum keeps the running sum as the state; the
  /// loop-invariant operands are read by the body from the outer scope.
  void scan(Graph &g, const ir::Op &op, const std::string &out) {
    const ir::Function &body = *op.body;
    std::string mode = op.getString("mode");
    bool carry = mode == "carry", sum = mode == "sum", reverse = op.getBool("reverse");
    size_t nseq = size_t(op.getInt("nseq")), first = carry ? 1 : 0;
    Graph b;
    GraphProto sub;
    sub.set_name(fresh(body.name));
    std::string state;
    std::vector<std::string> ins;
    if (carry || sum) {
      state = fresh(carry ? "carry" : "sum");
      ValueInfoProto *vi = sub.add_input();
      vi->set_name(state);
      ir::TensorType t = carry ? body.args[0]->type : op.result->type;
      setType(vi, t);
      if (carry) {
        b.names[body.args[0]] = state;
        ins.push_back(value(g, op.operand(0)));
      } else {
        std::string zeros = fresh("zeros");
        NodeProto &z = node(g, "ConstantOfShape", {dims(op.result->type.shape, false, op.loc)}, zeros);
        TensorProto *zt = attribute(z, "value", AttributeProto::TENSOR)->mutable_t();
        zt->set_data_type(TensorProto::FLOAT);
        zt->add_dims(1);
        zt->add_float_data(0.0f);
        ins.push_back(zeros);
      }
    }
    for (size_t i = 0; i < nseq; ++i) {
      const ir::Value *arg = body.args[first + i];
      std::string name = fresh(arg->name.empty() ? "step" : arg->name);
      ValueInfoProto *vi = sub.add_input();
      vi->set_name(name);
      setType(vi, arg->type);
      b.names[arg] = name;
      ins.push_back(value(g, op.operand(first + i)));
    }
    for (size_t i = first + nseq; i < op.operands.size(); ++i)
      b.names[body.args[i]] = value(g, op.operand(i));
    translate(b, body);
    std::string res = value(b, body.results.at(0));
    std::vector<std::string> outs;
    auto output = [&](const std::string &name, const ir::TensorType &t) {
      ValueInfoProto *vi = sub.add_output();
      vi->set_name(name);
      setType(vi, t);
    };
    if (carry) {
      std::string next = fresh("carry_next"), step = fresh("step_out");
      node(b, "Identity", {res}, next);
      node(b, "Identity", {res}, step);
      output(next, body.results[0]->type);
      output(step, body.results[0]->type);
      outs = {fresh("carry_last"), out};
    } else if (sum) {
      std::string next = fresh("sum_next");
      node(b, "Add", {state, res}, next);
      output(next, op.result->type);
      outs = {out};
    } else {
      std::string step = fresh("step_out");
      node(b, "Identity", {res}, step);
      output(step, body.results[0]->type);
      outs = {out};
    }
    for (NodeProto &n : b.nodes)
      *sub.add_node() = std::move(n);
    NodeProto &n = g.nodes.emplace_back();
    n.set_op_type("Scan");
    n.set_name(out + "/Scan");
    for (const std::string &s : ins)
      n.add_input(s);
    for (const std::string &s : outs)
      n.add_output(s);
    *attribute(n, "body", AttributeProto::GRAPH)->mutable_g() = std::move(sub);
    attrInt(n, "num_scan_inputs", int64_t(nseq));
    if (reverse) {
      attrInts(n, "scan_input_directions", std::vector<int64_t>(nseq, 1));
      if (!sum)
        attrInts(n, "scan_output_directions", {1});
    }
  }
};

} // namespace

std::string exportOnnx(const ir::Function &predict, const std::map<std::string, runtime::Tensor> &tensors,
                       const Preprocess &pre, const ExportOptions &opts) {
  ModelProto model;
  model.set_ir_version(8); // the IR version of opset 17 (ONNX 1.12)
  model.set_producer_name("nnc");
  model.set_producer_version(opts.producerVersion);
  auto *opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  model.mutable_graph()->set_name(opts.graphName);
  for (const auto &[k, v] : opts.metadata) {
    auto *p = model.add_metadata_props();
    p->set_key(k);
    p->set_value(v);
  }
  Exporter(model).run(predict, tensors, pre);
  // What ONNX's own tools would refuse is refused here, before a file is
  // written: the checker, then type and shape inference with errors on.
  try {
    onnx::checker::check_model(model);
    ModelProto inferred = model;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception &e) {
    throw std::runtime_error(fmt::format("the ONNX model nnc wrote fails ONNX's checks (a bug in nnc): {}", e.what()));
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw std::runtime_error("the ONNX model is too large to serialize (over 2 GB)");
  return bytes;
}

} // namespace nnc::onnxio
