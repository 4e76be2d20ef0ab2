// IR verifier.
#include "ir/Verifier.h"

#include "ir/ShapeRules.h"

#include <set>
#include <unordered_set>

namespace nnc::ir {

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
