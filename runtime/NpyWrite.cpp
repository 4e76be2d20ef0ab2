// Writing NumPy's .npy and .npz files (the readers are in Npy.cpp).
#include "runtime/Npy.h"

#include <zlib.h>

#include <cstdint>
#include <limits>

namespace nnc::runtime {
namespace {

void put16(std::string &s, uint32_t v) {
  s += char(v & 0xff);
  s += char((v >> 8) & 0xff);
}
void put32(std::string &s, uint32_t v) {
  put16(s, v & 0xffff);
  put16(s, v >> 16);
}

} // namespace

std::string encodeNpy(const Tensor &t) {
  std::string shape = "(";
  for (size_t i = 0; i < t.rank(); ++i)
    shape += std::to_string(t.dim(i)) + (t.rank() == 1 ? "," : i + 1 < t.rank() ? ", " : "");
  shape += ")";
  std::string header = std::string("{'descr': '") + (t.dtype() == DType::F32 ? "<f4" : "<i8") +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6), version (2) and length (2), then the header padded with
  // spaces and ended by a newline so that the data starts 64-aligned.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY\x01\x00", 8);
  put16(out, uint32_t(header.size()));
  out += header;
  out.append(static_cast<const char *>(t.data()), t.bytes());
  return out;
}

std::string encodeNpz(const std::vector<std::pair<std::string, std::string>> &arrays) {
  std::string out, central;
  for (const auto &[name, bytes] : arrays) {
    std::string member = name + ".npy";
    if (bytes.size() >= std::numeric_limits<uint32_t>::max() || out.size() >= std::numeric_limits<uint32_t>::max() ||
        member.size() > 0xffff)
      throw Error("cannot write array '" + name + "' into an .npz: the archive would pass 4 GiB");
    uint32_t crc = 0;
    for (size_t at = 0; at < bytes.size(); at += 1u << 30) {
      size_t n = std::min<size_t>(bytes.size() - at, 1u << 30);
      crc = uint32_t(crc32(crc, reinterpret_cast<const Bytef *>(bytes.data() + at), uInt(n)));
    }
    uint32_t offset = uint32_t(out.size()), size = uint32_t(bytes.size());
    auto common = [&](std::string &s) { // version needed .. name length
      put16(s, 20);
      put16(s, 0);    // flags
      put16(s, 0);    // stored
      put16(s, 0);    // time
      put16(s, 0x21); // date: 1980-01-01
      put32(s, crc);
      put32(s, size); // compressed
      put32(s, size); // uncompressed
      put16(s, uint32_t(member.size()));
      put16(s, 0); // extra
    };
    put32(out, 0x04034b50);
    common(out);
    out += member;
    out += bytes;
    put32(central, 0x02014b50);
    put16(central, 20); // made by
    common(central);
    put16(central, 0); // comment
    put16(central, 0); // disk
    put16(central, 0); // internal attributes
    put32(central, 0); // external attributes
    put32(central, offset);
    central += member;
  }
  if (out.size() + central.size() >= std::numeric_limits<uint32_t>::max() || arrays.size() > 0xffff)
    throw Error("cannot write the .npz: the archive would pass 4 GiB or 65535 arrays");
  uint32_t cdOffset = uint32_t(out.size()), cdSize = uint32_t(central.size());
  out += central;
  put32(out, 0x06054b50);
  put16(out, 0);
  put16(out, 0);
  put16(out, uint32_t(arrays.size()));
  put16(out, uint32_t(arrays.size()));
  put32(out, cdSize);
  put32(out, cdOffset);
  put16(out, 0);
  return out;
}

} // namespace nnc::runtime
