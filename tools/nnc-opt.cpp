// nnc-opt: runs named IR passes on IR text and prints the result, so each
// pass can be tested alone (`nnc-opt --pass autodiff --pass simplify in.nnir`).
// Exit status: 0 success, 1 invalid input, 2 usage error.
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "ir/transforms/Passes.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace nnc;

int main(int argc, char **argv) {
  CLI::App app{"nnc-opt: run nnc IR passes on IR text"};
  std::string input = "-";
  std::vector<std::string> passes;
  bool verifyOnly = false;
  std::string names;
  for (auto &p : ir::passNames())
    names += (names.empty() ? "" : ", ") + p;
  app.add_option("INPUT", input, "IR file ('-' for standard input)");
  // One name per --pass, repeatable; the input file may come before or after.
  app.add_option("--pass,-p", passes, "Pass to run, in order (" + names + ")")->allow_extra_args(false);
  app.add_flag("--verify", verifyOnly, "Only parse and verify; print nothing on success");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    app.exit(e);
    return 2;
  }

  for (const std::string &p : passes) {
    auto known = ir::passNames();
    if (std::find(known.begin(), known.end(), p) == known.end()) {
      std::cerr << "nnc-opt: error: unknown pass '" << p << "' (known: " << names << ")\n";
      return 2;
    }
  }

  SourceFile file;
  file.name = input == "-" ? "<stdin>" : input;
  std::stringstream ss;
  if (input == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(input, std::ios::binary);
    if (!in) {
      std::cerr << "nnc-opt: error: cannot open '" << input << "'\n";
      return 1;
    }
    ss << in.rdbuf();
  }
  file.text = ss.str();
  DiagnosticEngine diags(&std::cerr);
  auto m = ir::parseModule(file, diags);
  if (!m)
    return 1;
  for (const std::string &p : passes) {
    std::string err;
    if (!ir::runNamedPass(*m, p, err)) {
      std::cerr << "nnc-opt: error: " << err << "\n";
      return 1;
    }
    auto errs = ir::verify(*m);
    if (!errs.empty()) {
      std::cerr << "nnc-opt: internal error: pass '" << p << "' produced invalid IR: " << errs.front() << "\n";
      return 3;
    }
  }
  auto errs = ir::verify(*m);
  for (auto &e : errs)
    std::cerr << file.name << ": error: " << e << "\n";
  if (!errs.empty())
    return 1;
  if (!verifyOnly)
    ir::print(*m, std::cout);
  return 0;
}
