// The graph IR: typed SSA over tensors. A Module holds Functions; a Function
// holds arguments, a list of single-result Ops in program order, and named
// results. Types carry symbolic dimensions (`N`) that are specialized only at
// JIT time. Ops are defined by the table in Ops.def.
#pragma once

#include "support/Diagnostics.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

namespace nnc::ir {

enum class DType : uint8_t { F32, I64 };
const char *dtypeName(DType t);

/// One dimension: a static size or a named symbol.
struct Dim {
  int64_t size = 0;
  std::string sym; ///< non-empty for a symbolic dimension
  Dim() = default;
  Dim(int64_t n) : size(n) {}
  static Dim symbol(std::string s) {
    Dim d;
    d.size = -1;
    d.sym = std::move(s);
    return d;
  }
  bool isStatic() const { return sym.empty(); }
  bool operator==(const Dim &o) const { return size == o.size && sym == o.sym; }
  bool operator!=(const Dim &o) const { return !(*this == o); }
  std::string str() const { return isStatic() ? std::to_string(size) : sym; }
};
using Shape = std::vector<Dim>;
std::string shapeStr(const Shape &s); ///< "[N, 64]"

struct TensorType {
  DType dtype = DType::F32;
  Shape shape;
  size_t rank() const { return shape.size(); }
  bool operator==(const TensorType &o) const { return dtype == o.dtype && shape == o.shape; }
  bool operator!=(const TensorType &o) const { return !(*this == o); }
  std::string str() const; ///< "f32[N, 64]"
};

/// Map from symbol name to its size, used to specialize types.
using Bindings = std::map<std::string, int64_t>;
/// Concrete sizes of a shape under `b`; asserts every symbol is bound.
std::vector<int64_t> concreteShape(const Shape &s, const Bindings &b);
int64_t numElements(const std::vector<int64_t> &s);

enum class OpKind : uint8_t {
#define NNC_OP(Name, Str, Arity, Traits) Name,
#include "ir/Ops.def"
};

namespace OpTrait {
enum : unsigned { None = 0, Pure = 1, Elementwise = 2, Commutative = 4, NoGrad = 8, Reduction = 16 };
}

/// OpInfo::arity of ops that take any number of operands.
constexpr unsigned kVariadic = ~0u;

struct OpInfo {
  const char *name;
  unsigned arity; ///< or kVariadic
  unsigned traits;
};
const OpInfo &opInfo(OpKind k);
std::optional<OpKind> opKindFromName(const std::string &name);
inline const char *opName(OpKind k) { return opInfo(k).name; }
inline bool hasTrait(OpKind k, unsigned t) { return (opInfo(k).traits & t) != 0; }

/// An attribute value: integer, float, bool, integer list, shape, or string.
using Attr = std::variant<int64_t, double, bool, std::vector<int64_t>, Shape, std::string>;
using Attrs = std::map<std::string, Attr>;
std::string attrStr(const Attr &a);

class Op;

/// An SSA value: a function argument or the result of an op.
struct Value {
  TensorType type;
  Op *def = nullptr; ///< null for arguments
  int argIndex = -1; ///< index in Function::args for arguments
  std::string name;  ///< argument name (printed as %name); empty for op results
};

class Op {
public:
  OpKind kind;
  std::vector<Value *> operands;
  Value *result = nullptr;
  Attrs attrs;
  SourceLoc loc; ///< where in the .nn source this op came from, if anywhere
  /// scan: the function run at each step (named by the 'body' attribute;
  /// another function of the same module).
  class Function *body = nullptr;

  Value *operand(size_t i) const { return operands.at(i); }
  bool has(const std::string &a) const { return attrs.count(a) != 0; }
  int64_t getInt(const std::string &a, int64_t dflt = 0) const;
  double getFloat(const std::string &a, double dflt = 0) const;
  bool getBool(const std::string &a, bool dflt = false) const;
  std::string getString(const std::string &a) const; ///< "" when absent
  std::vector<int64_t> getInts(const std::string &a) const;
  Shape getShape(const std::string &a) const;
};

/// What an argument is for; the runtime binds buffers by role and name.
enum class ArgRole : uint8_t { Input, Label, Param, State, Scalar };
const char *argRoleName(ArgRole r);
std::optional<ArgRole> argRoleFromName(const std::string &s);

class Function {
public:
  explicit Function(std::string name) : name(std::move(name)) {}
  std::string name;
  std::vector<Value *> args;
  std::vector<ArgRole> argRoles;
  std::vector<std::unique_ptr<Op>> ops;
  std::vector<Value *> results;
  std::vector<std::string> resultNames;

  Value *addArg(std::string name, TensorType type, ArgRole role);
  /// Creates an op at the end (or before `before` if given) without checking types.
  Op *createOp(OpKind kind, std::vector<Value *> operands, TensorType type, Attrs attrs = {}, SourceLoc loc = {});
  void addResult(std::string name, Value *v) {
    resultNames.push_back(std::move(name));
    results.push_back(v);
  }
  Value *arg(const std::string &name) const;
  Value *result(const std::string &name) const;
  /// Removes ops whose result is not in `live`; used by DCE.
  void eraseOpsIf(const std::function<bool(Op *)> &pred);
  /// Replace every use of `from` (operands and results) with `to`.
  void replaceAllUses(Value *from, Value *to);
  /// For each argument: whether an op or a result reads it.
  std::vector<bool> argsUsed() const;
  /// Keeps the arguments i with keep[i] (in order), dropping the others.
  void keepArgs(const std::vector<bool> &keep);
  /// Appends a deep copy of `src`'s ops (with args mapped through `map`) and
  /// returns the mapping of all of src's values into this function.
  std::unordered_map<const Value *, Value *> cloneBody(const Function &src,
                                                       std::unordered_map<const Value *, Value *> map);

private:
  std::vector<std::unique_ptr<Value>> values_;
  Value *newValue(TensorType t);
};

/// Replacements found by a pass that walks a function in program order: a
/// replaced value is only read by later ops, so each op's operands are
/// rewritten when the walk reaches it, and the results at the end (one walk,
/// where replaceAllUses per replacement is quadratic in long programs).
class PendingUses {
public:
  void replace(const Value *from, Value *to) { map_[from] = to; }
  /// Points `op`'s operands at their replacements.
  void rewrite(Op &op) const;
  /// Points the function's results at their replacements.
  void rewriteResults(Function &f) const;

private:
  std::unordered_map<const Value *, Value *> map_;
};

/// Who reads each value of a function: the ops whose operands include it.
using Users = std::unordered_map<const Value *, std::vector<const Op *>>;
Users usersOf(const Function &f);

class Module {
public:
  std::vector<std::unique_ptr<Function>> functions;
  Function *addFunction(std::string name);
  Function *get(const std::string &name) const;
};

} // namespace nnc::ir
