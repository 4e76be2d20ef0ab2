// Unit tests of the IR core: shape rules, builder, printer/parser round trip,
// verifier, simplification and the memory plan.
#include "codegen/MemoryPlan.h"
#include "ir/Builder.h"
#include "ir/Parser.h"
#include "ir/Printer.h"
#include "ir/ShapeRules.h"
#include "ir/Verifier.h"
#include "ir/transforms/Passes.h"

#include <gtest/gtest.h>

using namespace nnc;
using namespace nnc::ir;

namespace {

TensorType f32(Shape s) { return {DType::F32, std::move(s)}; }
Dim N() { return Dim::symbol("N"); }

std::string typeOf(const TypeOrError &t) {
  if (auto *e = std::get_if<std::string>(&t))
    return "error: " + *e;
  return std::get<TensorType>(t).str();
}

std::unique_ptr<Module> parse(const std::string &text, std::string *errors = nullptr) {
  static std::vector<std::unique_ptr<SourceFile>> files; // diagnostics keep pointers
  files.push_back(std::make_unique<SourceFile>(SourceFile{"test.nnir", text}));
  std::ostringstream os;
  DiagnosticEngine d(&os);
  auto m = parseModule(*files.back(), d);
  if (errors)
    *errors = os.str();
  return m;
}

TEST(ShapeRules, BroadcastingIsSymbolAware) {
  EXPECT_EQ(typeOf(inferType(OpKind::Add, {f32({N(), 3}), f32({3})}, {})), "f32[N, 3]");
  EXPECT_EQ(typeOf(inferType(OpKind::Add, {f32({N(), 1}), f32({1, 5})}, {})), "f32[N, 5]");
  EXPECT_EQ(typeOf(inferType(OpKind::Mul, {f32({}), f32({N(), 2})}, {})), "f32[N, 2]");
  // A symbol matches only itself or 1.
  EXPECT_EQ(typeOf(inferType(OpKind::Add, {f32({N()}), f32({4})}, {})),
            "error: add: shapes [N] and [4] do not broadcast: dimension N does not match 4");
  EXPECT_EQ(typeOf(inferType(OpKind::Add, {f32({N()}), f32({Dim::symbol("M")})}, {})).substr(0, 6), "error:");
}

TEST(ShapeRules, MatMulTransposes) {
  EXPECT_EQ(typeOf(inferType(OpKind::MatMul, {f32({N(), 4}), f32({4, 3})}, {})), "f32[N, 3]");
  EXPECT_EQ(typeOf(inferType(OpKind::MatMul, {f32({4, N()}), f32({4, 3})}, {{"ta", true}})), "f32[N, 3]");
  EXPECT_EQ(typeOf(inferType(OpKind::MatMul, {f32({N(), 4}), f32({3, 4})}, {{"tb", true}})), "f32[N, 3]");
  EXPECT_NE(typeOf(inferType(OpKind::MatMul, {f32({N(), 4}), f32({5, 3})}, {})).find("inner dimensions differ"),
            std::string::npos);
}

TEST(ShapeRules, ReductionsReshapeTranspose) {
  EXPECT_EQ(typeOf(inferType(OpKind::ReduceSum, {f32({N(), 3, 4})}, {{"axes", std::vector<int64_t>{1}}})), "f32[N, 4]");
  EXPECT_EQ(
      typeOf(inferType(OpKind::ReduceMax, {f32({N(), 3})}, {{"axes", std::vector<int64_t>{0, 1}}, {"keepdims", true}})),
      "f32[1, 1]");
  EXPECT_EQ(typeOf(inferType(OpKind::ReduceSum, {f32({N(), 3})}, {{"axes", std::vector<int64_t>{2}}})),
            "error: reduce_sum: axis 2 is out of range for f32[N, 3]");
  EXPECT_EQ(typeOf(inferType(OpKind::Reshape, {f32({N(), 8, 8})}, {{"shape", Shape{N(), 64}}})), "f32[N, 64]");
  EXPECT_EQ(typeOf(inferType(OpKind::Reshape, {f32({N(), 8, 8})}, {{"shape", Shape{N(), 63}}})),
            "error: cannot reshape f32[N, 8, 8] to [N, 63]: the number of elements differs");
  EXPECT_EQ(typeOf(inferType(OpKind::Transpose, {f32({N(), 3, 4})}, {{"perm", std::vector<int64_t>{2, 0, 1}}})),
            "f32[4, N, 3]");
  EXPECT_EQ(typeOf(inferType(OpKind::OneHot, {TensorType{DType::I64, {N()}}}, {{"classes", int64_t(10)}})),
            "f32[N, 10]");
  EXPECT_EQ(typeOf(inferType(OpKind::ArgMax, {f32({N(), 10})}, {})), "i64[N]");
}

TEST(Builder, SumToUndoesBroadcasting) {
  Module m;
  Function *f = m.addFunction("f");
  Value *x = f->addArg("x", f32({N(), 3}), ArgRole::Input);
  Builder b(*f);
  Value *r = b.sumTo(x, {1, 3});
  EXPECT_EQ(r->type.str(), "f32[1, 3]");
  Value *s = b.sumTo(x, {3});
  EXPECT_EQ(s->type.str(), "f32[3]");
  Value *t = b.sumTo(x, {});
  EXPECT_EQ(t->type.str(), "f32[]");
  EXPECT_EQ(b.sumTo(x, x->type.shape), x);
}

const char *kMLP = R"(func @f(%x: f32[N, 4] input, %y: i64[N] label, %w: f32[4, 3] param, %b: f32[3] param) {
  %0 = matmul %x, %w : f32[N, 3]
  %1 = add %0, %b : f32[N, 3]
  %2 = log_softmax %1 : f32[N, 3]
  %3 = one_hot %y {classes = 3} : f32[N, 3]
  %4 = mul %2, %3 : f32[N, 3]
  %5 = reduce_sum %4 {axes = [1], keepdims = false} : f32[N]
  %6 = reduce_mean %5 {axes = [0], keepdims = false} : f32[]
  %7 = neg %6 : f32[]
  return loss = %7
}
)";

TEST(Parser, RoundTripsThePrinter) {
  auto m = parse(kMLP);
  ASSERT_TRUE(m);
  std::string once = toString(*m);
  EXPECT_EQ(once, kMLP);
  auto again = parse(once);
  ASSERT_TRUE(again);
  EXPECT_EQ(toString(*again), once);
}

TEST(Parser, ReportsLocatedErrors) {
  std::string errs;
  EXPECT_FALSE(parse("func @f(%x: f32[2] input) {\n  %0 = add %x, %q : f32[2]\n  return r = %0\n}\n", &errs));
  EXPECT_EQ(errs,
            "test.nnir:2:16: error: use of undefined value '%q'\n  %0 = add %x, %q : f32[2]\n               ^~\n");
  EXPECT_FALSE(parse("func @f(%x: f32[2] input) {\n  %0 = neg %x : f32[3]\n  return r = %0\n}\n", &errs));
  EXPECT_NE(errs.find("type f32[3] does not match the type f32[2] that neg produces"), std::string::npos);
}

TEST(Verifier, CatchesUseBeforeDefinitionAndBadTypes) {
  auto m = parse(kMLP);
  ASSERT_TRUE(m);
  Function &f = *m->functions[0];
  EXPECT_TRUE(verify(f).empty());
  std::swap(f.ops[0], f.ops[1]); // add now uses the matmul's result before it exists
  auto errs = verify(f);
  ASSERT_FALSE(errs.empty());
  EXPECT_EQ(errs[0], "@f: op #0 (add): operand used before it is defined");
  std::swap(f.ops[0], f.ops[1]);
  f.ops[0]->result->type = f32({N(), 4});
  errs = verify(f);
  ASSERT_FALSE(errs.empty());
  EXPECT_NE(errs[0].find("differs from inferred f32[N, 3]"), std::string::npos);
}

TEST(Simplify, FoldsIdentitiesAndMergesDuplicates) {
  auto m = parse(R"(func @f(%x: f32[N, 3] input) {
  %0 = const {value = 1.0} : f32[]
  %1 = mul %x, %0 : f32[N, 3]
  %2 = neg %1 : f32[N, 3]
  %3 = neg %2 : f32[N, 3]
  %4 = exp %3 : f32[N, 3]
  %5 = exp %x : f32[N, 3]
  %6 = add %4, %5 : f32[N, 3]
  %7 = reshape %6 {shape = shape[N, 3]} : f32[N, 3]
  return r = %7
}
)");
  ASSERT_TRUE(m);
  simplify(*m->functions[0]);
  EXPECT_EQ(toString(*m), R"(func @f(%x: f32[N, 3] input) {
  %0 = exp %x : f32[N, 3]
  %1 = add %0, %0 : f32[N, 3]
  return r = %1
}
)");
}

TEST(Autodiff, GradientOfTheMLPIsWellFormed) {
  auto m = parse(kMLP);
  ASSERT_TRUE(m);
  Function *g = differentiate(*m, *m->functions[0], "loss", "g");
  simplify(*g);
  EXPECT_TRUE(verify(*g).empty());
  ASSERT_TRUE(g->result("grad.w"));
  ASSERT_TRUE(g->result("grad.b"));
  EXPECT_EQ(g->result("grad.w")->type.str(), "f32[4, 3]");
  EXPECT_EQ(g->result("grad.b")->type.str(), "f32[3]");
  // dW = xᵀ g: a transposed matmul, never an explicit transpose.
  EXPECT_EQ(g->result("grad.w")->def->kind, OpKind::MatMul);
  EXPECT_TRUE(g->result("grad.w")->def->getBool("ta"));
}

TEST(Optimizers, AdamAddsMomentsAndAStepCounter) {
  auto m = parse(kMLP);
  ASSERT_TRUE(m);
  Function *g = differentiate(*m, *m->functions[0], "loss", "g");
  OptimizerSpec spec;
  spec.kind = OptimizerSpec::Adam;
  Function *s = appendOptimizer(*m, *g, spec, "step");
  EXPECT_TRUE(verify(*s).empty());
  for (const char *n : {"w.adam_m", "w.adam_v", "b.adam_m", "b.adam_v", "opt.t", "lr"})
    EXPECT_TRUE(s->arg(n)) << n;
  for (const char *n : {"new.w", "new.b", "new.w.adam_m", "new.opt.t", "loss"})
    EXPECT_TRUE(s->result(n)) << n;
  EXPECT_FALSE(s->result("grad.w"));
}

TEST(MemoryPlan, ReusesDeadBuffersAndWritesResultsInPlace) {
  // softmax is not elementwise, so nothing here is fused.
  auto m = parse(R"(func @f(%x: f32[N, 256] input) {
  %0 = softmax %x : f32[N, 256]
  %1 = softmax %0 : f32[N, 256]
  %2 = softmax %1 : f32[N, 256]
  %3 = softmax %2 : f32[N, 256]
  %4 = reshape %3 {shape = shape[N, 16, 16]} : f32[N, 16, 16]
  return r = %4
}
)");
  ASSERT_TRUE(m);
  const Function &f = *m->functions[0];
  codegen::MemoryPlan p = codegen::planMemory(f, {{"N", 8}});
  const int64_t bytes = 8 * 256 * 4;
  EXPECT_EQ(p.steps.at(&f).size(), 4u);
  // %0..%2 are intermediates, but never more than two are alive at once.
  EXPECT_EQ(p.arenaBytes, 2 * bytes);
  EXPECT_EQ(p.unplannedBytes, 3 * bytes);
  // The last softmax writes straight into the result (through the reshape view).
  EXPECT_EQ(p.resolve(f.results[0]).kind, codegen::Storage::Result);
  EXPECT_TRUE(p.copiedResults.empty());
  // An op's output never shares memory with its input.
  EXPECT_NE(p.storage.at(f.ops[0]->result).offset, p.storage.at(f.ops[1]->result).offset);
}

TEST(MemoryPlan, FusesElementwiseChainsIntoOneLoop) {
  auto m = parse(R"(func @f(%x: f32[N, 256] input, %b: f32[256] param) {
  %0 = add %x, %b : f32[N, 256]
  %1 = exp %0 : f32[N, 256]
  %2 = softmax %1 : f32[N, 256]
  %3 = mul %1, %1 : f32[N, 256]
  %4 = tanh %3 : f32[N, 256]
  return r = %4, s = %2
}
)");
  ASSERT_TRUE(m);
  const Function &f = *m->functions[0];
  codegen::MemoryPlan p = codegen::planMemory(f, {{"N", 8}});
  const auto &steps = p.steps.at(&f);
  // softmax reads %1, so the loop of add and exp ends before it; mul and tanh
  // form a second loop.
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].size(), 2u);
  EXPECT_EQ(steps[1][0], f.ops[2].get());
  EXPECT_EQ(steps[2].size(), 2u);
  // %0 and %3 never reach memory; %1 does, for softmax and mul.
  EXPECT_EQ(p.storage.at(f.ops[0]->result).kind, codegen::Storage::Fused);
  EXPECT_EQ(p.storage.at(f.ops[3]->result).kind, codegen::Storage::Fused);
  EXPECT_EQ(p.storage.at(f.ops[1]->result).kind, codegen::Storage::Arena);
  EXPECT_EQ(p.arenaBytes, 8 * 256 * 4);
}

TEST(MemoryPlan, SharedWeightsAndStackSumsCostNoMemory) {
  // dense over [N, S, K]: w broadcast over the stack (read in place by the
  // GEMM) and its gradient, a stack of products summed over the stack (one
  // GEMM adding into the sum).
  auto m = parse(R"(func @f(%x: f32[N, 16, 64] input, %w: f32[64, 32] param, %g: f32[N, 16, 32] input) {
  %0 = broadcast %w {shape = shape[N, 64, 32]} : f32[N, 64, 32]
  %1 = matmul %x, %0 : f32[N, 16, 32]
  %2 = matmul %x, %g {ta = true} : f32[N, 64, 32]
  %3 = reduce_sum %2 {axes = [0], keepdims = true} : f32[1, 64, 32]
  return y = %1, dw = %3
}
)");
  ASSERT_TRUE(m);
  const Function &f = *m->functions[0];
  codegen::MemoryPlan p = codegen::planMemory(f, {{"N", 8}});
  EXPECT_EQ(p.storage.at(f.ops[0]->result).kind, codegen::Storage::Alias);
  EXPECT_EQ(p.root(f.ops[0]->result), f.args[1]);
  EXPECT_EQ(p.storage.at(f.ops[2]->result).kind, codegen::Storage::Fused);
  ASSERT_EQ(p.stackSums.count(f.ops[3].get()), 1u);
  EXPECT_EQ(p.stackSums.at(f.ops[3].get()), f.ops[2].get());
  EXPECT_EQ(p.arenaBytes, 0);
  // Two steps, the forward product and the reduction; the broadcast and the
  // folded product emit nothing.
  EXPECT_EQ(p.steps.at(&f).size(), 2u);
}

TEST(MemoryPlan, UpdatesWriteOverTheirArgumentsWhenSafe) {
  // new.w = w - lr * g is written over w. new.v is not written over v: the
  // transpose that reads v is a step of its own after the update, so v must
  // keep its old bytes until then.
  auto m = parse(R"(func @f(%w: f32[64, 32] param, %v: f32[32, 32] state, %g: f32[64, 32] input, %lr: f32[] scalar) {
  %0 = mul %lr, %g : f32[64, 32]
  %1 = sub %w, %0 : f32[64, 32]
  %2 = add %v, %lr : f32[32, 32]
  %3 = transpose %v {perm = [1, 0]} : f32[32, 32]
  %4 = softmax %3 : f32[32, 32]
  return new.w = %1, new.v = %2, s = %4
}
)");
  ASSERT_TRUE(m);
  const Function &f = *m->functions[0];
  codegen::MemoryPlan off = codegen::planMemory(f, {}, false);
  EXPECT_EQ(off.resultArg, (std::vector<int>{-1, -1, -1}));
  codegen::MemoryPlan on = codegen::planMemory(f, {}, true);
  EXPECT_EQ(on.resultArg[0], 0);
  EXPECT_EQ(on.storage.at(f.ops[1]->result).kind, codegen::Storage::Arg);
  EXPECT_EQ(on.resultArg[1], -1);
  EXPECT_EQ(on.resultArg[2], -1);
}

TEST(MemoryPlan, SgdUpdatesOfProductsAreWrittenByTheProduct) {
  // new.w = w - lr * (xᵀ g): the product adds (-lr) xᵀ g into w itself; the
  // update loop and the gradient's buffer go. new.v's gradient product runs
  // before the last reader of v (the transpose), so it keeps its loop.
  auto m = parse(
      R"(func @f(%x: f32[8, 16] input, %g: f32[8, 4] input, %w: f32[16, 4] param, %v: f32[16, 4] param, %lr: f32[] scalar) {
  %0 = matmul %x, %g {ta = true} : f32[16, 4]
  %1 = mul %lr, %0 : f32[16, 4]
  %2 = sub %w, %1 : f32[16, 4]
  %3 = matmul %x, %g {ta = true} : f32[16, 4]
  %4 = mul %lr, %3 : f32[16, 4]
  %5 = transpose %v {perm = [1, 0]} : f32[4, 16]
  %6 = softmax %5 : f32[4, 16]
  %7 = sub %v, %4 : f32[16, 4]
  return new.w = %2, new.v = %7, s = %6
}
)");
  ASSERT_TRUE(m);
  const Function &f = *m->functions[0];
  codegen::MemoryPlan p = codegen::planMemory(f, {}, true);
  ASSERT_EQ(p.productUpdates.count(f.ops[0].get()), 1u);
  EXPECT_EQ(p.productUpdates.at(f.ops[0].get()).weight, f.args[2]);
  EXPECT_EQ(p.productUpdates.at(f.ops[0].get()).rate, f.args[4]);
  EXPECT_EQ(p.storage.at(f.ops[0]->result).kind, codegen::Storage::Fused);
  EXPECT_EQ(p.productUpdates.count(f.ops[3].get()), 0u);
  for (const codegen::Step &step : p.steps.at(&f))
    for (const ir::Op *op : step)
      EXPECT_TRUE(op != f.ops[1].get() && op != f.ops[2].get()) << "the update of w is still a loop";
  // Without updates in place, nothing changes.
  EXPECT_TRUE(codegen::planMemory(f, {}, false).productUpdates.empty());
}

TEST(MemoryPlan, SlicesReadOnlyByElementwiseLoopsAreViews) {
  // %0 and %1 (gates of one matrix) are read only by the elementwise loop:
  // views of %g, no step and no memory of their own. %2 is read by a matmul,
  // which needs it dense: a copy.
  auto m = parse(R"(func @f(%g: f32[N, 64] input, %w: f32[16, 4] param) {
  %0 = slice %g {axis = 1, end = 16, start = 0} : f32[N, 16]
  %1 = slice %g {axis = 1, end = 48, start = 32} : f32[N, 16]
  %2 = slice %g {axis = 1, end = 64, start = 48} : f32[N, 16]
  %3 = sigmoid %0 : f32[N, 16]
  %4 = tanh %1 : f32[N, 16]
  %5 = mul %3, %4 : f32[N, 16]
  %6 = matmul %2, %w : f32[N, 4]
  return r = %5, s = %6
}
)");
  ASSERT_TRUE(m);
  const Function &f = *m->functions[0];
  codegen::MemoryPlan p = codegen::planMemory(f, {{"N", 8}});
  for (int i : {0, 1}) {
    EXPECT_EQ(p.storage.at(f.ops[size_t(i)]->result).kind, codegen::Storage::View) << i;
    EXPECT_EQ(p.root(f.ops[size_t(i)]->result), f.args[0]) << i;
  }
  EXPECT_EQ(p.storage.at(f.ops[2]->result).kind, codegen::Storage::Arena);
  // The copy for the matmul, the fused loop, the matmul.
  EXPECT_EQ(p.steps.at(&f).size(), 3u);
  EXPECT_EQ(p.arenaBytes, 8 * 16 * 4);
  // Written over by an update, an argument must keep its own last reader:
  // no views of arguments then.
  codegen::MemoryPlan inPlace = codegen::planMemory(f, {{"N", 8}}, true);
  EXPECT_EQ(inPlace.storage.at(f.ops[0]->result).kind, codegen::Storage::Arena);
}

TEST(MemoryPlan, ReadsAtAnotherIndexEndTheLoop) {
  // The transpose reads %0 at other indices than it writes, so %0 must be
  // in memory first: two loops.
  auto m = parse(R"(func @f(%x: f32[64, 64] input) {
  %0 = exp %x : f32[64, 64]
  %1 = transpose %0 {perm = [1, 0]} : f32[64, 64]
  %2 = add %1, %0 : f32[64, 64]
  return r = %2
}
)");
  ASSERT_TRUE(m);
  const Function &f = *m->functions[0];
  codegen::MemoryPlan p = codegen::planMemory(f, {});
  ASSERT_EQ(p.steps.at(&f).size(), 2u);
  EXPECT_EQ(p.steps.at(&f)[1].size(), 2u);
  EXPECT_EQ(p.storage.at(f.ops[0]->result).kind, codegen::Storage::Arena);
  EXPECT_EQ(p.storage.at(f.ops[1]->result).kind, codegen::Storage::Fused);
}

} // namespace
