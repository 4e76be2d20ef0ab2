// Shape and dtype rules for every op in Ops.def. The frontend calls these to
// type-check user programs (attaching source locations to the messages), the
// IR parser and verifier call them to check IR text, and every pass builds ops
// through them, so there is exactly one rule per op.
#pragma once

#include "ir/IR.h"

#include <optional>
#include <string>
#include <variant>

namespace nnc::ir {

/// Either the result type or a message saying why the operands do not fit.
using TypeOrError = std::variant<TensorType, std::string>;

/// The largest number of elements a tensor may have (4 TiB of f32): shape
/// arithmetic beyond it could overflow 64 bits once symbols are bound.
constexpr int64_t kMaxElements = int64_t(1) << 40;

/// The product of the static dimensions of `s`, or nullopt past kMaxElements.
std::optional<int64_t> staticElements(const Shape &s);

/// The result type of `kind` applied to operands of `types` with `attrs`.
/// Messages are complete sentences without location ("matmul expects ...").
TypeOrError inferType(OpKind kind, const std::vector<TensorType> &types, const Attrs &attrs);

/// Geometry of a 2-D sliding window (convolution or pooling): kernel,
/// stride, dilation, and padding at the top, left, bottom and right.
struct Window2D {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1, pt = 0, pl = 0, pb = 0, pr = 0;
  /// Output extent along one axis, or 0 when no window fits.
  static int64_t extent(int64_t in, int64_t k, int64_t s, int64_t d, int64_t p0, int64_t p1) {
    int64_t span = in + p0 + p1 - d * (k - 1) - 1;
    return span < 0 ? 0 : span / s + 1;
  }
  int64_t outH(int64_t h) const { return extent(h, kh, sh, dh, pt, pb); }
  int64_t outW(int64_t w) const { return extent(w, kw, sw, dw, pl, pr); }
};

/// The window of a conv2d*/..._pool2d* op whose types have been checked.
Window2D window2DOf(const Op &op);

/// Numpy broadcasting of two shapes, symbol-aware: a symbol matches only
/// itself or 1.
std::variant<Shape, std::string> broadcastShapes(const Shape &a, const Shape &b);

/// True if `from` broadcasts to exactly `to`.
bool broadcastsTo(const Shape &from, const Shape &to);

} // namespace nnc::ir
