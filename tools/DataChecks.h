// Warnings about training data that loads and fits the model but will not
// train it well: a label with one value, classes missing from the training
// or validation rows, constant features. nnc train and nnc check --data
// print them before any step runs.
#pragma once

#include "tools/Driver.h"

#include <string>
#include <vector>

namespace nnc::driver {

struct DataWarning {
  SourceLoc loc; ///< the data source (csv(...), idx(...)) or its label = ...
  std::string message;
};

/// The warnings for `d` loaded for `m` (none when the data looks usable).
std::vector<DataWarning> dataWarnings(const CompiledModel &m, const Data &d);

} // namespace nnc::driver
