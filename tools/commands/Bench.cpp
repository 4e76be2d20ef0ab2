// nnc bench: JIT compile time and the time of one compiled step, with
// --profile the time of each op and its source line.
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

/// Prints the ops that took most of the time, with their IR text.
void printProfile(const ir::Function &f, const codegen::CompiledFunction &c, int64_t calls) {
  const std::vector<double> &seconds = *c.profile;
  double total = 0;
  std::vector<size_t> order;
  for (size_t i = 0; i < seconds.size(); ++i) {
    total += seconds[i];
    order.push_back(i);
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return seconds[a] > seconds[b]; });
  std::cout << fmt::format("profile of {} ({} calls; time per call):\n", f.name, calls);
  double shown = 0;
  for (size_t i : order) {
    if (shown > 0.95 * total || seconds[i] <= 0)
      break;
    shown += seconds[i];
    std::string what = c.profileLabels[i];
    if (what.size() > 150)
      what = what.substr(0, 147) + "...";
    if (c.profileOps[i] > 1)
      what += fmt::format("  (a loop of {} fused ops ending here)", c.profileOps[i]);
    std::cout << fmt::format("{:9.4f} ms {:5.1f}% {}\n", seconds[i] / double(calls) * 1e3, 100 * seconds[i] / total,
                             what);
    // The source line the op came from (for a gradient op, the line of the
    // forward op it differentiates).
    if (const SourceLoc &at = c.profileLocs.at(i); at.valid()) {
      std::string line = at.file->lineText(at.line);
      size_t lead = line.find_first_not_of(" \t");
      line = lead == std::string::npos ? "" : line.substr(lead);
      if (line.size() > 100)
        line = line.substr(0, 97) + "...";
      std::cout << fmt::format("{:19}{}:{}: {}\n", "", at.file->name, at.line, line);
    }
  }
}

/// Times one compiled function (a train step by default) on the first batch of
/// the training data: JIT compile time, then per-call times after a warm-up.
/// This is nnc's side of bench/: one line, or one JSON object with --json.
int cmdBench(const Options &o, DiagnosticEngine &diags) {
  auto prep = prepare(o, diags);
  if (!prep)
    return 1;
  driver::CompiledModel &m = prep->model;
  driver::Session session(m);
  session.setProfiling(o.profile);
  session.initialize(m.config.seed);
  driver::Data data = driver::loadData(m);
  session.checkData(data);
  int64_t batch = m.config.batch;
  if (batch > data.train.size())
    throw runtime::Error(fmt::format("batch {} is larger than the {} training examples", batch, data.train.size()));
  runtime::Dataset first = runtime::take(data.train, batch);
  const runtime::Tensor *labels = o.function == "predict" ? nullptr : &first.y;
  int64_t minCalls = o.steps ? o.steps : 10, maxCalls = o.steps ? o.steps : 100000;
  // A model with several losses has no one train step: its round of phases
  // (each phase's step once, "d+g") is timed as one call.
  std::vector<std::string> fns = {o.function};
  std::vector<float> lrs = {float(m.config.lr)};
  std::string name = o.function;
  if (o.function == "train_step" && !m.lowered.objectives.empty()) {
    fns.clear();
    lrs.clear();
    name.clear();
    for (const frontend::Phase &p : m.phases()) {
      fns.push_back("train_step." + p.loss);
      lrs.push_back(float(p.lr));
      name += (name.empty() ? "" : "+") + p.loss;
    }
  }
  std::vector<double> t = session.trainer().timeCalls(fns, first.inputs, labels, lrs, 3, minCalls, maxCalls,
                                                      o.steps ? 0.0 : o.seconds);
  std::sort(t.begin(), t.end());
  double median = t[t.size() / 2], best = t.front(), p90 = t[std::min(t.size() - 1, t.size() * 9 / 10)];
  int threads = runtime::globalThreadPool().threads();
  auto [arena, unplanned] = session.plannedMemory(fns.front(), batch);
  if (o.json) {
    nlohmann::json j = {{"peer", "nnc"},
                        {"model", m.lowered.name},
                        {"function", name},
                        {"batch", batch},
                        {"threads", threads},
                        {"ms", median * 1e3},
                        {"min_ms", best * 1e3},
                        {"p90_ms", p90 * 1e3},
                        {"steps", int64_t(t.size())},
                        {"compile_seconds", session.compileSeconds()},
                        {"functions_from_cache", session.functionsFromCache()},
                        {"arena_bytes", arena},
                        {"unplanned_bytes", unplanned},
                        {"samples_per_second", double(batch) / median}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << fmt::format("{} {} batch {} threads {}: compile {:.3f} s ({} of {} from the cache); {} calls, median "
                             "{:.4f} ms (min {:.4f}, p90 {:.4f}), {:.0f} samples/s\n",
                             m.lowered.name, name, batch, threads, session.compileSeconds(),
                             session.functionsFromCache(), session.functionsCompiled(), t.size(), median * 1e3,
                             best * 1e3, p90 * 1e3, double(batch) / median);
    std::cout << fmt::format("planned memory: {:.2f} MiB arena for intermediates ({:.2f} MiB without reuse)\n",
                             double(arena) / (1 << 20), double(unplanned) / (1 << 20));
  }
  for (const std::string &fn : fns)
    if (const codegen::CompiledFunction *prof = session.profile(fn, batch))
      printProfile(m.function(fn), *prof, int64_t(t.size()) + 3);
  return 0;
}

} // namespace nnc::cli
