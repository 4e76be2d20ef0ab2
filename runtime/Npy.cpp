// .npy and .npz readers (see Npy.h). The format: "\x93NUMPY", a version,
// a header length, a Python dict literal {'descr': '<f4', 'fortran_order':
// False, 'shape': (3, 4), } padded with spaces, then the raw elements.
#include "runtime/Npy.h"

#include "runtime/FileUtil.h"

#include <fmt/format.h>
#include <zlib.h>

#include <cmath>
#include <cstring>

namespace nnc::runtime {

namespace {

/// Little-endian unsigned integer of `n` bytes at `p`.
uint64_t le(const unsigned char *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

struct Header {
  char order = '<'; ///< '<' little, '>' big, '|' not applicable
  char kind = 0;    ///< 'f', 'i', 'u', 'b'
  int size = 0;     ///< bytes per element
  bool fortran = false;
  std::vector<int64_t> shape;
};

/// The value of `key` in the header dict, from after its ':' to before the
/// next top-level ',' or '}' (a tuple's commas are inside parentheses).
std::string dictValue(const std::string &h, const std::string &key, const std::string &what) {
  size_t k = h.find("'" + key + "'");
  if (k == std::string::npos)
    throw Error(what + ": the .npy header has no '" + key + "'");
  size_t colon = h.find(':', k);
  if (colon == std::string::npos)
    throw Error(what + ": malformed .npy header");
  size_t i = colon + 1, depth = 0;
  std::string v;
  for (; i < h.size(); ++i) {
    char c = h[i];
    if (c == '(')
      ++depth;
    if (c == ')') {
      if (depth == 0)
        throw Error(what + ": malformed .npy header");
      --depth;
    }
    if (depth == 0 && (c == ',' || c == '}'))
      break;
    v += c;
  }
  size_t a = v.find_first_not_of(" \t"), b = v.find_last_not_of(" \t");
  return a == std::string::npos ? "" : v.substr(a, b - a + 1);
}

Header parseHeader(const std::string &h, const std::string &what) {
  Header r;
  std::string descr = dictValue(h, "descr", what);
  if (descr.size() < 4 || (descr.front() != '\'' && descr.front() != '"') || descr.back() != descr.front())
    throw Error(what + ": the .npy header's 'descr' is not a simple type (" + descr.substr(0, 40) +
                "); structured arrays are not supported");
  std::string d = descr.substr(1, descr.size() - 2);
  r.order = d[0] == '=' ? '<' : d[0];
  r.kind = d.size() >= 2 ? d[1] : 0;
  std::string size = d.size() >= 3 ? d.substr(2) : "";
  bool known = (r.order == '<' || r.order == '>' || r.order == '|') &&
               (size == "1" || size == "2" || size == "4" || size == "8");
  if (known)
    r.size = size[0] - '0';
  bool ok = known && ((r.kind == 'f' && (r.size == 4 || r.size == 8)) || r.kind == 'i' || r.kind == 'u' ||
                      (r.kind == 'b' && r.size == 1));
  if (!ok)
    throw Error(what + ": arrays of type '" + d.substr(0, 16) +
                "' are not supported (float32/64, signed or unsigned integers, bool)");
  std::string fortran = dictValue(h, "fortran_order", what);
  if (fortran != "False" && fortran != "True")
    throw Error(what + ": malformed .npy header ('fortran_order' is " + fortran.substr(0, 20) + ")");
  r.fortran = fortran == "True";
  std::string shape = dictValue(h, "shape", what);
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')')
    throw Error(what + ": malformed .npy header ('shape' is not a tuple)");
  std::string inner = shape.substr(1, shape.size() - 2);
  size_t i = 0;
  while (i < inner.size()) {
    while (i < inner.size() && (inner[i] == ' ' || inner[i] == ','))
      ++i;
    if (i == inner.size())
      break;
    size_t j = i;
    int64_t v = 0;
    while (j < inner.size() && inner[j] >= '0' && inner[j] <= '9') {
      if (v > (int64_t(1) << 40))
        throw Error(what + ": a dimension of the array is too large");
      v = v * 10 + (inner[j] - '0');
      ++j;
    }
    if (j == i || (j < inner.size() && inner[j] != ',' && inner[j] != ' '))
      throw Error(what + ": malformed .npy header ('shape' is " + shape.substr(0, 40) + ")");
    r.shape.push_back(v);
    if (r.shape.size() > 16)
      throw Error(what + ": arrays of more than 16 dimensions are not supported");
    i = j;
  }
  return r;
}

/// The bits of element i, in host (little-endian) order.
uint64_t rawBits(const unsigned char *p, const Header &h, int64_t i) {
  unsigned char b[8];
  std::memcpy(b, p + i * h.size, size_t(h.size));
  if (h.order == '>')
    for (int k = 0; k < h.size / 2; ++k)
      std::swap(b[k], b[h.size - 1 - k]);
  return le(b, h.size);
}

/// Element i of a float array (f4 or f8).
double asFloat(const unsigned char *p, const Header &h, int64_t i) {
  uint64_t u = rawBits(p, h, i);
  if (h.size == 4) {
    float f;
    uint32_t w = uint32_t(u);
    std::memcpy(&f, &w, 4);
    return f;
  }
  double v;
  std::memcpy(&v, &u, 8);
  return v;
}

/// Element i of an integer or bool array, sign-extended for signed kinds
/// (a u8 above 2^63 - 1 comes out negative: the caller checks).
int64_t asInt(const unsigned char *p, const Header &h, int64_t i) {
  uint64_t u = rawBits(p, h, i);
  if (h.kind != 'i')
    return int64_t(u);
  int shift = 64 - 8 * h.size;
  return int64_t(u << shift) >> shift;
}

std::string inflateRaw(const std::string &in, uint64_t size, const std::string &what) {
  // Deflate expands at most 1032:1: a larger announced size is corrupt (and
  // must not be allocated).
  if (size > (uint64_t(1) << 36) || size > uint64_t(in.size()) * 1032 + 64)
    throw Error(what + ": corrupt sizes (" + std::to_string(size) + " bytes from " + std::to_string(in.size()) +
                " compressed)");
  std::string out(size, '\0');
  z_stream z{};
  if (inflateInit2(&z, -15) != Z_OK)
    throw Error(what + ": cannot start zlib");
  z.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef *>(out.data());
  z.avail_out = uInt(out.size());
  int rc = inflate(&z, Z_FINISH);
  uint64_t got = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || got != size)
    throw Error(what + ": corrupt compressed data");
  return out;
}

} // namespace

Tensor parseNpy(const std::string &bytes, DType want, const std::string &what) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  if (bytes.size() < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0)
    throw Error(what + " is not a .npy file (it does not start with \\x93NUMPY)");
  int major = p[6];
  if (major < 1 || major > 3)
    throw Error(fmt::format("{}: .npy format version {} is not supported (1 to 3 are)", what, major));
  size_t lenBytes = major == 1 ? 2 : 4;
  if (bytes.size() < 8 + lenBytes)
    throw Error(what + " is truncated (in its header)");
  uint64_t hlen = le(p + 8, int(lenBytes));
  size_t start = 8 + lenBytes;
  if (hlen > bytes.size() - start)
    throw Error(what + " is truncated (in its header)");
  Header h = parseHeader(bytes.substr(start, size_t(hlen)), what);
  if (h.fortran)
    throw Error(what + " is stored in Fortran order; save it in C order (np.save(path, np.ascontiguousarray(a)))");
  uint64_t count = 1;
  for (int64_t d : h.shape) {
    if (d != 0 && count > (uint64_t(1) << 40) / uint64_t(d))
      throw Error(what + ": the array has more than 2^40 elements");
    count *= uint64_t(d);
  }
  uint64_t dataBytes = bytes.size() - start - hlen;
  if (dataBytes != count * uint64_t(h.size))
    throw Error(fmt::format("{}: the header announces {} elements of {} bytes ({} bytes) but {} bytes follow", what,
                            count, h.size, count * uint64_t(h.size), dataBytes));
  std::vector<int64_t> shape = h.shape;
  if (shape.empty())
    shape = {1}; // a scalar: one example of one value
  Tensor t(want, shape);
  const unsigned char *data = p + start + hlen;
  for (int64_t i = 0; i < int64_t(count); ++i) {
    if (h.kind == 'f') {
      double v = asFloat(data, h, i);
      if (want == DType::F32) {
        t.f32()[i] = float(v);
        continue;
      }
      if (!std::isfinite(v) || std::floor(v) != v || std::fabs(v) >= 9.2e18)
        throw Error(fmt::format("{}: element {} is {}, not a whole number, and integer values are needed here (the "
                                "array is float{})",
                                what, i, v, h.size * 8));
      t.i64()[i] = int64_t(v);
      continue;
    }
    int64_t v = asInt(data, h, i);
    bool huge = h.kind == 'u' && h.size == 8 && v < 0; // above 2^63 - 1
    if (want == DType::F32) {
      t.f32()[i] = huge ? float(uint64_t(v)) : float(v);
      continue;
    }
    if (huge)
      throw Error(fmt::format("{}: element {} does not fit in a 64-bit signed integer", what, i));
    t.i64()[i] = v;
  }
  return t;
}

std::vector<std::pair<std::string, std::string>> parseNpz(const std::string &bytes, const std::string &what) {
  const auto *p = reinterpret_cast<const unsigned char *>(bytes.data());
  size_t n = bytes.size();
  auto need = [&](uint64_t at, uint64_t len) {
    if (at > n || len > n - at)
      throw Error(what + " is not a valid .npz (zip) archive: it is truncated or its directory is corrupt");
  };
  // The end-of-central-directory record: in the last 64 KiB + 22 bytes.
  size_t eocd = std::string::npos;
  for (size_t i = n >= 22 ? n - 22 : 0; n >= 22; --i) {
    if (le(p + i, 4) == 0x06054b50) {
      eocd = i;
      break;
    }
    if (i == 0 || n - i > 65557)
      break;
  }
  if (eocd == std::string::npos)
    throw Error(what + " is not a .npz file (no zip directory found)");
  uint64_t entries = le(p + eocd + 10, 2), cdOffset = le(p + eocd + 16, 4);
  if ((entries == 0xFFFF || cdOffset == 0xFFFFFFFF) && eocd >= 20 && le(p + eocd - 20, 4) == 0x07064b50) {
    uint64_t rec = le(p + eocd - 20 + 8, 8);
    need(rec, 56);
    if (le(p + rec, 4) != 0x06064b50)
      throw Error(what + ": corrupt zip64 directory");
    entries = le(p + rec + 32, 8);
    cdOffset = le(p + rec + 48, 8);
  }
  if (entries > 100000)
    throw Error(what + ": too many members");
  std::vector<std::pair<std::string, std::string>> out;
  uint64_t at = cdOffset;
  for (uint64_t e = 0; e < entries; ++e) {
    need(at, 46);
    if (le(p + at, 4) != 0x02014b50)
      throw Error(what + ": corrupt zip directory");
    uint64_t flags = le(p + at + 8, 2), method = le(p + at + 10, 2);
    uint64_t csize = le(p + at + 20, 4), usize = le(p + at + 24, 4);
    uint64_t nameLen = le(p + at + 28, 2), extraLen = le(p + at + 30, 2), commentLen = le(p + at + 32, 2);
    uint64_t local = le(p + at + 42, 4);
    need(at + 46, nameLen + extraLen + commentLen);
    std::string name(bytes, size_t(at + 46), size_t(nameLen));
    // Zip64: the sizes and offset marked 0xFFFFFFFF are in extra field 1.
    for (uint64_t x = at + 46 + nameLen; x + 4 <= at + 46 + nameLen + extraLen;) {
      uint64_t id = le(p + x, 2), len = le(p + x + 2, 2);
      need(x + 4, len);
      if (id == 1) {
        uint64_t q = x + 4, end = q + len;
        for (uint64_t *field : {&usize, &csize, &local})
          if (*field == 0xFFFFFFFF) {
            if (q + 8 > end)
              throw Error(what + ": corrupt zip64 field");
            *field = le(p + q, 8);
            q += 8;
          }
      }
      x += 4 + len;
    }
    at += 46 + nameLen + extraLen + commentLen;
    if (flags & 1)
      throw Error(what + ": member '" + name + "' is encrypted");
    need(local, 30);
    if (le(p + local, 4) != 0x04034b50)
      throw Error(what + ": corrupt zip member '" + name + "'");
    uint64_t dataAt = local + 30 + le(p + local + 26, 2) + le(p + local + 28, 2);
    need(dataAt, csize);
    std::string raw(bytes, size_t(dataAt), size_t(csize));
    std::string member = what + " member '" + name + "'";
    std::string content;
    if (method == 0) {
      if (csize != usize)
        throw Error(member + ": stored sizes differ");
      content = std::move(raw);
    } else if (method == 8) {
      content = inflateRaw(raw, usize, member);
    } else {
      throw Error(fmt::format("{}: compression method {} is not supported (stored or deflated are)", member, method));
    }
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".npy") == 0)
      name.resize(name.size() - 4);
    out.push_back({name, std::move(content)});
  }
  return out;
}

Tensor loadNpy(const std::string &path, DType want) { return parseNpy(readFile(path), want, "'" + path + "'"); }

std::vector<std::pair<std::string, std::string>> loadNpz(const std::string &path) {
  return parseNpz(readFile(path), "'" + path + "'");
}

} // namespace nnc::runtime
