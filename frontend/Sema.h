// Semantic analysis of a parsed program.
//  - checkProgram: names (duplicates, unknown names and callees with "did you
//    mean", layer recursion, arity of layer calls, argument names of builtins),
//    declared types (dtypes, dimensions) and the train blocks' settings.
//  - lowerModel: elaborates one model into the graph IR (@forward), checking
//    every shape with the IR's shape rules and reporting failures at the
//    expression that caused them, with notes where the operands came from.
#pragma once

#include "frontend/AST.h"
#include "frontend/TrainConfig.h"
#include "ir/IR.h"

#include <memory>
#include <optional>

namespace nnc::frontend {

/// A trainable parameter created by a layer.
struct ParamInfo {
  std::string name;           ///< e.g. "h.w"
  std::vector<int64_t> shape; ///< always static
  enum Init { He, Glorot, Lecun, Zeros, Ones } init = He;
  int64_t fanIn = 1, fanOut = 1;
  bool isBias = false;
  bool isNorm = false; ///< scale or shift of layer_norm / batch_norm
  SourceLoc loc;
};

struct TensorDecl {
  std::string name;
  ir::TensorType type;
  SourceLoc loc;
};

/// A model lowered to IR: @forward(inputs, labels, params) -> (loss, [correct], outputs...).
struct LoweredModel {
  std::string name;
  std::unique_ptr<ir::Module> module;
  std::vector<ParamInfo> params;
  /// Non-trained state the model itself keeps (batch_norm's running
  /// statistics): State arguments of @forward, updated through its
  /// `new.<name>` results while training. Shapes are static.
  std::vector<ParamInfo> states;
  std::vector<TensorDecl> inputs, labels;
  std::vector<std::string> outputs;
  /// Losses that update parameter sets of their own (`loss d updates D =
  /// ...`, a GAN's discriminator and generator): @forward returns each as
  /// `loss.<name>` instead of one summed `loss`. Empty for an ordinary model.
  struct Objective {
    std::string name;
    std::vector<std::string> params; ///< what it updates, in the model's order
    SourceLoc loc;                   ///< the loss statement
  };
  std::vector<Objective> objectives;
  /// Set when the first output is class scores [N, C] for an i64 label [N]:
  /// @forward then also returns `correct`, the number of right predictions.
  bool classification = false;
  int64_t numClasses = 0;
  /// What the model learns, from its loss and label: classes (cross_entropy
  /// with an i64 label), binary or multi-label 0/1 targets (bce_with_logits
  /// against the label [N] / [N, 1], or [N, K]), real values (mse or huber
  /// against the label), or none of these.
  enum class Task { Other, Classification, Binary, MultiLabel, Regression } task = Task::Other;
  /// Binary, MultiLabel, Regression: the forward result "prediction" holds
  /// what the loss compares with the label (logits, or predicted values).
  bool hasPrediction() const { return task == Task::Binary || task == Task::MultiLabel || task == Task::Regression; }
  /// @forward returns `correct`: right predictions per example, summed
  /// (classification; binary and multi-label: logit > 0 vs target > 0.5,
  /// averaged over an example's labels).
  bool accuracy = false;
  /// The fewest values per channel one example gives a batch_norm (its
  /// positions: 1 for [N, C], H*W for [N, C, H, W]), 0 without batch_norm;
  /// and where that batch_norm is.
  int64_t batchNormPerExample = 0;
  SourceLoc batchNormLoc;
  /// One row per declaration of the model body, in order, for nnc check's
  /// table (Keras's model.summary()): inputs, labels, bindings, outputs and
  /// losses, with the parameters each one's expression created.
  struct Row {
    std::string name, type; ///< type "-" for a non-tensor value
    int64_t params = 0;
    uint32_t line = 0;
  };
  std::vector<Row> rows;
};

/// "classification", "binary", "multilabel", "regression" or "other".
const char *taskName(LoweredModel::Task t);

/// Name-level checks over the whole program. Returns false after reporting errors.
bool checkProgram(const ast::Program &p, DiagnosticEngine &diags);

/// Lowers `model`. Returns nullopt after reporting errors.
std::optional<LoweredModel> lowerModel(const ast::Program &p, const ast::ModelDecl &model, DiagnosticEngine &diags);

/// Reads the train block for `model` (defaults where it has none).
std::optional<TrainConfig> readTrainConfig(const ast::Program &p, const LoweredModel &model, const std::string &baseDir,
                                           DiagnosticEngine &diags);

/// One phase per objective of `model`, in the model's order, each with one
/// step and `c`'s optimizer, learning rate and schedule (Adam's step count
/// "opt.t.<loss>"): the phases of a train block that writes none.
std::vector<Phase> defaultPhases(const LoweredModel &model, const TrainConfig &c);

/// True for a log file name nnc can write: .csv, or .jsonl / .json (JSON lines).
bool logFormatKnown(const std::string &path);

/// The names of the builtin functions usable in models (for completion and docs).
std::vector<std::string> builtinNames();

} // namespace nnc::frontend
