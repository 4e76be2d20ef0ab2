// ONNX import, the reader and the writer: checks the file, reads its
// initializers and inputs, walks the nodes in order (each translated by
// OnnxImportOps.cpp) and writes the .nn text with a guessed label and loss.
#include "codegen/onnx/OnnxImporter.h"

#include "frontend/Builtins.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstring>

namespace nnc::onnxio {
namespace detail {

namespace {

const std::set<std::string> &supportedOps() {
  static const std::set<std::string> ops = {"Gemm",
                                            "MatMul",
                                            "Add",
                                            "Sub",
                                            "Mul",
                                            "Div",
                                            "Relu",
                                            "Sigmoid",
                                            "Tanh",
                                            "Exp",
                                            "Log",
                                            "Sqrt",
                                            "Abs",
                                            "Neg",
                                            "LeakyRelu",
                                            "Elu",
                                            "Softmax",
                                            "LogSoftmax",
                                            "Conv",
                                            "MaxPool",
                                            "AveragePool",
                                            "GlobalAveragePool",
                                            "Flatten",
                                            "Reshape",
                                            "Transpose",
                                            "Squeeze",
                                            "Unsqueeze",
                                            "Concat",
                                            "Gather",
                                            "Shape",
                                            "Constant",
                                            "ConstantOfShape",
                                            "Cast",
                                            "Identity",
                                            "Dropout",
                                            "LayerNormalization",
                                            "BatchNormalization",
                                            "LSTM",
                                            "GRU",
                                            "RNN",
                                            "Pad",
                                            "Slice",
                                            "Expand"};
  return ops;
}

bool reservedWord(const std::string &s) {
  static const std::set<std::string> words = {"as",     "input",  "label", "layer", "loss",    "model",
                                              "output", "return", "train", "N",     "weights", "params"};
  if (words.count(s))
    return true;
  for (const frontend::Builtin &b : frontend::builtins())
    if (s == b.name)
      return true;
  return false;
}

/// `s` made an identifier: letters, digits and '_', not starting with a digit.
std::string identifier(const std::string &s) {
  std::string r;
  for (char c : s) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    if (ok)
      r += c;
    else if (!r.empty() && r.back() != '_')
      r += '_';
  }
  while (!r.empty() && r.back() == '_')
    r.pop_back();
  if (r.empty() || std::isdigit(static_cast<unsigned char>(r[0])))
    r = "t" + r;
  return r;
}

} // namespace

runtime::Tensor tensorOf(const onnx::TensorProto &t, const std::string &what) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    throw ImportError(fmt::format("{} keeps its data in an external file, which nnc import does not read", what));
  std::vector<int64_t> dims;
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0 || (d && n > (int64_t(1) << 31) / d))
      throw ImportError(fmt::format("{} has an invalid or too large shape", what));
    dims.push_back(d);
    n *= d;
  }
  int type = t.data_type();
  bool isFloat = type == onnx::TensorProto::FLOAT || type == onnx::TensorProto::DOUBLE;
  bool isInt = type == onnx::TensorProto::INT64 || type == onnx::TensorProto::INT32 || type == onnx::TensorProto::BOOL;
  if (!isFloat && !isInt)
    throw ImportError(fmt::format("{} has element type {} (nnc imports float, double, int64, int32 and bool)", what,
                                  onnx::TensorProto::DataType_Name(onnx::TensorProto::DataType(type))));
  runtime::Tensor r(isFloat ? runtime::DType::F32 : runtime::DType::I64, dims);
  size_t size = type == onnx::TensorProto::FLOAT || type == onnx::TensorProto::INT32 ? 4
                : type == onnx::TensorProto::BOOL                                    ? 1
                                                                                     : 8;
  auto mismatch = [&](size_t have) {
    if (have != size_t(n))
      throw ImportError(fmt::format("{} holds {} values for its shape of {}", what, have, n));
  };
  if (t.has_raw_data()) {
    const std::string &raw = t.raw_data();
    if (raw.size() != size_t(n) * size)
      throw ImportError(fmt::format("{} holds {} bytes of data for {} values", what, raw.size(), n));
    for (int64_t i = 0; i < n; ++i) {
      const char *p = raw.data() + size_t(i) * size;
      switch (type) {
      case onnx::TensorProto::FLOAT:
        std::memcpy(r.f32() + i, p, 4);
        break;
      case onnx::TensorProto::DOUBLE: {
        double v;
        std::memcpy(&v, p, 8);
        r.f32()[i] = float(v);
        break;
      }
      case onnx::TensorProto::INT64:
        std::memcpy(r.i64() + i, p, 8);
        break;
      case onnx::TensorProto::INT32: {
        int32_t v;
        std::memcpy(&v, p, 4);
        r.i64()[i] = v;
        break;
      }
      default:
        r.i64()[i] = *p != 0;
        break;
      }
    }
    return r;
  }
  switch (type) {
  case onnx::TensorProto::FLOAT:
    mismatch(size_t(t.float_data_size()));
    for (int64_t i = 0; i < n; ++i)
      r.f32()[i] = t.float_data(int(i));
    break;
  case onnx::TensorProto::DOUBLE:
    mismatch(size_t(t.double_data_size()));
    for (int64_t i = 0; i < n; ++i)
      r.f32()[i] = float(t.double_data(int(i)));
    break;
  case onnx::TensorProto::INT64:
    mismatch(size_t(t.int64_data_size()));
    for (int64_t i = 0; i < n; ++i)
      r.i64()[i] = t.int64_data(int(i));
    break;
  default: // INT32 and BOOL are stored in int32_data
    mismatch(size_t(t.int32_data_size()));
    for (int64_t i = 0; i < n; ++i)
      r.i64()[i] = t.int32_data(int(i));
    break;
  }
  return r;
}

std::string number(double v) {
  if (!std::isfinite(v))
    throw ImportError(fmt::format("a constant {} (nnc's numbers are finite)", v));
  std::string s = fmt::format("{:.9g}", v);
  if (s.find_first_of(".e") == std::string::npos && std::fabs(v) >= 1e15)
    s += ".0";
  return v < 0 ? "(" + s + ")" : s;
}

//--- the importer's helpers ---------------------------------------------------

void Importer::fail(const std::string &why) const {
  if (!node_)
    throw ImportError(fmt::format("cannot import '{}': {}", opts_.sourceName, why));
  throw ImportError(
      fmt::format("cannot import '{}': node '{}' ({}): {}", opts_.sourceName, node_->name(), node_->op_type(), why));
}

bool Importer::hasIn(int i) const { return i < node_->input_size() && !node_->input(i).empty(); }

const Val &Importer::in(int i) const {
  if (!hasIn(i))
    fail(fmt::format("input {} is missing", i));
  auto it = values_.find(node_->input(i));
  if (it == values_.end())
    fail(fmt::format("it reads '{}', which no earlier node, input or initializer defines", node_->input(i)));
  return it->second;
}

void Importer::out(int i, Val v) {
  if (i >= node_->output_size() || node_->output(i).empty())
    return;
  if (v.kind == Val::Tensor)
    checkSize(v.shape);
  if (values_.count(node_->output(i)))
    fail(fmt::format("its output '{}' is defined twice", node_->output(i)));
  values_[node_->output(i)] = std::move(v);
}

const Val &Importer::tensor(int i) const {
  const Val &v = in(i);
  if (v.kind == Val::Tensor)
    return v;
  const char *what = v.kind == Val::Init    ? "a constant tensor (nnc's models have numbers, not constant tensors)"
                     : v.kind == Val::Ints  ? "shape arithmetic"
                     : v.kind == Val::Zeros ? "a tensor of zeros"
                                            : "a recurrent layer's time-major value";
  fail(fmt::format("input '{}' is {}, where nnc needs a tensor computed by the model", node_->input(i), what));
}

const runtime::Tensor &Importer::init(int i) const {
  const Val &v = in(i);
  if (v.kind != Val::Init)
    fail(fmt::format("input '{}' must be an initializer (a weight), not computed", node_->input(i)));
  return v.init;
}

std::vector<int64_t> Importer::intsOf(int i) const {
  const Val &v = in(i);
  if (v.kind == Val::Ints)
    return v.ints;
  if (v.kind == Val::Init && v.init.dtype() == runtime::DType::I64)
    return std::vector<int64_t>(v.init.i64(), v.init.i64() + v.init.numel());
  fail(fmt::format("input '{}' must be constant integers", node_->input(i)));
}

bool Importer::hasAttr(const char *name) const {
  for (const auto &a : node_->attribute())
    if (a.name() == name)
      return true;
  return false;
}
int64_t Importer::attrInt(const char *name, int64_t dflt) const {
  for (const auto &a : node_->attribute())
    if (a.name() == name)
      return a.i();
  return dflt;
}
float Importer::attrFloat(const char *name, float dflt) const {
  for (const auto &a : node_->attribute())
    if (a.name() == name)
      return a.f();
  return dflt;
}
std::string Importer::attrString(const char *name, const std::string &dflt) const {
  for (const auto &a : node_->attribute())
    if (a.name() == name)
      return a.s();
  return dflt;
}
std::vector<int64_t> Importer::attrInts(const char *name, const std::vector<int64_t> &dflt) const {
  for (const auto &a : node_->attribute())
    if (a.name() == name)
      return std::vector<int64_t>(a.ints().begin(), a.ints().end());
  return dflt;
}

std::vector<int64_t> Importer::attrIntsIn(const char *name, const std::vector<int64_t> &dflt, int64_t lo,
                                          int64_t hi) const {
  std::vector<int64_t> v = attrInts(name, dflt);
  for (int64_t x : v)
    if (x < lo || x > hi)
      fail(fmt::format("its {} value {} is outside [{}, {}]", name, x, lo, hi));
  return v;
}

void Importer::checkSize(const std::vector<int64_t> &shape) const {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d == kBatch)
      continue;
    if (d < 1 || d > kMaxDim || (n *= d) > kMaxElements)
      fail(fmt::format("a tensor of shape {} (nnc import takes axes of 1 to {} and {} elements at most)",
                       dimsText(shape), kMaxDim, kMaxElements));
  }
}

std::string Importer::layerName(const std::string &fallback) {
  // torch names a module's nodes "/path/to/module/Op" (or "/path/Op_3").
  std::string base;
  const std::string &n = node_ ? node_->name() : std::string();
  size_t last = n.rfind('/');
  if (!n.empty() && n[0] == '/' && last != std::string::npos && last > 0)
    base = identifier(n.substr(1, last - 1));
  if (base.empty() || base == "t")
    base = fallback;
  if (reservedWord(base))
    base += "_";
  std::string name = base;
  for (int k = 2; used_.count(name); ++k)
    name = fmt::format("{}_{}", base, k);
  used_.insert(name);
  return name;
}

std::string Importer::dimsText(const std::vector<int64_t> &shape) const {
  std::vector<std::string> parts;
  for (int64_t d : shape)
    parts.push_back(d == kBatch ? "N" : std::to_string(d));
  return "[" + fmt::format("{}", fmt::join(parts, ", ")) + "]";
}

Val Importer::bind(const std::string &hint, const std::string &expr, std::vector<int64_t> shape, bool i64) {
  checkSize(shape);
  Val v;
  v.expr = layerName(hint);
  v.shape = std::move(shape);
  v.i64 = i64;
  lines_.push_back(fmt::format("  {} = {}", v.expr, expr));
  return v;
}

std::vector<const onnx::NodeProto *> Importer::readers(int i) const {
  if (i >= node_->output_size() || node_->output(i).empty())
    return {};
  auto it = readers_.find(node_->output(i));
  return it == readers_.end() ? std::vector<const onnx::NodeProto *>{} : it->second;
}

Val Importer::recurrentSequence(int r) {
  Recurrent &rec = recurrent_.at(size_t(r));
  if (rec.sequence.empty())
    fail("a recurrent layer's sequence read after its last state alone was written");
  Val v;
  v.expr = rec.sequence;
  v.shape = {kBatch, rec.inputShape[1], rec.hidden};
  return v;
}

Val Importer::recurrentLast(int r) {
  Recurrent &rec = recurrent_.at(size_t(r));
  if (rec.last.empty()) {
    // The state after the last step taken: position T-1 forwards, 0 reversed.
    int64_t t = rec.inputShape[1], at = rec.reverse ? 0 : t - 1;
    Val v = bind(rec.name + "_last",
                 fmt::format("reshape(slice({}, 1, {}, {}), [N, {}])", rec.sequence, at, at + 1, rec.hidden),
                 {kBatch, rec.hidden});
    rec.last = v.expr;
  }
  Val v;
  v.expr = rec.last;
  v.shape = {kBatch, rec.hidden};
  return v;
}

//--- the walk -------------------------------------------------------------------

void Importer::readInitializers(const onnx::GraphProto &g) {
  for (const onnx::TensorProto &t : g.initializer()) {
    Val v;
    v.kind = Val::Init;
    v.init = tensorOf(t, fmt::format("initializer '{}'", t.name()));
    if (values_.count(t.name()))
      fail(fmt::format("initializer '{}' is defined twice", t.name()));
    values_[t.name()] = std::move(v);
  }
}

std::string Importer::inputs(const onnx::GraphProto &g) {
  std::string text;
  for (const onnx::ValueInfoProto &vi : g.input()) {
    if (values_.count(vi.name()))
      continue; // an initializer listed as an input (older exporters)
    const auto &type = vi.type();
    if (!type.has_tensor_type())
      fail(fmt::format("input '{}' is not a tensor", vi.name()));
    int elem = type.tensor_type().elem_type();
    if (elem != onnx::TensorProto::FLOAT && elem != onnx::TensorProto::INT64)
      fail(fmt::format("input '{}' has element type {}; nnc's inputs are float (f32) or int64 (i64)", vi.name(),
                       onnx::TensorProto::DataType_Name(onnx::TensorProto::DataType(elem))));
    if (!type.tensor_type().has_shape() || type.tensor_type().shape().dim_size() == 0)
      fail(fmt::format("input '{}' has no shape; nnc needs [batch, static sizes...]", vi.name()));
    Val v;
    v.i64 = elem == onnx::TensorProto::INT64;
    const auto &dims = type.tensor_type().shape().dim();
    for (int d = 0; d < dims.size(); ++d) {
      if (d == 0) {
        v.shape.push_back(kBatch); // the batch, symbolic or not
        continue;
      }
      if (!dims[d].has_dim_value() || dims[d].dim_value() <= 0)
        fail(fmt::format("input '{}' has a dynamic dimension {} ('{}'); nnc needs every dimension but the first "
                         "(the batch) static: export with a fixed size there",
                         vi.name(), d, dims[d].dim_param()));
      v.shape.push_back(dims[d].dim_value());
    }
    checkSize(v.shape);
    std::string name = identifier(vi.name());
    if (reservedWord(name))
      name += "_";
    if (used_.count(name))
      fail(fmt::format("two inputs are named '{}' in nnc", name));
    used_.insert(name);
    v.expr = name;
    text += fmt::format("  input {} : {}{}\n", name, v.i64 ? "i64" : "f32", dimsText(v.shape));
    values_[vi.name()] = v;
  }
  if (text.empty())
    fail("the graph has no inputs");
  return text;
}

std::string Importer::outputs(const onnx::GraphProto &g, std::string &lossText) {
  std::string text;
  for (const onnx::ValueInfoProto &vi : g.output()) {
    auto it = values_.find(vi.name());
    if (it == values_.end())
      fail(fmt::format("output '{}' is not computed by any node", vi.name()));
    Val v = it->second;
    if (v.kind == Val::RnnYh || v.kind == Val::RnnY || v.kind == Val::RnnYSqueezed)
      fail(fmt::format("output '{}' is a recurrent layer's time-major state; nnc import supports the batch-first "
                       "views torch writes ([N, T, H], [N, H])",
                       vi.name()));
    if (v.kind != Val::Tensor)
      fail(fmt::format("output '{}' is a constant, not computed from the inputs", vi.name()));
    std::string name = identifier(vi.name());
    if (reservedWord(name))
      name += "_";
    text += fmt::format("  output {} = {}\n", name, v.expr);
    if (!lossText.empty())
      continue;
    // The loss: cross-entropy for class scores (a softmax's input, or
    // logits straight from a dense layer), else mean squared error.
    std::string label = "target";
    for (int k = 2; used_.count(label); ++k)
      label = fmt::format("target{}", k);
    bool classes = v.shape.size() == 2 && v.shape[0] == kBatch && v.shape[1] > 1 && !v.i64 && !v.logits.empty();
    std::string logits = v.logits;
    if (classes) {
      lossText = fmt::format("  label {} : i64[N]\n  loss = cross_entropy({}, {})\n", label, logits, label);
      notes_.push_back(fmt::format("the loss is nnc import's guess: cross_entropy of '{}' against class ids", logits));
    } else {
      lossText = fmt::format("  label {} : f32{}\n  loss = mse({}, {})\n", label, dimsText(v.shape), v.expr, label);
      notes_.push_back(fmt::format("the loss is nnc import's guess: mse of '{}' against targets of its shape", v.expr));
    }
  }
  if (text.empty())
    fail("the graph has no outputs");
  return text;
}

Imported Importer::run(const std::string &bytes) {
  onnx::ModelProto model;
  if (bytes.empty() || !model.ParseFromString(bytes))
    fail("it is not an ONNX model (its protobuf does not parse: truncated, or another kind of file)");
  if (!model.has_graph() || model.graph().node_size() == 0)
    fail("the model has no graph, or an empty one");
  int64_t opset = -1;
  for (const auto &o : model.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx")
      opset = o.version();
  if (opset < 7 || opset > 18)
    fail(fmt::format("it uses ONNX opset {}; nnc import reads opsets 7 to 18", opset));
  const onnx::GraphProto &g = model.graph();

  std::vector<std::string> unsupported;
  for (const onnx::NodeProto &n : g.node())
    if ((!n.domain().empty() && n.domain() != "ai.onnx") || !supportedOps().count(n.op_type()))
      unsupported.push_back(
          fmt::format("{}{} (node '{}')", n.domain().empty() ? "" : n.domain() + ".", n.op_type(), n.name()));
  if (!unsupported.empty())
    fail(fmt::format("{} node{} use{} ops nnc does not import: {}", unsupported.size(),
                     unsupported.size() == 1 ? "" : "s", unsupported.size() == 1 ? "s" : "",
                     fmt::join(unsupported, ", ")));

  readInitializers(g);
  for (const onnx::NodeProto &n : g.node()) {
    for (const std::string &i : n.input())
      if (!i.empty())
        readers_[i].push_back(&n);
  }
  for (const onnx::ValueInfoProto &vi : g.output()) // outputs keep their names
    used_.insert(identifier(vi.name()));
  std::string inputText = inputs(g);
  for (const onnx::NodeProto &n : g.node()) {
    if (folded_.count(&n))
      continue;
    node_ = &n;
    translate();
  }
  node_ = nullptr;
  std::string lossText;
  std::string outputText = outputs(g, lossText);

  Imported r;
  std::string producer =
      model.producer_name().empty() ? "" : fmt::format("{} {}, ", model.producer_name(), model.producer_version());
  r.source = fmt::format("// Imported by nnc import from '{}' ({}opset {}).\n", opts_.sourceName, producer, opset);
  if (!opts_.weightsName.empty())
    r.source +=
        fmt::format("// The weights are in '{}': nnc predict, eval, train and compile --load it.\n", opts_.weightsName);
  r.source += "// ONNX has no label or loss: the two lines before the closing brace are\n"
              "// nnc import's guess from the first output; check them before training.\n";
  r.source += fmt::format("model {} {{\n{}", opts_.modelName, inputText);
  for (const std::string &l : lines_)
    r.source += l + "\n";
  r.source += outputText + lossText + "}\n";
  r.tensors = std::move(tensors_);
  r.notes = std::move(notes_);
  return r;
}

} // namespace detail

Imported importOnnx(const std::string &bytes, const ImportOptions &opts) { return detail::Importer(opts).run(bytes); }

} // namespace nnc::onnxio
