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

/// Numpy broadcasting of two shapes, symbol-aware: a symbol matches only
/// itself or 1.
std::variant<Shape, std::string> broadcastShapes(const Shape &a, const Shape &b);

/// True if `from` broadcasts to exactly `to`.
bool broadcastsTo(const Shape &from, const Shape &to);

} // namespace nnc::ir
