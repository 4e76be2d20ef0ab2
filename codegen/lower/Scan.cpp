// Scan: loop bodies run once per step (recurrences).
#include "codegen/Emitter.h"

namespace nnc::codegen {

void Emitter::packLoopInvariants(const ir::Function &body) {
  for (const auto &op : body.ops) {
    auto packed = plan_.packedB.find(op.get());
    if (packed == plan_.packedB.end())
      continue;
    auto *fp = f32_->getPointerTo();
    auto *fnTy = llvm::FunctionType::get(b_.getVoidTy(), {i64_->getPointerTo(), fp, fp}, false);
    llvm::FunctionCallee pack = m_.getOrInsertFunction("nnc_rt_sgemm_pack_b", fnTy);
    b_.CreateCall(
        pack, {gemmDesc(matmulDesc(*op, false)), basePtr(op->operand(1), ctxPtr_), arenaPtr(packed->second, ctxPtr_)});
  }
}

void Emitter::lowerScan(const ir::Op &op) {
  const ir::Function &body = *op.body;
  bool sum = op.getString("mode") == "sum", reverse = op.getBool("reverse");
  size_t firstSeq = op.getString("mode") == "carry" ? 1 : 0;
  int64_t steps = shapeOf(op.operand(firstSeq))[0];
  const ir::Value *res = op.result;
  int64_t total = ir::numElements(shapeOf(res));
  if (sum)
    kernel("scan.zero", 1, total, [&](LV *ctx, LV *, LV *) { zeroFill(basePtr(res, ctx), b_.getInt64(0), total); });
  auto copy = plan_.scanCopies.find(&op);
  packLoopInvariants(body);
  loop(
      steps,
      [&](LV *i) {
        LV *t = reverse ? b_.CreateSub(b_.getInt64(steps - 1), i) : i;
        b_.CreateStore(t, b_.CreateStructGEP(ctxTy_, ctxPtr_, 2));
        for (const Step &bstep : plan_.steps.at(&body)) {
          profileMark(bstep.back());
          lowerStep(bstep);
        }
        profileMark(&op);
        if (copy == plan_.scanCopies.end())
          return;
        // The step's result lives elsewhere: add it up (mode sum) or copy it
        // into its step of the scan's result.
        const ir::Value *src = copy->second;
        int64_t n = ir::numElements(shapeOf(src));
        const Storage &ss = plan_.resolve(src);
        kernel(sum ? "scan.add" : "scan.copy", 1, n, [&](LV *ctx, LV *, LV *) {
          LV *dst = basePtr(res, ctx);
          if (!sum) {
            LV *tt = b_.CreateLoad(i64_, b_.CreateStructGEP(ctxTy_, ctx, 2), "t");
            dst = b_.CreateInBoundsGEP(f32_, dst, b_.CreateMul(tt, b_.getInt64(n)));
          }
          LV *from = ss.kind == Storage::Immediate ? nullptr : basePtr(src, ctx);
          loop(
              n,
              [&](LV *j) {
                LV *x = from ? ld(from, j) : cf(ss.immediate);
                LV *d = at(dst, j);
                b_.CreateStore(sum ? b_.CreateFAdd(b_.CreateLoad(f32_, d), x) : x, d);
              },
              "j");
        });
      },
      "step");
}

} // namespace nnc::codegen
