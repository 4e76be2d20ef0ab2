// nnc emit (a compilation stage: ast, ir, grad, train, llvm, asm) and nnc
// grad (loss and gradients on the first batch, as a safetensors file).
#include "tools/Commands.h"

#include "frontend/Builtins.h"
#include "ir/Printer.h"
#include "runtime/Checkpoint.h"
#include "runtime/FileUtil.h"
#include "runtime/Metrics.h"
#include "runtime/Plot.h"
#include "runtime/TaskMetrics.h"
#include "runtime/ThreadPool.h"
#include "tools/DataChecks.h"
#include "tools/Driver.h"
#include "tools/Interrupt.h"
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

namespace nnc::cli {

int cmdEmit(const Options &o, DiagnosticEngine &diags) {
  // 'ir' prints any function (forward by default); 'grad' and 'train' are
  // names for one function each, so another --function is a mistake.
  const char *fixed = o.kind == "grad" ? "grad" : o.kind == "train" ? "train_step" : nullptr;
  if (o.kind == "ast" && o.functionGiven) {
    std::cerr << "nnc: error: 'emit ast' prints the whole file's syntax tree; --function applies to ir, llvm and "
                 "asm\n";
    return 2;
  }
  if (fixed && o.functionGiven && o.function != fixed) {
    std::cerr << "nnc: error: 'emit " << o.kind << "' prints the function '" << fixed << "', not '" << o.function
              << "'; to print '" << o.function << "', run 'nnc emit ir --function " << o.function << "'\n";
    return 2;
  }
  if (o.kind == "ast") {
    auto src = driver::parseFile(o.file, diags);
    if (!src)
      return 1;
    ast::dump(*src->program, std::cout);
    return 0;
  }
  auto prep = prepare(o, diags);
  if (!prep)
    return 1;
  driver::CompiledModel &m = prep->model;
  if (fixed && !m.lowered.objectives.empty()) {
    // Several objectives: one gradient and one step per phase, each
    // differentiating its loss with respect to what that loss updates.
    bool first = true;
    for (const frontend::Phase &p : m.phases()) {
      std::cout << (first ? "" : "\n") << "// phase " << p.loss << "\n";
      driver::printWithBodies(m.function((o.kind == "grad" ? "grad." : "train_step.") + p.loss), std::cout);
      first = false;
    }
    return 0;
  }
  if (o.kind != "llvm" && o.kind != "asm") {
    driver::printWithBodies(m.function(fixed ? fixed : o.functionGiven ? o.function : "forward"), std::cout);
    return 0;
  }
  ir::Bindings b = m.bindings(m.config.batch);
  codegen::JIT jit;
  codegen::CodegenOptions co;
  co.optimize = !o.noOpt;
  co.inPlaceUpdates = true; // as nnc train compiles it
  const ir::Function &f = m.function(o.function);
  std::cout << (o.kind == "llvm" ? jit.emitLLVM(f, b, co) : jit.emitAssembly(f, b, co));
  return 0;
}

/// Loss and gradients on the first examples of the training data, with the
/// batch itself, as a safetensors file (for inspection and parity tests).
int cmdGrad(const Options &o, DiagnosticEngine &diags) {
  auto prep = prepare(o, diags);
  if (!prep)
    return 1;
  driver::CompiledModel &m = prep->model;
  driver::Session session(m);
  session.initialize(m.config.seed);
  if (!o.load.empty())
    session.load(o.load);
  driver::Data data = driver::loadData(m);
  session.checkData(data);
  int64_t n = std::min<int64_t>(m.config.batch, data.train.size());
  runtime::Dataset first = runtime::take(data.train, n);
  session.trainer().seedDropout(m.config.seed); // the first step's dropout mask
  // Several losses: each phase's gradient from the same weights, its results
  // named "<phase>/<result>" ("d/loss.d", "d/grad.D.h.w", ...).
  std::map<std::string, runtime::Tensor> outs;
  std::string lossText;
  if (!m.lowered.objectives.empty()) {
    for (const frontend::Phase &p : m.phases()) {
      const std::string &phase = p.loss;
      session.trainer().seedDropout(m.config.seed);
      for (auto &[name, t] : session.trainer().run("grad." + phase, first.inputs, &first.y))
        outs[phase + "/" + name] = std::move(t);
      lossText += fmt::format("{}{} {:.6f}", lossText.empty() ? "" : ", ", phase,
                              outs.at(phase + "/loss." + phase).f32()[0]);
    }
  } else {
    outs = session.trainer().run("grad", first.inputs, &first.y);
    lossText = fmt::format("loss {:.6f}", outs.at("loss").f32()[0]);
  }
  // One input is "batch.x"; several are "batch.<input name>".
  std::vector<std::pair<std::string, const runtime::Tensor *>> tensors;
  for (size_t i = 0; i < first.inputs.size(); ++i)
    tensors.push_back({first.inputs.size() == 1 ? "batch.x" : "batch." + m.lowered.inputs[i].name, &first.inputs[i]});
  tensors.push_back({"batch.y", &first.y});
  for (auto &[name, t] : outs)
    tensors.push_back({name, &t});
  runtime::saveSafetensors(o.save, tensors, {{"nnc.model", m.lowered.name}});
  std::cout << fmt::format("{} on {} examples; wrote {} tensors to {}\n", lossText, n, tensors.size(), o.save);
  return 0;
}

} // namespace nnc::cli
