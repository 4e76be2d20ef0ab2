// Parses .nn text with the ANTLR4 grammar and builds the AST. Syntax errors
// (lexer and parser) are reported through the DiagnosticEngine with locations.
#pragma once

#include "frontend/AST.h"

#include <memory>
#include <optional>

namespace nnc::frontend {

/// The deepest nesting of brackets and unary minus signs a source may use
/// (clang's -fbracket-depth default); deeper input gets a located error.
constexpr size_t kMaxNesting = 256;

/// Returns the program, or null if there were syntax errors (all reported).
std::unique_ptr<ast::Program> parseProgram(const SourceFile &file, DiagnosticEngine &diags);
/// Parses `file` as one expression (the REPL's input); null after errors.
ast::ExprPtr parseExpression(const SourceFile &file, DiagnosticEngine &diags);
/// Parses `file` as one model statement (`h = dense(x, 10)`, `output p = ...`,
/// `loss = ...`; the REPL adds these to the current model); nullopt after errors.
std::optional<ast::Stmt> parseModelStatement(const SourceFile &file, DiagnosticEngine &diags);

} // namespace nnc::frontend
