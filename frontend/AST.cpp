// AST helpers: lookups, the tree dump used by `nnc emit ast`, source text.
#include "frontend/AST.h"

#include <cmath>
#include <sstream>

namespace nnc::ast {

const ModelDecl *Program::model(const std::string &n) const {
  for (auto &m : models)
    if (m.name == n)
      return &m;
  return nullptr;
}
const LayerDecl *Program::layer(const std::string &n) const {
  for (auto &l : layers)
    if (l.name == n)
      return &l;
  return nullptr;
}
const TrainDecl *Program::train(const std::string &model) const {
  for (auto &t : trains)
    if (t.model == model)
      return &t;
  return nullptr;
}

namespace {
std::string at(const SourceLoc &l) { return " <" + std::to_string(l.line) + ":" + std::to_string(l.col) + ">"; }
std::string pad(int n) { return std::string(size_t(n) * 2, ' '); }

std::string number(double v, bool isInt) {
  std::ostringstream os;
  // Integer literals beyond 64 bits print as doubles (casting them is UB).
  if (isInt && std::fabs(v) < 9.0e18)
    os << (long long)v;
  else
    os << v;
  return os.str();
}

std::string typeStr(const TypeSpec &t) {
  std::string s = t.dtype + "[";
  for (size_t i = 0; i < t.dims.size(); ++i)
    s += (i ? ", " : "") + (t.dims[i].sym.empty() ? std::to_string(t.dims[i].size) : t.dims[i].sym);
  return s + "]";
}

void dumpStmt(const Stmt &s, std::ostream &os, int indent) {
  static const char *kinds[] = {"Input", "Label", "Let", "Output", "Loss", "Return"};
  os << pad(indent) << kinds[s.kind];
  if (!s.name.empty())
    os << " " << s.name;
  for (auto &[name, loc] : s.more)
    os << ", " << name;
  if (s.kind == Stmt::Input || s.kind == Stmt::Label)
    os << " : " << typeStr(s.type);
  os << at(s.loc) << "\n";
  if (s.value)
    dump(*s.value, os, indent + 1);
}

void dumpItem(const TrainItem &it, std::ostream &os, int indent) {
  static const char *kinds[] = {"Setting", "Call", "Block"};
  os << pad(indent) << kinds[it.kind] << " " << it.key;
  if (!it.name.empty())
    os << " " << it.name;
  os << at(it.loc) << "\n";
  if (it.kind == TrainItem::Setting)
    dump(*it.value, os, indent + 1);
  else if (it.kind == TrainItem::Call)
    for (auto &a : it.value->args) {
      if (!a.name.empty())
        os << pad(indent + 1) << "Arg " << a.name << at(a.nameLoc) << "\n";
      dump(*a.value, os, indent + (a.name.empty() ? 1 : 2));
    }
  for (auto &c : it.items)
    dumpItem(c, os, indent + 1);
}
} // namespace

void dump(const Expr &e, std::ostream &os, int indent) {
  os << pad(indent);
  switch (e.kind) {
  case Expr::Number:
    os << "Number " << number(e.number, e.isInteger) << at(e.loc) << "\n";
    return;
  case Expr::Name:
    os << "Name " << e.name << at(e.loc) << "\n";
    return;
  case Expr::String:
    os << "String \"" << e.name << "\"" << at(e.loc) << "\n";
    return;
  case Expr::Call:
    os << "Call " << e.name;
    if (!e.instance.empty())
      os << " as " << e.instance;
    os << at(e.loc) << "\n";
    for (auto &a : e.args) {
      if (!a.name.empty()) {
        os << pad(indent + 1) << "Arg " << a.name << at(a.nameLoc) << "\n";
        dump(*a.value, os, indent + 2);
      } else {
        dump(*a.value, os, indent + 1);
      }
    }
    return;
  case Expr::Binary:
    os << "Binary " << e.op << at(e.loc) << "\n";
    dump(*e.lhs, os, indent + 1);
    dump(*e.rhs, os, indent + 1);
    return;
  case Expr::Neg:
    os << "Neg" << at(e.loc) << "\n";
    dump(*e.lhs, os, indent + 1);
    return;
  case Expr::List:
    os << "List" << at(e.loc) << "\n";
    for (auto &x : e.elems)
      dump(*x, os, indent + 1);
    return;
  }
}

void dump(const Program &p, std::ostream &os) {
  os << "Program\n";
  for (auto &l : p.layers) {
    os << "  Layer " << l.name << "(";
    for (size_t i = 0; i < l.params.size(); ++i)
      os << (i ? ", " : "") << l.params[i].name;
    os << ")" << at(l.loc) << "\n";
    for (auto &prm : l.params)
      if (prm.defaultValue) {
        os << "    Default " << prm.name << at(prm.loc) << "\n";
        dump(*prm.defaultValue, os, 3);
      }
    for (auto &s : l.body)
      dumpStmt(s, os, 2);
  }
  for (auto &m : p.models) {
    os << "  Model " << m.name << at(m.loc) << "\n";
    for (auto &s : m.body)
      dumpStmt(s, os, 2);
  }
  for (auto &t : p.trains) {
    os << "  Train " << t.model << at(t.loc) << "\n";
    for (auto &it : t.items)
      dumpItem(it, os, 2);
  }
}

std::string toSource(const Expr &e) {
  switch (e.kind) {
  case Expr::Number:
    return number(e.number, e.isInteger);
  case Expr::Name:
    return e.name;
  case Expr::String:
    return "\"" + e.name + "\"";
  case Expr::Call: {
    std::string s = e.name + "(";
    for (size_t i = 0; i < e.args.size(); ++i)
      s += (i ? ", " : "") + (e.args[i].name.empty() ? "" : e.args[i].name + " = ") + toSource(*e.args[i].value);
    return s + ")";
  }
  case Expr::Binary:
    return "(" + toSource(*e.lhs) + " " + e.op + " " + toSource(*e.rhs) + ")";
  case Expr::Neg:
    return "-" + toSource(*e.lhs);
  case Expr::List: {
    std::string s = "[";
    for (size_t i = 0; i < e.elems.size(); ++i)
      s += (i ? ", " : "") + toSource(*e.elems[i]);
    return s + "]";
  }
  }
  return "?";
}

} // namespace nnc::ast
