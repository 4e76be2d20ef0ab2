// Parser for the textual IR (the format printed by ir/Printer.h). Reports
// located diagnostics and type-checks every op through its shape rule; an op
// whose annotated type differs from the inferred one is an error.
#pragma once

#include "ir/IR.h"

#include <memory>

namespace nnc::ir {

/// Parses `file` into a module, or returns null after reporting errors.
std::unique_ptr<Module> parseModule(const SourceFile &file, DiagnosticEngine &diags);

} // namespace nnc::ir
