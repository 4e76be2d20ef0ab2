// Matrix products through the GEMM runtime.
#include "codegen/Emitter.h"

namespace nnc::codegen {

std::vector<int64_t> Emitter::matmulDesc(const ir::Op &op, bool summed) {
  bool ta = op.getBool("ta"), tb = op.getBool("tb");
  std::vector<int64_t> as = shapeOf(op.operand(0)), bs = shapeOf(op.operand(1));
  size_t rank = as.size();
  int64_t batch = 1;
  for (size_t i = 0; i + 2 < rank; ++i)
    batch *= as[i];
  int64_t a0 = as[rank - 2], a1 = as[rank - 1], b0 = bs[rank - 2], b1 = bs[rank - 1];
  int64_t M = ta ? a1 : a0, K = ta ? a0 : a1, N = tb ? b0 : b1;
  auto shared = [&](const ir::Value *v) {
    return v->def && v->def->kind == ir::OpKind::Broadcast && plan_.storage.at(v).kind == Storage::Alias;
  };
  bool packed = plan_.packedB.count(&op);
  // batch, M, N, K, rsA, csA, bsA, rsB, csB, bsB, ldc, bsC, accumulate, packedB
  return {batch,
          M,
          N,
          K,
          ta ? 1 : K,
          ta ? M : 1,
          shared(op.operand(0)) ? 0 : a0 * a1,
          tb ? 1 : N,
          tb ? K : 1,
          shared(op.operand(1)) || packed ? 0 : b0 * b1,
          N,
          summed ? 0 : M * N,
          0,
          packed ? 1 : 0};
}

void Emitter::lowerMatMul(const ir::Op &op, const ir::Value *into) {
  const ir::Value *c = into ? into : op.result;
  LV *bm = plan_.packedB.count(&op) ? arenaPtr(plan_.packedB.at(&op), ctxPtr_) : basePtr(op.operand(1), ctxPtr_);
  std::vector<int64_t> desc = matmulDesc(op, into != nullptr);
  auto update = plan_.productUpdates.find(&op);
  if (update == plan_.productUpdates.end())
    return callGemm(desc, basePtr(op.operand(0), ctxPtr_), bm, basePtr(c, ctxPtr_));
  // An SGD step: W += (-rate) * A B, in W's own buffer.
  desc[12] = 1; // accumulate
  const ir::Value *rate = update->second.rate;
  const Storage &rs = plan_.resolve(rate);
  LV *r = rs.kind == Storage::Immediate ? cf(rs.immediate) : b_.CreateLoad(f32_, basePtr(rate, ctxPtr_));
  callGemm(gemmDesc(desc), basePtr(op.operand(0), ctxPtr_), bm, basePtr(update->second.weight, ctxPtr_),
           b_.CreateFNeg(r));
}

LV *Emitter::gemmDesc(const std::vector<int64_t> &desc) {
  NNC_ASSERT(desc.size() == 14) << "a GEMM descriptor has 14 fields";
  auto *arrTy = llvm::ArrayType::get(i64_, desc.size());
  std::vector<llvm::Constant *> vals;
  for (int64_t v : desc)
    vals.push_back(b_.getInt64(uint64_t(v)));
  auto *g = new llvm::GlobalVariable(m_, arrTy, true, llvm::GlobalValue::PrivateLinkage,
                                     llvm::ConstantArray::get(arrTy, vals), "gemm.desc");
  return b_.CreateConstInBoundsGEP2_64(arrTy, g, 0, 0);
}

void Emitter::callGemm(LV *desc, LV *a, LV *bm, LV *c, LV *alpha) {
  auto *fp = f32_->getPointerTo();
  std::vector<llvm::Type *> params{i64_->getPointerTo(), fp, fp, fp};
  std::vector<LV *> args{desc, a, bm, c};
  if (alpha) {
    params.push_back(f32_);
    args.push_back(alpha);
  }
  auto *fnTy = llvm::FunctionType::get(b_.getVoidTy(), params, false);
  llvm::FunctionCallee gemm = m_.getOrInsertFunction(alpha ? "nnc_rt_sgemm_scaled" : "nnc_rt_sgemm", fnTy);
  b_.CreateCall(gemm, args);
}

} // namespace nnc::codegen
