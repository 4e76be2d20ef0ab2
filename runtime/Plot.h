// Training curves for `nnc plot`: reads the per-epoch log that `nnc train`
// writes (CSV or JSON lines) and draws it as a standalone SVG in the style
// people know from matplotlib: one panel per quantity over the epoch axis,
// train and validation as two colored lines with point markers.
#pragma once

#include <string>
#include <vector>

namespace nnc::runtime {

/// A training log: column names and one row of numbers per epoch (NaN where a
/// value is absent). Every row has columns.size() entries.
struct TrainingLog {
  std::vector<std::string> columns;
  std::vector<std::vector<double>> rows;

  /// The index of column `name`, or -1 when the log has none.
  int column(const std::string &name) const;
};

/// Reads a per-epoch log written by nnc train: CSV (a header line, then
/// numeric rows; an empty field is NaN) or JSON lines (one object per line,
/// keys are columns, null or a missing key is NaN). The format is chosen by
/// the first non-blank character ('{' means JSON lines); blank lines are
/// skipped. Every row needs a finite 'epoch'. Throws Error
/// "<path>:<line>: <problem>" for malformed content (wrong field count,
/// non-numeric field, invalid JSON, no 'epoch' column, no rows) and
/// "cannot open '<path>': <reason>" when the file cannot be read.
TrainingLog readTrainingLog(const std::string &path);

/// The text of `log` as readTrainingLog reads it back: CSV (a header, then
/// one row per epoch, NaN as an empty field) or, with `jsonLines`, one JSON
/// object per row (NaN as null). Numbers keep 9 significant digits.
std::string formatTrainingLog(const TrainingLog &log, bool jsonLines);

/// An SVG picture of the curves, panels stacked vertically over a shared
/// epoch axis: "loss" (train_loss, val_loss), then "accuracy" when
/// train_accuracy or val_accuracy has a finite value, then "learning rate"
/// when an `lr` column varies. Each panel has nice 1/2/5 x 10^k ticks with
/// grid lines, axis titles and a legend; each series is one
/// `<path class="series" data-series="<column>">` whose points are its finite
/// values (a non-finite value breaks the line) plus a marker per point.
/// `title` (XML-escaped) heads the picture unless it is empty. Rows are
/// placed at their 'epoch' value, or at their 1-based index when the log has
/// no 'epoch' column.
std::string plotSvg(const TrainingLog &log, const std::string &title);

} // namespace nnc::runtime
