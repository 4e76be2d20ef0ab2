// ONNX import: an ONNX model (as torch.onnx.export and tf2onnx write them)
// as a readable .nn model plus its initializers as nnc's parameters, so that
// nnc can compile, fine-tune and AOT-build a model trained elsewhere.
#pragma once

#include "runtime/Tensor.h"

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace nnc::onnxio {

/// A model nnc cannot import, and why (every unsupported node is named).
struct ImportError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ImportOptions {
  std::string modelName = "Imported"; ///< the .nn model's name
  std::string sourceName;             ///< the file's name, for messages and the header comment
  std::string weightsName;            ///< the weights file's name, for the header comment
};

struct Imported {
  std::string source; ///< the .nn text: a model, its label and loss (a guess, marked so)
  /// nnc's parameters and state by name (dense's .w, lstm's .w_ih, ...), in
  /// nnc's layouts and gate orders.
  std::vector<std::pair<std::string, runtime::Tensor>> tensors;
  std::vector<std::string> notes; ///< what the user should know (the guessed loss, ...)
};

/// Imports the serialized ModelProto `bytes`. Throws ImportError for a file
/// that is not ONNX, is malformed, uses ops or attributes nnc does not
/// import (all of them listed), or has dimensions other than the batch that
/// are not static.
Imported importOnnx(const std::string &bytes, const ImportOptions &opts);

} // namespace nnc::onnxio
