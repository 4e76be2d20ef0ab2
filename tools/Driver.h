// The compiler driver shared by the nnc CLI (and later the REPL): reads a .nn
// file through the frontend, builds the IR functions (forward, grad,
// train_step, evaluate, predict), JIT-compiles them per batch size on demand,
// and connects them to the runtime's data pipeline, trainer and checkpoints.
#pragma once

#include "codegen/JIT.h"
#include "frontend/AST.h"
#include "frontend/Sema.h"
#include "frontend/TrainConfig.h"
#include "runtime/Checkpoint.h"
#include "runtime/Data.h"
#include "runtime/Trainer.h"

#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <string>

namespace nnc::driver {

/// A user-facing failure already reported as diagnostics (exit status 1).
struct CompileFailed {};

/// A failure that concerns a place in the source (a data file's problem
/// points at the csv(...) naming it); printed as a located error.
struct LocatedError : runtime::Error {
  LocatedError(SourceLoc at, const std::string &what) : runtime::Error(what), loc(at) {
    // The error may outlive the parsed file (it is reported by the caller
    // that owns none): it keeps a copy of the file to point into.
    if (at.file) {
      file = std::make_shared<SourceFile>(*at.file);
      loc.file = file.get();
    }
  }
  SourceLoc loc;
  std::shared_ptr<const SourceFile> file;
};

/// A parsed and checked source file.
struct Source {
  std::unique_ptr<SourceFile> file;
  std::unique_ptr<ast::Program> program;
};

/// Reads and parses `path`; reports diagnostics and returns null on errors.
std::optional<Source> parseFile(const std::string &path, DiagnosticEngine &diags);

/// A model compiled to IR, with its train configuration.
class CompiledModel {
public:
  frontend::LoweredModel lowered;
  frontend::TrainConfig config;
  std::string baseDir;
  /// forward, grad, train_step, evaluate, predict
  ir::Module module;

  /// Builds the IR functions for the optimizer in `config` (call again after
  /// changing the optimizer).
  void buildFunctions();
  const ir::Function &function(const std::string &name) const;
  /// The train step functions: "train_step", or for a model with several
  /// objectives "train_step.<loss>" per phase, in the phases' order.
  std::vector<std::string> trainSteps() const;
  /// The phases of a model with several objectives: the train block's, or
  /// one per objective with its optimizer when no train block was read.
  std::vector<frontend::Phase> phases() const;
  /// `<name>.checked`: function `name` that also returns the value of each
  /// of its f32 ops i as result "v.<i>" (built on first use), for finding
  /// the op that first produced a NaN or an infinity.
  const ir::Function &checked(const std::string &name);
  /// Number of scalar weights.
  int64_t parameterCount() const;
  /// Symbol bindings for the model's inputs and labels at batch size `batch`.
  ir::Bindings bindings(int64_t batch) const;

private:
  /// buildFunctions for a model with several objectives (DriverPhases.cpp):
  /// forward, then per phase grad.<loss> and train_step.<loss>, then
  /// evaluate (every loss) and predict.
  void buildPhaseFunctions(ir::Function &fwd);
};

/// Parses, checks and lowers `modelName` (or the file's default model).
/// Throws CompileFailed after reporting diagnostics.
CompiledModel compileModel(const Source &src, const std::string &modelName, DiagnosticEngine &diags,
                           bool withTrainConfig = true);
/// The same over a program whose declarations may come from several source
/// buffers (the REPL's); `anchor` is where errors without a place point.
/// Data paths are relative to the directory of the train block's file.
CompiledModel compileModel(const ast::Program &p, const std::string &modelName, const SourceFile *anchor,
                           DiagnosticEngine &diags, bool withTrainConfig = true);

/// Examples to predict on or evaluate, not preprocessed: an IDX image file
/// (`labelsPath` its labels, optional) or a CSV file whose columns feed the
/// model's inputs as its train block's csv(...) says; `labelled` tells
/// whether the file also held the label's columns.
runtime::Dataset loadExamples(const CompiledModel &m, const std::string &path, const std::string &labelsPath,
                              bool &labelled);

/// The datasets of a training run, preprocessed.
struct Data {
  runtime::Dataset train, val, test;
  /// Fitted per-feature offset and divisor (standardize or min_max).
  runtime::Standardizer standardizer;
  bool standardized = false;
  /// [C, H, W] of each example when the source knows it (IDX, csv(image = ...)).
  std::vector<int64_t> image;
};

/// True when the train block's preprocessing needs fitted statistics
/// (standardize or min_max).
bool usesStatistics(const frontend::TrainConfig &c);

/// The factors of the train block's scale(...) steps, in order: what
/// applyPreprocessing multiplies every feature by first (and what the
/// compiled library and the ONNX export apply to raw inputs).
std::vector<double> scaleFactors(const frontend::TrainConfig &c);

/// The train block's preprocessing of `d` — the one copy used for training
/// data and for what nnc predict reads: every scale(...) first, then in the
/// block's order standardize / min_max with `*st` (fitted on `d` itself first
/// when `fit`) and one_hot of the labels into `oneHotClasses` columns (when
/// above 0; nnc predict keeps class ids).
void applyPreprocessing(const frontend::TrainConfig &c, runtime::Dataset &d, runtime::Standardizer *st, bool fit,
                        int64_t oneHotClasses);

/// Loads and preprocesses the data the config names, standardizing with
/// `fitted` statistics (a checkpoint's) when given instead of fitting them on
/// the training rows. Throws runtime::Error.
Data loadData(const CompiledModel &m, const runtime::Standardizer *fitted = nullptr);

/// The train block's augmentation with the image geometry filled in: the
/// data's own, else the model input's [N, C, H, W] or [N, H, W]. Throws
/// runtime::Error when a geometric step has no geometry to work with.
runtime::Augmentation augmentation(const CompiledModel &m, const Data &d);

/// Owns the JIT, the compiled-code cache and the model's tensors.
class Session {
public:
  explicit Session(CompiledModel &model);

  /// Fresh parameters (seeded) and zeroed optimizer state.
  void initialize(uint64_t seed);

  /// What switching to another compilation of the model changed.
  struct Rebind {
    std::vector<std::string> recompile; ///< functions whose IR changed (compiled again on next use)
    std::vector<std::string> unchanged; ///< functions whose compiled code is kept
    std::vector<std::string> kept;      ///< tensors carried over (same name and shape)
    std::vector<std::string> fresh;     ///< new or reshaped tensors, initialized
    std::vector<std::string> dropped;   ///< tensors the new model does not have
  };
  /// Switches to `model` (a recompilation of the source, e.g. after a
  /// declaration changed in the REPL): compiled code is kept for every
  /// function whose IR is unchanged, parameters and state for every tensor
  /// with the same name and shape; new ones are initialized from `seed`.
  Rebind rebind(CompiledModel &model, uint64_t seed);
  /// Compiles `f` (a function over the model's inputs, labels, parameters
  /// and state, e.g. a REPL expression) at batch size `batch` and runs it
  /// once with the current parameters; returns its results by name.
  std::map<std::string, runtime::Tensor> runFunction(const ir::Function &f, const std::vector<runtime::Tensor> &x,
                                                     const runtime::Tensor *y);
  const CompiledModel &model() const { return *model_; }
  /// Loads parameters (and optimizer state, if present) from a checkpoint,
  /// all or nothing: on an error the state is left as it was. Returns its metadata and the tensors of a training run's
  /// state it holds besides ("best.*" weights, "data.*" statistics). Throws runtime::Error on missing, unknown or
  /// mis-shaped tensors.
  runtime::Checkpoint load(const std::string &path);
  /// Writes parameters, state and `extra` tensors atomically.
  void save(const std::string &path, const std::map<std::string, std::string> &metadata,
            const std::map<std::string, runtime::Tensor> &extra = {});

  runtime::Trainer &trainer() { return *trainer_; }
  runtime::ModelState &state() { return state_; }
  codegen::JIT &jit() { return *jit_; }
  double compileSeconds() const { return compileSeconds_; }
  /// Planned scratch memory of `fn` at `batch` (compiled already): the arena,
  /// and what the intermediates would take without reusing memory.
  std::pair<int64_t, int64_t> plannedMemory(const std::string &fn, int64_t batch) const {
    auto it = memory_.find({fn, batch});
    return it == memory_.end() ? std::pair<int64_t, int64_t>{0, 0} : it->second;
  }
  /// Functions compiled so far, and how many of them came from the on-disk cache.
  int functionsCompiled() const { return int(cache_.size()); }
  int functionsFromCache() const { return fromCache_; }
  /// Functions compiled from now on time each of their ops.
  void setProfiling(bool on) { profiling_ = on; }
  /// `fn` at `batch` as compiled, for its profile (see
  /// codegen::CompiledFunction::profile); null unless it was compiled with
  /// profiling on.
  const codegen::CompiledFunction *profile(const std::string &fn, int64_t batch) const;
  /// Runs `fn` once more on a batch through its checked variant, with the
  /// current parameters, and names the first op whose f32 result holds a NaN
  /// or an infinity although its operands do not (or the parameter or input
  /// that already does): its IR, its source location and line.
  std::string explainNonFinite(const std::string &fn, const std::vector<runtime::Tensor> &xb, const runtime::Tensor *yb,
                               float lr);
  /// Checks the data fits the model's inputs and labels.
  void checkData(const runtime::Dataset &d, const std::string &what, bool withLabel = true) const;
  /// The same for a train block's training and test data; a mismatch is a
  /// LocatedError at the data = ... or test = ... source.
  void checkData(const Data &d) const;
  /// Refuses training batches that give batch_norm one value per channel.
  void checkBatchNorm(int64_t examples) const;

  /// `fn` compiled at batch size `batch` (cached).
  const runtime::CompiledFn &compiled(const std::string &fn, int64_t batch);

private:
  /// Training from a data file needs one input [N, static...] and at most one
  /// label i64[N]; throws runtime::Error otherwise.
  void checkSignature() const;
  /// Throws runtime::Error if `f` at `batch` needs more memory than the machine has.
  void checkMemory(const ir::Function &f, int64_t batch) const;

  /// Converts the JIT's description of a compiled function for the trainer.
  static runtime::CompiledFn toRuntime(const codegen::CompiledFunction &c);
  /// The model's initial value of tensor `name` (a parameter or state of train_step).
  runtime::Tensor initialValue(const std::string &name, std::mt19937_64 &rng) const;

  CompiledModel *model_;
  std::unique_ptr<codegen::JIT> jit_;
  /// runFunction's compilations: their names in cache_, by IR text and batch.
  std::map<std::pair<std::string, int64_t>, std::string> adhoc_;
  std::map<std::pair<std::string, int64_t>, runtime::CompiledFn> cache_;
  runtime::ModelState state_;
  std::unique_ptr<runtime::Trainer> trainer_;
  double compileSeconds_ = 0;
  int fromCache_ = 0;
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, int64_t>> memory_;
  bool profiling_ = false;
  std::map<std::pair<std::string, int64_t>, codegen::CompiledFunction> profiles_;
};

/// The training loop's options from the model's train config.
runtime::TrainOptions trainOptions(const CompiledModel &m);
/// "adam(lr = 0.001, weight_decay = 0.01)": the optimizer as configured.
std::string optimizerText(const frontend::TrainConfig &c);
/// The phases of a model with several objectives, for the run's first line:
/// "d x5 adam(lr = 0.0001, ...), g adam(lr = 0.0001, ...)".
std::string phasesText(const frontend::TrainConfig &c);
/// The losses the phases step, in order (empty for an ordinary model).
std::vector<std::string> phaseNames(const frontend::TrainConfig &c);
/// "cosine(warmup = 1, min_lr = 0)": the schedule as configured.
std::string scheduleText(const runtime::LrSchedule &s);
/// What a resumed run must share with the run that wrote its checkpoint:
/// everything that changes the sequence of steps, numbers to 9 digits.
std::string resumeKey(const CompiledModel &m, const Data &d);
/// What differs between two resume keys, one line per setting:
/// "  lr: 0.001 in the checkpoint, 0.01 in this run".
std::string resumeDiff(const std::string &stored, const std::string &now);
/// The fitted scaling of a train block's pipeline: "standardize", "min_max" or "".
std::string fittedScaling(const frontend::TrainConfig &c);
/// The scaling statistics a checkpoint carries for this train block's
/// pipeline, if any (none when the pipeline fits none). Throws Error when
/// they were fitted by another kind of scaling.
std::optional<runtime::Standardizer> storedStandardizer(const runtime::Checkpoint &ck, const std::string &path,
                                                        const frontend::TrainConfig &cfg);
/// A checkpoint's metadata: model, seed, epochs, format, fitted scaling.
std::map<std::string, std::string> checkpointMetadata(const CompiledModel &m, const Data &d, int64_t epochs);
/// The fitted scaling statistics as checkpoint tensors (data.mean, data.stddev).
std::map<std::string, runtime::Tensor> dataTensors(const Data &d);
/// The seed a checkpoint records (nnc.seed), if any; throws Error when malformed.
std::optional<uint64_t> storedSeed(const runtime::Checkpoint &ck, const std::string &path);
/// Writes a training checkpoint of `session`'s model: weights and optimizer
/// state, the loop's state `st` (nnc.fit_state, best.*), the resume key and
/// the data statistics.
void saveCheckpoint(Session &session, const Data &d, const runtime::FitState &st, const std::string &path);
/// Prints `f` and then the body of every scan it runs (the loops' steps).
void printWithBodies(const ir::Function &f, std::ostream &os);
/// The training state a checkpoint holds (nnc.fit_state and the best.*
/// tensors), for the model state `s`. Throws Error when it holds none.
runtime::FitState storedFitState(const runtime::Checkpoint &ck, const std::string &path, const runtime::ModelState &s);

} // namespace nnc::driver
