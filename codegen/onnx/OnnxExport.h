// ONNX export: a model's predict function, with its weights and the train
// block's preprocessing, as an ONNX model (opset 17). The only files that
// include ONNX's protobuf headers are in codegen/onnx/.
#pragma once

#include "ir/IR.h"
#include "runtime/Tensor.h"

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace nnc::onnxio {

/// What the predict function cannot be written as: the op, where in the
/// source it came from, and why.
struct ExportError : std::runtime_error {
  ExportError(SourceLoc at, const std::string &what) : std::runtime_error(what), loc(at) {}
  SourceLoc loc;
};

/// The train block's preprocessing of f32 inputs, as the data pipeline and
/// the AOT library apply it: each scale in turn, then (x - mean) / stddev with
/// the features of the f32 inputs concatenated in input order.
struct Preprocess {
  std::vector<double> scales;
  std::vector<float> mean, stddev; ///< empty: no standardize / min_max
};

struct ExportOptions {
  std::string graphName;                       ///< the model's name
  std::string producerVersion;                 ///< nnc's version
  std::map<std::string, std::string> metadata; ///< metadata_props of the model
};

/// `predict` (with the scan bodies of `module` it runs) as a serialized,
/// checked ONNX ModelProto. Its inputs are the function's inputs, raw as the
/// data files hold them (symbolic dimensions stay symbolic); its outputs are
/// the function's results by name; `tensors` gives every parameter and state
/// argument's value. Throws ExportError for an op ONNX cannot express here
/// and std::runtime_error when ONNX's checker refuses the result (a bug).
std::string exportOnnx(const ir::Function &predict, const std::map<std::string, runtime::Tensor> &tensors,
                       const Preprocess &pre, const ExportOptions &opts);

/// The opset the exporter writes.
constexpr int64_t kOnnxOpset = 17;

} // namespace nnc::onnxio
