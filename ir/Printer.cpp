// IR printer; see Printer.h for the format.
#include "ir/Printer.h"

#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace nnc::ir {

void print(const Function &f, std::ostream &os) {
  std::unordered_map<const Value *, std::string> names;
  os << "func @" << f.name << "(";
  for (size_t i = 0; i < f.args.size(); ++i) {
    const Value *a = f.args[i];
    names[a] = "%" + a->name;
    os << (i ? ", " : "") << "%" << a->name << ": " << a->type.str() << " " << argRoleName(f.argRoles[i]);
  }
  os << ") {\n";
  // Op results are numbered %0, %1, ...; numbers that name an argument are
  // skipped so the text stays unambiguous.
  std::unordered_set<std::string> argNames;
  for (const Value *a : f.args)
    argNames.insert(a->name);
  unsigned next = 0;
  auto nameOf = [&](const Value *v) -> std::string {
    auto it = names.find(v);
    return it == names.end() ? std::string("%<undefined>") : it->second;
  };
  for (const auto &op : f.ops) {
    while (argNames.count(std::to_string(next)))
      ++next;
    std::string n = "%" + std::to_string(next++);
    names[op->result] = n;
    os << "  " << n << " = " << opName(op->kind);
    for (size_t i = 0; i < op->operands.size(); ++i)
      os << (i ? ", " : " ") << nameOf(op->operands[i]);
    if (!op->attrs.empty()) {
      os << " {";
      bool first = true;
      for (const auto &[k, v] : op->attrs) {
        os << (first ? "" : ", ") << k << " = " << attrStr(v);
        first = false;
      }
      os << "}";
    }
    os << " : " << op->result->type.str() << "\n";
  }
  os << "  return";
  for (size_t i = 0; i < f.results.size(); ++i)
    os << (i ? ", " : " ") << f.resultNames[i] << " = " << nameOf(f.results[i]);
  os << "\n}\n";
}

void print(const Module &m, std::ostream &os) {
  for (size_t i = 0; i < m.functions.size(); ++i) {
    if (i)
      os << "\n";
    print(*m.functions[i], os);
  }
}

std::string toString(const Function &f) {
  std::ostringstream os;
  print(f, os);
  return os.str();
}

std::string toString(const Module &m) {
  std::ostringstream os;
  print(m, os);
  return os.str();
}

} // namespace nnc::ir
