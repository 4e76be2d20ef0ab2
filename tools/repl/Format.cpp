// Tensors as text for :print and the REPL's reports.
#include "tools/repl/ReplImpl.h"

#include "frontend/ASTBuilder.h"
#include "frontend/Sema.h"
#include "ir/Printer.h"
#include "ir/transforms/Passes.h"
#include "runtime/Checkpoint.h"
#include "runtime/ThreadPool.h"
#include "tools/Interrupt.h"
#include "tools/LineEditor.h"
#include "tools/ReplStatements.h"
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

namespace nnc::repl {

using driver::interrupted;

namespace {

std::string number(const runtime::Tensor &t, int64_t i) {
  return t.dtype() == runtime::DType::F32 ? fmt::format("{:.4g}", t.f32()[i]) : std::to_string(t.i64()[i]);
}

/// Nested brackets, eliding the middle of dimensions longer than 8.
void formatInto(const runtime::Tensor &t, size_t dim, int64_t offset, size_t width, int indent, std::string &out) {
  if (t.rank() == 0) {
    out += number(t, 0);
    return;
  }
  int64_t n = t.dim(dim), stride = 1;
  for (size_t d = dim + 1; d < t.rank(); ++d)
    stride *= t.dim(d);
  out += "[";
  bool last = dim + 1 == t.rank();
  for (int64_t i = 0; i < n; ++i) {
    if (n > 8 && i == 3) {
      out += last ? "..., " : "...,\n" + std::string(size_t(indent + 1), ' ');
      i = n - 3;
    }
    if (last) {
      std::string v = number(t, offset + i);
      out += std::string(width > v.size() ? width - v.size() : 0, ' ') + v;
    } else {
      formatInto(t, dim + 1, offset + i * stride, width, indent + 1, out);
    }
    if (i + 1 < n)
      out += last ? ", " : ",\n" + std::string(size_t(indent + 1), ' ');
  }
  out += "]";
}

} // namespace

std::string formatTensor(const runtime::Tensor &t) {
  size_t width = 0;
  for (int64_t i = 0; i < t.numel(); ++i)
    width = std::max(width, number(t, i).size());
  std::string out;
  formatInto(t, 0, 0, width, 0, out);
  return out;
}

/// `t` sliced by `spec` ("0:2, :, 3"): per dimension an index (which drops
/// the dimension), a range a:b, or ':'; negative numbers count from the end.
runtime::Tensor slice(const runtime::Tensor &t, const std::string &spec, size_t col) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : spec) {
    if (c == ',') {
      parts.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(trim(cur));
  if (parts.size() > t.rank())
    throw UsageError{col, spec.size() + 2,
                     fmt::format("{} indices for a tensor of rank {} ({})", parts.size(), t.rank(), t.typeString())};
  std::vector<int64_t> lo, hi;
  std::vector<bool> keep;
  auto parseIndex = [&](const std::string &s, int64_t n, int64_t dflt) -> int64_t {
    if (s.empty())
      return dflt;
    char *end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (*end)
      throw UsageError{col, spec.size() + 2, "'" + s + "' is not an index"};
    return v < 0 ? v + n : v;
  };
  for (size_t d = 0; d < t.rank(); ++d) {
    int64_t n = t.dim(d);
    std::string p = d < parts.size() ? parts[d] : ":";
    size_t colon = p.find(':');
    if (colon == std::string::npos) {
      int64_t i = parseIndex(p, n, 0);
      if (i < 0 || i >= n)
        throw UsageError{col, spec.size() + 2,
                         fmt::format("index {} is out of range for dimension {} of size {}", p, d, n)};
      lo.push_back(i);
      hi.push_back(i + 1);
      keep.push_back(false);
    } else {
      int64_t a = std::clamp<int64_t>(parseIndex(trim(p.substr(0, colon)), n, 0), 0, n);
      int64_t b = std::clamp<int64_t>(parseIndex(trim(p.substr(colon + 1)), n, n), 0, n);
      lo.push_back(a);
      hi.push_back(std::max(a, b));
      keep.push_back(true);
    }
  }
  std::vector<int64_t> shape;
  for (size_t d = 0; d < t.rank(); ++d)
    if (keep[d])
      shape.push_back(hi[d] - lo[d]);
  runtime::Tensor r(t.dtype(), shape);
  size_t esz = t.dtype() == runtime::DType::F32 ? 4 : 8;
  std::vector<int64_t> idx(lo), strides(t.rank(), 1);
  for (size_t d = t.rank(); d-- > 1;)
    strides[d - 1] = strides[d] * t.dim(d);
  for (int64_t k = 0; k < r.numel(); ++k) {
    int64_t off = 0;
    for (size_t d = 0; d < t.rank(); ++d)
      off += idx[d] * strides[d];
    std::memcpy(static_cast<char *>(r.data()) + size_t(k) * esz,
                static_cast<const char *>(t.data()) + size_t(off) * esz, esz);
    for (size_t d = t.rank(); d-- > 0;) {
      if (++idx[d] < hi[d])
        break;
      idx[d] = lo[d];
    }
  }
  return r;
}

std::string mib(double bytes) { return fmt::format("{:.2f} MiB", bytes / (1 << 20)); }

std::string evalText(const runtime::EvalResult &r) {
  std::string s = fmt::format("loss {:.4f}", r.loss);
  if (r.accuracy >= 0)
    s += fmt::format(" acc {:.4f}", r.accuracy);
  return s;
}

} // namespace nnc::repl
