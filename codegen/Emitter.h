// The LLVM emitter: lowers one specialized IR function to LLVM IR.
//
// Every op becomes a kernel: an internal function `void k(ctx, begin, end)`
// that computes the slice [begin, end) of the op's outermost loop. The entry
// function calls each kernel in program order, directly when the work is small
// (LLVM then inlines it) or through the runtime's thread pool
// (nnc_rt_parallel_for) when it is large. Buffers come from the memory plan:
// argument and result pointers from the `buffers` array, intermediates at
// constant offsets into the arena. All shapes are constants, so the loop
// vectorizer sees exact trip counts and strides.
//
// Internal to codegen (it includes LLVM's headers): only codegen/lower/*.cpp
// and LowerToLLVM.cpp include it. The shared IRBuilder helpers (buffers,
// kernels, loops) are in lower/Emitter.cpp, scalar math in
// lower/ScalarMath.cpp, and each op family's lowering in its own file.
#pragma once

#include "codegen/LowerToLLVM.h"
#include "codegen/MemoryPlan.h"
#include "ir/ShapeRules.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace nnc::codegen {

using llvm::IRBuilder;
using LV = llvm::Value;

/// Work (in rough flops) below which a kernel runs on the calling thread.
constexpr int64_t kParallelThreshold = 1 << 16;

inline std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

class Emitter {
public:
  Emitter(const ir::Function &f, const ir::Bindings &b, const MemoryPlan &plan, llvm::LLVMContext &ctx, llvm::Module &m,
          double *profile);
  void emit(const std::string &symbol);

private:
  //--- the entry function, buffers, kernels and loops (lower/Emitter.cpp) ---
  /// With profiling on, calls nnc_rt_profile_mark(table, index) so the runtime
  /// adds the time since the previous mark to the previous index's slot.
  void profileMark(int64_t index);
  void profileMark(const ir::Op *op);
  std::vector<int64_t> shapeOf(const ir::Value *v) const { return ir::concreteShape(v->type.shape, bind_); }
  llvm::Type *elemTy(const ir::Value *v) const { return v->type.dtype == ir::DType::F32 ? f32_ : i64_; }
  /// Base pointer (typed) of `v`'s storage, emitted in the current function
  /// from its context argument `ctx`.
  LV *basePtr(const ir::Value *v, LV *ctx);
  /// A scan body's view of an outer value at the current step (ctx.t).
  LV *scanStepPtr(const Storage &s, LV *ctx);
  static int64_t storageKey(const Storage &s);
  /// Marks every load and store in `fn` with alias scopes, one per buffer: the
  /// memory plan guarantees that distinct buffers never overlap, and saying so
  /// spares the vectorizer its runtime overlap checks.
  void addAliasScopes(llvm::Function *fn);
  /// A pointer to result buffer j (for copies of results).
  LV *resultPtr(int j, llvm::Type *ety, LV *ctx);
  /// for (i = lo; i < hi; ++i) body(i); with `vectorize`, the loop asks the
  /// vectorizer to vectorize it even when its trip count is short.
  void loop(LV *lo, LV *hi, const std::function<void(LV *)> &body, const char *name = "i", bool vectorize = false);
  void loop(int64_t n, const std::function<void(LV *)> &body, const char *name = "i", bool vectorize = false);
  /// Creates a kernel function `void k(ctx, begin, end)` and emits its body.
  llvm::Function *makeKernel(const std::string &what, const std::function<void(LV *ctx, LV *begin, LV *end)> &body);
  /// Creates a kernel function and emits its body; then calls it from the
  /// entry function over [0, n), in parallel when `work` is large.
  void kernel(const std::string &what, int64_t n, int64_t work,
              const std::function<void(LV *ctx, LV *begin, LV *end)> &body);
  /// A loop over j in [0, len) carrying `init` values in registers:
  /// vals = step(vals, j) each iteration; returns the final values. Register
  /// reductions in this form are what the vectorizer handles.
  /// carryLoop for short constant trip counts (pooling windows): written out
  /// step by step, so the enclosing loop's body is straight-line code.
  std::vector<LV *> smallCarryLoop(int64_t len, const std::vector<LV *> &init,
                                   const std::function<std::vector<LV *>(const std::vector<LV *> &, LV *)> &step);
  std::vector<LV *> carryLoop(int64_t len, const std::vector<LV *> &init,
                              const std::function<std::vector<LV *>(const std::vector<LV *> &, LV *)> &step);
  /// The same over [lo, hi).
  std::vector<LV *> carryLoop(LV *lo, LV *hi, const std::vector<LV *> &init,
                              const std::function<std::vector<LV *>(const std::vector<LV *> &, LV *)> &step);
  /// acc = init; for j < len: acc = step(acc, j); returns acc.
  LV *reduceRow(int64_t len, LV *init, const std::function<LV *(LV *, LV *)> &step);
  void zeroFill(LV *base, LV *from, int64_t n);
  /// The op's scratch space (see MemoryPlan::scratch), typed f32.
  LV *scratchPtr(const ir::Op &op, LV *ctx) { return arenaPtr(plan_.scratch.at(&op), ctx); }
  /// The arena at byte offset `off`, typed f32.
  LV *arenaPtr(int64_t off, LV *ctx);
  void lowerStep(const Step &step);
  void lowerOp(const ir::Op &op);
  /// Result j's value lives elsewhere (an argument, another result, or an
  /// immediate): copy or fill it into result buffer j.
  void copyResult(int j);

  //--- scalar functions (lower/ScalarMath.cpp) ------------------------------
  LV *cf(double v) { return llvm::ConstantFP::get(f32_, v); }
  LV *call(llvm::Intrinsic::ID id, LV *x) { return b_.CreateUnaryIntrinsic(id, x); }
  LV *select(LV *c, LV *a, LV *b) { return b_.CreateSelect(c, a, b); }
  /// exp(x): Cody-Waite range reduction and a degree-6 polynomial (Cephes
  /// expf), max error about 2 ulp; branch-free so loops vectorize.
  LV *expf(LV *x);
  /// log(x): exponent split and a degree-9 polynomial (Cephes logf), max error
  /// about 2 ulp; log(0) = -inf, log(x<0) = NaN, log(inf) = inf.
  LV *logf(LV *x);
  /// tanh(x): an odd polynomial for |x| < 0.625 (Cephes tanhf), else
  /// 1 - 2/(exp(2|x|) + 1) with the sign of x.
  LV *tanhf(LV *x);
  /// erf(x) = 1 - t(a1 + t(a2 + ...)) exp(-x^2), t = 1/(1 + p|x|), with the
  /// sign of x (Abramowitz & Stegun 7.1.26); relative error below 1e-6 in
  /// float (tested in test/unit/CodegenTest.cpp).
  LV *erff(LV *x);
  LV *sigmoidf(LV *x) { return b_.CreateFDiv(cf(1.0), b_.CreateFAdd(cf(1.0), expf(b_.CreateFNeg(x)))); }
  LV *scalarOp(ir::OpKind k, const std::vector<LV *> &a);

  //--- elementwise ops and fused loops over strided operands (lower/Elementwise.cpp) ---
  /// How one operand is read by a strided kernel: per-output-dim strides in
  /// elements (0 where broadcast), or an immediate.
  struct Access {
    const ir::Value *v = nullptr;
    bool immediate = false;
    double imm = 0;
    std::vector<int64_t> strides;
    int64_t offset = 0; ///< elements from the buffer's start (slices, concat)
  };
  /// The natural row-major access of `v` over its own shape.
  Access denseAccess(const ir::Value *v);
  /// How to read `v` over its own shape: densely, or, for a slice planned as
  /// a view (Storage::View), in its source from the slice's offset.
  Access readAccess(const ir::Value *v);
  /// Strides of `v` broadcast (numpy rules) to `outShape`.
  Access broadcastAccess(const ir::Value *v, const std::vector<int64_t> &outShape);
  /// out[idx] = fn(operands[idx]) over `outShape`, parallel over the first
  /// (collapsed) dimension.
  void strided(const std::string &what, const ir::Value *out, std::vector<int64_t> shape, std::vector<Access> ins,
               const std::function<LV *(const std::vector<LV *> &)> &fn, int64_t costPerElem = 1);
  /// The general form: the output is written through its own access (strides
  /// and offset), so a kernel can fill part of a larger buffer.
  void strided(const std::string &what, Access outAccess, std::vector<int64_t> shape, std::vector<Access> ins,
               const std::function<LV *(const std::vector<LV *> &)> &fn, int64_t costPerElem = 1);
  /// Several outputs from one loop (fused elementwise ops): fn maps the
  /// loaded inputs to one value per output.
  void strided(const std::string &what, std::vector<Access> outs, std::vector<int64_t> shape, std::vector<Access> ins,
               const std::function<std::vector<LV *>(const std::vector<LV *> &)> &fn, int64_t costPerElem);
  /// One loop computing a step of fused elementwise ops (see Fusion.h):
  /// operands from outside the step are loaded (broadcast or transposed),
  /// values made inside are used from registers, and only the values read
  /// elsewhere are stored.
  void lowerFused(const Step &ops);
  void lowerConstFill(const ir::Op &op);

  //--- reductions and the row-wise ops (softmax, log_softmax, argmax) (lower/Reduce.cpp) ---
  void lowerReduce(const ir::Op &op);
  /// Softmax, log-softmax and argmax along the last axis, one row at a time.
  void lowerRowwise(const ir::Op &op);

  //--- data movement (lower/DataMovement.cpp) -------------------------------
  /// slice, pad and concat: strided copies between a buffer and a part of
  /// another, offset along one axis.
  void lowerSliceLike(const ir::Op &op);
  /// gather: out[r, :] = table[ids[r], :] (zeros for an id out of range);
  /// scatter_add: out = 0, then out[ids[r], :] += upd[r, :] in order.
  void lowerGatherScatter(const ir::Op &op);
  /// Inverted-dropout mask: element i keeps (value 1/(1-p)) when the top 24
  /// bits of splitmix64(seed + stream * golden + i), as a fraction of 2^24,
  /// are at least p. Counter-based, so any thread split gives the same mask
  /// and the loop vectorizes.
  void lowerDropoutMask(const ir::Op &op);
  /// random: uniform [0, 1) from 24 hashed bits, normal as sqrt(2) *
  /// erfinv(2u - 1) with u in (0, 1) (Giles' single-precision erfinv).
  void lowerRandom(const ir::Op &op);
  /// The 64-bit mix of dropout and random: seed + stream + i * golden ratio,
  /// then SplitMix64's finalizer.
  LV *hashIndex(LV *base, LV *i);
  /// causal_mask and sinusoid: tables computed here and stored as a
  /// constant global, copied into the result buffer.
  void lowerTable(const ir::Op &op);
  void lowerOneHot(const ir::Op &op);

  //--- matrix products through the GEMM runtime (lower/Gemm.cpp) ------------
  /// C = op(A) op(B), for matrices or stacks of them: a call to the
  /// runtime's blocked GEMM (runtime/Gemm.h) around the micro-kernel the JIT
  /// emitted for this CPU, with the shapes and strides as a constant
  /// descriptor. It splits the work over threads itself. An operand that is a
  /// matrix broadcast over the stack is read in place (stack stride 0); with
  /// `into` (a reduce_sum over the stack, see MemoryPlan::stackSums) the
  /// products of the stack are summed into it.
  /// The GEMM descriptor (see runtime::GemmDesc) of a matmul, or of the
  /// reduce_sum over its stack when `summed`.
  std::vector<int64_t> matmulDesc(const ir::Op &op, bool summed);
  void lowerMatMul(const ir::Op &op, const ir::Value *into = nullptr);
  /// A constant GEMM descriptor (see runtime::GemmDesc) in the module.
  LV *gemmDesc(const std::vector<int64_t> &desc);
  /// Calls nnc_rt_sgemm with the descriptor `desc`, or with `alpha`,
  /// nnc_rt_sgemm_scaled (C (+)= alpha A B).
  void callGemm(LV *desc, LV *a, LV *bm, LV *c, LV *alpha = nullptr);
  void callGemm(const std::vector<int64_t> &desc, LV *a, LV *bm, LV *c) { callGemm(gemmDesc(desc), a, bm, c); }

  //--- convolutions (im2col + GEMM) and their gradients (lower/Conv.cpp) ----
  struct ConvGeom {
    int64_t N, C, H, W, O, OH, OW, G, Cg, Og, KH, KW;
    ir::Window2D w;
  };
  /// The outputs o in [0, out) with 0 <= o * stride + off < in, as [lo, hi).
  std::pair<LV *, LV *> validRange(LV *off, int64_t stride, int64_t in, int64_t out);
  LV *at(LV *base, LV *i) { return b_.CreateInBoundsGEP(f32_, base, i); }
  LV *ld(LV *base, LV *i) { return b_.CreateLoad(f32_, at(base, i)); }
  LV *mulC(LV *a, int64_t c) { return b_.CreateMul(a, b_.getInt64(c)); }
  LV *addC(LV *a, int64_t c) { return b_.CreateAdd(a, b_.getInt64(c)); }
  ConvGeom convGeom(const ir::Op &op);
  /// For each tap (kh, kw) of the kernel: body(tapIndex, ohLo, ohHi, owLo,
  /// owHi, hoff, woff) where input row = oh * sh + hoff, column = ow * sw +
  /// woff.
  void forEachTap(const ConvGeom &g, const std::function<void(LV *, LV *, LV *, LV *, LV *, LV *, LV *)> &body);
  /// im2col of image n: col[n][(c * KH + kh) * KW + kw][oh * OW + ow] =
  /// x[n, c, oh * sh + kh * dh - pt, ow * sw + kw * dw - pl], zero outside.
  /// With `toImage`, the adjoint (col2im): x[n] = 0, then x += col at the
  /// same places.
  void im2col(const ConvGeom &g, LV *x, LV *col, LV *n, bool toImage);
  /// Convolution as im2col + GEMM. With W the weights [O, K] (K = C/groups *
  /// KH * KW) and col[n] the unfolded image [C * KH * KW, P] (P = OH * OW),
  /// per group:
  ///   conv2d:             y[n]  = W col[n]
  ///   conv2d_grad_input:  x'[n] = col2im(Wᵀ dy[n])
  ///   conv2d_grad_weight: w'    = sum_n dy[n] col[n]ᵀ
  /// The products go to the runtime's GEMM (see lowerMatMul). The forward
  /// and input-gradient kernels run in parallel over images, each unfolding
  /// one image and multiplying it while it is still in cache (the GEMM then
  /// runs on its thread); the weight gradient unfolds every image, then one
  /// GEMM sums the products over the images (each thread a share of them).
  void lowerConv(const ir::Op &op);

  //--- max and average pooling and their gradients (lower/Pool.cpp) ---------
  /// Pooling over planes [N*C] of an [N, C, H, W] input (x) and its pooled
  /// [N, C, OH, OW] form. Windows are visited tap by tap in row-major order;
  /// max pooling keeps the first maximum (NaN wins, as in PyTorch), average
  /// pooling divides by the full window (padding counts, as PyTorch's
  /// default count_include_pad).
  void lowerPool(const ir::Op &op);

  //--- scan (lower/Scan.cpp) ------------------------------------------------
  /// Before a loop: packs the loop-invariant B of the body's matmuls once
  /// (MemoryPlan::packedB); the products in the loop read the packed copy.
  void packLoopInvariants(const ir::Function &body);
  /// scan: a loop in the entry function over the steps; each step sets
  /// ctx.t and runs the body's kernels, which find their operands and result
  /// at that step (Storage::ScanStep). The code does not grow with T.
  void lowerScan(const ir::Op &op);

  const ir::Function &f_;
  const ir::Bindings &bind_;
  const MemoryPlan &plan_;
  llvm::LLVMContext &ctx_;
  llvm::Module &m_;
  IRBuilder<> b_;
  llvm::Type *f32_, *i64_;
  llvm::PointerType *i8p_;
  llvm::StructType *ctxTy_;
  llvm::FunctionType *kernelTy_;
  llvm::Function *entry_ = nullptr, *parallelFor_ = nullptr;
  LV *ctxPtr_ = nullptr, *ctxI8_ = nullptr;
  int kernelCount_ = 0;
  double *profile_ = nullptr;
  ProfileLayout layout_;
  std::map<LV *, int64_t> bufferOf_;            ///< typed base pointer -> storage key
  std::map<const ir::Op *, int64_t> carryKeys_; ///< scan -> storage key of its carry
};

} // namespace nnc::codegen
