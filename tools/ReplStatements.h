// Model statements typed at the REPL's prompt (`h2 = dense(h, 10)`,
// `output p = softmax(h2)`, `loss = mse(out, y)`): telling them from
// expressions, and adding them to the current model's declaration.
#pragma once

#include "frontend/AST.h"

#include <string>
#include <vector>

namespace nnc::repl {

/// True when `t` (a trimmed line typed at the prompt) is a model statement
/// rather than an expression: `NAME = ...` or `a, b = ...` (not `==`),
/// `output NAME = ...`, `loss [NAME] = ...`, `input NAME : ...`, `label ...`.
bool startsStatement(const std::string &t);

/// Adds `s` to `m`: it takes the place of the statement that binds the same
/// name (a binding or output for a binding or output, the loss of the same
/// name, the input or label of the same name), else goes at the end.
/// Returns true when it replaced one.
bool spliceStatement(ast::ModelDecl &m, ast::Stmt s);

/// The names `s` binds (its name and, for `a, b = ...`, the others).
std::vector<std::string> boundNames(const ast::Stmt &s);

} // namespace nnc::repl
