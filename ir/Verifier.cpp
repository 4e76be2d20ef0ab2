// IR verifier.
#include "ir/Verifier.h"

#include "ir/ShapeRules.h"

#include <set>
#include <unordered_set>

namespace nnc::ir {

/// The body of a type-checked scan takes (carry?, one step of each
/// sequence, the invariants) and returns one f32 step result.
static void verifyScanBody(const Op &op, const std::string &where, std::vector<std::string> &errs) {
  const Function *body = op.body;
  std::string name = op.attrs.count("body") ? std::get<std::string>(op.attrs.at("body")) : "";
  if (!body) {
    errs.push_back(where + ": body @" + name + " is not a function of this module");
    return;
  }
  bool carry = std::get<std::string>(op.attrs.at("mode")) == "carry";
  int64_t nseq = std::get<int64_t>(op.attrs.at("nseq"));
  std::vector<TensorType> want;
  for (size_t i = 0; i < op.operands.size(); ++i) {
    TensorType t = op.operands[i]->type;
    bool isSeq = i >= (carry ? 1 : 0) && i < size_t(nseq) + (carry ? 1 : 0);
    if (isSeq)
      t.shape.erase(t.shape.begin());
    want.push_back(t);
  }
  std::string sig;
  for (size_t i = 0; i < want.size(); ++i)
    sig += (i ? ", " : "") + want[i].str();
  bool argsOk = body->args.size() == want.size();
  for (size_t i = 0; argsOk && i < want.size(); ++i)
    argsOk = body->args[i]->type == want[i];
  if (!argsOk)
    errs.push_back(where + ": body @" + body->name + " must take (" + sig + ")");
  TensorType out{DType::F32, std::get<Shape>(op.attrs.at("out"))};
  if (body->results.size() != 1 || body->results[0]->type != out)
    errs.push_back(where + ": body @" + body->name + " must return one " + out.str());
  for (const auto &bop : body->ops)
    if (bop->kind == OpKind::Scan)
      errs.push_back(where + ": body @" + body->name + " contains a scan (nested loops are not supported)");
}

std::vector<std::string> verify(const Function &f) {
  std::vector<std::string> errs;
  std::unordered_set<const Value *> defined;
  std::set<std::string> argNames;
  for (const Value *a : f.args) {
    if (!argNames.insert(a->name).second)
      errs.push_back("@" + f.name + ": duplicate argument %" + a->name);
    defined.insert(a);
  }
  size_t idx = 0;
  for (const auto &op : f.ops) {
    std::string where = "@" + f.name + ": op #" + std::to_string(idx++) + " (" + opName(op->kind) + ")";
    std::vector<TensorType> types;
    bool ok = true;
    for (const Value *v : op->operands) {
      if (!defined.count(v)) {
        errs.push_back(where + ": operand used before it is defined");
        ok = false;
      }
      types.push_back(v->type);
    }
    if (!ok)
      continue;
    TypeOrError t = inferType(op->kind, types, op->attrs);
    if (auto *err = std::get_if<std::string>(&t))
      errs.push_back(where + ": " + *err);
    else if (std::get<TensorType>(t) != op->result->type)
      errs.push_back(where + ": result type " + op->result->type.str() + " differs from inferred " +
                     std::get<TensorType>(t).str());
    if (op->kind == OpKind::Scan && !std::holds_alternative<std::string>(t))
      verifyScanBody(*op, where, errs);
    if (op->result->def != op.get())
      errs.push_back(where + ": result does not point back to its op");
    defined.insert(op->result);
  }
  std::set<std::string> resultNames;
  for (size_t i = 0; i < f.results.size(); ++i) {
    if (!defined.count(f.results[i]))
      errs.push_back("@" + f.name + ": result '" + f.resultNames[i] + "' is not defined");
    if (!resultNames.insert(f.resultNames[i]).second)
      errs.push_back("@" + f.name + ": duplicate result name '" + f.resultNames[i] + "'");
  }
  return errs;
}

std::vector<std::string> verify(const Module &m) {
  std::vector<std::string> errs;
  for (const auto &f : m.functions) {
    auto e = verify(*f);
    errs.insert(errs.end(), e.begin(), e.end());
  }
  return errs;
}

} // namespace nnc::ir
