// nnc import: an ONNX model as a .nn file and a safetensors file of its
// weights (see codegen/onnx/OnnxImport.h). What it writes is compiled and
// loaded before it is put in place, so a file that nnc cannot use is never
// left behind.
#include "codegen/onnx/OnnxImport.h"
#include "runtime/Checkpoint.h"
#include "runtime/FileUtil.h"
#include "tools/Commands.h"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace nnc::cli {

namespace {

/// "my_model" -> "MyModel": a model name from the output file's name.
std::string modelNameFrom(const std::string &stem) {
  std::string r;
  bool up = true;
  for (char c : stem) {
    if (!std::isalnum(static_cast<unsigned char>(c))) {
      up = true;
      continue;
    }
    r += up ? char(std::toupper(static_cast<unsigned char>(c))) : c;
    up = false;
  }
  if (r.empty() || std::isdigit(static_cast<unsigned char>(r[0])))
    r = "Imported" + r;
  return r;
}

} // namespace

int cmdImport(const Options &o, DiagnosticEngine &diags) {
  namespace fs = std::filesystem;
  if (!endsWith(o.output, ".nn"))
    throw runtime::Error(fmt::format("-o '{}': nnc import writes a .nn file (and its weights beside it)", o.output));
  checkWritable(o.output);
  std::string weightsPath = o.output.substr(0, o.output.size() - 3) + ".safetensors";
  checkWritable(weightsPath);
  onnxio::ImportOptions io;
  io.modelName = o.model.empty() ? modelNameFrom(fs::path(o.output).stem().string()) : o.model;
  io.sourceName = fs::path(o.file).filename().string();
  io.weightsName = fs::path(weightsPath).filename().string();
  onnxio::Imported r;
  try {
    r = onnxio::importOnnx(runtime::readFile(o.file), io);
  } catch (const onnxio::ImportError &e) {
    throw runtime::Error(e.what());
  }

  // Both files are written beside their final names, checked by compiling
  // the model and loading the weights into it, then renamed into place.
  std::string tmpNn = o.output + fmt::format(".tmp.{}.nn", getpid());
  std::string tmpWeights = weightsPath + fmt::format(".tmp.{}", getpid());
  struct Cleanup {
    std::vector<std::string> files;
    ~Cleanup() {
      for (const std::string &f : files)
        std::remove(f.c_str());
    }
  } cleanup{{tmpNn, tmpWeights}};
  runtime::writeFileAtomic(tmpNn, r.source);
  std::vector<std::pair<std::string, const runtime::Tensor *>> tensors;
  for (const auto &[name, t] : r.tensors)
    tensors.emplace_back(name, &t);
  runtime::writeFileAtomic(
      tmpWeights, runtime::encodeSafetensors(
                      tensors, {{"nnc.model", io.modelName}, {"nnc.imported_from", io.sourceName}}, weightsPath));
  int64_t params = 0;
  {
    std::ostringstream errors;
    DiagnosticEngine quiet(&errors, false);
    auto src = driver::parseFile(tmpNn, quiet);
    std::optional<driver::CompiledModel> m;
    try {
      if (src)
        m.emplace(driver::compileModel(*src, io.modelName, quiet, false));
    } catch (const driver::CompileFailed &) {
    }
    if (!m)
      throw runtime::Error(fmt::format("nnc import wrote a model that does not compile (a bug in nnc import); the "
                                       "compiler said:\n{}",
                                       errors.str()));
    driver::Session session(*m);
    session.initialize(0);
    try {
      session.load(tmpWeights);
    } catch (const runtime::Error &e) {
      throw runtime::Error(
          fmt::format("nnc import wrote weights its model does not take (a bug in nnc import): {}", e.what()));
    }
    params = m->parameterCount();
  }
  if (std::rename(tmpWeights.c_str(), weightsPath.c_str()) != 0 || std::rename(tmpNn.c_str(), o.output.c_str()) != 0)
    throw runtime::Error(fmt::format("cannot write '{}': {}", o.output, std::strerror(errno)));
  cleanup.files.clear();
  (void)diags;
  std::cout << fmt::format("imported '{}' as model {} ({} parameters)\n", o.file, io.modelName, params);
  for (const std::string &n : r.notes)
    std::cout << "note: " << n << "\n";
  std::cout << "wrote " << where(o.output) << "\nwrote " << where(weightsPath) << "\n";
  return 0;
}

} // namespace nnc::cli
