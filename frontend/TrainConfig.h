// What a train block says, as plain data: the data pipeline, optimizer,
// schedule and stopping rule. The frontend fills it from the .nn file, the
// command line overrides fields, and the runtime trainer follows it.
#pragma once

#include "ir/transforms/Passes.h"
#include "runtime/Augment.h"
#include "runtime/Csv.h"
#include "runtime/Schedule.h"
#include "runtime/Synthetic.h"

#include <cstdint>
#include <string>
#include <vector>

namespace nnc::frontend {

/// Where examples come from.
struct DataSource {
  enum Kind { None, CSV, IDX, Text, NPY, NPZ, Ring } kind = None;
  std::string path;                ///< CSV or text file
  int64_t context = 0, stride = 0; ///< Text: window length and step
  /// CSV: the label's columns (default: the last one).
  std::vector<runtime::ColumnRef> label{{"", -1}};
  SourceLoc labelLoc;
  /// CSV: the columns of the inputs named in the call (`x = ["a", "b"]`);
  /// an input not named takes the columns nothing else takes.
  struct Columns {
    std::string input;
    std::vector<runtime::ColumnRef> refs;
    bool rest = false; ///< `x = rest`
    SourceLoc loc;
  };
  std::vector<Columns> columns;
  std::string images, labels; ///< IDX files
  /// NPY: the file of each input named in the call (`x = "x.npy"`; the path
  /// argument is the first input's) and `label`'s file; NPZ: the archive's
  /// array names for them (default: the input's and the label's names).
  std::vector<std::pair<std::string, std::string>> arrays;
  std::string labelArray;
  std::vector<int64_t> image; ///< CSV: geometry [H, W] or [C, H, W] of each row (for augmentation)
  /// Ring: `examples` points of the mixture (generated from the run's seed).
  runtime::Ring ring;
  int64_t examples = 0;
  SourceLoc loc;
};

/// One preprocessing step, applied in order.
struct Transform {
  enum Kind {
    Scale,       ///< x * factor
    Standardize, ///< per feature (x - mean) / stddev, training-set statistics
    MinMax,      ///< per feature (x - min) / (max - min), training-set statistics
    OneHot,      ///< labels become f32 one-hot rows
  } kind;
  double factor = 1; ///< Scale
};

/// One phase of a model whose losses update parameter sets of their own (a
/// GAN): the loss it steps, with its own optimizer, learning rate and
/// schedule, and how many steps it makes per round of the phase schedule.
struct Phase {
  std::string loss;
  ir::OptimizerSpec optimizer;
  double lr = 0.01;
  runtime::LrSchedule schedule;
  int64_t steps = 1;
  SourceLoc loc;
};

struct TrainConfig {
  DataSource data;
  DataSource test; ///< optional held-out test set, preprocessed like `data`
  std::vector<Transform> transforms;
  /// Random image transformations of training batches (never of evaluation data).
  runtime::Augmentation augment;
  bool shuffle = true;
  int64_t batch = 32;
  double split = 0.0; ///< fraction of `data` held out for validation
  ir::OptimizerSpec optimizer;
  double lr = 0.01;
  runtime::LrSchedule schedule;
  int64_t epochs = 10;
  uint64_t seed = 0;
  bool earlyStop = false;
  std::string monitor = "val_loss";
  int64_t patience = 5;
  double minDelta = 0;
  std::vector<std::string> metrics{"loss", "accuracy"};
  /// Reported at the end on the test set (else validation, else training):
  int64_t topK = 0;                    ///< top_k(k): top-k accuracy
  bool perClass = false;               ///< per_class: precision and recall of each class
  bool confusion = false;              ///< confusion: the confusion matrix
  std::vector<std::string> classNames; ///< classes = ["name", ...] (reports, nnc predict)
  /// checkpoint(path, every): the run's full state, every N epochs (and at the end).
  std::string checkpointPath;
  int64_t checkpointEvery = 1;
  /// log = "run.csv" | "run.jsonl": one row per epoch.
  std::string logPath;
  /// Models with several objectives: the phases in the order they run, each
  /// `steps` times per round (`phase d { steps = 5 }`); empty otherwise.
  std::vector<Phase> phases;
};

} // namespace nnc::frontend
