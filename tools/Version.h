// `nnc --version`: what nnc is and what it compiles for.
#pragma once

#include <string>

namespace nnc::driver {

/// Several lines: nnc's version and commit, the LLVM it compiles with, and
/// the host CPU with the vector features the generated code may use.
std::string versionText();

} // namespace nnc::driver
