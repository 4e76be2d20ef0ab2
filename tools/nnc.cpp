// nnc: the command-line interface.
//   nnc train FILE   compile, train, evaluate, save
//   nnc eval FILE    evaluate a checkpoint
//   nnc bench FILE   time compilation and a compiled step
//   nnc check FILE   diagnostics only
//   nnc emit KIND FILE   print a stage: ast, ir, grad, llvm, asm
//   nnc repl [FILE]  interactive session (or --script FILE / a pipe)
// Exit status: 0 success, 1 user error (after diagnostics), 2 usage error.
#include "tools/DataChecks.h"
#include "tools/Driver.h"
#include "tools/Interrupt.h"
#include "tools/Repl.h"
#include "tools/Version.h"

#include "frontend/Builtins.h"
#include "ir/Printer.h"
#include "runtime/Checkpoint.h"
#include "runtime/FileUtil.h"
#include "runtime/Metrics.h"
#include "runtime/Plot.h"
#include "runtime/TaskMetrics.h"
#include "runtime/ThreadPool.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <numeric>

#include <cerrno>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

using namespace nnc;
using driver::optimizerText;
using driver::resumeKey;
using driver::scheduleText;
using driver::storedStandardizer;
using driver::trainOptions;

namespace {

struct Options {
  std::string file, model, save, load, metricsJson, function = "train_step", kind, prompt, output;
  std::string resume, checkpoint, log, plot, title, input, labels, script;
  int64_t top = 1;
  std::optional<int64_t> checkpointEvery;
  int64_t length = 200, steps = 0;
  double seconds = 1.0;
  bool json = false, profile = false;
  double temperature = 1.0;
  std::optional<int64_t> epochs, batch, threads, limit;
  std::optional<double> lr;
  std::optional<uint64_t> seed;
  bool noColor = false, quiet = false, noOpt = false;
  bool functionGiven = false; ///< --function was on the command line
  bool checkData = false;
};

/// The train-block vocabulary, from the builtin table, for `nnc train --help`.
std::string trainBlockHelp() {
  std::string out = "\nIn the .nn file's train block (docs/LANGUAGE.md, section 7):\n"
                    "  settings: data, test, split, optimizer, schedule, epochs, batch, seed, metrics, log, classes\n";
  for (const frontend::Builtin &b : frontend::builtins()) {
    if (b.where != frontend::Builtin::Train)
      continue;
    std::string sig = b.name;
    std::string params;
    for (const frontend::BuiltinParam &p : b.params)
      if (std::string(p.name) != "data")
        params += (params.empty() ? "" : ", ") + std::string(p.name);
    bool step = !b.params.empty() && std::string(b.params[0].name) == "data";
    if (!params.empty() || !step)
      sig += "(" + params + ")";
    if (sig.size() > 34)
      out += fmt::format("  {}\n  {:<34} {}\n", sig, "", b.summary);
    else
      out += fmt::format("  {:<34} {}\n", sig, b.summary);
  }
  return out;
}

bool useColor(const Options &o) { return !o.noColor && isatty(STDERR_FILENO) && getenv("NO_COLOR") == nullptr; }

void applyOverrides(driver::CompiledModel &m, const Options &o) {
  frontend::TrainConfig &c = m.config;
  if (o.epochs)
    c.epochs = *o.epochs;
  if (o.batch)
    c.batch = *o.batch;
  if (o.lr)
    c.lr = *o.lr;
  if (o.seed)
    c.seed = *o.seed;
  if (!o.checkpoint.empty())
    c.checkpointPath = o.checkpoint;
  if (o.checkpointEvery)
    c.checkpointEvery = *o.checkpointEvery;
  if (!o.log.empty())
    c.logPath = o.log;
}

/// The per-epoch log of a run, as `nnc plot` reads it.
runtime::TrainingLog trainingLog(const std::vector<runtime::EpochRecord> &history, bool classification) {
  runtime::TrainingLog log;
  log.columns = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"};
  for (const runtime::EpochRecord &r : history) {
    bool val = r.val.examples > 0;
    log.rows.push_back({double(r.epoch), r.train.loss, classification ? r.train.accuracy : NAN, val ? r.val.loss : NAN,
                        val && classification ? r.val.accuracy : NAN, r.lr, r.seconds});
  }
  return log;
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// `path` made absolute, for the lines that say where a file was written.
std::string where(const std::string &path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

/// Writes the training log so far to `path` (CSV when it ends in .csv, else
/// JSON lines), atomically: a run stopped mid-write keeps the previous log.
void writeTrainingLog(const std::string &path, const std::vector<runtime::EpochRecord> &history, bool classification) {
  runtime::writeFileAtomic(path,
                           runtime::formatTrainingLog(trainingLog(history, classification), !endsWith(path, ".csv")));
}

void writeMetrics(const std::string &path, const nlohmann::json &j) {
  runtime::writeFileAtomic(path, j.dump(2) + "\n");
}

std::string accText(double a) { return a >= 0 ? fmt::format("{:.4f}", a) : "n/a"; }

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
  auto src = driver::parseFile(o.file, diags);
  if (!src)
    return 1;
  if (o.kind == "ast") {
    ast::dump(*src->program, std::cout);
    return 0;
  }
  driver::CompiledModel m = driver::compileModel(*src, o.model, diags);
  applyOverrides(m, o);
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
  auto src = driver::parseFile(o.file, diags);
  if (!src)
    return 1;
  driver::CompiledModel m = driver::compileModel(*src, o.model, diags);
  applyOverrides(m, o);
  driver::Session session(m);
  session.initialize(m.config.seed);
  if (!o.load.empty())
    session.load(o.load);
  driver::Data data = driver::loadData(m);
  session.checkData(data);
  int64_t n = std::min<int64_t>(m.config.batch, data.train.size());
  runtime::Dataset first = runtime::take(data.train, n);
  session.trainer().seedDropout(m.config.seed); // the first step's dropout mask
  auto outs = session.trainer().run("grad", first.inputs, &first.y);
  // One input is "batch.x"; several are "batch.<input name>".
  std::vector<std::pair<std::string, const runtime::Tensor *>> tensors;
  for (size_t i = 0; i < first.inputs.size(); ++i)
    tensors.push_back({first.inputs.size() == 1 ? "batch.x" : "batch." + m.lowered.inputs[i].name, &first.inputs[i]});
  tensors.push_back({"batch.y", &first.y});
  for (auto &[name, t] : outs)
    tensors.push_back({name, &t});
  runtime::saveSafetensors(o.save, tensors, {{"nnc.model", m.lowered.name}});
  std::cout << fmt::format("loss {:.6f} on {} examples; wrote {} tensors to {}\n", outs.at("loss").f32()[0], n,
                           tensors.size(), o.save);
  return 0;
}

/// Generates text with a next-byte model: input i64[N, T] and an output of
/// probabilities [N, T, 256]. The window holds the prompt and what has been
/// generated (its last T bytes once longer), padded at the end with spaces,
/// which a causal model never looks at from earlier positions; the next byte
/// is drawn from the output at the window's last real position, sharpened or
/// flattened by the temperature.
int cmdSample(const Options &o, DiagnosticEngine &diags) {
  auto src = driver::parseFile(o.file, diags);
  if (!src)
    return 1;
  driver::CompiledModel m = driver::compileModel(*src, o.model, diags);
  const auto &low = m.lowered;
  if (low.inputs.size() != 1 || low.inputs[0].type.dtype != ir::DType::I64 || low.inputs[0].type.rank() != 2 ||
      !low.inputs[0].type.shape[1].isStatic())
    throw runtime::Error("nnc sample needs a model whose one input is i64[N, T] byte ids, but '" + low.name + "' has " +
                         (low.inputs.empty() ? std::string("no input")
                                             : "input '" + low.inputs[0].name + "' : " + low.inputs[0].type.str()));
  std::string output = o.output.empty() ? (low.outputs.empty() ? "" : low.outputs[0]) : o.output;
  if (std::find(low.outputs.begin(), low.outputs.end(), output) == low.outputs.end())
    throw runtime::Error("model '" + low.name + "' has no output " + (output.empty() ? "" : "'" + output + "' ") +
                         "to sample from; declare one, e.g. 'output probs = softmax(logits)'");
  int64_t T = low.inputs[0].type.shape[1].size;
  driver::Session session(m);
  session.initialize(m.config.seed);
  session.load(o.load);
  std::vector<unsigned char> text(o.prompt.begin(), o.prompt.end());
  if (text.empty())
    text.push_back('\n');
  std::mt19937_64 rng(o.seed ? *o.seed : m.config.seed);
  std::string generated;
  runtime::Tensor x(runtime::DType::I64, {1, T});
  for (int64_t step = 0; step < o.length; ++step) {
    int64_t start = std::max<int64_t>(0, int64_t(text.size()) - T), len = int64_t(text.size()) - start;
    for (int64_t j = 0; j < T; ++j)
      x.i64()[j] = j < len ? text[size_t(start + j)] : ' ';
    runtime::Tensor probs = session.trainer().predict(x, output, 1);
    if (probs.dtype() != runtime::DType::F32 || probs.rank() != 3 || probs.dim(1) != T || probs.dim(2) != 256)
      throw runtime::Error("output '" + output + "' is " + probs.typeString() +
                           "; nnc sample needs probabilities over 256 bytes at each position, [N, " +
                           std::to_string(T) + ", 256]");
    const float *p = probs.f32() + (len - 1) * 256;
    std::vector<double> w(256);
    double maxLog = -1e300;
    for (int c = 0; c < 256; ++c)
      maxLog = std::max(maxLog, std::log(std::max<double>(p[c], 1e-30)) / o.temperature);
    for (int c = 0; c < 256; ++c)
      w[size_t(c)] = std::exp(std::log(std::max<double>(p[c], 1e-30)) / o.temperature - maxLog);
    std::discrete_distribution<int> pick(w.begin(), w.end());
    unsigned char next = static_cast<unsigned char>(pick(rng));
    text.push_back(next);
    generated.push_back(char(next));
  }
  std::cout << o.prompt << generated << "\n";
  return 0;
}

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
  auto src = driver::parseFile(o.file, diags);
  if (!src)
    return 1;
  driver::CompiledModel m = driver::compileModel(*src, o.model, diags);
  applyOverrides(m, o);
  if (o.threads)
    runtime::setGlobalThreads(int(*o.threads));
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
  std::vector<double> t = session.trainer().timeCalls(o.function, first.inputs, labels, float(m.config.lr), 3, minCalls,
                                                      maxCalls, o.steps ? 0.0 : o.seconds);
  std::sort(t.begin(), t.end());
  double median = t[t.size() / 2], best = t.front(), p90 = t[std::min(t.size() - 1, t.size() * 9 / 10)];
  int threads = runtime::globalThreadPool().threads();
  auto [arena, unplanned] = session.plannedMemory(o.function, batch);
  if (o.json) {
    nlohmann::json j = {{"peer", "nnc"},
                        {"model", m.lowered.name},
                        {"function", o.function},
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
                             m.lowered.name, o.function, batch, threads, session.compileSeconds(),
                             session.functionsFromCache(), session.functionsCompiled(), t.size(), median * 1e3,
                             best * 1e3, p90 * 1e3, double(batch) / median);
    std::cout << fmt::format("planned memory: {:.2f} MiB arena for intermediates ({:.2f} MiB without reuse)\n",
                             double(arena) / (1 << 20), double(unplanned) / (1 << 20));
  }
  if (const codegen::CompiledFunction *prof = session.profile(o.function, batch))
    printProfile(m.function(o.function), *prof, int64_t(t.size()) + 3);
  return 0;
}

/// The class scores [n, classes] of a classification model (its first
/// output) for every row of `x`.
runtime::Tensor classScores(const driver::CompiledModel &m, runtime::Trainer &trainer,
                            const std::vector<runtime::Tensor> &x, int64_t batch) {
  const auto &low = m.lowered;
  if (low.outputs.empty())
    throw runtime::Error("class metrics and predictions need an output of class scores; '" + low.name +
                         "' declares none (add e.g. 'output probs = softmax(logits)')");
  runtime::Tensor s = trainer.predict(x, low.outputs[0], batch);
  if (s.dtype() != runtime::DType::F32 || s.rank() != 2 || s.dim(1) != low.numClasses)
    throw runtime::Error(fmt::format("class metrics and predictions need the first output of '{}' to be class scores "
                                     "[N, {}], but '{}' is {}",
                                     low.name, low.numClasses, low.outputs[0], s.typeString()));
  return s;
}

/// Regression and binary metrics of `d` into `metrics` ("<split>_mae", ...)
/// and the summary line; nothing for other tasks.
void taskMetrics(const driver::CompiledModel &m, runtime::Trainer &trainer, const runtime::Dataset &d, int64_t batch,
                 const std::string &split, nlohmann::json &metrics, std::string &summary) {
  using Task = frontend::LoweredModel::Task;
  if (!m.lowered.hasPrediction())
    return;
  runtime::Tensor pred = trainer.predict(d.inputs, "prediction", batch);
  auto put = [&](const char *name, double v) {
    metrics[split + "_" + name] = std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
  };
  if (m.lowered.task == Task::Regression) {
    runtime::RegressionReport r = runtime::regressionMetrics(pred, d.y);
    put("mae", r.mae);
    put("rmse", r.rmse);
    put("r2", r.r2);
    summary += " " + runtime::formatRegression(r);
    return;
  }
  runtime::BinaryReport r = runtime::binaryMetrics(pred, d.y);
  put("precision", r.precision);
  put("recall", r.recall);
  put("f1", r.f1);
  put("auc", r.auc);
  summary += " f1 " + runtime::metricText(r.f1) + " auc " + runtime::metricText(r.auc);
}

/// Plots are SVG: a name with another extension (x.png) is refused before
/// any work, instead of writing SVG text under it.
void checkPlotPath(const std::string &path, const char *flag) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char &c : ext)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".svg")
    return;
  std::string svg = std::filesystem::path(path).replace_extension(".svg").string();
  throw runtime::Error(fmt::format("{} '{}': nnc draws plots as SVG, so the file must end in .svg (e.g. '{}'); for "
                                   "{}, convert it, e.g. 'rsvg-convert {} -o {}' (Debian package librsvg2-bin)",
                                   flag, path, svg, ext.empty() ? "another format" : ext.substr(1), svg, path));
}

/// Fails before any work when `out` could not be written.
void checkWritable(const std::string &out) {
  if (out.empty())
    return;
  size_t slash = out.rfind('/');
  std::string dir = slash == std::string::npos ? "." : out.substr(0, slash == 0 ? 1 : slash);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw runtime::Error("cannot write '" + out + "': directory '" + dir + "' does not exist");
  if (stat(out.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw runtime::Error("cannot write '" + out + "': it is a directory");
}

/// What nnc train does when a signal stopped it: writes the checkpoint (the
/// train block's, counting a part-done epoch as done, as --resume expects),
/// the log and the --save file, says where each went, and returns 130.
int interruptedRun(const driver::CompiledModel &m, driver::Session &session, const driver::Data &data,
                   const runtime::TrainResult &result, const Options &o, std::ostream &log, bool interactive) {
  const frontend::TrainConfig &cfg = m.config;
  const char *what = driver::interruptSignal == SIGTERM ? "SIGTERM" : "interrupt (Ctrl-C)";
  if (interactive)
    log << "\n";
  if (result.stoppedMidEpoch)
    log << fmt::format("nnc: {}: stopped after step {} of {} in epoch {} ({} steps in all)\n", what,
                       result.partialSteps, result.partialBatches, result.state.epoch, result.steps);
  else
    log << fmt::format("nnc: {}: stopped after epoch {}\n", what, result.state.epoch);
  // A part-done epoch counts as done (its record holds the training loss
  // over the steps made): --resume continues with the next one.
  runtime::FitState st = result.state;
  if (result.stoppedMidEpoch && int64_t(st.history.size()) < st.epoch) {
    runtime::EpochRecord r;
    r.epoch = st.epoch;
    r.train = result.partial;
    st.history.push_back(r);
  }
  if (!cfg.checkpointPath.empty()) {
    driver::saveCheckpoint(session, data, st, cfg.checkpointPath);
    log << "wrote checkpoint " << where(cfg.checkpointPath) << " (epoch " << st.epoch
        << " counts as done; continue with --resume " << cfg.checkpointPath << ")\n";
  }
  if (!cfg.logPath.empty()) {
    writeTrainingLog(cfg.logPath, st.history, m.lowered.accuracy);
    log << "wrote log " << where(cfg.logPath) << "\n";
  }
  if (!o.save.empty()) {
    session.save(o.save, driver::checkpointMetadata(m, data, result.epochsRun), driver::dataTensors(data));
    log << "saved " << where(o.save) << " (the weights after the last step)\n";
  }
  if (cfg.checkpointPath.empty() && o.save.empty())
    log << "nothing saved: give --save FILE or checkpoint(...) in the train block to keep the weights\n";
  log << std::flush;
  driver::interrupted = false;
  return 130;
}

int cmdTrain(const Options &o, DiagnosticEngine &diags, bool evalOnly) {
  auto src = driver::parseFile(o.file, diags);
  if (!src)
    return 1;
  driver::CompiledModel m = driver::compileModel(*src, o.model, diags);
  applyOverrides(m, o);
  const frontend::TrainConfig &cfg = m.config;
  if (o.checkpointEvery && cfg.checkpointPath.empty())
    throw runtime::Error("--checkpoint-every needs a checkpoint path: --checkpoint FILE or checkpoint(path = ...) in "
                         "the train block");
  if (!cfg.logPath.empty() && !frontend::logFormatKnown(cfg.logPath))
    throw runtime::Error("--log must name a .csv or .jsonl (or .json) file, got '" + cfg.logPath + "'");
  if (o.threads)
    runtime::setGlobalThreads(int(*o.threads));
  std::ostream &log = std::cout;
  bool interactive = isatty(STDOUT_FILENO);

  // Fail before training, not after, when a result could not be written.
  if (!o.plot.empty())
    checkPlotPath(o.plot, "--plot");
  for (const std::string &out : {o.save, o.metricsJson, o.plot})
    checkWritable(out);
  if (!evalOnly) {
    checkWritable(cfg.checkpointPath);
    checkWritable(cfg.logPath);
  }
  driver::Session session(m);
  session.initialize(cfg.seed);
  runtime::Checkpoint ck;
  const std::string &from = o.resume.empty() ? o.load : o.resume;
  runtime::FitState fit;
  if (!from.empty()) {
    ck = session.load(from);
    // Evaluate on the same validation split the checkpoint was trained with.
    if (evalOnly && !o.seed)
      if (std::optional<uint64_t> seed = driver::storedSeed(ck, from))
        m.config.seed = *seed;
  }
  if (!o.resume.empty())
    fit = driver::storedFitState(ck, o.resume, session.state());
  std::optional<runtime::Standardizer> stored = storedStandardizer(ck, from, m.config);
  driver::Data data = driver::loadData(m, stored ? &*stored : nullptr);
  if (o.limit) {
    data.train = runtime::take(data.train, *o.limit);
    data.val = runtime::take(data.val, *o.limit);
    data.test = runtime::take(data.test, *o.limit);
  }
  session.checkData(data);
  if (!evalOnly)
    for (const driver::DataWarning &w : driver::dataWarnings(m, data))
      diags.warning(w.loc, w.message);
  if (!o.resume.empty()) {
    auto key = ck.metadata.find("nnc.resume_key");
    if (key == ck.metadata.end())
      throw runtime::Error("'" + o.resume + "' does not say which run wrote it; start from its weights with --load " +
                           o.resume);
    if (std::string now = resumeKey(m, data); key->second != now)
      throw runtime::Error("'" + o.resume + "' was written by a run with other settings, and --resume continues " +
                           "that run exactly:" + driver::resumeDiff(key->second, now) +
                           "\n(to start a new run from its weights, use --load " + o.resume + ")");
  }

  runtime::TrainOptions topts = trainOptions(m);
  topts.augment = driver::augmentation(m, data);
  topts.diagnose = [&](const std::vector<runtime::Tensor> &xb, const runtime::Tensor &yb, float lr) {
    return session.explainNonFinite("train_step", xb, &yb, lr);
  };
  topts.interactive = interactive && !o.quiet;
  topts.log = o.quiet ? nullptr : &log;
  bool cls = m.lowered.accuracy;
  auto saveCheckpoint = [&](const runtime::FitState &st) {
    driver::saveCheckpoint(session, data, st, cfg.checkpointPath);
  };
  runtime::FitState last; // for the final checkpoint after early stopping's restore
  std::string wrote;      // "wrote log ..." lines, printed after the final metrics
  topts.afterEpoch = [&](const runtime::FitState &st) {
    if (!cfg.logPath.empty())
      writeTrainingLog(cfg.logPath, st.history, cls);
    if (cfg.checkpointPath.empty())
      return;
    if (topts.earlyStop)
      last = st;
    bool stopping = topts.earlyStop && st.sinceBest >= topts.patience;
    if (st.epoch % cfg.checkpointEvery == 0 || st.epoch == topts.epochs || stopping)
      saveCheckpoint(st);
  };
  runtime::Trainer &trainer = session.trainer();
  nlohmann::json metrics;
  metrics["task"] = frontend::taskName(m.lowered.task);
  runtime::TrainResult result;
  if (!evalOnly) {
    session.checkBatchNorm(data.train.size());
    if (!o.quiet)
      log << fmt::format("nnc: training {} ({} parameters) on {} examples, validating on {}; batch {}, {}{}, {} "
                         "epoch{}, {} thread{}\n",
                         m.lowered.name, m.parameterCount(), data.train.size(), data.val.size(), topts.batch,
                         optimizerText(cfg),
                         cfg.schedule.kind == runtime::LrSchedule::Constant ? "" : ", " + scheduleText(cfg.schedule),
                         topts.epochs, topts.epochs == 1 ? "" : "s", runtime::globalThreadPool().threads(),
                         runtime::globalThreadPool().threads() == 1 ? "" : "s");
    // Ctrl-C or SIGTERM: the step in progress finishes, then the run keeps
    // what it did (checkpoint, --save, log) and exits with 130.
    driver::CatchInterrupts catcher(true);
    topts.interrupt = &driver::interrupted;
    result = trainer.fit(data.train, data.val, topts, fit);
    if (result.interrupted)
      return interruptedRun(m, session, data, result, o, log, interactive);
    // The run's last checkpoint holds its final weights: the best epoch's
    // when early stopping restored them (eval and predict read those).
    if (!cfg.checkpointPath.empty() && topts.earlyStop && result.bestEpoch != result.epochsRun && last.epoch)
      saveCheckpoint(last);
    metrics["parameters"] = m.parameterCount();
    metrics["epochs"] = result.epochsRun;
    metrics["resumed_after_epoch"] = fit.epoch;
    metrics["seconds"] = result.seconds;
    metrics["samples_per_second"] = result.samplesPerSecond;
    metrics["compile_seconds"] = session.compileSeconds();
    metrics["train_seconds"] = result.trainSeconds;
    metrics["stopped_early"] = result.stoppedEarly;
    metrics["best_epoch"] = result.bestEpoch;
    if (!o.plot.empty())
      runtime::writeFileAtomic(o.plot,
                               runtime::plotSvg(trainingLog(result.history, cls),
                                                o.title.empty() ? m.lowered.name + " (" + o.file + ")" : o.title));
    // Where each file went (paths in the .nn file are relative to it, those
    // on the command line to the working directory).
    if (!cfg.checkpointPath.empty() && result.epochsRun > fit.epoch)
      wrote += "wrote checkpoint " + where(cfg.checkpointPath) + " (after epoch " + std::to_string(result.epochsRun) +
               "; continue with --resume " + cfg.checkpointPath + ")\n";
    if (!cfg.logPath.empty())
      wrote += "wrote log " + where(cfg.logPath) + "\n";
    if (!o.plot.empty())
      wrote += "wrote plot " + where(o.plot) + "\n";
  }
  // Final metrics are measured on the final weights (after any restore).
  std::string summary;
  auto report = [&](const char *split, const runtime::Dataset &d) {
    if (!d.size())
      return;
    runtime::EvalResult r = trainer.evaluate(d, topts.batch, cls);
    // Weights can be finite and still overflow the loss; never save those.
    if (!std::isfinite(r.loss))
      throw runtime::Error(fmt::format(
          "{}the loss on the {} data is {} with the {} weights{}", evalOnly ? "" : "training diverged: ", split, r.loss,
          evalOnly ? "checkpoint's" : "final", evalOnly ? "" : " (try a smaller learning rate)"));
    metrics[std::string(split) + "_loss"] = r.loss;
    if (cls)
      metrics[std::string(split) + "_accuracy"] = r.accuracy;
    summary += fmt::format("{}{} loss {:.4f}", summary.empty() ? "" : " | ", split, r.loss);
    if (cls)
      summary += " acc " + accText(r.accuracy);
    taskMetrics(m, trainer, d, topts.batch, split, metrics, summary);
  };
  report("train", data.train);
  report("val", data.val);
  report("test", data.test);
  log << "final: " << summary << "\n";
  if (m.lowered.classification && (cfg.topK || cfg.perClass || cfg.confusion)) {
    // On the data the run did not learn from: test, else validation.
    bool test = data.test.size() > 0, val = !test && data.val.size() > 0;
    const runtime::Dataset &d = test ? data.test : val ? data.val : data.train;
    std::string split = test ? "test" : val ? "val" : "train";
    runtime::ClassReport r =
        runtime::classify(classScores(m, trainer, d.inputs, topts.batch), d.y, cfg.topK ? cfg.topK : 5);
    if (cfg.topK)
      metrics[fmt::format("{}_top{}_accuracy", split, r.k)] = r.topK;
    auto list = [](const std::vector<double> &v) {
      nlohmann::json j = nlohmann::json::array();
      for (double x : v)
        j.push_back(std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x));
      return j;
    };
    if (cfg.perClass) {
      metrics[split + "_precision"] = list(r.precision);
      metrics[split + "_recall"] = list(r.recall);
    }
    if (cfg.confusion) {
      nlohmann::json rows = nlohmann::json::array();
      for (int64_t t = 0; t < r.classes; ++t)
        rows.push_back(
            std::vector<int64_t>(r.confusion.begin() + t * r.classes, r.confusion.begin() + (t + 1) * r.classes));
      metrics[split + "_confusion"] = rows;
    }
    log << runtime::formatReport(r, split, cfg.classNames, cfg.perClass, cfg.confusion);
  }
  log << wrote;
  if (!o.save.empty()) {
    session.save(o.save, driver::checkpointMetadata(m, data, result.epochsRun), driver::dataTensors(data));
    log << "saved " << where(o.save) << "\n";
  }
  if (!o.metricsJson.empty()) {
    writeMetrics(o.metricsJson, metrics);
    log << "wrote metrics " << where(o.metricsJson) << "\n";
  }
  return 0;
}

/// nnc predict's rows for a classifier (see cmdPredict).
std::string classPredictions(const driver::CompiledModel &m, runtime::Trainer &trainer, const runtime::Dataset &data,
                             bool labelled, int64_t top, std::string &summary) {
  const auto &low = m.lowered;
  runtime::Tensor scores = classScores(m, trainer, data.inputs, m.config.batch);
  const ir::Value *out = m.function("predict").result(low.outputs[0]);
  bool probabilities = out && out->def && out->def->kind == ir::OpKind::Softmax;
  int64_t n = scores.dim(0), c = scores.dim(1), k = std::min(top, c);
  std::string text = "row";
  for (int64_t j = 1; j <= k; ++j)
    text += k == 1 ? ",class,probability" : fmt::format(",class{},probability{}", j, j);
  if (!m.config.classNames.empty())
    text += ",name";
  if (labelled)
    text += ",label";
  text += "\n";
  std::vector<double> p(static_cast<size_t>(c));
  std::vector<int64_t> order(static_cast<size_t>(c));
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float *s = scores.f32() + i * c;
    double maxS = *std::max_element(s, s + c), sum = 0;
    for (int64_t j = 0; j < c; ++j)
      sum += p[size_t(j)] = probabilities ? double(s[j]) : std::exp(double(s[j]) - maxS);
    for (int64_t j = 0; j < c; ++j)
      p[size_t(j)] /= probabilities ? 1.0 : sum;
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[size_t(a)] > p[size_t(b)]; });
    text += std::to_string(i);
    for (int64_t j = 0; j < k; ++j)
      text += fmt::format(",{},{:.6f}", order[size_t(j)], p[size_t(order[size_t(j)])]);
    if (!m.config.classNames.empty())
      text += "," + m.config.classNames[size_t(order[0])];
    if (labelled) {
      text += fmt::format(",{}", data.y.i64()[i]);
      hits += order[0] == data.y.i64()[i];
    }
    text += "\n";
  }
  if (labelled)
    summary += fmt::format("; accuracy {:.4f} against its labels", double(hits) / double(std::max<int64_t>(1, n)));
  return text;
}

/// nnc predict's rows for a binary, multi-label or regression model: each
/// example's values (probabilities and 0/1 classes for logits).
std::string valuePredictions(const driver::CompiledModel &m, runtime::Trainer &trainer, const runtime::Dataset &data,
                             bool labelled, std::string &summary) {
  using Task = frontend::LoweredModel::Task;
  const auto &low = m.lowered;
  runtime::Tensor pred = trainer.predict(data.inputs, "prediction", m.config.batch);
  int64_t n = pred.dim(0), k = n ? pred.numel() / n : 0;
  bool regression = low.task == Task::Regression;
  auto col = [&](const char *name, int64_t j) { return k == 1 ? std::string(name) : fmt::format("{}{}", name, j); };
  std::string text = "row";
  for (int64_t j = 0; j < k; ++j)
    text += regression ? "," + col("prediction", j) : "," + col("class", j) + "," + col("probability", j);
  if (labelled)
    for (int64_t j = 0; j < k; ++j)
      text += "," + col("label", j);
  text += "\n";
  const float *p = pred.f32();
  for (int64_t i = 0; i < n; ++i) {
    text += std::to_string(i);
    for (int64_t j = 0; j < k; ++j) {
      double v = p[i * k + j];
      text += regression ? fmt::format(",{:.6g}", v) : fmt::format(",{},{:.6f}", v > 0 ? 1 : 0, 1 / (1 + std::exp(-v)));
    }
    if (labelled)
      for (int64_t j = 0; j < k; ++j)
        text += fmt::format(",{:g}", data.y.f32()[i * k + j]);
    text += "\n";
  }
  if (labelled && regression) {
    runtime::RegressionReport r = runtime::regressionMetrics(pred, data.y);
    summary += "; against its labels: " + runtime::formatRegression(r);
  } else if (labelled) {
    runtime::BinaryReport r = runtime::binaryMetrics(pred, data.y);
    summary += "; against its labels: " + runtime::formatBinary(r);
  }
  return text;
}

/// Predictions for new data with a trained checkpoint, as CSV: the data goes
/// through the train block's preprocessing (scaling; standardization with the
/// checkpoint's statistics). A classifier gives each row its most likely
/// classes with their probabilities (the output's values when it is a
/// softmax, else the softmax of the scores); a binary or multi-label model
/// the probability of each label and the class at 0.5; a regression model
/// its predicted values. With the label's columns in the file, each row also
/// shows the label, and a summary line the metrics against it.
int cmdPredict(const Options &o, DiagnosticEngine &diags) {
  auto src = driver::parseFile(o.file, diags);
  if (!src)
    return 1;
  driver::CompiledModel m = driver::compileModel(*src, o.model, diags);
  applyOverrides(m, o);
  if (o.threads)
    runtime::setGlobalThreads(int(*o.threads));
  const auto &low = m.lowered;
  if (!low.classification && !low.hasPrediction())
    throw runtime::Error("nnc predict needs a classification, binary, multi-label or regression model (a "
                         "cross_entropy, bce_with_logits, mse or huber loss against the label); '" +
                         low.name + "' is none of these");
  checkWritable(o.output);
  driver::Session session(m);
  session.initialize(m.config.seed);
  runtime::Checkpoint ck = session.load(o.load);
  bool labelled = false;
  runtime::Dataset data = driver::loadExamples(m, o.input, o.labels, labelled);
  session.checkData(data, "'" + o.input + "'", labelled);
  for (const frontend::Transform &t : m.config.transforms) {
    if (t.kind == frontend::Transform::Scale) {
      runtime::scale(data, float(t.factor));
      continue;
    }
    if (t.kind == frontend::Transform::OneHot)
      continue; // labels only
    std::optional<runtime::Standardizer> st = storedStandardizer(ck, o.load, m.config);
    if (!st)
      throw runtime::Error("the train block scales its data by statistics, but '" + o.load +
                           "' holds no standardization statistics (data.mean, data.stddev); save it with this "
                           "version of nnc train --save or checkpoint(...)");
    runtime::applyStandardizer(*st, data);
  }
  std::string text, summary = fmt::format("predicted {} rows of '{}'", data.size(), o.input);
  if (low.classification)
    text = classPredictions(m, session.trainer(), data, labelled, o.top, summary);
  else
    text = valuePredictions(m, session.trainer(), data, labelled, summary);
  if (o.output.empty())
    std::cout << text;
  else
    runtime::writeFileAtomic(o.output, text);
  (o.output.empty() ? std::cerr : std::cout) << summary << (o.output.empty() ? "" : "; wrote " + o.output) << "\n";
  return 0;
}

/// Draws a training log (CSV or JSON lines, as nnc train --log writes) as SVG curves.
int cmdPlot(const Options &o) {
  checkPlotPath(o.output, "-o");
  runtime::TrainingLog log = runtime::readTrainingLog(o.file);
  checkWritable(o.output);
  std::string title = o.title.empty() ? o.file : o.title;
  runtime::writeFileAtomic(o.output, runtime::plotSvg(log, title));
  std::cout << fmt::format("wrote {} ({} epoch{})\n", where(o.output), log.rows.size(),
                           log.rows.size() == 1 ? "" : "s");
  return 0;
}

/// A command-line mistake in nnc's words: CLI11's message, with a
/// did-you-mean for an option the command does not have.
std::string usageMessage(const CLI::App &app, const CLI::ParseError &e) {
  std::string msg = e.what();
  const std::string extra = "The following argument was not expected: ";
  const std::string extras = "The following arguments were not expected: ";
  bool one = msg.rfind(extra, 0) == 0;
  if (!one && msg.rfind(extras, 0) != 0)
    return msg;
  // The first unexpected word that looks like an option, against the options
  // of the command being parsed (or nnc's own).
  std::istringstream words(msg.substr((one ? extra : extras).size()));
  std::string word;
  for (std::string w; words >> w;) {
    if (word.empty() && w.rfind("-", 0) == 0)
      word = w; // the others are likely its values
  }
  if (word.empty())
    return msg;
  const CLI::App *cmd = &app;
  for (const CLI::App *sub : app.get_subcommands({}))
    if (sub->parsed())
      cmd = sub;
  std::vector<std::string> names;
  for (const CLI::Option *opt : cmd->get_options())
    for (const std::string &n : opt->get_lnames())
      names.push_back("--" + n);
  std::string what = cmd == &app ? "nnc" : "nnc " + cmd->get_name();
  std::string hint = closestMatch(word, names);
  return fmt::format("'{}' has no option '{}'{}", what, word, hint.empty() ? "" : "; did you mean '" + hint + "'?");
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"nnc: a compiler for declarative neural-network models (.nn files).\n"
               "It checks shapes at compile time, differentiates symbolically, and JIT-compiles\n"
               "training and inference to native code through LLVM."};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand");
  Options o;
  app.add_flag("--no-color", o.noColor, "Print diagnostics without color");
  app.set_version_flag(
      "--version", [] { return driver::versionText(); },
      "Print nnc's version and commit, the LLVM it compiles with, and the CPU and vector features it targets");

  CLI::Validator finiteRate(
      [](std::string &s) -> std::string {
        char *end = nullptr;
        double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end || !std::isfinite(v) || v <= 0 || v > 10)
          return "the learning rate must be a number in (0, 10], got '" + s + "'";
        return "";
      },
      "RATE");
  CLI::Validator seedValue(
      [](std::string &s) -> std::string {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
          return "the seed must be a non-negative integer, got '" + s + "'";
        return "";
      },
      "SEED");
  auto addModel = [&](CLI::App *c) { c->add_option("--model", o.model, "Model to use when the file has several"); };
  auto addTrainFlags = [&](CLI::App *c) {
    c->add_option("--epochs", o.epochs, "Number of epochs (overrides the file)")
        ->check(CLI::Range(int64_t(1), int64_t(1000000)));
    c->add_option("--batch", o.batch, "Batch size (overrides the file)")
        ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    c->add_option("--lr", o.lr, "Learning rate (overrides the file)")->check(finiteRate);
    c->add_option("--seed", o.seed, "Random seed for initialization, shuffling and the split")->check(seedValue);
    c->add_option("--threads", o.threads, "Threads (default: all cores)")->check(CLI::Range(int64_t(1), int64_t(1024)));
    c->add_option("--limit", o.limit,
                  "Use at most this many examples of each of the training, validation and test sets (quick runs)")
        ->check(CLI::Range(int64_t(1), int64_t(1000000000)));
    c->add_option("--metrics-json", o.metricsJson, "Write final metrics as JSON to this file");
    c->add_flag("--quiet", o.quiet, "No per-epoch progress");
  };

  CLI::App *train =
      app.add_subcommand("train", "Compile FILE, train it on the data its train block names, report metrics");
  train->add_option("FILE", o.file, "The .nn file")->required();
  addModel(train);
  addTrainFlags(train);
  train->add_option("--save", o.save, "Write the trained parameters to this safetensors checkpoint");
  CLI::Option *loadOpt = train->add_option("--load", o.load, "Start from the parameters in this checkpoint");
  train
      ->add_option("--resume", o.resume,
                   "Continue the run that wrote this checkpoint (weights, optimizer, epoch, early-stopping and "
                   "schedule state); gives the result of an uninterrupted run")
      ->excludes(loadOpt);
  train->add_option("--checkpoint", o.checkpoint,
                    "Write the full training state to this file after every --checkpoint-every epochs (overrides "
                    "the file's checkpoint(...))");
  train->add_option("--checkpoint-every", o.checkpointEvery, "Epochs between checkpoints (default 1)")
      ->check(CLI::Range(int64_t(1), int64_t(1000000)));
  train->add_option("--log", o.log, "Write one row per epoch to this .csv or .jsonl file (overrides the file's log)");
  train->add_option("--plot", o.plot, "Draw the loss and accuracy curves to this SVG file at the end");
  train->add_option("--title", o.title, "Title of the --plot picture");
  train->footer(trainBlockHelp());

  CLI::App *eval = app.add_subcommand("eval", "Evaluate a checkpoint on FILE's training, validation and test data");
  eval->add_option("FILE", o.file, "The .nn file")->required();
  eval->add_option("--load", o.load, "The safetensors checkpoint to evaluate")->required();
  addModel(eval);
  eval->add_option("--batch", o.batch, "Batch size")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  eval->add_option("--seed", o.seed, "Seed of the validation split (default: the checkpoint's)")->check(seedValue);
  eval->add_option("--threads", o.threads, "Threads (default: all cores)")
      ->check(CLI::Range(int64_t(1), int64_t(1024)));
  eval->add_option("--metrics-json", o.metricsJson, "Write metrics as JSON to this file");

  CLI::App *grad =
      app.add_subcommand("grad", "Write the loss and every gradient on the first training batch to a safetensors file");
  grad->add_option("FILE", o.file, "The .nn file")->required();
  grad->add_option("--load", o.load, "Parameters to use (default: freshly initialized)");
  grad->add_option("--out", o.save, "Output safetensors file")->required();
  grad->add_option("--batch", o.batch, "Number of examples")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  grad->add_option("--seed", o.seed, "Seed for initialization and the validation split")->check(seedValue);
  addModel(grad);

  CLI::App *sample = app.add_subcommand("sample", "Generate text from a trained next-byte model (input i64[N, T])");
  sample->add_option("FILE", o.file, "The .nn file")->required();
  sample->add_option("--load", o.load, "Trained parameters (safetensors checkpoint)")->required();
  sample->add_option("--prompt", o.prompt, "Text to continue (default: a newline)");
  sample->add_option("--length", o.length, "Bytes to generate (default 200)")
      ->check(CLI::Range(int64_t(1), int64_t(1000000)));
  sample
      ->add_option("--temperature", o.temperature, "Below 1 sharpens the distribution, above 1 flattens it (default 1)")
      ->check(CLI::Range(0.01, 100.0));
  sample->add_option("--output", o.output, "Output holding the probabilities (default: the first)");
  sample->add_option("--seed", o.seed, "Random seed of the sampling (default: the file's)")->check(seedValue);
  addModel(sample);

  CLI::App *bench = app.add_subcommand(
      "bench",
      "Time JIT compilation and one compiled step (a train step by default) on a batch of FILE's training data");
  bench->add_option("FILE", o.file, "The .nn file")->required();
  addModel(bench);
  bench->add_option("--function", o.function, "train_step (default) | evaluate | predict")
      ->check(CLI::IsMember({"train_step", "evaluate", "predict"}));
  bench->add_option("--batch", o.batch, "Batch size (default: the file's)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  bench->add_option("--threads", o.threads, "Threads (default: all cores)")
      ->check(CLI::Range(int64_t(1), int64_t(1024)));
  bench->add_option("--steps", o.steps, "Timed calls (default: as many as fit in --seconds, at least 10)")
      ->check(CLI::Range(int64_t(1), int64_t(100000000)));
  bench->add_option("--seconds", o.seconds, "Time to spend measuring (default 1)")->check(CLI::Range(0.0, 3600.0));
  bench->add_option("--seed", o.seed, "Seed for initialization and the validation split")->check(seedValue);
  bench->add_flag("--json", o.json, "Print one JSON object instead of a line of text");
  bench->add_flag("--profile", o.profile,
                  "Also time each op and print where the time goes, each op with its source line");

  CLI::App *predict = app.add_subcommand(
      "predict", "Predict the classes of new data with a trained checkpoint (CSV: row, class, probability)");
  predict->add_option("FILE", o.file, "The .nn file")->required();
  predict->add_option("--load", o.load, "The trained checkpoint")->required();
  predict
      ->add_option("--input", o.input,
                   "Data to predict: CSV rows of features (a label column too, if present, is compared), IDX "
                   "images, an .npy array (a model with one input) or an .npz archive (an array per input, and the "
                   "label's if present)")
      ->required();
  predict->add_option("--labels", o.labels, "IDX labels for IDX --input, an .npy of labels for .npy --input (reports the metrics)");
  predict->add_option("-o,--output", o.output, "Write the predictions here (default: standard output)");
  predict->add_option("--top", o.top, "Classes per row, most likely first (default 1)")
      ->check(CLI::Range(int64_t(1), int64_t(1000)));
  predict->add_option("--threads", o.threads, "Threads (default: all cores)")
      ->check(CLI::Range(int64_t(1), int64_t(1024)));
  addModel(predict);

  CLI::App *plot =
      app.add_subcommand("plot", "Draw a training log (nnc train --log) as loss and accuracy curves in SVG");
  plot->add_option("LOG", o.file, "The .csv or .jsonl log")->required();
  plot->add_option("-o,--output", o.output, "The SVG file to write")->required();
  plot->add_option("--title", o.title, "Title of the picture (default: the log's name)");

  CLI::App *check = app.add_subcommand("check", "Parse and check FILE; print diagnostics only");
  check->add_option("FILE", o.file, "The .nn file")->required();
  check->add_flag("--data", o.checkData,
                  "Also load each train block's data (split and preprocessing included) and report what nnc train "
                  "would refuse or warn about, without training");

  CLI::App *emit = app.add_subcommand("emit", "Print a compilation stage of FILE");
  emit->add_option("KIND", o.kind, "ast | ir | grad | train | llvm | asm")
      ->required()
      ->check(CLI::IsMember({"ast", "ir", "grad", "train", "llvm", "asm"}));
  emit->add_option("FILE", o.file, "The .nn file")->required();
  addModel(emit);
  emit->add_option("--function", o.function,
                   "The function to print: train_step | evaluate | predict | forward | grad (default: forward for "
                   "ir, train_step for llvm/asm)")
      ->check(CLI::IsMember({"train_step", "evaluate", "predict", "forward", "grad"}));
  emit->add_option("--batch", o.batch, "Batch size to specialize llvm/asm to")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  emit->add_flag("--no-opt", o.noOpt, "For llvm/asm: skip the O3 pipeline");

  CLI::App *repl = app.add_subcommand(
      "repl", "Interactive session: enter declarations, train, inspect tensors, evaluate expressions (:help)");
  repl->add_option("FILE", o.file, "A .nn file to load first");
  addModel(repl);
  repl->add_option("--script", o.script,
                   "Read the session's input from this file instead of standard input (exit status 1 if any input "
                   "failed)");
  repl->add_option("--threads", o.threads, "Threads (default: all cores)")
      ->check(CLI::Range(int64_t(1), int64_t(1024)));

  // A misspelt command would otherwise read as "A subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const CLI::App *sub : app.get_subcommands({}))
      names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      std::string hint = closestMatch(argv[1], names);
      std::cerr << "nnc: error: unknown command '" << argv[1] << "'"
                << (hint.empty() ? "" : "; did you mean '" + hint + "'?") << "\n"
                << "Run with --help or --help-all for more information.\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp &e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion &e) {
    return app.exit(e);
  } catch (const CLI::ParseError &e) {
    std::cerr << "nnc: error: " << usageMessage(app, e) << "\n"
              << "Run with --help or --help-all for more information.\n";
    return 2;
  }

  DiagnosticEngine diags(&std::cerr, useColor(o));
  try {
    if (check->parsed())
      return cmdCheck(o, diags);
    if (emit->parsed()) {
      o.functionGiven = emit->count("--function") > 0;
      return cmdEmit(o, diags);
    }
    if (grad->parsed())
      return cmdGrad(o, diags);
    if (sample->parsed())
      return cmdSample(o, diags);
    if (bench->parsed())
      return cmdBench(o, diags);
    if (plot->parsed())
      return cmdPlot(o);
    if (predict->parsed())
      return cmdPredict(o, diags);
    if (repl->parsed()) {
      if (o.threads)
        runtime::setGlobalThreads(int(*o.threads));
      repl::ReplOptions ro;
      ro.file = o.file;
      ro.model = o.model;
      ro.script = o.script;
      ro.color = useColor(o);
      return repl::run(ro);
    }
    return cmdTrain(o, diags, eval->parsed());
  } catch (const driver::CompileFailed &) {
    return 1;
  } catch (const driver::LocatedError &e) {
    diags.error(e.loc, e.what());
    return 1;
  } catch (const runtime::Error &e) {
    std::cerr << "nnc: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception &e) {
    std::cerr << "nnc: error: " << e.what() << "\n";
    return 1;
  }
}
