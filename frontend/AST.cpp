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

Expr::~Expr() {
  std::vector<ExprPtr> pending;
  auto release = [&](Expr &e) {
    if (e.lhs)
      pending.push_back(std::move(e.lhs));
    if (e.rhs)
      pending.push_back(std::move(e.rhs));
    for (Arg &a : e.args)
      if (a.value)
        pending.push_back(std::move(a.value));
    for (ExprPtr &x : e.elems)
      if (x)
        pending.push_back(std::move(x));
  };
  release(*this);
  while (!pending.empty()) {
    ExprPtr e = std::move(pending.back());
    pending.pop_back();
    release(*e); // e now owns no children: freeing it recurses no further
  }
}

const Expr *chainOperand(const Expr &e) {
  if (e.kind == Expr::Binary || e.kind == Expr::Neg)
    return e.lhs.get();
  if (e.kind == Expr::Call && e.piped && !e.args.empty())
    return e.args.front().value.get();
  return nullptr;
}

std::vector<const Expr *> chain(const Expr &e) {
  std::vector<const Expr *> c;
  for (const Expr *p = &e; p; p = chainOperand(*p))
    c.push_back(p);
  return c;
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
  for (size_t i = 0; i < s.updates.size(); ++i)
    os << (i ? ", " : " updates ") << s.updates[i].first;
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

namespace {
/// One line of the dump of `e` (without its children).
void dumpNode(const Expr &e, std::ostream &os) {
  switch (e.kind) {
  case Expr::Number:
    os << "Number " << number(e.number, e.isInteger);
    break;
  case Expr::Name:
    os << "Name " << e.name;
    break;
  case Expr::String:
    os << "String \"" << e.name << "\"";
    break;
  case Expr::Call:
    os << "Call " << e.name;
    if (!e.instance.empty())
      os << " as " << e.instance;
    break;
  case Expr::Binary:
    os << "Binary " << e.op;
    break;
  case Expr::Neg:
    os << "Neg";
    break;
  case Expr::List:
    os << "List";
    break;
  }
  os << at(e.loc) << "\n";
}
} // namespace

void dump(const Expr &root, std::ostream &os, int indent) {
  // Depth-first with an explicit stack (chains are deep). Beyond 64 levels
  // the indentation stops growing and the line says its depth instead, so
  // that a chain of n terms prints n lines, not n^2 spaces.
  struct Item {
    const Expr *e = nullptr; ///< null: an "Arg name" line
    const Arg *arg = nullptr;
    int indent;
  };
  std::vector<Item> stack{{&root, nullptr, indent}};
  while (!stack.empty()) {
    Item it = stack.back();
    stack.pop_back();
    if (it.indent <= 64)
      os << pad(it.indent);
    else
      os << pad(64) << "[depth " << it.indent << "] ";
    if (!it.e) {
      os << "Arg " << it.arg->name << at(it.arg->nameLoc) << "\n";
      continue;
    }
    const Expr &e = *it.e;
    dumpNode(e, os);
    std::vector<Item> children;
    for (const Arg &a : e.args) {
      if (!a.name.empty()) {
        children.push_back({nullptr, &a, it.indent + 1});
        children.push_back({a.value.get(), nullptr, it.indent + 2});
      } else {
        children.push_back({a.value.get(), nullptr, it.indent + 1});
      }
    }
    for (const ExprPtr *p : {&e.lhs, &e.rhs})
      if (*p)
        children.push_back({p->get(), nullptr, it.indent + 1});
    for (const ExprPtr &x : e.elems)
      children.push_back({x.get(), nullptr, it.indent + 1});
    for (size_t i = children.size(); i-- > 0;)
      stack.push_back(children[i]);
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
  // The chain through e's operands is written from its ends: every level's
  // opening text (outermost first), the innermost expression, then every
  // level's closing text (innermost first). Other nesting is bounded.
  std::vector<const Expr *> c = chain(e);
  std::string s;
  for (const Expr *x : c)
    if (x != c.back())
      s += x->kind == Expr::Binary ? "(" : x->kind == Expr::Neg ? "-" : x->name + "(";
  const Expr &inner = *c.back();
  switch (inner.kind) {
  case Expr::Number:
    s += number(inner.number, inner.isInteger);
    break;
  case Expr::Name:
    s += inner.name;
    break;
  case Expr::String:
    s += "\"" + inner.name + "\"";
    break;
  case Expr::Call:
    s += inner.name + "(";
    for (size_t i = 0; i < inner.args.size(); ++i)
      s += (i ? ", " : "") + (inner.args[i].name.empty() ? "" : inner.args[i].name + " = ") +
           toSource(*inner.args[i].value);
    s += ")";
    break;
  case Expr::List:
    s += "[";
    for (size_t i = 0; i < inner.elems.size(); ++i)
      s += (i ? ", " : "") + toSource(*inner.elems[i]);
    s += "]";
    break;
  case Expr::Binary:
  case Expr::Neg:
    break; // continue a chain: never innermost
  }
  for (size_t i = c.size() - 1; i-- > 0;) {
    const Expr &x = *c[i];
    if (x.kind == Expr::Binary) {
      s += std::string(" ") + x.op + " " + toSource(*x.rhs) + ")";
    } else if (x.kind == Expr::Call) {
      for (size_t j = 1; j < x.args.size(); ++j)
        s += ", " + (x.args[j].name.empty() ? "" : x.args[j].name + " = ") + toSource(*x.args[j].value);
      s += ")";
    }
  }
  return s;
}

} // namespace nnc::ast
