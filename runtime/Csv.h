// CSV files as data: a header row names the columns, and each model input
// and the label take the columns chosen for them (by name, by position, or
// "the rest"), as f32 values or i64 integers, shaped as one example of that
// tensor. Columns nothing takes are not read (they may hold text).
#pragma once

#include "runtime/Data.h"

#include <cstdint>
#include <string>
#include <vector>

namespace nnc::runtime {

/// One column: by header name, or by position (0 is the first, -1 the last).
struct ColumnRef {
  std::string name;
  int64_t index = 0;
  std::string str() const { return name.empty() ? std::to_string(index) : "'" + name + "'"; }
};

/// The columns one tensor takes, in order.
struct ColumnSelection {
  std::string tensor;            ///< the input or label fed (for messages)
  DType dtype = DType::F32;      ///< I64: every value must be an integer
  std::vector<int64_t> rowShape; ///< one example's shape; empty: [columns] (as many as taken)
  bool rest = false;             ///< the columns no other selection takes (columns is empty)
  std::vector<ColumnRef> columns;
  /// I64 label of one value per example: classes, non-negative (numClasses is max + 1).
  bool classes = false;
};

/// Loads `path` (optionally gzipped): the first row is a header when
/// `header` is true or when a field of it is not a number. inputs[i] becomes
/// Dataset::inputs[i]; `label` (optional) becomes y, else y is all zeros.
/// Errors name the file, the line and the column.
Dataset loadCSVColumns(const std::string &path, const std::vector<ColumnSelection> &inputs,
                       const ColumnSelection *label, bool header = false);

/// The first non-blank row of `path`, read without the rest of the file:
/// its number of fields, and their names if it is a header (a field is not
/// a number), else none. For nnc predict, which looks for the label's columns.
struct CsvHead {
  int64_t columns = 0;
  std::vector<std::string> names;
};
CsvHead csvHead(const std::string &path);

} // namespace nnc::runtime
