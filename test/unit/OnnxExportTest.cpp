// ONNX export's refusals (the parity of what it writes with ONNX Runtime is
// tested by the lit suite test/ONNX, where onnxruntime is installed).
#include "codegen/onnx/OnnxExport.h"
#include "ir/Parser.h"

#include <gtest/gtest.h>

#include <sstream>

using namespace nnc;

namespace {

std::unique_ptr<ir::Module> parseIR(const std::string &text) {
  static std::vector<std::unique_ptr<SourceFile>> files; // locations keep pointers
  files.push_back(std::make_unique<SourceFile>(SourceFile{"export.nnir", text}));
  std::ostringstream os;
  DiagnosticEngine d(&os);
  auto m = ir::parseModule(*files.back(), d);
  EXPECT_TRUE(m) << os.str();
  return m;
}

runtime::Tensor filled(std::vector<int64_t> shape, float v) {
  runtime::Tensor t(runtime::DType::F32, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i)
    t.f32()[i] = v;
  return t;
}

} // namespace

TEST(OnnxExport, AnOpOnlyGradientsUseIsRefusedByNameAndPlace) {
  auto m = parseIR("func @predict(%u: f32[N, 3] input, %ids: i64[N] input) {\n"
                   "  %0 = scatter_add %u, %ids {rows = 5} : f32[5, 3]\n"
                   "  return y = %0\n"
                   "}\n");
  ASSERT_TRUE(m);
  // (The IR parser keeps no places; an op from a .nn file has its line.)
  static const SourceFile file{"model.nn", "a\nb\n"};
  m->get("predict")->ops[0]->loc = SourceLoc{&file, 2, 1, 1};
  try {
    onnxio::exportOnnx(*m->get("predict"), {}, {}, {});
    FAIL() << "exported a scatter_add";
  } catch (const onnxio::ExportError &e) {
    EXPECT_NE(std::string(e.what()).find("cannot export 'scatter_add' to ONNX"), std::string::npos) << e.what();
    EXPECT_EQ(e.loc.line, 2u);
  }
}

TEST(OnnxExport, ADenseLayerPassesOnnxsCheckerAndMissingWeightsAreAnError) {
  auto m = parseIR("func @predict(%x: f32[N, 4] input, %w: f32[4, 2] param, %b: f32[2] param) {\n"
                   "  %0 = matmul %x, %w : f32[N, 2]\n"
                   "  %1 = add %0, %b : f32[N, 2]\n"
                   "  %2 = softmax %1 : f32[N, 2]\n"
                   "  return probs = %2\n"
                   "}\n");
  ASSERT_TRUE(m);
  std::map<std::string, runtime::Tensor> w{{"w", filled({4, 2}, 0.5f)}, {"b", filled({2}, 0.0f)}};
  onnxio::Preprocess pre;
  pre.scales = {0.5};
  pre.mean = {1, 2, 3, 4};
  pre.stddev = {1, 1, 2, 2};
  std::string bytes = onnxio::exportOnnx(*m->get("predict"), w, pre, {"Dense", "test", {}});
  EXPECT_GT(bytes.size(), 4u * 8u) << "the weights are in the file";
  w.erase("b");
  EXPECT_THROW(onnxio::exportOnnx(*m->get("predict"), w, pre, {}), std::runtime_error);
  // Statistics for another number of features than the inputs have.
  w.emplace("b", filled({2}, 0.0f));
  pre.mean = {1, 2, 3};
  EXPECT_THROW(onnxio::exportOnnx(*m->get("predict"), w, pre, {}), std::runtime_error);
}
