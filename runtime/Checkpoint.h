// Checkpoints in the safetensors format: an 8-byte little-endian header
// length N, N bytes of JSON describing each tensor (dtype, shape, byte range)
// plus string metadata, then the raw tensor bytes. The reader treats the file
// as hostile and validates every field before touching the data.
#pragma once

#include "runtime/Tensor.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace nnc::runtime {

/// Writes `tensors` (in the given order, without gaps) and `metadata` to
/// `path` atomically. Names must be unique and not "__metadata__".
void saveSafetensors(const std::string &path,
                     const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                     const std::map<std::string, std::string> &metadata = {});

/// The bytes of a safetensors file holding `tensors` and `metadata` (what
/// saveSafetensors writes); `path` names the file in errors.
std::string encodeSafetensors(const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                              const std::map<std::string, std::string> &metadata, const std::string &path);

/// The content of a safetensors file.
struct Checkpoint {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// Reads a safetensors file holding F32 and I64 tensors. Throws Error naming
/// the file (and the tensor, where there is one) for anything malformed:
/// truncation, a bad header length, invalid JSON, unsupported dtypes, bad
/// shapes, and byte ranges that are out of bounds, of the wrong size or
/// overlapping.
Checkpoint loadSafetensors(const std::string &path);
/// As loadSafetensors, for a file's bytes already in memory; `path` names
/// them in errors.
Checkpoint parseSafetensors(const std::string &bytes, const std::string &path);

} // namespace nnc::runtime
