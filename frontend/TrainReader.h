// The reader of a train block (frontend/TrainConfig.cpp: settings,
// optimizer, schedule, stopping; frontend/TrainData.cpp: data sources and
// pipeline steps). Internal to frontend/: readTrainConfig (Sema.h) is the
// entry point.
#pragma once

#include "frontend/Builtins.h"
#include "frontend/Sema.h"

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace nnc::frontend {

/// Reads one train block into a TrainConfig, reporting each mistake at its
/// source location; run() returns nullopt when any was reported.
class TrainReader {
public:
  TrainReader(const LoweredModel &m, std::string baseDir, DiagnosticEngine &d)
      : model_(m), baseDir_(std::move(baseDir)), d_(d) {}

  std::optional<TrainConfig> run(const ast::TrainDecl *t);

private:
  /// A constant arithmetic expression's value, evaluated along its operator
  /// chain in a loop (see ast::chain); nullopt if it is not constant.
  std::optional<double> number(const ast::Expr &top);

  std::optional<double> numberIn(const ast::Expr &e, const std::string &what, double lo, double hi,
                                 bool integer = false);

  static std::string fmt(double v);

  std::string path(const std::string &p);

  std::optional<bool> boolean(const ast::Expr &e, const std::string &what);

  /// Checks a train-block call against the builtin table; returns its arguments by name.
  /// Arguments in source order, by parameter name.
  using Args = std::vector<std::pair<std::string, const ast::Expr *>>;
  static const ast::Expr *find(const Args &args, const std::string &name) {
    for (auto &[k, v] : args)
      if (k == name)
        return v;
    return nullptr;
  }

  /// `extra`: names accepted beyond the builtin's parameters (csv's model inputs).
  std::optional<Args> callArgs(const ast::Expr &e, const std::vector<std::string> &extra = {});

  /// The elements of a list, or `e` itself when it is not one (settings
  /// that take one item or several).
  static std::vector<const ast::Expr *> oneOrList(const ast::Expr &e) {
    if (e.kind != ast::Expr::List)
      return {&e};
    std::vector<const ast::Expr *> items;
    for (auto &x : e.elems)
      items.push_back(x.get());
    return items;
  }

  std::optional<std::string> stringArg(const ast::Expr &e, const std::string &what);

  static const std::set<std::string> &pipelineSteps();

  /// A data pipeline: transforms wrapped around a source call. Walked as a
  /// chain (`csv(...) |> shuffle |> ...` may be long): the steps from the
  /// outside in, then the source, then each step from the inside out.
  bool pipeline(const ast::Expr &e, DataSource &src, bool isTest);

  /// npy(...) and npz(...): files (npy) or array names (npz) per input and
  /// for the label.
  bool numpySource(const ast::Expr &e, const Args &args, DataSource &src);

  /// A source call: text(...), csv(...), idx(...), npy(...) or npz(...).
  bool source(const ast::Expr &e, const Args &argv, DataSource &src);

  /// Columns of a CSV file: a header name ("age"), a number (0 is the first
  /// column), first, last, a list of these, or (`rest` allowed) rest: the
  /// columns nothing else takes. Returns the columns and whether it was rest.
  std::optional<std::pair<std::vector<runtime::ColumnRef>, bool>> columnRefs(const ast::Expr &e,
                                                                             const std::string &what, bool rest);

  /// One pipeline step, after the steps inside it.
  bool step(const ast::Expr &e, const Args &argv, bool isTest);

  /// "; did you mean 'adam'?" when `e` calls something near a key of `kinds`.
  template <class Map> static std::string calledName(const ast::Expr &e, const Map &kinds) {
    if (e.kind != ast::Expr::Call)
      return "";
    std::vector<std::string> names;
    for (const auto &kv : kinds)
      names.push_back(kv.first);
    return didYouMean(e.name, names);
  }

  void optimizer(const ast::Expr &e);

  /// param_group(params = ..., weight_decay = ..., lr_scale = ...): kept
  /// until the whole block is read, since the optimizer may come later.
  void paramGroup(const ast::Expr &e);

  /// Later groups override earlier ones for the parameters they share.
  void applyGroups(ir::OptimizerSpec &o);

  /// The phases of a model with several objectives (TrainPhases.cpp): one
  /// per `phase NAME { ... }` block, each starting from the block's own
  /// optimizer and schedule, or one per objective when there are none.
  void phases();
  void phase(const ast::TrainItem &block, const std::vector<std::string> &names);

  void schedule(const ast::Expr &e);

  void checkpoint(const ast::Expr &e);

  /// A metric early stopping or a schedule can watch; reports unknown ones.
  std::optional<std::string> monitorName(const ast::Expr &v, const char *who);

  std::vector<std::string> monitorNames() const;

  void earlyStop(const ast::Expr &e);

  void item(const ast::TrainItem &it);

  const LoweredModel &model_;
  std::string baseDir_;
  DiagnosticEngine &d_;
  TrainConfig cfg_;
  std::set<std::string> seen_;
  struct Group {
    std::vector<std::string> params;
    std::optional<double> weightDecay, lrScale;
    SourceLoc loc;
  };
  std::vector<Group> groups_;
  std::vector<const ast::TrainItem *> phaseBlocks_;
  bool inPhase_ = false; ///< reading a phase block's items
  bool sawShuffle_ = false;
  bool monitorOk_ = true;
  bool splitRejected_ = false; ///< `split` was given but out of range
  SourceLoc earlyLoc_, scheduleLoc_, scheduleMonitorLoc_;
};

} // namespace nnc::frontend
