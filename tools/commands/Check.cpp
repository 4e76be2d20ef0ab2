// nnc check: diagnostics, the declaration table of each model, and with
// --data the data files checked against the model.
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

/// nnc check's table of a model's declarations (as Keras's model.summary()):
/// source line, name, type and the parameters each creates.
std::string summaryTable(const frontend::LoweredModel &low) {
  size_t nameW = 7, typeW = 4;
  for (const auto &r : low.rows) {
    nameW = std::max(nameW, r.name.size());
    typeW = std::max(typeW, r.type.size());
  }
  std::string out =
      fmt::format("    {:>5}  {:<{}}  {:<{}}  {:>10}\n", "line", "binding", nameW, "type", typeW, "parameters");
  for (const auto &r : low.rows)
    out += fmt::format("    {:>5}  {:<{}}  {:<{}}  {:>10}\n", r.line ? std::to_string(r.line) : "", r.name, nameW,
                       r.type, typeW, r.params);
  return out;
}

/// nnc check --data: loads the data of model `name`'s train block as nnc
/// train would (split and preprocessing included) and reports what train
/// would refuse or warn about, without compiling a step. Returns its line of
/// the summary; errors go to `diags`.
std::string checkModelData(const driver::Source &src, const std::string &name, DiagnosticEngine &diags) {
  driver::CompiledModel m = driver::compileModel(src, name, diags);
  if (m.config.data.kind == frontend::DataSource::None)
    return fmt::format("  {}: no train block, no data to check\n", name);
  try {
    driver::Data data = driver::loadData(m);
    driver::Session session(m);
    session.checkData(data);
    session.checkBatchNorm(data.train.size());
    std::vector<driver::DataWarning> warnings = driver::dataWarnings(m, data);
    for (const driver::DataWarning &w : warnings)
      diags.warning(w.loc, w.message);
    return fmt::format(
        "  {} data: {} training, {} validation, {} test examples{}\n", name, data.train.size(), data.val.size(),
        data.test.size(),
        warnings.empty() ? "" : fmt::format(" ({} warning{})", warnings.size(), warnings.size() == 1 ? "" : "s"));
  } catch (const driver::LocatedError &e) {
    diags.error(e.loc, e.what());
  } catch (const runtime::Error &e) {
    diags.error(m.config.data.loc, e.what());
  }
  return "";
}

int cmdCheck(const Options &o, DiagnosticEngine &diags) {
  auto src = driver::parseFile(o.file, diags);
  if (!src)
    return 1;
  if (!frontend::checkProgram(*src->program, diags))
    return 1;
  int models = 0;
  int64_t params = 0;
  std::string perModel;
  for (auto &m : src->program->models) {
    auto lowered = frontend::lowerModel(*src->program, m, diags);
    if (!lowered)
      continue;
    ++models;
    int64_t own = 0;
    for (auto &p : lowered->params)
      own += ir::numElements(p.shape);
    params += own;
    // One line per model: its task (§7.8), inputs and label.
    auto decls = [](const std::vector<frontend::TensorDecl> &ds) {
      std::string t;
      for (const frontend::TensorDecl &d : ds)
        t += (t.empty() ? "" : ", ") + d.name + " : " + d.type.str();
      return t;
    };
    perModel += fmt::format("  {}: {}; input{} {}{}; {} parameters\n", lowered->name, frontend::taskName(lowered->task),
                            lowered->inputs.size() == 1 ? "" : "s", decls(lowered->inputs),
                            lowered->labels.empty() ? "" : "; label " + decls(lowered->labels), own);
    perModel += summaryTable(*lowered);
    std::string base = o.file.find('/') == std::string::npos ? "." : o.file.substr(0, o.file.rfind('/'));
    frontend::readTrainConfig(*src->program, *lowered, base, diags);
  }
  if (diags.hasErrors())
    return 1;
  if (o.checkData)
    for (auto &decl : src->program->models)
      perModel += checkModelData(*src, decl.name, diags);
  if (diags.hasErrors())
    return 1;
  std::cout << fmt::format("{}: ok: {} model{}, {} parameters\n", o.file, models, models == 1 ? "" : "s", params)
            << perModel;
  return 0;
}

} // namespace nnc::cli
