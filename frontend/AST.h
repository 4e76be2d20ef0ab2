// The abstract syntax tree of a .nn file. Every node carries the source
// location of its first token. Pipes are desugared by the ASTBuilder
// (`x |> f(a)` is the call `f(x, a)`), so later stages see only calls.
#pragma once

#include "support/Diagnostics.h"

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace nnc::ast {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Arg {
  std::string name; ///< empty for a positional argument
  SourceLoc nameLoc;
  ExprPtr value;
};

struct Expr {
  enum Kind { Number, Name, String, Call, Binary, Neg, List } kind;
  SourceLoc loc;
  double number = 0;
  bool isInteger = false;
  std::string name;      ///< Name: the name; String: the text; Call: the callee
  std::vector<Arg> args; ///< Call
  std::string instance;  ///< Call: `as <instance>`, empty if none
  SourceLoc instanceLoc;
  bool piped = false;         ///< Call: the first argument came from `|>`
  char op = 0;                ///< Binary: + - * /
  ExprPtr lhs, rhs;           ///< Binary; Neg uses lhs
  std::vector<ExprPtr> elems; ///< List

  Expr() = default;
  Expr(Expr &&) = default;
  Expr &operator=(Expr &&) = default;
  /// Frees the subtrees in a loop: a chain of operators is as deep as it is
  /// long, too deep for recursive destructors.
  ~Expr();
};

/// The operand an operator chain continues through: the left operand of a
/// binary expression (`a + b + c` is `(a + b) + c`), the piped first argument
/// of a call (`x |> f |> g` is `g(f(x))`), the operand of a negation; null
/// for other expressions. Chains nest as deep as they are long (the parser
/// bounds only brackets and unary minus), so every walk over expressions
/// follows this operand in a loop, never by recursion.
const Expr *chainOperand(const Expr &e);
/// `e`, its chain operand, that one's, ...: the chain from the top down; the
/// last element is the innermost expression that continues no chain.
std::vector<const Expr *> chain(const Expr &e);

struct DimSpec {
  int64_t size = -1; ///< -1 for a symbolic dimension
  std::string sym;
  SourceLoc loc;
};

struct TypeSpec {
  std::string dtype;
  SourceLoc loc;
  std::vector<DimSpec> dims;
};

struct Stmt {
  enum Kind { Input, Label, Let, Output, Loss, Return } kind;
  SourceLoc loc;
  std::string name; ///< empty for Return and an unnamed Loss
  SourceLoc nameLoc;
  /// Let: further names bound to the elements of a list value
  /// (`a, b = split(x, 2)` binds `a` to the first, `b` to the second).
  std::vector<std::pair<std::string, SourceLoc>> more;
  TypeSpec type; ///< Input, Label
  ExprPtr value; ///< all but Input, Label
  /// Loss: `loss d updates D, "h.w" = ...`: the parameters this loss (an
  /// objective of its own) updates, as selectors; empty for a term of the
  /// one summed loss.
  std::vector<std::pair<std::string, SourceLoc>> updates;
};

struct LayerParam {
  std::string name;
  SourceLoc loc;
  ExprPtr defaultValue; ///< may be null
};

struct LayerDecl {
  std::string name;
  SourceLoc loc, nameLoc;
  std::vector<LayerParam> params;
  std::vector<Stmt> body;
};

struct ModelDecl {
  std::string name;
  SourceLoc loc, nameLoc;
  std::vector<Stmt> body;
};

/// A train-block item: `key = expr`, `callee(args)` or `kind [name] { ... }`.
struct TrainItem {
  enum Kind { Setting, Call, Block } kind;
  std::string key;  ///< setting key, callee, or block kind
  std::string name; ///< Block: optional name
  SourceLoc loc;
  ExprPtr value;                ///< Setting; Call holds a Call expression here
  std::vector<TrainItem> items; ///< Block
};

struct TrainDecl {
  std::string model;
  SourceLoc loc, modelLoc;
  std::vector<TrainItem> items;
};

struct Program {
  std::vector<ModelDecl> models;
  std::vector<LayerDecl> layers;
  std::vector<TrainDecl> trains;

  const ModelDecl *model(const std::string &n) const;
  const LayerDecl *layer(const std::string &n) const;
  const TrainDecl *train(const std::string &model) const;
};

/// Prints the tree with `line:col` locations, one node per line (nnc emit ast).
void dump(const Program &p, std::ostream &os);
void dump(const Expr &e, std::ostream &os, int indent = 0);
/// The expression as source-like text, for messages.
std::string toSource(const Expr &e);

} // namespace nnc::ast
