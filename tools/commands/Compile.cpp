// nnc compile: the model as a library to link (see tools/AotLibrary.h).
#include "tools/AotLibrary.h"
#include "tools/Commands.h"

#include <fmt/format.h>

#include <iostream>

namespace nnc::cli {

int cmdCompile(const Options &o, DiagnosticEngine &diags) {
  codegen::checkCpu(o.cpu); // before any work
  auto prep = prepare(o, diags);
  if (!prep)
    return 1;
  driver::CompiledModel &m = prep->model;
  driver::Session session(m);
  auto [meta, data] = startingWeights(o, m, session);
  driver::LibraryOptions lo;
  lo.outDir = o.output;
  lo.cpu = o.cpu;
  lo.batch = m.config.batch;
  lo.weightsFile = o.weightsFile;
  driver::LibraryReport r = driver::buildLibrary(session, meta, data, lo, o.file);
  std::cout << fmt::format("compiled model {} for {} (batch {}) in {:.1f}s; lib{}.so is {:.1f} MB\n", m.lowered.name,
                           r.variants, lo.batch, r.seconds, driver::libraryApi(m, lo.batch).prefix,
                           double(r.sharedBytes) / 1e6);
  for (const std::string &f : r.files)
    std::cout << "wrote " << f << "\n";
  return 0;
}

} // namespace nnc::cli
