// nnc: the command-line interface.
//   nnc train FILE   compile, train, evaluate, save
//   nnc eval FILE    evaluate a checkpoint
//   nnc bench FILE   time compilation and a compiled step
//   nnc check FILE   diagnostics only
//   nnc emit KIND FILE   print a stage: ast, ir, grad, llvm, asm
//   nnc repl [FILE]  interactive session (or --script FILE / a pipe)
// Exit status: 0 success, 1 user error (after diagnostics), 2 usage error.
#include "tools/Commands.h"
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
using cli::Options;

namespace {

/// The train-block vocabulary, from the builtin table, for `nnc train --help`.
std::string trainBlockHelp() {
  std::string out = "\nIn the .nn file's train block (docs/LANGUAGE.md, section 7):\n"
                    "  settings: data, test, split, optimizer, schedule, epochs, batch, seed, metrics, log, classes\n"
                    "  phase LOSS { optimizer = ...; schedule = ...; steps = K }: a model with several losses\n"
                    "  (loss NAME updates SELECTOR = ...) steps each in rounds, K steps of LOSS per round\n";
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

  CLI::App *sample = app.add_subcommand(
      "sample", "Generate text from a trained next-byte model (input i64[N, T]), or samples from a generator "
                "(an output computed from noise: CSV rows, or a PNG grid of images)");
  sample->add_option("FILE", o.file, "The .nn file")->required();
  sample->add_option("--load", o.load, "Trained parameters (safetensors checkpoint)")->required();
  sample->add_option("--prompt", o.prompt, "Text to continue (default: a newline)");
  sample->add_option("--length", o.length, "Bytes to generate (default 200)")
      ->check(CLI::Range(int64_t(1), int64_t(1000000)));
  sample
      ->add_option("--temperature", o.temperature, "Below 1 sharpens the distribution, above 1 flattens it (default 1)")
      ->check(CLI::Range(0.01, 100.0));
  sample->add_option("--output", o.output, "Output holding the probabilities, or the samples (default: the first)");
  sample->add_option("-n,--count", o.count, "Generator: number of samples (default 64)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 24));
  sample->add_option("-o", o.outFile, "Generator: the file to write, .csv (a row per sample) or .png (an image grid)");
  sample->add_option("--metrics-json", o.metricsJson, "Generator on ring(...) data: write the mode scores as JSON");
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
  predict->add_option("--labels", o.labels,
                      "IDX labels for IDX --input, an .npy of labels for .npy --input (reports the metrics)");
  predict->add_option("-o,--output", o.output,
                      "Write the predictions here (default: standard output); a name ending in .npz gets every output "
                      "of the model, raw, as an array each");
  predict->add_option("--top", o.top, "Classes per row, most likely first (default 1)")
      ->check(CLI::Range(int64_t(1), int64_t(1000)));
  predict->add_option("--threads", o.threads, "Threads (default: all cores)")
      ->check(CLI::Range(int64_t(1), int64_t(1024)));
  addModel(predict);

  CLI::App *compile = app.add_subcommand(
      "compile", "Compile FILE's model into a library to link: a C header, lib<model>.a and lib<model>.so with "
                 "predict, evaluate and the train step, and the weights built in");
  compile->add_option("FILE", o.file, "The .nn file")->required();
  compile->add_option("-o,--output", o.output, "The directory to write into (it must exist)")->required();
  compile->add_option("--load", o.load, "Start from this checkpoint's weights (default: fresh, from --seed)");
  compile->add_option("--batch", o.batch, "Rows of a train step and of predict's batches (default: the file's)")
      ->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  compile
      ->add_option("--cpu", o.cpu,
                   "native (the host, the default) | portable (AVX-512, AVX2 and SSE2 code, chosen when the library "
                   "opens) | an LLVM CPU name (skylake-avx512, znver3, ...)")
      ->default_str("native");
  compile->add_flag("--weights-file", o.weightsFile,
                    "Write the weights to <model>.safetensors beside the library, read when it opens, instead of "
                    "building them in");
  compile->add_option("--seed", o.seed, "Seed of fresh weights and of dropout (default: the file's)")->check(seedValue);
  addModel(compile);

  CLI::App *exportCmd = app.add_subcommand(
      "export", "Write FILE's model as an ONNX file (opset 17): its predict function with the weights and the "
                "train block's preprocessing, taking raw features as the data files hold them");
  exportCmd->add_option("FILE", o.file, "The .nn file")->required();
  exportCmd->add_option("-o,--output", o.output, "The .onnx file to write")->required();
  exportCmd->add_option("--load", o.load, "The checkpoint whose weights to export (default: fresh, from --seed)");
  exportCmd->add_option("--seed", o.seed, "Seed of fresh weights (default: the file's)")->check(seedValue);
  addModel(exportCmd);

  CLI::App *importCmd = app.add_subcommand(
      "import", "Read an ONNX model (e.g. from torch.onnx.export) as a .nn file and a safetensors file of its weights "
                "beside it, to compile, fine-tune or build into a library");
  importCmd->add_option("FILE", o.file, "The .onnx file")->required();
  importCmd->add_option("-o,--output", o.output, "The .nn file to write (the weights go to the same name .safetensors)")
      ->required();
  importCmd->add_option("--model", o.model, "The model's name (default: from the output file's name)");

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
                   "The function to print: train_step | evaluate | predict | forward | grad, or for a model with "
                   "several losses train_step.LOSS | grad.LOSS (default: forward for ir, train_step for llvm/asm)");
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
      return cli::cmdCheck(o, diags);
    if (emit->parsed()) {
      o.functionGiven = emit->count("--function") > 0;
      return cli::cmdEmit(o, diags);
    }
    if (grad->parsed())
      return cli::cmdGrad(o, diags);
    if (sample->parsed())
      return cli::cmdSample(o, diags);
    if (bench->parsed())
      return cli::cmdBench(o, diags);
    if (compile->parsed())
      return cmdCompile(o, diags);
    if (exportCmd->parsed())
      return cli::cmdExport(o, diags);
    if (importCmd->parsed())
      return cli::cmdImport(o, diags);
    if (plot->parsed())
      return cli::cmdPlot(o);
    if (predict->parsed())
      return cli::cmdPredict(o, diags);
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
    return cli::cmdTrain(o, diags, eval->parsed());
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
