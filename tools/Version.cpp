// `nnc --version`. The commit comes from NncGitVersion.h, which the build
// rewrites when HEAD changes (tools/GitVersion.cmake).
#include "tools/Version.h"

#include "NncGitVersion.h"
#include "codegen/JIT.h"

#include <thread>

namespace nnc::driver {

std::string versionText() {
  codegen::HostTarget t = codegen::hostTarget();
  std::string features;
  for (const std::string &f : t.features)
    features += (features.empty() ? "" : " ") + f;
  if (features.empty())
    features = "none of sse4.2/avx/avx2/fma/avx512";
  return std::string("nnc ") + NNC_VERSION + " (commit " + NNC_GIT_COMMIT + ")\n" + "LLVM " + t.llvmVersion + "\n" +
         "target: " + t.cpu + " (" + t.triple + "), " + std::to_string(std::thread::hardware_concurrency()) +
         " threads\n" + "vector features: " + features;
}

} // namespace nnc::driver
