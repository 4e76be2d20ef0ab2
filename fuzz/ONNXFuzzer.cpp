// libFuzzer target for nnc import's ONNX reader: the input is read as a
// serialized ONNX model (protobuf) and translated into .nn text and
// weights; what it accepts is then parsed, checked and lowered by the
// frontend, as nnc import does before it writes anything. ImportError (and
// the runtime's Error) are clean rejections; a crash, a sanitizer report or
// a huge allocation is a bug.
#include "codegen/onnx/OnnxImport.h"
#include "frontend/ASTBuilder.h"
#include "frontend/Sema.h"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace nnc;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 200000)
    return 0;
  onnxio::Imported r;
  try {
    onnxio::ImportOptions o;
    o.sourceName = "fuzz.onnx";
    r = onnxio::importOnnx(std::string(reinterpret_cast<const char *>(data), size), o);
  } catch (const onnxio::ImportError &) {
    return 0;
  } catch (const runtime::Error &) {
    return 0;
  }
  SourceFile file{"imported.nn", r.source};
  DiagnosticEngine diags(nullptr);
  auto program = frontend::parseProgram(file, diags);
  if (!program || !frontend::checkProgram(*program, diags))
    return 0;
  for (const ast::ModelDecl &m : program->models)
    (void)frontend::lowerModel(*program, m, diags);
  return 0;
}
