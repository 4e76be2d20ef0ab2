// The training driver: runs compiled train_step / evaluate / predict
// functions over batches, tracks metrics, prints progress, stops early and
// keeps parameters and optimizer state as named tensors. It knows nothing of
// LLVM: compiled functions arrive as entry pointers with buffer signatures,
// through a callback that compiles (and caches) one per batch size.
#pragma once

#include "runtime/Augment.h"
#include "runtime/Data.h"
#include "runtime/Schedule.h"
#include "runtime/Tensor.h"

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <vector>

namespace nnc::runtime {

enum class Role : uint8_t { Input, Label, Param, State, Scalar };

struct BufferSpec {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  Role role = Role::Input;
  /// Results only: the argument this result is written over (an update in
  /// place), or -1.
  int inPlaceOf = -1;
};

/// A compiled function (see codegen/JIT.h for the calling convention).
struct CompiledFn {
  void (*entry)(void **buffers, char *arena) = nullptr;
  int64_t arenaBytes = 0;
  std::vector<BufferSpec> args, results;
};

/// Returns the compiled `function` ("train_step", "evaluate", "predict")
/// specialized to batch size `batch`; the reference stays valid.
using CompileFn = std::function<const CompiledFn &(const std::string &function, int64_t batch)>;

/// Parameters and optimizer state, by name.
struct ModelState {
  std::map<std::string, Tensor> params;
  std::map<std::string, Tensor> state;
};

/// How a parameter starts.
enum class Init { He, Glorot, Lecun, Zeros, Ones };
/// Fills `t` from a seeded generator: He normal sqrt(2/fanIn), Glorot
/// uniform sqrt(6/(fanIn+fanOut)), LeCun normal sqrt(1/fanIn), zeros or ones.
void initialize(Tensor &t, Init init, int64_t fanIn, int64_t fanOut, std::mt19937_64 &rng);

struct EvalResult {
  double loss = 0;
  double accuracy = -1; ///< -1 if not a classification model
  int64_t examples = 0;
  /// A model with several objectives: the mean of each loss, in the order
  /// of TrainOptions::phases (`loss` is the first of them).
  std::vector<double> losses;
};

struct EpochRecord {
  int64_t epoch = 0;
  EvalResult train, val;
  double lr = 0; ///< the learning rate of the epoch's last step
  double seconds = 0;
};

/// Everything the training loop carries from one epoch to the next. A
/// checkpoint stores it, so a run resumed from one continues exactly as the
/// uninterrupted run would have (shuffling and augmentation depend only on
/// the seed and the epoch; dropout on the seed and `rngStep`).
struct FitState {
  int64_t epoch = 0;    ///< epochs completed
  uint64_t rngStep = 0; ///< compiled calls made (each draws a dropout seed)
  /// Several objectives: the next step's place in the round of phases
  /// (phase steps are numbered through the round; see TrainOptions::phases).
  int64_t phasePos = 0;
  double best = 1e300;  ///< early stopping: best monitored value (lower is better)
  int64_t sinceBest = 0;
  int64_t bestEpoch = 0;
  PlateauState plateau;
  std::vector<EpochRecord> history;
  /// Early stopping: parameters and state of the best epoch so far.
  std::map<std::string, Tensor> bestParams, bestState;

  /// Starts early stopping and the plateau rule over (the learning-rate scale
  /// stays): for when the monitored value is no longer computed the same way,
  /// e.g. the REPL changed the loss, so the old best cannot be compared.
  void forgetBest();
  /// The scalar fields and the history as JSON (not the tensors).
  std::string toJson() const;
  /// Reads toJson()'s output; throws Error naming `what` when malformed.
  static FitState fromJson(const std::string &json, const std::string &what);
};

/// One phase of a model with several objectives (a GAN's discriminator or
/// generator step): the compiled step it calls, its learning rate and
/// schedule, and how many steps it makes per round.
struct PhaseOptions {
  std::string name;     ///< the loss it steps ("loss.<name>" of its function)
  std::string function; ///< "train_step.<name>"
  double lr = 0.01;
  LrSchedule schedule;
  int64_t steps = 1;
};

struct TrainOptions {
  int64_t epochs = 10;
  int64_t batch = 32;
  double lr = 0.01;
  LrSchedule schedule;
  /// Applied to training batches only, on the loader thread.
  Augmentation augment;
  bool shuffle = true;
  uint64_t seed = 0;
  bool earlyStop = false;
  std::string monitor = "val_loss";
  int64_t patience = 5;
  double minDelta = 0;
  bool classification = false;
  bool showAccuracy = true;
  /// Progress: redraw one line on a terminal, else one line per epoch.
  bool interactive = false;
  std::ostream *log = nullptr;
  /// Called after every epoch with the loop's state (checkpoints, logs).
  std::function<void(const FitState &)> afterEpoch;
  /// Explains a non-finite loss or update: called with the batch, learning
  /// rate and weights of the step that produced it (the epoch is replayed
  /// from its start to get there), returns what to add to the error.
  std::function<std::string(const std::vector<Tensor> &xb, const Tensor &yb, float lr)> diagnose;
  /// Checked after every step: when it reads true, the run stops there (the
  /// parameters hold every step made; see TrainResult::interrupted).
  const std::atomic<bool> *interrupt = nullptr;
  /// Stop after this many steps (0: no limit), mid-epoch if need be.
  int64_t maxSteps = 0;
  /// Several objectives: the phases, in the order of a round. Each training
  /// batch goes to the next step of the round that reads data; the steps
  /// before it that read none (a generator's, from noise alone) run first.
  std::vector<PhaseOptions> phases;
  /// The run continues an earlier one in the same process (the REPL): no
  /// "resuming after epoch" line, and early stopping's patience starts over.
  bool continuing = false;
};

struct TrainResult {
  std::vector<EpochRecord> history;
  int64_t epochsRun = 0;
  int64_t bestEpoch = 0; ///< the epoch whose weights were kept (early stopping)
  bool stoppedEarly = false;
  double seconds = 0;        ///< the whole fit, compilation included
  double compileSeconds = 0; ///< JIT compilation before the first epoch
  double trainSeconds = 0;   ///< the training steps alone (no compilation, no validation)
  double samplesPerSecond = 0;
  /// The loop's state at the end, to continue from (an epoch left part-way
  /// counts as done: the next run starts the following one).
  FitState state;
  /// Stopped part-way through an epoch, by `interrupt` or `maxSteps`:
  /// `partial` holds the training loss and accuracy over the steps of that
  /// epoch that were made, `partialSteps` how many there were.
  bool interrupted = false, stoppedMidEpoch = false;
  EvalResult partial;
  int64_t partialSteps = 0, partialBatches = 0;
  int64_t steps = 0; ///< train steps made
};

class Trainer {
public:
  Trainer(CompileFn compile, ModelState &state) : compile_(std::move(compile)), state_(state) {}

  /// Trains on `train`, validating on `val` after each epoch if it is
  /// non-empty, from epoch `from.epoch + 1` (a resumed run) or the start.
  TrainResult fit(const Dataset &train, const Dataset &val, const TrainOptions &opts, const FitState &from = {});
  /// Loss and accuracy of the current parameters over `data`; with
  /// `losses` (several objectives), the mean of each "loss.<name>".
  EvalResult evaluate(const Dataset &data, int64_t batch, bool classification,
                      const std::vector<std::string> &losses = {});
  /// The model's inputs in order, the order of each batch's tensors: a
  /// compiled function that reads only some of them (a generator's step
  /// reads the noise input, not the data) gets each by name. Without them,
  /// a function's inputs are taken to be all of the model's, in order.
  void setInputNames(std::vector<std::string> names) { inputNames_ = std::move(names); }
  /// Dropout's random stream restarts from `seed`, as at the start of fit()
  /// (nnc grad and bench draw the masks of a run's first steps).
  void seedDropout(uint64_t seed) {
    rngSeed_ = seed;
    rngStep_ = 0;
  }
  /// Runs compiled `function` once on one batch and returns all its results.
  /// `xb` holds one tensor per model input, in order.
  std::map<std::string, Tensor> run(const std::string &function, const std::vector<Tensor> &xb, const Tensor *yb,
                                    float lr = 0);
  /// Calls compiled `function` on one batch again and again, as the training
  /// loop does (a train step updates the parameters each time), after `warmup`
  /// untimed calls: at least `minCalls` and until `minSeconds` have passed or
  /// `maxCalls` were made. Returns the seconds of each timed call.
  std::vector<double> timeCalls(const std::string &function, const std::vector<Tensor> &xb, const Tensor *yb, float lr,
                                int64_t warmup, int64_t minCalls, int64_t maxCalls, double minSeconds);
  /// The same for several functions called one after another (a GAN's round
  /// of phases: each phase's step once, each with its learning rate); a
  /// timed call is the whole sequence.
  std::vector<double> timeCalls(const std::vector<std::string> &functions, const std::vector<Tensor> &xb,
                                const Tensor *yb, const std::vector<float> &lrs, int64_t warmup, int64_t minCalls,
                                int64_t maxCalls, double minSeconds);
  /// Runs `predict` over `x` ([n, features...]) and returns output `output` for all rows.
  Tensor predict(const Tensor &x, const std::string &output, int64_t batch);
  /// The same for a model of several inputs (one tensor each, in order).
  Tensor predict(const std::vector<Tensor> &inputs, const std::string &output, int64_t batch);
  /// `count` rows of output `output` of `function`, a function without
  /// inputs (a generator's output from noise), called at batch size `batch`
  /// (the last call smaller) with a fresh random seed each time.
  Tensor generate(const std::string &function, const std::string &output, int64_t count, int64_t batch);
  /// Several outputs of one pass of `predict` over every row, in the order named.
  std::vector<Tensor> predict(const std::vector<Tensor> &inputs, const std::vector<std::string> &outputs,
                              int64_t batch);

private:
  /// Binds buffers by role and name and calls `fn`.
  void call(const CompiledFn &fn, const std::vector<Tensor> *xs, const Tensor *yb, float lr,
            std::map<std::string, Tensor> &outs);
  char *arenaFor(const CompiledFn &fn);
  /// Moves the `new.<name>` results a step wrote into `outs` (not in place)
  /// into the parameters and state.
  void takeUpdates(const CompiledFn &fn, std::map<std::string, Tensor> &outs);
  /// The first parameter holding a NaN or an infinity, with that value.
  std::optional<std::pair<std::string, float>> firstNonFiniteParam() const;

  CompileFn compile_;
  ModelState &state_;
  uint64_t rngSeed_ = 0, rngStep_ = 0; ///< dropout seeds: mix(seed, step)
  std::map<const CompiledFn *, Tensor> arenas_;
  std::vector<std::string> inputNames_;
};

/// Checks that compiled code can read `data`'s labels: every label in [0, classes).
void checkLabels(const Dataset &data, int64_t classes, const std::string &what);

/// Sets flush-to-zero and denormals-are-zero on the calling thread (denormals
/// from saturated softmax slow training by 1.3-1.7x on this hardware).
void enableFlushToZero();

} // namespace nnc::runtime
