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
  session.initialize(m.config.seed);
  std::map<std::string, std::string> meta;
  std::map<std::string, runtime::Tensor> data;
  if (!o.load.empty()) {
    runtime::Checkpoint ck = session.load(o.load);
    // What a weights file says of its run, without a training run's
    // resumable state (the library's saves hold weights, not best.* copies).
    for (const char *k : {"nnc.model", "nnc.seed", "nnc.epochs", "nnc.format", "nnc.preprocess"})
      if (ck.metadata.count(k))
        meta[k] = ck.metadata.at(k);
    for (auto &[name, t] : ck.tensors)
      if (name.rfind("data.", 0) == 0)
        data.emplace(name, t);
    // Statistics fitted by another scaling than the file's are refused.
    (void)driver::storedStandardizer(ck, o.load, m.config);
    if (driver::usesStatistics(m.config) && !data.count("data.mean"))
      throw runtime::Error(fmt::format("'{}' has no data statistics (data.mean, data.stddev), which the model's {} "
                                       "needs; use a checkpoint nnc train wrote",
                                       o.load, driver::fittedScaling(m.config)));
  } else {
    // Fresh weights; the statistics a standardizing pipeline needs come
    // from the training data, as nnc train fits them.
    driver::Data d;
    if (driver::usesStatistics(m.config)) {
      d = driver::loadData(m);
      session.checkData(d);
    }
    meta = driver::checkpointMetadata(m, d, 0);
    data = driver::dataTensors(d);
  }
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
