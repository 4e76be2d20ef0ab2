// Compiled-code numerics: every kernel kind checked against a plain C++
// reference, including the polynomial exp/log/tanh and stable softmax.
#include "codegen/JIT.h"
#include "ir/Builder.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace nnc;
using namespace nnc::ir;

namespace {

codegen::JIT &jit() {
  static codegen::JIT j;
  return j;
}

/// Compiles `f` for `b` and runs it on `inputs`, returning the f32 results.
std::vector<std::vector<float>> run(const Function &f, const Bindings &b, std::vector<std::vector<float>> inputs) {
  codegen::CompiledFunction c = jit().compile(f, b);
  std::vector<void *> ptrs;
  for (auto &in : inputs)
    ptrs.push_back(in.data());
  std::vector<std::vector<float>> out;
  for (auto &r : c.results)
    out.emplace_back(std::max<int64_t>(1, numElements(r.shape)) * (r.dtype == DType::I64 ? 2 : 1));
  for (auto &o : out)
    ptrs.push_back(o.data());
  std::vector<double> arena(size_t(c.arenaBytes / 8 + 16));
  c.entry(ptrs.data(), reinterpret_cast<char *>(arena.data()));
  return out;
}

std::vector<float> random(size_t n, float lo, float hi, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto &x : v)
    x = d(rng);
  return v;
}

TEST(Codegen, ElementwiseMathIsAccurate) {
  // exp, log, tanh, sigmoid against libm over wide ranges: at most a few ulp.
  const size_t n = 4099; // not a multiple of any vector width
  struct Case {
    OpKind k;
    float lo, hi;
    double (*ref)(double);
    double relTol;
  } cases[] = {
      {OpKind::Exp, -87.0f, 88.0f, [](double x) { return std::exp(x); }, 4e-7},
      {OpKind::Log, 1e-30f, 1e30f, [](double x) { return std::log(x); }, 4e-7},
      {OpKind::Tanh, -9.0f, 9.0f, [](double x) { return std::tanh(x); }, 1e-6},
      {OpKind::Sigmoid, -80.0f, 80.0f, [](double x) { return 1 / (1 + std::exp(-x)); }, 1e-6},
      {OpKind::Sqrt, 0.0f, 1e6f, [](double x) { return std::sqrt(x); }, 2e-7},
      {OpKind::Erf, -4.0f, 4.0f, [](double x) { return std::erf(x); }, 1e-6},
  };
  for (const Case &c : cases) {
    Module m;
    Function *f = m.addFunction("f");
    Value *x = f->addArg("x", {DType::F32, {Dim(int64_t(n))}}, ArgRole::Input);
    Builder b(*f);
    f->addResult("y", b.unary(c.k, x));
    std::vector<float> in = random(n, c.lo, c.hi, 3);
    if (c.k == OpKind::Log) // log-uniform over many decades
      for (auto &v : in)
        v = std::exp(std::log(1e-30f) + (v / 1e30f) * (std::log(1e30f) - std::log(1e-30f)));
    auto out = run(*f, {}, {in});
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
      double ref = c.ref(double(in[i]));
      double err = std::fabs(double(out[0][i]) - ref) / std::max(std::fabs(ref), 1e-30);
      worst = std::max(worst, err);
    }
    EXPECT_LT(worst, c.relTol) << opName(c.k);
  }
}

TEST(Codegen, SpecialValues) {
  Module m;
  Function *f = m.addFunction("f");
  Value *x = f->addArg("x", {DType::F32, {Dim(6)}}, ArgRole::Input);
  Builder b(*f);
  f->addResult("exp", b.unary(OpKind::Exp, x));
  f->addResult("log", b.unary(OpKind::Log, x));
  float inf = INFINITY;
  auto out = run(*f, {}, {{0.0f, -1.0f, inf, -inf, NAN, 100.0f}});
  EXPECT_EQ(out[0][0], 1.0f);
  EXPECT_EQ(out[0][2], inf);
  EXPECT_EQ(out[0][3], 0.0f);
  EXPECT_TRUE(std::isnan(out[0][4]));
  EXPECT_EQ(out[0][5], inf);
  EXPECT_EQ(out[1][0], -inf);
  EXPECT_TRUE(std::isnan(out[1][1]));
  EXPECT_EQ(out[1][2], inf);
  EXPECT_TRUE(std::isnan(out[1][4]));
}

TEST(Codegen, MatMulAllTransposes) {
  const int64_t M = 7, K = 13, N = 5;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      Module m;
      Function *f = m.addFunction("f");
      Shape as = ta ? Shape{K, M} : Shape{M, K}, bs = tb ? Shape{N, K} : Shape{K, N};
      Value *a = f->addArg("a", {DType::F32, as}, ArgRole::Input);
      Value *bb = f->addArg("b", {DType::F32, bs}, ArgRole::Input);
      Builder b(*f);
      f->addResult("c", b.matmul(a, bb, ta, tb));
      auto A = random(size_t(M * K), -1, 1, 1), B = random(size_t(K * N), -1, 1, 2);
      auto out = run(*f, {}, {A, B});
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
          double ref = 0;
          for (int64_t k = 0; k < K; ++k)
            ref += double(ta ? A[size_t(k * M + i)] : A[size_t(i * K + k)]) *
                   double(tb ? B[size_t(j * K + k)] : B[size_t(k * N + j)]);
          EXPECT_NEAR(out[0][size_t(i * N + j)], ref, 1e-5) << "ta=" << ta << " tb=" << tb;
        }
    }
}

TEST(Codegen, SoftmaxIsStableAndReductionsAreExact) {
  Module m;
  Function *f = m.addFunction("f");
  Value *x = f->addArg("x", {DType::F32, {Dim::symbol("N"), Dim(3)}}, ArgRole::Input);
  Builder b(*f);
  f->addResult("softmax", b.unary(OpKind::Softmax, x));
  f->addResult("logsoftmax", b.unary(OpKind::LogSoftmax, x));
  f->addResult("rowsum", b.reduce(OpKind::ReduceSum, x, {1}, false));
  f->addResult("colmax", b.reduce(OpKind::ReduceMax, x, {0}, false));
  f->addResult("mean", b.reduce(OpKind::ReduceMean, x, {0, 1}, false));
  // Huge logits would overflow a naive exp.
  std::vector<float> in = {1000.0f, 1001.0f, 1002.0f, -5.0f, 0.0f, 5.0f};
  auto out = run(*f, {{"N", 2}}, {in});
  double z = std::exp(-2.0) + std::exp(-1.0) + 1.0;
  EXPECT_NEAR(out[0][2], 1.0 / z, 1e-6);
  EXPECT_NEAR(out[1][0], -2.0 - std::log(z), 1e-5);
  EXPECT_NEAR(out[1][3], -10.0 - std::log(1 + std::exp(-5.0) + std::exp(-10.0)), 1e-5);
  EXPECT_FLOAT_EQ(out[2][0], 3003.0f);
  EXPECT_FLOAT_EQ(out[2][1], 0.0f);
  EXPECT_FLOAT_EQ(out[3][0], 1000.0f);
  EXPECT_FLOAT_EQ(out[3][2], 1002.0f);
  EXPECT_NEAR(out[4][0], (3003.0 + 0.0) / 6.0, 1e-3);
}

TEST(Codegen, BroadcastTransposeAndLargeParallelKernels) {
  // Large enough to go through the thread pool.
  const int64_t R = 300, C = 257;
  Module m;
  Function *f = m.addFunction("f");
  Value *x = f->addArg("x", {DType::F32, {Dim(R), Dim(C)}}, ArgRole::Input);
  Value *v = f->addArg("v", {DType::F32, {Dim(C)}}, ArgRole::Input);
  Builder b(*f);
  f->addResult("sum", b.add(x, v));
  f->addResult("t", b.transpose(x, {1, 0}));
  f->addResult("colsum", b.reduce(OpKind::ReduceSum, x, {0}, false));
  auto X = random(size_t(R * C), -1, 1, 5), V = random(size_t(C), -1, 1, 6);
  auto out = run(*f, {}, {X, V});
  for (int64_t i = 0; i < R; i += 7)
    for (int64_t j = 0; j < C; j += 3) {
      EXPECT_FLOAT_EQ(out[0][size_t(i * C + j)], X[size_t(i * C + j)] + V[size_t(j)]);
      EXPECT_FLOAT_EQ(out[1][size_t(j * R + i)], X[size_t(i * C + j)]);
    }
  for (int64_t j = 0; j < C; ++j) {
    double ref = 0;
    for (int64_t i = 0; i < R; ++i)
      ref += X[size_t(i * C + j)];
    EXPECT_NEAR(out[2][size_t(j)], ref, 1e-3);
  }
}

TEST(Codegen, SgdStepWrittenByTheWeightGradientProduct) {
  // new.w = w - lr * (xᵀ g), compiled with updates in place: the GEMM adds
  // (-lr) xᵀ g into w's own buffer (MemoryPlan::productUpdates).
  const int64_t N = 7, I = 30, O = 45;
  Module m;
  Function *f = m.addFunction("f");
  Value *x = f->addArg("x", {DType::F32, {Dim(N), Dim(I)}}, ArgRole::Input);
  Value *g = f->addArg("g", {DType::F32, {Dim(N), Dim(O)}}, ArgRole::Input);
  Value *w = f->addArg("w", {DType::F32, {Dim(I), Dim(O)}}, ArgRole::Param);
  Value *lr = f->addArg("lr", {DType::F32, {}}, ArgRole::Scalar);
  Builder b(*f);
  f->addResult("new.w", b.sub(w, b.mul(lr, b.matmul(x, g, /*ta=*/true))));
  codegen::CodegenOptions opts;
  opts.inPlaceUpdates = true;
  codegen::CompiledFunction c = jit().compile(*f, {}, opts);
  ASSERT_EQ(c.resultArg, std::vector<int>{2});
  auto X = random(size_t(N * I), -1, 1, 21), G = random(size_t(N * O), -1, 1, 22), W = random(size_t(I * O), -1, 1, 23);
  std::vector<float> w0 = W, rate = {0.25f}, unused(size_t(I * O));
  std::vector<void *> ptrs = {X.data(), G.data(), W.data(), rate.data(), unused.data()};
  std::vector<double> arena(size_t(c.arenaBytes / 8 + 16));
  c.entry(ptrs.data(), reinterpret_cast<char *>(arena.data()));
  for (int64_t i = 0; i < I; ++i)
    for (int64_t j = 0; j < O; ++j) {
      double dw = 0;
      for (int64_t n = 0; n < N; ++n)
        dw += double(X[size_t(n * I + i)]) * G[size_t(n * O + j)];
      EXPECT_NEAR(W[size_t(i * O + j)], w0[size_t(i * O + j)] - 0.25 * dw, 1e-5) << i << "," << j;
    }
}

TEST(Codegen, MaxPoolGradientGoesToTheFirstMaximum) {
  // 2x2 windows tiling a 4x5 image (column 4 in no window): ties send dy to
  // the first maximum in row-major order, a NaN wins its window (as in the
  // forward pass), and positions outside every window get 0.
  Module m;
  Function *f = m.addFunction("f");
  Value *dy = f->addArg("dy", {DType::F32, {Dim(1), Dim(1), Dim(2), Dim(2)}}, ArgRole::Input);
  Value *x = f->addArg("x", {DType::F32, {Dim(1), Dim(1), Dim(4), Dim(5)}}, ArgRole::Input);
  Builder b(*f);
  f->addResult("dx", b.create(OpKind::MaxPool2DGrad, {dy, x},
                              {{"kernel", std::vector<int64_t>{2, 2}}, {"stride", std::vector<int64_t>{2, 2}}}));
  const float nan = std::nanf("");
  std::vector<float> X = {1, 3, 3, 0,   9, //
                          3, 2, 1, 1,   9, //
                          5, 5, 0, nan, 9, //
                          5, 5, 2, 7,   9};
  auto out = run(*f, {}, {{10, 20, 30, 40}, X});
  std::vector<float> want = {0,  10, 20, 0,  0, //
                             0,  0,  0,  0,  0, //
                             30, 0,  0,  40, 0, //
                             0,  0,  0,  0,  0};
  EXPECT_EQ(out[0], want);
}

TEST(Codegen, ArgMaxTakesTheFirstMaximumAndANaNAsPyTorchDoes) {
  // torch.argmax: the first index of ties; a NaN is the largest value (the
  // first NaN wins); an all -inf row gives 0.
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  Module m;
  Function *f = m.addFunction("f");
  Value *x = f->addArg("x", {DType::F32, {Dim(5), Dim(4)}}, ArgRole::Input);
  Builder b(*f);
  f->addResult("i", b.create(OpKind::ArgMax, {x}));
  auto out = run(
      *f, {}, {{1, 3, 3, 2, /**/ nan, 9, nan, 1, /**/ 0, 0, 5, nan, /**/ -inf, -inf, -inf, -inf, /**/ -1, -2, -1, -3}});
  std::vector<int64_t> got(5);
  std::memcpy(got.data(), out[0].data(), sizeof(int64_t) * got.size());
  EXPECT_EQ(got, (std::vector<int64_t>{1, 0, 3, 0, 0}));
}

TEST(Codegen, MinimumAndMaximumAreElementwiseAndPropagateANaNAsPyTorchDoes) {
  // torch.minimum and torch.maximum: the smaller (larger) value,
  // broadcasting; a NaN in either operand gives NaN. 37 columns: a vector
  // body and a scalar tail.
  const float nan = std::nanf(""), inf = std::numeric_limits<float>::infinity();
  const int64_t C = 37;
  Module m;
  Function *f = m.addFunction("f");
  Value *x = f->addArg("x", {DType::F32, {Dim(2), Dim(C)}}, ArgRole::Input);
  Value *c = f->addArg("c", {DType::F32, {Dim(C)}}, ArgRole::Input);
  Builder b(*f);
  f->addResult("m", b.create(OpKind::Minimum, {x, c}));
  f->addResult("M", b.create(OpKind::Maximum, {x, c}));
  std::vector<float> xs(2 * C), cs(C);
  for (int64_t j = 0; j < C; ++j) {
    xs[j] = float(j) - 18, xs[C + j] = float(18 - j) * 0.5f;
    cs[j] = float(j % 5) - 2;
  }
  xs[3] = nan, cs[7] = nan, xs[C + 9] = -inf, cs[11] = inf;
  auto out = run(*f, {}, {xs, cs});
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < C; ++j) {
      float a = xs[i * C + j], bb = cs[j], lo = out[0][i * C + j], hi = out[1][i * C + j];
      if (std::isnan(a) || std::isnan(bb)) {
        EXPECT_TRUE(std::isnan(lo)) << i << "," << j;
        EXPECT_TRUE(std::isnan(hi)) << i << "," << j;
      } else {
        EXPECT_EQ(lo, std::min(a, bb)) << i << "," << j;
        EXPECT_EQ(hi, std::max(a, bb)) << i << "," << j;
      }
    }
}

TEST(Codegen, SlicesReadInPlaceByElementwiseLoops) {
  // Slices along each axis, one broadcast along the rows, read as views by
  // elementwise loops (MemoryPlan's Storage::View), against the copies.
  const int64_t R = 37, C = 70;
  Module m;
  Function *f = m.addFunction("f");
  Value *x = f->addArg("x", {DType::F32, {Dim(R), Dim(C)}}, ArgRole::Input);
  Builder b(*f);
  auto slice = [&](Value *v, int64_t axis, int64_t start, int64_t end) {
    return b.create(OpKind::Slice, {v}, {{"axis", axis}, {"start", start}, {"end", end}});
  };
  Value *left = slice(x, 1, 3, 23), *right = slice(x, 1, 50, 70), *row = slice(x, 0, 36, 37);
  f->addResult("a", b.mul(b.unary(OpKind::Sigmoid, left), right));
  f->addResult("b", b.add(slice(x, 0, 5, 9), row));
  // Read by a pad (a strided copy) and by another slice.
  Value *mid = slice(x, 1, 10, 40);
  f->addResult("c",
               b.create(OpKind::Pad, {mid}, {{"axis", int64_t(0)}, {"before", int64_t(1)}, {"after", int64_t(2)}}));
  f->addResult("d", slice(mid, 0, 30, 37));
  auto X = random(size_t(R * C), -2, 2, 9);
  auto out = run(*f, {}, {X});
  for (int64_t i = 0; i < R + 3; ++i)
    for (int64_t j = 0; j < 30; ++j)
      EXPECT_EQ(out[2][size_t(i * 30 + j)], i >= 1 && i <= R ? X[size_t((i - 1) * C + j + 10)] : 0.0f);
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 30; ++j)
      EXPECT_EQ(out[3][size_t(i * 30 + j)], X[size_t((i + 30) * C + j + 10)]);
  auto at = [&](int64_t i, int64_t j) { return X[size_t(i * C + j)]; };
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < 20; ++j)
      EXPECT_NEAR(out[0][size_t(i * 20 + j)], at(i, j + 50) / (1 + std::exp(-at(i, j + 3))), 1e-6);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < C; ++j)
      EXPECT_FLOAT_EQ(out[1][size_t(i * C + j)], at(i + 5, j) + at(36, j));
}

} // namespace

namespace {

TEST(Codegen, DropoutMaskStatistics) {
  const int64_t n = 200000;
  Module m;
  Function *f = m.addFunction("f");
  Value *seed = f->addArg("rng", {DType::I64, {}}, ArgRole::Scalar);
  Builder b(*f);
  f->addResult("a",
               b.create(OpKind::DropoutMask, {seed}, {{"p", 0.3}, {"shape", Shape{Dim(n)}}, {"stream", int64_t(0)}}));
  f->addResult("b",
               b.create(OpKind::DropoutMask, {seed}, {{"p", 0.3}, {"shape", Shape{Dim(n)}}, {"stream", int64_t(1)}}));
  codegen::CompiledFunction c = jit().compile(*f, {});
  auto masks = [&](int64_t s) {
    std::vector<float> a(n), bb(n);
    void *ptrs[] = {&s, a.data(), bb.data()};
    std::vector<double> arena(size_t(c.arenaBytes / 8 + 16));
    c.entry(ptrs, reinterpret_cast<char *>(arena.data()));
    return std::make_pair(a, bb);
  };
  auto [a1, b1] = masks(42);
  auto [a2, b2] = masks(42);
  auto [a3, b3] = masks(43);
  EXPECT_EQ(a1, a2); // same seed, same mask (whatever the thread split)
  EXPECT_NE(a1, a3); // another step, another mask
  EXPECT_NE(a1, b1); // another dropout call, another mask
  int64_t kept = 0;
  for (float v : a1) {
    ASSERT_TRUE(v == 0.0f || v == float(1 / 0.7)) << v;
    kept += v != 0;
  }
  // 70% kept: the binomial standard deviation is ~205 for n = 200000.
  EXPECT_NEAR(double(kept), 0.7 * n, 1500);
}

} // namespace

namespace {

/// normal(...) and uniform(...) noise: reproducible per seed, independent
/// per stream, with the moments of N(0, 1) and U[0, 1) (and normal's tails).
TEST(Codegen, RandomNoiseStatistics) {
  const int64_t n = 400000;
  Module m;
  Function *f = m.addFunction("f");
  Value *seed = f->addArg("rng", {DType::I64, {}}, ArgRole::Scalar);
  Builder b(*f);
  auto draw = [&](const char *dist, int64_t stream) {
    return b.create(OpKind::Random, {seed},
                    {{"dist", std::string(dist)}, {"shape", Shape{Dim(n)}}, {"stream", stream}});
  };
  f->addResult("n0", draw("normal", 0));
  f->addResult("n1", draw("normal", 1));
  f->addResult("u0", draw("uniform", 0));
  codegen::CompiledFunction c = jit().compile(*f, {});
  auto run = [&](int64_t s) {
    std::vector<std::vector<float>> out(3, std::vector<float>(n));
    void *ptrs[] = {&s, out[0].data(), out[1].data(), out[2].data()};
    std::vector<double> arena(size_t(c.arenaBytes / 8 + 16));
    c.entry(ptrs, reinterpret_cast<char *>(arena.data()));
    return out;
  };
  auto a = run(7), again = run(7), other = run(8);
  EXPECT_EQ(a, again);
  EXPECT_NE(a[0], other[0]);
  EXPECT_NE(a[0], a[1]);
  auto moments = [](const std::vector<float> &v) {
    double m1 = 0, m2 = 0, m4 = 0;
    for (float x : v)
      m1 += x;
    m1 /= double(v.size());
    for (float x : v) {
      double d = x - m1;
      m2 += d * d;
      m4 += d * d * d * d;
    }
    m2 /= double(v.size());
    m4 /= double(v.size());
    return std::array<double, 3>{m1, m2, m4 / (m2 * m2)};
  };
  for (int k = 0; k < 2; ++k) {
    auto [mean, var, kurt] = moments(a[size_t(k)]);
    EXPECT_NEAR(mean, 0.0, 0.01);  // sd of the mean: 0.0016
    EXPECT_NEAR(var, 1.0, 0.01);   // sd: 0.0022
    EXPECT_NEAR(kurt, 3.0, 0.05);  // sd: ~0.008
    int64_t beyond2 = 0, beyond3 = 0;
    for (float x : a[size_t(k)]) {
      ASSERT_TRUE(std::isfinite(x));
      beyond2 += std::fabs(x) > 2;
      beyond3 += std::fabs(x) > 3;
    }
    EXPECT_NEAR(double(beyond2) / n, 0.0455, 0.002);
    EXPECT_NEAR(double(beyond3) / n, 0.0027, 0.0004);
  }
  // Two streams are uncorrelated.
  double cov = 0;
  for (int64_t i = 0; i < n; ++i)
    cov += double(a[0][size_t(i)]) * a[1][size_t(i)];
  EXPECT_NEAR(cov / n, 0.0, 0.01);
  auto [um, uv, uk] = moments(a[2]);
  EXPECT_NEAR(um, 0.5, 0.005);
  EXPECT_NEAR(uv, 1.0 / 12, 0.002);
  for (float x : a[2])
    ASSERT_TRUE(x >= 0.0f && x < 1.0f) << x;
}

} // namespace
