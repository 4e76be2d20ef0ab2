// safetensors reading and writing. The header is built and parsed with
// nlohmann::json; the writer keeps tensors in the caller's order so files are
// byte-for-byte reproducible, and the reader checks sizes with overflow-safe
// arithmetic before allocating anything.
#include "runtime/Checkpoint.h"

#include "runtime/FileUtil.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <set>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this file copies tensor bytes as they are in memory"
#endif

namespace nnc::runtime {

namespace {

/// The reference implementation's cap; anything larger is not a real header.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

const char *safetensorsDType(DType t) { return t == DType::F32 ? "F32" : "I64"; }

/// dtypes of the format that nnc does not hold in checkpoints.
bool isOtherSafetensorsDType(const std::string &s) {
  static const std::set<std::string> known = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
                                              "I16",  "U16", "F16", "BF16",    "I32",
                                              "U32",  "F64", "U64"};
  return known.count(s) != 0;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  return "[" + fmt::format("{}", fmt::join(shape, ", ")) + "]";
}

struct Entry {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

} // namespace

std::string encodeSafetensors(const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                              const std::map<std::string, std::string> &metadata, const std::string &path) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto &[k, v] : metadata)
      meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  uint64_t offset = 0;
  for (const auto &[name, t] : tensors) {
    if (!t)
      throw Error(fmt::format("cannot write '{}': tensor '{}' is missing", path, name));
    if (name == "__metadata__")
      throw Error(
          fmt::format("cannot write '{}': '__metadata__' is not a valid tensor name", path));
    if (header.contains(name))
      throw Error(fmt::format("cannot write '{}': duplicate tensor name '{}'", path, name));
    header[name] = {{"dtype", safetensorsDType(t->dtype())},
                    {"shape", t->shape()},
                    {"data_offsets", {offset, offset + t->bytes()}}};
    offset += t->bytes();
  }

  std::string json = header.dump();
  // Padding keeps the tensor data 8-byte aligned relative to the file start.
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string bytes;
  bytes.reserve(8 + json.size() + offset);
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i)
    bytes.push_back(char((n >> (8 * i)) & 0xff));
  bytes += json;
  for (const auto &entry : tensors)
    bytes.append(static_cast<const char *>(entry.second->data()), entry.second->bytes());
  return bytes;
}

void saveSafetensors(const std::string &path,
                     const std::vector<std::pair<std::string, const Tensor *>> &tensors,
                     const std::map<std::string, std::string> &metadata) {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata, path));
}

Checkpoint loadSafetensors(const std::string &path) { return parseSafetensors(readFile(path), path); }

Checkpoint parseSafetensors(const std::string &file, const std::string &path) {
  auto fail = [&](const std::string &what) -> Error {
    return Error(fmt::format("'{}': {}", path, what));
  };

  if (file.size() < 8)
    throw fail(fmt::format("not a safetensors file: {} bytes is too short to hold the 8-byte "
                           "header length",
                           file.size()));
  uint64_t headerLen = 0;
  for (int i = 0; i < 8; ++i)
    headerLen |= uint64_t(uint8_t(file[size_t(i)])) << (8 * i);
  if (headerLen > kMaxHeaderBytes)
    throw fail(fmt::format("not a safetensors file: header length {} is absurd (limit {})",
                           headerLen, kMaxHeaderBytes));
  if (headerLen > file.size() - 8)
    throw fail(fmt::format("truncated: header length {} runs past the end of the file "
                           "({} bytes)",
                           headerLen, file.size()));
  const uint64_t dataStart = 8 + headerLen;
  const uint64_t dataSize = file.size() - dataStart;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.begin() + 8, file.begin() + long(dataStart));
  } catch (const nlohmann::json::exception &e) {
    throw fail(std::string("malformed JSON header: ") + e.what());
  }
  if (!header.is_object())
    throw fail("malformed header: expected a JSON object");

  Checkpoint ckpt;
  std::vector<Entry> entries;
  for (const auto &item : header.items()) {
    // Named copies rather than a structured binding: lambdas below capture them.
    const std::string name = item.key();
    const nlohmann::json &desc = item.value();
    if (name == "__metadata__") {
      if (!desc.is_object())
        throw fail("malformed header: __metadata__ must be an object of strings");
      for (const auto &[k, v] : desc.items()) {
        if (!v.is_string())
          throw fail(fmt::format("malformed header: metadata '{}' is not a string", k));
        ckpt.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    auto bad = [&](const std::string &what) {
      return fail(fmt::format("tensor '{}': {}", name, what));
    };
    if (!desc.is_object())
      throw bad("description is not a JSON object");

    auto dtypeIt = desc.find("dtype");
    if (dtypeIt == desc.end() || !dtypeIt->is_string())
      throw bad("missing or non-string \"dtype\"");
    std::string dtype = dtypeIt->get<std::string>();
    Entry e;
    e.name = name;
    if (dtype == "F32")
      e.dtype = DType::F32;
    else if (dtype == "I64")
      e.dtype = DType::I64;
    else if (isOtherSafetensorsDType(dtype))
      throw bad("dtype " + dtype + " is not supported (nnc checkpoints hold F32 and I64 only)");
    else
      throw bad("unknown dtype \"" + dtype + "\"");

    auto shapeIt = desc.find("shape");
    if (shapeIt == desc.end() || !shapeIt->is_array())
      throw bad("missing or non-array \"shape\"");
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto &d : *shapeIt) {
      if (!d.is_number_unsigned())
        throw bad("shape " + shapeIt->dump() +
                  " has a dimension that is not a non-negative integer");
      uint64_t v = d.get<uint64_t>();
      overflow = overflow || v > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, v, &numel);
      e.shape.push_back(int64_t(v));
    }
    uint64_t expectedBytes = 0;
    if (overflow || __builtin_mul_overflow(numel, uint64_t(dtypeSize(e.dtype)), &expectedBytes) ||
        expectedBytes > uint64_t(INT64_MAX))
      throw bad("shape " + shapeIt->dump() + " is too large");

    auto offIt = desc.find("data_offsets");
    if (offIt == desc.end() || !offIt->is_array() || offIt->size() != 2 ||
        !(*offIt)[0].is_number_unsigned() || !(*offIt)[1].is_number_unsigned())
      throw bad("\"data_offsets\" must be an array of two non-negative integers");
    e.begin = (*offIt)[0].get<uint64_t>();
    e.end = (*offIt)[1].get<uint64_t>();
    if (e.begin > e.end)
      throw bad(fmt::format("data_offsets [{}, {}] are reversed", e.begin, e.end));
    if (e.end > dataSize)
      throw bad(fmt::format("data_offsets [{}, {}] are out of bounds: the data section has {} "
                            "bytes",
                            e.begin, e.end, dataSize));
    if (e.end - e.begin != expectedBytes)
      throw bad(fmt::format("data_offsets [{}, {}] hold {} bytes but {} {} needs {}", e.begin,
                            e.end, e.end - e.begin, dtype, shapeString(e.shape), expectedBytes));
    entries.push_back(std::move(e));
  }

  std::vector<const Entry *> byOffset;
  for (const Entry &e : entries)
    byOffset.push_back(&e);
  std::sort(byOffset.begin(), byOffset.end(), [](const Entry *a, const Entry *b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  // Sorted by start, a tensor overlaps an earlier one exactly when it starts
  // before the furthest end seen so far. Empty tensors occupy no bytes.
  const Entry *furthest = nullptr;
  for (const Entry *cur : byOffset) {
    if (cur->begin == cur->end)
      continue;
    if (furthest && cur->begin < furthest->end)
      throw fail(fmt::format("tensor '{}': data_offsets [{}, {}] overlap tensor '{}' at [{}, {}]",
                             cur->name, cur->begin, cur->end, furthest->name, furthest->begin,
                             furthest->end));
    if (!furthest || cur->end > furthest->end)
      furthest = cur;
  }

  for (const Entry &e : entries) {
    Tensor t(e.dtype, e.shape);
    if (t.bytes())
      std::memcpy(t.data(), file.data() + dataStart + e.begin, t.bytes());
    ckpt.tensors.emplace(e.name, std::move(t));
  }
  return ckpt;
}

} // namespace nnc::runtime
