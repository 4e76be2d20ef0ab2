// Core IR data structures: types, the op table, functions and modules.
#include "ir/IR.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <unordered_set>

namespace nnc::ir {

const char *dtypeName(DType t) { return t == DType::F32 ? "f32" : "i64"; }

std::string shapeStr(const Shape &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i)
      r += ", ";
    r += s[i].str();
  }
  return r + "]";
}

std::string TensorType::str() const { return std::string(dtypeName(dtype)) + shapeStr(shape); }

std::vector<int64_t> concreteShape(const Shape &s, const Bindings &b) {
  std::vector<int64_t> r;
  for (const Dim &d : s) {
    if (d.isStatic()) {
      r.push_back(d.size);
      continue;
    }
    auto it = b.find(d.sym);
    NNC_ASSERT(it != b.end()) << "unbound symbolic dimension " << d.sym;
    r.push_back(it->second);
  }
  return r;
}

int64_t numElements(const std::vector<int64_t> &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

static const OpInfo kOpInfos[] = {
#define NNC_OP(Name, Str, Arity, Traits)                                                                               \
  {Str, Arity, [] {                                                                                                    \
     using namespace OpTrait;                                                                                          \
     return unsigned(Traits);                                                                                          \
   }()},
#include "ir/Ops.def"
};

const OpInfo &opInfo(OpKind k) { return kOpInfos[size_t(k)]; }

std::optional<OpKind> opKindFromName(const std::string &name) {
  for (size_t i = 0; i < sizeof(kOpInfos) / sizeof(kOpInfos[0]); ++i)
    if (name == kOpInfos[i].name)
      return OpKind(i);
  return std::nullopt;
}

std::string attrStr(const Attr &a) {
  struct Visitor {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      // Shortest of %.9g / %.17g that reads back as the same double.
      char buf[64];
      snprintf(buf, sizeof buf, "%.9g", v);
      if (std::strtod(buf, nullptr) != v)
        snprintf(buf, sizeof buf, "%.17g", v);
      std::string s = buf;
      // Keep floats distinguishable from ints when printed.
      if (s.find_first_of(".eEn") == std::string::npos)
        s += ".0";
      return s;
    }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::vector<int64_t> &v) const {
      std::string s = "[";
      for (size_t i = 0; i < v.size(); ++i)
        s += (i ? ", " : "") + std::to_string(v[i]);
      return s + "]";
    }
    std::string operator()(const Shape &v) const { return "shape" + shapeStr(v); }
    std::string operator()(const std::string &v) const { return "\"" + v + "\""; }
  };
  return std::visit(Visitor{}, a);
}

int64_t Op::getInt(const std::string &a, int64_t dflt) const {
  auto it = attrs.find(a);
  if (it == attrs.end())
    return dflt;
  if (auto *v = std::get_if<int64_t>(&it->second))
    return *v;
  if (auto *v = std::get_if<double>(&it->second))
    return int64_t(*v);
  return dflt;
}

double Op::getFloat(const std::string &a, double dflt) const {
  auto it = attrs.find(a);
  if (it == attrs.end())
    return dflt;
  if (auto *v = std::get_if<double>(&it->second))
    return *v;
  if (auto *v = std::get_if<int64_t>(&it->second))
    return double(*v);
  return dflt;
}

std::string Op::getString(const std::string &a) const {
  auto it = attrs.find(a);
  if (it == attrs.end())
    return "";
  const auto *v = std::get_if<std::string>(&it->second);
  return v ? *v : "";
}

bool Op::getBool(const std::string &a, bool dflt) const {
  auto it = attrs.find(a);
  if (it == attrs.end())
    return dflt;
  if (auto *v = std::get_if<bool>(&it->second))
    return *v;
  return dflt;
}

std::vector<int64_t> Op::getInts(const std::string &a) const {
  auto it = attrs.find(a);
  if (it == attrs.end())
    return {};
  if (auto *v = std::get_if<std::vector<int64_t>>(&it->second))
    return *v;
  return {};
}

Shape Op::getShape(const std::string &a) const {
  auto it = attrs.find(a);
  if (it == attrs.end())
    return {};
  if (auto *v = std::get_if<Shape>(&it->second))
    return *v;
  return {};
}

const char *argRoleName(ArgRole r) {
  switch (r) {
  case ArgRole::Input:
    return "input";
  case ArgRole::Label:
    return "label";
  case ArgRole::Param:
    return "param";
  case ArgRole::State:
    return "state";
  case ArgRole::Scalar:
    return "scalar";
  }
  return "?";
}

std::optional<ArgRole> argRoleFromName(const std::string &s) {
  for (ArgRole r : {ArgRole::Input, ArgRole::Label, ArgRole::Param, ArgRole::State, ArgRole::Scalar})
    if (s == argRoleName(r))
      return r;
  return std::nullopt;
}

Value *Function::newValue(TensorType t) {
  values_.push_back(std::make_unique<Value>());
  values_.back()->type = std::move(t);
  return values_.back().get();
}

Value *Function::addArg(std::string argName, TensorType type, ArgRole role) {
  Value *v = newValue(std::move(type));
  v->argIndex = int(args.size());
  v->name = std::move(argName);
  args.push_back(v);
  argRoles.push_back(role);
  return v;
}

Op *Function::createOp(OpKind kind, std::vector<Value *> operands, TensorType type, Attrs attrs, SourceLoc loc) {
  auto op = std::make_unique<Op>();
  op->kind = kind;
  op->operands = std::move(operands);
  op->attrs = std::move(attrs);
  op->loc = loc;
  op->result = newValue(std::move(type));
  op->result->def = op.get();
  ops.push_back(std::move(op));
  return ops.back().get();
}

Value *Function::arg(const std::string &n) const {
  for (Value *a : args)
    if (a->name == n)
      return a;
  return nullptr;
}

Value *Function::result(const std::string &n) const {
  for (size_t i = 0; i < results.size(); ++i)
    if (resultNames[i] == n)
      return results[i];
  return nullptr;
}

void Function::eraseOpsIf(const std::function<bool(Op *)> &pred) {
  ops.erase(std::remove_if(ops.begin(), ops.end(), [&](const std::unique_ptr<Op> &op) { return pred(op.get()); }),
            ops.end());
}

void Function::replaceAllUses(Value *from, Value *to) {
  for (auto &op : ops)
    for (Value *&v : op->operands)
      if (v == from)
        v = to;
  for (Value *&v : results)
    if (v == from)
      v = to;
}

void PendingUses::rewrite(Op &op) const {
  if (map_.empty())
    return;
  for (Value *&v : op.operands)
    if (auto it = map_.find(v); it != map_.end())
      v = it->second;
}

void PendingUses::rewriteResults(Function &f) const {
  for (Value *&v : f.results)
    if (auto it = map_.find(v); it != map_.end())
      v = it->second;
}

Users usersOf(const Function &f) {
  Users users;
  for (const auto &op : f.ops)
    for (const Value *v : op->operands)
      users[v].push_back(op.get());
  return users;
}

std::vector<bool> Function::argsUsed() const {
  std::unordered_set<const Value *> used(results.begin(), results.end());
  for (const auto &op : ops)
    used.insert(op->operands.begin(), op->operands.end());
  std::vector<bool> r;
  for (const Value *a : args)
    r.push_back(used.count(a) != 0);
  return r;
}

void Function::keepArgs(const std::vector<bool> &keep) {
  std::vector<Value *> kept;
  std::vector<ArgRole> roles;
  for (size_t i = 0; i < args.size(); ++i)
    if (keep[i]) {
      args[i]->argIndex = int(kept.size());
      kept.push_back(args[i]);
      roles.push_back(argRoles[i]);
    }
  args = kept;
  argRoles = roles;
}

std::unordered_map<const Value *, Value *> Function::cloneBody(const Function &src,
                                                               std::unordered_map<const Value *, Value *> map) {
  for (const auto &op : src.ops) {
    std::vector<Value *> operands;
    for (Value *v : op->operands) {
      auto it = map.find(v);
      NNC_ASSERT(it != map.end()) << "cloneBody: unmapped operand of " << opName(op->kind);
      operands.push_back(it->second);
    }
    Op *c = createOp(op->kind, operands, op->result->type, op->attrs, op->loc);
    c->body = op->body;
    map[op->result] = c->result;
  }
  return map;
}

Function *Module::addFunction(std::string name) {
  functions.push_back(std::make_unique<Function>(std::move(name)));
  return functions.back().get();
}

Function *Module::get(const std::string &name) const {
  for (auto &f : functions)
    if (f->name == name)
      return f.get();
  return nullptr;
}

} // namespace nnc::ir
