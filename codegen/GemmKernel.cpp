// The GEMM micro-kernel in LLVM vector IR; see GemmKernel.h.
#include "codegen/GemmKernel.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include "support/Diagnostics.h"

#include <vector>

namespace nnc::codegen {

GemmTile gemmTileFor(const std::string &features) {
  if (features.find("+avx512f") != std::string::npos)
    return {12, 32, 16};
  if (features.find("+avx2") != std::string::npos && features.find("+fma") != std::string::npos)
    return {6, 16, 8};
  return {4, 8, 4}; // SSE: 8 xmm accumulators
}

std::vector<GemmKernelSpec> gemmKernelSpecs(const GemmTile &tile) {
  std::vector<GemmKernelSpec> specs;
  int regs = tile.width == 16 ? 32 : 16, nv = tile.nr / tile.width;
  for (int rows = 1; rows <= tile.mr; ++rows) {
    specs.push_back({"nnc_sgemm_kernel_" + std::to_string(rows), rows, tile.nr, false});
    // In place, B's panels can be wider: enough accumulators for few rows to
    // hide the multiply-add latency, within the vector registers (rows + 1
    // vectors per column block, and a broadcast).
    int wide = std::min(8, (regs - 1) / (rows + 1));
    if (rows <= 4 && wide > nv)
      specs.push_back({"nnc_sgemm_kernel_" + std::to_string(rows) + "_wide", rows, wide * tile.width, true});
  }
  return specs;
}

std::unique_ptr<llvm::Module> buildGemmKernels(llvm::LLVMContext &ctx, const GemmTile &tile) {
  auto m = std::make_unique<llvm::Module>("nnc.gemm", ctx);
  for (const GemmKernelSpec &spec : gemmKernelSpecs(tile))
    buildGemmKernel(*m, tile, spec);
  std::string err;
  llvm::raw_string_ostream os(err);
  NNC_ASSERT(!llvm::verifyModule(*m, &os)) << "invalid GEMM micro-kernel: " << os.str();
  return m;
}

void buildGemmKernel(llvm::Module &mod, const GemmTile &tile, const GemmKernelSpec &spec) {
  llvm::LLVMContext &ctx = mod.getContext();
  llvm::Module *m = &mod;
  llvm::IRBuilder<> b(ctx);
  llvm::Type *f32 = b.getFloatTy(), *i64 = b.getInt64Ty();
  llvm::PointerType *fp = f32->getPointerTo();
  // MR rows of accumulators; A's panel holds tile.mr values per k.
  const int W = tile.width, MR = spec.rows, NV = spec.cols / tile.width, AStride = tile.mr;
  auto *vecTy = llvm::FixedVectorType::get(f32, unsigned(W));
  auto *fnTy = llvm::FunctionType::get(b.getVoidTy(), {i64, fp, fp, i64, fp, i64, i64, i64, i64}, false);
  auto *fn = llvm::Function::Create(fnTy, llvm::Function::ExternalLinkage, spec.name, *m);
  const char *argNames[] = {"K", "A", "B", "rsB", "C", "ldc", "m", "n", "acc"};
  for (unsigned i = 0; i < fn->arg_size(); ++i)
    fn->getArg(i)->setName(argNames[i]);
  for (unsigned i : {1u, 2u, 4u})
    fn->addParamAttr(i, llvm::Attribute::NoAlias);
  llvm::Value *K = fn->getArg(0), *A = fn->getArg(1), *B = fn->getArg(2), *rsB = fn->getArg(3), *C = fn->getArg(4),
              *ldc = fn->getArg(5), *rows = fn->getArg(6), *cols = fn->getArg(7), *acc = fn->getArg(8);

  auto *entry = llvm::BasicBlock::Create(ctx, "entry", fn);
  auto *fullLoop = llvm::BasicBlock::Create(ctx, "k.loop", fn);
  auto *maskedLoop = llvm::BasicBlock::Create(ctx, "k.loop.masked", fn);
  auto *pick = llvm::BasicBlock::Create(ctx, "k.pick", fn);
  auto *done = llvm::BasicBlock::Create(ctx, "k.done", fn);
  b.SetInsertPoint(entry);
  // Lane j of vector v is a column < n.
  std::vector<llvm::Value *> masks;
  for (int v = 0; v < NV; ++v) {
    std::vector<llvm::Constant *> lanes;
    for (int j = 0; j < W; ++j)
      lanes.push_back(b.getInt64(uint64_t(v * W + j)));
    masks.push_back(b.CreateICmpSLT(llvm::ConstantVector::get(lanes), b.CreateVectorSplat(unsigned(W), cols), "mask"));
  }
  llvm::Value *zero = llvm::Constant::getNullValue(vecTy);
  b.CreateCondBr(b.CreateICmpSGT(K, b.getInt64(0)), pick, done);
  // A full panel of columns (all but the last, and all of a packed B, which
  // is zero past n) loads B plainly; a partial one under the masks.
  b.SetInsertPoint(pick);
  b.CreateCondBr(b.CreateICmpEQ(cols, b.getInt64(uint64_t(spec.cols))), fullLoop, maskedLoop);

  llvm::Function *fma = llvm::Intrinsic::getDeclaration(m, llvm::Intrinsic::fma, {vecTy});
  // Emits the k loop in `loop`; returns the accumulators after its last step.
  auto emitLoop = [&](llvm::BasicBlock *loop, bool masked) {
    b.SetInsertPoint(loop);
    llvm::PHINode *k = b.CreatePHI(i64, 2, "k");
    k->addIncoming(b.getInt64(0), pick);
    std::vector<llvm::PHINode *> accPhi;
    for (int i = 0; i < MR * NV; ++i) {
      accPhi.push_back(b.CreatePHI(vecTy, 2, "c"));
      accPhi.back()->addIncoming(zero, pick);
    }
    llvm::Value *bRow = b.CreateInBoundsGEP(f32, B, b.CreateMul(k, rsB));
    std::vector<llvm::Value *> bv;
    for (int v = 0; v < NV; ++v) {
      llvm::Value *p =
          b.CreateBitCast(b.CreateInBoundsGEP(f32, bRow, b.getInt64(uint64_t(v * W))), vecTy->getPointerTo());
      bv.push_back(
          masked ? static_cast<llvm::Value *>(b.CreateMaskedLoad(vecTy, p, llvm::Align(4), masks[size_t(v)], zero, "b"))
                 : b.CreateAlignedLoad(vecTy, p, llvm::Align(4), "b"));
    }
    // A is packed k-major: its values for this k are contiguous.
    llvm::Value *aStep = b.CreateInBoundsGEP(f32, A, b.CreateMul(k, b.getInt64(uint64_t(AStride))));
    std::vector<llvm::Value *> next(accPhi.size());
    for (int r = 0; r < MR; ++r) {
      llvm::Value *a = b.CreateLoad(f32, b.CreateInBoundsGEP(f32, aStep, b.getInt64(uint64_t(r))), "a");
      llvm::Value *splat = b.CreateVectorSplat(unsigned(W), a);
      for (int v = 0; v < NV; ++v)
        next[size_t(r * NV + v)] = b.CreateCall(fma, {splat, bv[size_t(v)], accPhi[size_t(r * NV + v)]});
    }
    llvm::Value *k1 = b.CreateNUWAdd(k, b.getInt64(1));
    k->addIncoming(k1, loop);
    for (size_t i = 0; i < accPhi.size(); ++i)
      accPhi[i]->addIncoming(next[i], loop);
    auto *latch = b.CreateCondBr(b.CreateICmpSLT(k1, K), loop, done);
    // Unrolled 4 times (with a remainder loop) to spread the loop's own
    // instructions over more multiply-adds.
    llvm::Metadata *unroll[] = {llvm::MDString::get(ctx, "llvm.loop.unroll.count"),
                                llvm::ConstantAsMetadata::get(b.getInt32(4))};
    auto *self = llvm::MDNode::getDistinct(ctx, {nullptr, llvm::MDNode::get(ctx, unroll)});
    self->replaceOperandWith(0, self);
    latch->setMetadata(llvm::LLVMContext::MD_loop, self);
    return next;
  };
  std::vector<llvm::Value *> fromFull = emitLoop(fullLoop, false), fromMasked = emitLoop(maskedLoop, true);

  // Store the tile: rows below m, columns under the masks, adding C's old
  // values when accumulating.
  b.SetInsertPoint(done);
  std::vector<llvm::PHINode *> result;
  for (size_t i = 0; i < fromFull.size(); ++i) {
    result.push_back(b.CreatePHI(vecTy, 3, "c.final"));
    result.back()->addIncoming(zero, entry);
    result.back()->addIncoming(fromFull[i], fullLoop);
    result.back()->addIncoming(fromMasked[i], maskedLoop);
  }
  auto *plain = llvm::BasicBlock::Create(ctx, "store", fn);
  auto *adding = llvm::BasicBlock::Create(ctx, "store.add", fn);
  auto *exit = llvm::BasicBlock::Create(ctx, "exit", fn);
  b.CreateCondBr(b.CreateICmpNE(acc, b.getInt64(0)), adding, plain);
  for (bool add : {false, true}) {
    b.SetInsertPoint(add ? adding : plain);
    for (int r = 0; r < MR; ++r) {
      auto *store = llvm::BasicBlock::Create(ctx, "row" + std::to_string(r), fn);
      auto *after = llvm::BasicBlock::Create(ctx, "row" + std::to_string(r) + ".done", fn);
      b.CreateCondBr(b.CreateICmpSLT(b.getInt64(uint64_t(r)), rows), store, after);
      b.SetInsertPoint(store);
      llvm::Value *cRow = b.CreateInBoundsGEP(f32, C, b.CreateMul(b.getInt64(uint64_t(r)), ldc));
      for (int v = 0; v < NV; ++v) {
        llvm::Value *p =
            b.CreateBitCast(b.CreateInBoundsGEP(f32, cRow, b.getInt64(uint64_t(v * W))), vecTy->getPointerTo());
        llvm::Value *val = result[size_t(r * NV + v)];
        if (add)
          val = b.CreateFAdd(val, b.CreateMaskedLoad(vecTy, p, llvm::Align(4), masks[size_t(v)], zero, "c.old"));
        b.CreateMaskedStore(val, p, llvm::Align(4), masks[size_t(v)]);
      }
      b.CreateBr(after);
      b.SetInsertPoint(after);
    }
    b.CreateBr(exit);
  }
  b.SetInsertPoint(exit);
  b.CreateRetVoid();
}

} // namespace nnc::codegen
