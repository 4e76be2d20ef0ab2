#include "tools/ReplStatements.h"

#include <algorithm>
#include <cctype>

namespace nnc::repl {

namespace {
bool identStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool identChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

/// A cursor over one line: identifiers, blanks and single characters.
struct Cursor {
  const std::string &t;
  size_t i = 0;
  void blanks() {
    while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i])))
      ++i;
  }
  std::string ident() {
    blanks();
    if (i >= t.size() || !identStart(t[i]))
      return "";
    size_t start = i;
    while (i < t.size() && identChar(t[i]))
      ++i;
    return t.substr(start, i - start);
  }
  bool eat(char c) {
    blanks();
    if (i < t.size() && t[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  /// A single '=' (an assignment, not the start of '==').
  bool assign() {
    size_t at = i;
    if (eat('=') && (i >= t.size() || t[i] != '='))
      return true;
    i = at;
    return false;
  }
};
} // namespace

bool startsStatement(const std::string &t) {
  Cursor c{t};
  std::string w = c.ident();
  if (w.empty())
    return false;
  if (w == "input" || w == "label") {
    std::string n = c.ident();
    return !n.empty() && c.eat(':');
  }
  if (w == "output")
    return !c.ident().empty() && c.assign();
  if (w == "loss") {
    size_t at = c.i;
    if (c.assign())
      return true;
    c.i = at;
    return !c.ident().empty() && c.assign();
  }
  while (c.eat(','))
    if (c.ident().empty())
      return false;
  return c.assign();
}

std::vector<std::string> boundNames(const ast::Stmt &s) {
  std::vector<std::string> names = {s.name};
  for (const auto &[n, loc] : s.more)
    names.push_back(n);
  return names;
}

bool spliceStatement(ast::ModelDecl &m, ast::Stmt s) {
  auto family = [](ast::Stmt::Kind k) {
    switch (k) {
    case ast::Stmt::Let:
    case ast::Stmt::Output:
      return 0;
    case ast::Stmt::Loss:
      return 1;
    default:
      return 2; // input, label
    }
  };
  std::vector<std::string> names = boundNames(s);
  for (ast::Stmt &old : m.body) {
    if (family(old.kind) != family(s.kind))
      continue;
    std::vector<std::string> have = boundNames(old);
    bool same = std::any_of(names.begin(), names.end(),
                            [&](const std::string &n) { return std::find(have.begin(), have.end(), n) != have.end(); });
    if (same) {
      old = std::move(s);
      return true;
    }
  }
  m.body.push_back(std::move(s));
  return false;
}

} // namespace nnc::repl
