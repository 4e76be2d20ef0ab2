// Fuzz target: the IR text parser and verifier, the printer round trip
// (print -> parse -> print is a fixed point) and the passes nnc-opt runs.
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "ir/transforms/Passes.h"

#include <cstdlib>
#include <iostream>

using namespace nnc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 20000)
    return 0;
  SourceFile file{"fuzz.nnir", std::string(reinterpret_cast<const char *>(data), size)};
  DiagnosticEngine diags(nullptr);
  auto m = ir::parseModule(file, diags);
  if (!m)
    return 0;
  if (!ir::verify(*m).empty())
    return 0;
  std::string once = ir::toString(*m);
  SourceFile again{"again.nnir", once};
  DiagnosticEngine diags2(nullptr);
  auto m2 = ir::parseModule(again, diags2);
  if (!m2 || ir::toString(*m2) != once) {
    std::cerr << "printer output does not read back the same:\n" << once;
    std::abort();
  }
  for (const char *pass : {"simplify", "autodiff", "simplify", "adam"}) {
    std::string err;
    if (!ir::runNamedPass(*m, pass, err))
      break;
    auto errors = ir::verify(*m);
    if (!errors.empty()) {
      std::cerr << "pass " << pass << " produced invalid IR: " << errors.front() << "\n";
      std::abort();
    }
  }
  return 0;
}
