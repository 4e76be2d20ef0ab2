// The ONNX importer's state (private to OnnxImport.cpp, the reader and the
// writer of the .nn text, and OnnxImportOps.cpp, one translation per op).
#pragma once

#include "codegen/onnx/OnnxImport.h"

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace nnc::onnxio::detail {

/// The symbolic batch size N in shapes and in shape values.
constexpr int64_t kBatch = std::numeric_limits<int64_t>::min();
/// The largest size of one axis, and of all the static axes of a tensor,
/// that the importer accepts (sizes come from the file: bounded, no product
/// overflows).
constexpr int64_t kMaxDim = int64_t(1) << 24, kMaxElements = int64_t(1) << 32;

/// What an ONNX value is to the importer. Most are tensors with an nnc name;
/// the rest never appear in the .nn text themselves: initializers (weights
/// and constants), shape arithmetic (a vector of sizes, N among them),
/// zeros of a shape, and the time-major views and outputs of a recurrent
/// layer (ONNX's RNN/LSTM/GRU work on [T, N, F]; nnc's on [N, T, F]).
struct Val {
  enum Kind { Tensor, Init, Ints, Zeros, TimeMajor, RnnY, RnnYSqueezed, RnnYh } kind = Tensor;
  std::string expr;           ///< Tensor: its nnc name; TimeMajor: the [N, T, F] tensor's
  std::vector<int64_t> shape; ///< Tensor, TimeMajor: sizes (kBatch for N)
  bool i64 = false;           ///< Tensor: i64 rather than f32
  runtime::Tensor init;       ///< Init
  std::vector<int64_t> ints;  ///< Ints (intsOf() also reads an int64 Init)
  bool scalar = false;        ///< Ints: a 0-d value
  float zero = 0;             ///< Zeros: the fill value
  int rnn = -1;               ///< RnnY, RnnYSqueezed, RnnYh: which recurrent layer
  /// Tensor: the class scores it was computed from, when it is scores
  /// (dense's result) or a softmax of them: the guessed loss's input.
  std::string logits;
};

/// A recurrent layer met in the graph: its call is written when one of its
/// outputs is first used (as "sequence" or "last").
struct Recurrent {
  std::string kind;  ///< rnn, lstm or gru
  std::string input; ///< the nnc name of the [N, T, F] input
  std::vector<int64_t> inputShape;
  int64_t hidden = 0;
  bool reverse = false;
  std::string name;                                             ///< the binding (and instance) name
  std::string sequence;                                         ///< the binding of [N, T, H], once written
  std::string last;                                             ///< the binding of [N, H], once written
  std::vector<std::pair<std::string, runtime::Tensor>> weights; ///< by part (w_ih, ...)
};

class Importer {
public:
  explicit Importer(const ImportOptions &o) : opts_(o) {}
  Imported run(const std::string &bytes);

  // --- used by the op translations (OnnxImportOps.cpp) ---
  const onnx::NodeProto *node_ = nullptr; ///< the node being translated
  [[noreturn]] void fail(const std::string &why) const;
  const Val &in(int i) const;               ///< input i of node_ (which must exist)
  bool hasIn(int i) const;                  ///< node_ has a non-empty input i
  void out(int i, Val v);                   ///< output i of node_
  const Val &tensor(int i) const;           ///< input i, which must be a tensor
  const runtime::Tensor &init(int i) const; ///< input i, which must be an initializer
  std::vector<int64_t> intsOf(int i) const; ///< input i as integers (Ints or an int initializer)
  int64_t attrInt(const char *name, int64_t dflt) const;
  float attrFloat(const char *name, float dflt) const;
  std::string attrString(const char *name, const std::string &dflt) const;
  std::vector<int64_t> attrInts(const char *name, const std::vector<int64_t> &dflt) const;
  bool hasAttr(const char *name) const;
  /// attrInts(name, dflt), each in [lo, hi] (else the node is refused).
  std::vector<int64_t> attrIntsIn(const char *name, const std::vector<int64_t> &dflt, int64_t lo, int64_t hi) const;
  /// Refuses a shape with an axis past kMaxDim or more than kMaxElements static elements.
  void checkSize(const std::vector<int64_t> &shape) const;
  /// Writes `  name = expr` with a fresh name from `hint` and returns the tensor.
  Val bind(const std::string &hint, const std::string &expr, std::vector<int64_t> shape, bool i64 = false);
  /// A fresh identifier from the node's name (torch's "/fc1/Gemm" gives "fc1") or `fallback`.
  std::string layerName(const std::string &fallback);
  void weight(const std::string &name, runtime::Tensor t) { tensors_.emplace_back(name, std::move(t)); }
  std::string dimsText(const std::vector<int64_t> &shape) const; ///< "[N, 1, 28, 28]"
  /// The nodes that read output `i` of node_.
  std::vector<const onnx::NodeProto *> readers(int i) const;
  /// The tensor of a recurrent layer's output, writing its call first if needed.
  Val recurrentSequence(int r);
  Val recurrentLast(int r);
  std::vector<Recurrent> recurrent_;
  std::set<const onnx::NodeProto *> folded_; ///< nodes an earlier translation took in (dense's bias Add)

  void translate(); ///< node_ (OnnxImportOps.cpp)

private:
  ImportOptions opts_;
  std::map<std::string, Val> values_;
  std::map<std::string, std::vector<const onnx::NodeProto *>> readers_;
  std::set<std::string> used_;
  std::vector<std::string> lines_;
  std::vector<std::pair<std::string, runtime::Tensor>> tensors_;
  std::vector<std::string> notes_;

  void readInitializers(const onnx::GraphProto &g);
  std::string inputs(const onnx::GraphProto &g);
  std::string outputs(const onnx::GraphProto &g, std::string &lossText);
};

/// `t` (FLOAT, DOUBLE, INT64, INT32 or BOOL; raw or typed data) as a runtime tensor.
runtime::Tensor tensorOf(const onnx::TensorProto &t, const std::string &what);
/// A number as the .nn language reads it back to the same float.
std::string number(double v);

} // namespace nnc::onnxio::detail
