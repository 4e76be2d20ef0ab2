// Learning-rate schedules, stepped by the trainer. Each follows the PyTorch
// scheduler of the same name (torch.optim.lr_scheduler), so a run can be
// compared with a PyTorch one step for step.
#pragma once

#include <cstdint>
#include <string>

namespace nnc::runtime {

struct LrSchedule {
  enum Kind {
    Constant,
    Step,        ///< lr * gamma^floor((epoch - 1) / every)       (StepLR)
    Exponential, ///< lr * gamma^(epoch - 1)                      (ExponentialLR)
    Cosine,      ///< linear warm-up, then cosine from lr to minLr over the remaining steps
    OneCycle,    ///< OneCycleLR with cosine annealing, stepped every batch
    Plateau,     ///< ReduceLROnPlateau: times factor when `monitor` stalls for `patience` epochs
  } kind = Constant;
  int64_t every = 1;                ///< Step
  double gamma = 0.1;               ///< Step, Exponential
  double warmup = 0;                ///< Cosine: warm-up length in epochs (fractions allowed)
  double minLr = 0;                 ///< Cosine, Plateau: the floor
  double maxLr = 0;                 ///< OneCycle: the peak (0: the optimizer's lr)
  double pctStart = 0.3;            ///< OneCycle: fraction of the steps spent rising
  double divFactor = 25;            ///< OneCycle: starts at maxLr / divFactor
  double finalDivFactor = 1e4;      ///< OneCycle: ends at maxLr / divFactor / finalDivFactor
  std::string monitor = "val_loss"; ///< Plateau
  double factor = 0.1;              ///< Plateau
  int64_t patience = 10;            ///< Plateau: epochs without improvement tolerated
  double threshold = 1e-4;          ///< Plateau: relative improvement that counts

  /// Stepped per batch (Cosine, OneCycle) rather than per epoch.
  bool perStep() const { return kind == Cosine || kind == OneCycle; }
};

/// The learning rate of training step `step` (0-based over the whole run),
/// which falls in epoch `epoch` (1-based) of a run of `epochs` epochs of
/// `batches` steps each, for base rate `lr`. Plateau returns `lr` (the
/// trainer applies its reductions, which depend on the metrics).
double scheduledLr(const LrSchedule &s, double lr, int64_t step, int64_t epoch, int64_t epochs, int64_t batches);

/// The state ReduceLROnPlateau carries between epochs.
struct PlateauState {
  double scale = 1;    ///< current lr = base * scale (floored at minLr)
  double best = 1e300; ///< best monitored value so far (lower is better)
  int64_t bad = 0;     ///< epochs since it improved
};

/// Feeds one epoch's monitored value `value` (lower is better) to the plateau
/// rule; returns true when the rate was just reduced.
bool plateauStep(const LrSchedule &s, double baseLr, double value, PlateauState &st);

} // namespace nnc::runtime
