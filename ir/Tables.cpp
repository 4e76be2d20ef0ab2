#include "ir/Tables.h"

#include <cmath>

namespace nnc::ir {

std::vector<float> tableValues(const Op &op) {
  const Shape &s = op.result->type.shape;
  int64_t n = 1;
  for (const Dim &d : s)
    n *= d.size;
  int64_t cols = s.back().size, rows = s[s.size() - 2].size;
  std::vector<float> data(size_t(n), 0.0f);
  for (int64_t e = 0; e < n; ++e) {
    int64_t j = e % cols, i = (e / cols) % rows;
    if (op.kind == OpKind::CausalMask) {
      data[size_t(e)] = j > i + op.getInt("offset") ? float(op.getFloat("value")) : 0.0f;
    } else {
      double freq = std::pow(10000.0, -double(j - j % 2) / double(cols));
      data[size_t(e)] = float(j % 2 ? std::cos(double(i) * freq) : std::sin(double(i) * freq));
    }
  }
  return data;
}

} // namespace nnc::ir
