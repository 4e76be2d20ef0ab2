// Whole-file reads and crash-safe whole-file writes. Checkpoints and other
// outputs go through writeFileAtomic so an interrupted run never leaves a
// half-written file where a good one used to be.
#pragma once

#include <string>

namespace nnc::runtime {

/// Replaces `path` with `bytes` atomically: writes `path + ".tmp.<pid>"` in
/// the same directory, fsyncs it and renames it over `path`. On failure the
/// temporary file is removed, `path` is left as it was, and an Error
/// "cannot write '<path>': <reason>" is thrown.
void writeFileAtomic(const std::string &path, const std::string &bytes);

/// Returns the whole content of `path`. Throws Error
/// "cannot open '<path>': <reason>" (or "cannot read ...") on failure.
std::string readFile(const std::string &path);

} // namespace nnc::runtime
