// nnc export: the model's predict function as an ONNX file (see
// codegen/onnx/OnnxExport.h), preprocessing and weights included.
#include "codegen/onnx/OnnxExport.h"
#include "runtime/FileUtil.h"
#include "tools/Commands.h"

#include <fmt/format.h>

#include <iostream>

namespace nnc::cli {

int cmdExport(const Options &o, DiagnosticEngine &diags) {
  checkWritable(o.output); // before any work
  auto prep = prepare(o, diags);
  if (!prep)
    return 1;
  driver::CompiledModel &m = prep->model;
  const ir::Function &f = m.function("predict"); // (an error when the model has no output)
  driver::Session session(m);
  StartingWeights w = startingWeights(o, m, session);

  std::map<std::string, runtime::Tensor> tensors;
  for (auto *part : {&session.state().params, &session.state().state})
    for (const auto &[name, t] : *part)
      tensors.emplace(name, t);
  onnxio::Preprocess pre;
  pre.scales = driver::scaleFactors(m.config);
  if (driver::usesStatistics(m.config)) {
    const runtime::Tensor &mean = w.data.at("data.mean"), &sd = w.data.at("data.stddev");
    pre.mean.assign(mean.f32(), mean.f32() + mean.numel());
    pre.stddev.assign(sd.f32(), sd.f32() + sd.numel());
  }
  onnxio::ExportOptions eo;
  eo.graphName = m.lowered.name;
  eo.producerVersion = NNC_VERSION;
  eo.metadata = w.metadata;
  eo.metadata["nnc.source"] = o.file;
  if (!o.load.empty())
    eo.metadata["nnc.checkpoint"] = o.load;
  std::string bytes;
  try {
    bytes = onnxio::exportOnnx(f, tensors, pre, eo);
  } catch (const onnxio::ExportError &e) {
    if (e.loc.valid())
      throw driver::LocatedError(e.loc, e.what());
    throw runtime::Error(e.what());
  }
  runtime::writeFileAtomic(o.output, bytes);
  std::vector<std::string> ins, outs;
  for (size_t i = 0; i < f.args.size(); ++i)
    if (f.argRoles[i] == ir::ArgRole::Input)
      ins.push_back(f.args[i]->name + " " + f.args[i]->type.str());
  for (size_t i = 0; i < f.results.size(); ++i)
    outs.push_back(f.resultNames[i] + " " + f.results[i]->type.str());
  std::cout << fmt::format("exported model {} (opset {}, {} parameters): inputs {}; outputs {}\nwrote {} ({:.1f} KB)\n",
                           m.lowered.name, onnxio::kOnnxOpset, m.parameterCount(), fmt::join(ins, ", "),
                           fmt::join(outs, ", "), where(o.output), double(bytes.size()) / 1e3);
  return 0;
}

} // namespace nnc::cli
