// The nnc subcommands: the options the command line gives them, the prelude
// every one of them starts with, the helpers several share (Commands.cpp),
// and one entry point per command (tools/commands/*.cpp). nnc.cpp defines
// the command line and calls these.
#pragma once

#include "runtime/Plot.h"
#include "support/Diagnostics.h"
#include "tools/Driver.h"

#include <nlohmann/json_fwd.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nnc::cli {

/// Everything the command line can set; each subcommand reads its own.
struct Options {
  std::string file, model, save, load, metricsJson, function = "train_step", kind, prompt, output;
  std::string resume, checkpoint, log, plot, title, input, labels, script;
  std::string outFile;  ///< nnc sample -o (a generator's samples)
  int64_t count = 64;   ///< nnc sample -n
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
  std::string cpu = "native"; ///< nnc compile --cpu
  bool weightsFile = false;   ///< nnc compile --weights-file
};

/// A command's file and model. The source stays alive beside the model, whose
/// diagnostics and located errors point into it.
struct Prepared {
  driver::Source source;
  driver::CompiledModel model;
};

/// The start of every command that runs a model: parses FILE, compiles
/// --model (or the file's default), applies the command line's overrides of
/// the train block (--epochs, --batch, --lr, --seed, --checkpoint,
/// --checkpoint-every, --log) and sets --threads. Returns null when the file
/// does not parse (after its diagnostics); throws driver::CompileFailed when
/// the model does not compile.
std::unique_ptr<Prepared> prepare(const Options &o, DiagnosticEngine &diags);

//--- helpers several commands share (Commands.cpp) ---------------------------

/// `path` made absolute, for the lines that say where a file was written.
std::string where(const std::string &path);
bool endsWith(const std::string &s, const std::string &suffix);
/// Writes the training log so far to `path` (CSV when it ends in .csv, else
/// JSON lines), atomically: a run stopped mid-write keeps the previous log.
void writeTrainingLog(const std::string &path, const std::vector<runtime::EpochRecord> &history, bool classification,
                      const std::vector<std::string> &phases = {});
/// The per-epoch log of a run, as `nnc plot` reads it.
/// `phases`: the losses of a model with several objectives (a column each).
runtime::TrainingLog trainingLog(const std::vector<runtime::EpochRecord> &history, bool classification,
                                 const std::vector<std::string> &phases = {});
void writeMetrics(const std::string &path, const nlohmann::json &j);
/// An accuracy with four decimals, or "n/a" for a negative one.
std::string accText(double a);
/// The class scores [n, classes] of a classification model (its first
/// output) for every row of `x`.
runtime::Tensor classScores(const driver::CompiledModel &m, runtime::Trainer &trainer,
                            const std::vector<runtime::Tensor> &x, int64_t batch);
/// Plots are SVG: a name with another extension (x.png) is refused before
/// any work, instead of writing SVG text under it.
void checkPlotPath(const std::string &path, const char *flag);
/// Fails before any work when `out` could not be written.
void checkWritable(const std::string &out);

/// The weights a command that writes the model out (compile, export) starts
/// from: --load's checkpoint, with what it says of its run and its data
/// statistics (refused when the file's preprocessing needs statistics it
/// lacks), or fresh ones from the file's seed, with the statistics a
/// standardizing pipeline fits on the training data as nnc train does.
struct StartingWeights {
  std::map<std::string, std::string> metadata;
  std::map<std::string, runtime::Tensor> data; ///< data.mean, data.stddev, ...
};
StartingWeights startingWeights(const Options &o, driver::CompiledModel &m, driver::Session &session);

//--- the commands: each returns the exit status --------------------------------

int cmdCheck(const Options &o, DiagnosticEngine &diags);                ///< commands/Check.cpp
int cmdEmit(const Options &o, DiagnosticEngine &diags);                 ///< commands/Emit.cpp
int cmdGrad(const Options &o, DiagnosticEngine &diags);                 ///< commands/Emit.cpp
int cmdBench(const Options &o, DiagnosticEngine &diags);                ///< commands/Bench.cpp
int cmdTrain(const Options &o, DiagnosticEngine &diags, bool evalOnly); ///< commands/Train.cpp (train, eval)
int cmdPlot(const Options &o);                                          ///< commands/Train.cpp
int cmdPredict(const Options &o, DiagnosticEngine &diags);              ///< commands/Predict.cpp
int cmdSample(const Options &o, DiagnosticEngine &diags);               ///< commands/Predict.cpp
/// nnc sample for a model whose output comes from noise alone.
int generateSamples(const Options &o, driver::CompiledModel &m); ///< commands/Generate.cpp
int cmdCompile(const Options &o, DiagnosticEngine &diags);              ///< commands/Compile.cpp
int cmdExport(const Options &o, DiagnosticEngine &diags);               ///< commands/Export.cpp
int cmdImport(const Options &o, DiagnosticEngine &diags);               ///< commands/Import.cpp

} // namespace nnc::cli
