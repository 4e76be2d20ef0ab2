// Lowering of a specialized IR function to LLVM IR.
//
// Every op becomes a kernel: an internal function `void k(ctx, begin, end)`
// that computes the slice [begin, end) of the op's outermost loop. The entry
// function calls each kernel in program order, directly when the work is small
// (LLVM then inlines it) or through the runtime's thread pool
// (nnc_rt_parallel_for) when it is large. Buffers come from the memory plan:
// argument and result pointers from the `buffers` array, intermediates at
// constant offsets into the arena. All shapes are constants, so the loop
// vectorizer sees exact trip counts and strides.
#include "codegen/LowerToLLVM.h"

#include "codegen/MemoryPlan.h"
#include "ir/ShapeRules.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <unordered_map>

namespace nnc::codegen {
namespace {

using llvm::IRBuilder;
using LV = llvm::Value;

/// Work (in rough flops) below which a kernel runs on the calling thread.
constexpr int64_t kParallelThreshold = 1 << 16;

std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = int(shape.size()) - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

class Emitter {
public:
  Emitter(const ir::Function &f, const ir::Bindings &b, const MemoryPlan &plan, llvm::LLVMContext &ctx, llvm::Module &m,
          double *profile)
      : f_(f), bind_(b), plan_(plan), ctx_(ctx), m_(m), b_(ctx), profile_(profile) {
    if (profile_)
      layout_ = profileLayout(f);
    f32_ = b_.getFloatTy();
    i64_ = b_.getInt64Ty();
    i8p_ = b_.getInt8PtrTy();
    // buffers, arena, and the step of the scan being run
    ctxTy_ = llvm::StructType::create(ctx_, {i8p_->getPointerTo(), i8p_, i64_}, "nnc.ctx");
    kernelTy_ = llvm::FunctionType::get(b_.getVoidTy(), {i8p_, i64_, i64_}, false);
    llvm::FastMathFlags fmf;
    fmf.setAllowReassoc();
    fmf.setAllowContract();
    b_.setFastMathFlags(fmf);
  }

  void emit(const std::string &symbol) {
    auto *entryTy = llvm::FunctionType::get(b_.getVoidTy(), {i8p_->getPointerTo(), i8p_}, false);
    entry_ = llvm::Function::Create(entryTy, llvm::Function::ExternalLinkage, symbol, m_);
    entry_->getArg(0)->setName("buffers");
    entry_->getArg(1)->setName("arena");
    auto *bb = llvm::BasicBlock::Create(ctx_, "entry", entry_);
    b_.SetInsertPoint(bb);
    ctxPtr_ = b_.CreateAlloca(ctxTy_, nullptr, "ctx");
    b_.CreateStore(entry_->getArg(0), b_.CreateStructGEP(ctxTy_, ctxPtr_, 0));
    b_.CreateStore(entry_->getArg(1), b_.CreateStructGEP(ctxTy_, ctxPtr_, 1));
    b_.CreateStore(b_.getInt64(0), b_.CreateStructGEP(ctxTy_, ctxPtr_, 2));
    ctxI8_ = b_.CreateBitCast(ctxPtr_, i8p_);

    auto *pfTy = llvm::FunctionType::get(b_.getVoidTy(), {kernelTy_->getPointerTo(), i8p_, i64_, i64_}, false);
    parallelFor_ = llvm::Function::Create(pfTy, llvm::Function::ExternalLinkage, "nnc_rt_parallel_for", m_);

    for (const Step &step : plan_.steps.at(&f_)) {
      profileMark(step.back());
      lowerStep(step);
    }
    profileMark(int64_t(f_.ops.size()));
    for (int j : plan_.copiedResults)
      copyResult(j);
    profileMark(-1);
    b_.CreateRetVoid();
  }

private:
  /// With profiling on, calls nnc_rt_profile_mark(table, index) so the runtime
  /// adds the time since the previous mark to the previous index's slot.
  void profileMark(int64_t index) {
    if (!profile_)
      return;
    auto *fnTy = llvm::FunctionType::get(b_.getVoidTy(), {b_.getDoubleTy()->getPointerTo(), i64_}, false);
    llvm::FunctionCallee mark = m_.getOrInsertFunction("nnc_rt_profile_mark", fnTy);
    LV *table = b_.CreateIntToPtr(b_.getInt64(int64_t(reinterpret_cast<uintptr_t>(profile_))),
                                  b_.getDoubleTy()->getPointerTo());
    b_.CreateCall(mark, {table, b_.getInt64(index)});
  }
  void profileMark(const ir::Op *op) {
    if (profile_)
      profileMark(int64_t(layout_.slot.at(op)));
  }

  //--- buffers ------------------------------------------------------------

  std::vector<int64_t> shapeOf(const ir::Value *v) const { return ir::concreteShape(v->type.shape, bind_); }
  llvm::Type *elemTy(const ir::Value *v) const { return v->type.dtype == ir::DType::F32 ? f32_ : i64_; }

  /// Base pointer (typed) of `v`'s storage, emitted in the current function
  /// from its context argument `ctx`.
  LV *basePtr(const ir::Value *v, LV *ctx) {
    NNC_ASSERT(plan_.storage.at(v).kind != Storage::View) << "a view is read only through broadcastAccess";
    const Storage &s = plan_.resolve(v);
    if (s.kind == Storage::ScanStep)
      return scanStepPtr(s, ctx);
    llvm::Type *ety = elemTy(v);
    LV *raw = nullptr;
    switch (s.kind) {
    case Storage::Arg:
    case Storage::Result: {
      LV *bufs = b_.CreateLoad(i8p_->getPointerTo(), b_.CreateStructGEP(ctxTy_, ctx, 0), "bufs");
      int64_t idx = s.kind == Storage::Arg ? s.index : int64_t(f_.args.size()) + s.index;
      raw = b_.CreateLoad(i8p_, b_.CreateConstInBoundsGEP1_64(i8p_, bufs, uint64_t(idx)));
      break;
    }
    case Storage::Arena: {
      LV *arena = b_.CreateLoad(i8p_, b_.CreateStructGEP(ctxTy_, ctx, 1), "arena");
      raw = b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), arena, uint64_t(s.offset));
      break;
    }
    default:
      NNC_UNREACHABLE("value without memory");
    }
    LV *typed = b_.CreateBitCast(raw, ety->getPointerTo());
    bufferOf_[typed] = storageKey(s);
    return typed;
  }

  /// A scan body's view of an outer value at the current step (ctx.t).
  LV *scanStepPtr(const Storage &s, LV *ctx) {
    LV *outer = basePtr(s.aliasOf, ctx);
    if (s.whole)
      return outer;
    llvm::Type *ety = elemTy(s.aliasOf);
    LV *t = b_.CreateLoad(i64_, b_.CreateStructGEP(ctxTy_, ctx, 2), "t");
    if (!s.carryInit)
      return b_.CreateInBoundsGEP(ety, outer, b_.CreateMul(t, b_.getInt64(s.stepElems)));
    // The carry: the previous step's result, or the initial value first.
    bool reverse = s.scan->getBool("reverse");
    int64_t steps = shapeOf(s.aliasOf)[0];
    LV *first = b_.getInt64(reverse ? steps - 1 : 0);
    LV *prev = b_.CreateAdd(t, b_.getInt64(reverse ? 1 : -1));
    LV *prevPtr = b_.CreateGEP(ety, outer, b_.CreateMul(prev, b_.getInt64(s.stepElems)));
    LV *carry = select(b_.CreateICmpEQ(t, first), basePtr(s.carryInit, ctx), prevPtr);
    // Its own alias scope: the initial value and the previous step are read
    // only, and nothing the body writes (its intermediates, step t of the
    // result) overlaps them.
    auto key = carryKeys_.emplace(s.scan, -2000000 - int64_t(carryKeys_.size())).first->second;
    bufferOf_[carry] = key;
    return carry;
  }

  static int64_t storageKey(const Storage &s) {
    return s.kind == Storage::Arg ? -1 - s.index : s.kind == Storage::Result ? -1000000 - s.index : s.offset;
  }

  /// Marks every load and store in `fn` with alias scopes, one per buffer: the
  /// memory plan guarantees that distinct buffers never overlap, and saying so
  /// spares the vectorizer its runtime overlap checks.
  void addAliasScopes(llvm::Function *fn) {
    std::map<int64_t, llvm::MDNode *> scopes;
    llvm::MDBuilder mdb(ctx_);
    llvm::MDNode *domain = mdb.createAnonymousAliasScopeDomain(fn->getName());
    auto bufferFor = [&](LV *ptr) -> std::optional<int64_t> {
      for (;;) {
        if (auto it = bufferOf_.find(ptr); it != bufferOf_.end())
          return it->second;
        if (auto *gep = llvm::dyn_cast<llvm::GetElementPtrInst>(ptr))
          ptr = gep->getPointerOperand();
        else if (auto *bc = llvm::dyn_cast<llvm::BitCastInst>(ptr))
          ptr = bc->getOperand(0);
        else
          return std::nullopt;
      }
    };
    std::vector<std::pair<llvm::Instruction *, int64_t>> accesses;
    for (llvm::BasicBlock &bb : *fn)
      for (llvm::Instruction &inst : bb) {
        LV *ptr = nullptr;
        if (auto *ld = llvm::dyn_cast<llvm::LoadInst>(&inst))
          ptr = ld->getPointerOperand();
        else if (auto *st = llvm::dyn_cast<llvm::StoreInst>(&inst))
          ptr = st->getPointerOperand();
        if (!ptr)
          continue;
        if (auto key = bufferFor(ptr)) {
          accesses.push_back({&inst, *key});
          if (!scopes.count(*key))
            scopes[*key] = mdb.createAnonymousAliasScope(domain);
        }
      }
    if (scopes.size() < 2)
      return;
    for (auto &[inst, key] : accesses) {
      std::vector<llvm::Metadata *> others;
      for (auto &[k, scope] : scopes)
        if (k != key)
          others.push_back(scope);
      inst->setMetadata(llvm::LLVMContext::MD_alias_scope, llvm::MDNode::get(ctx_, {scopes[key]}));
      inst->setMetadata(llvm::LLVMContext::MD_noalias, llvm::MDNode::get(ctx_, others));
    }
  }

  /// A pointer to result buffer j (for copies of results).
  LV *resultPtr(int j, llvm::Type *ety, LV *ctx) {
    LV *bufs = b_.CreateLoad(i8p_->getPointerTo(), b_.CreateStructGEP(ctxTy_, ctx, 0), "bufs");
    LV *raw = b_.CreateLoad(i8p_, b_.CreateConstInBoundsGEP1_64(i8p_, bufs, uint64_t(f_.args.size() + size_t(j))));
    LV *typed = b_.CreateBitCast(raw, ety->getPointerTo());
    bufferOf_[typed] = storageKey(Storage{Storage::Result, j});
    return typed;
  }

  //--- control flow -------------------------------------------------------

  /// for (i = lo; i < hi; ++i) body(i); with `vectorize`, the loop asks the
  /// vectorizer to vectorize it even when its trip count is short.
  void loop(LV *lo, LV *hi, const std::function<void(LV *)> &body, const char *name = "i", bool vectorize = false) {
    llvm::Function *fn = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock *pre = b_.GetInsertBlock();
    auto *header = llvm::BasicBlock::Create(ctx_, std::string(name) + ".header", fn);
    auto *bodyBB = llvm::BasicBlock::Create(ctx_, std::string(name) + ".body", fn);
    auto *exit = llvm::BasicBlock::Create(ctx_, std::string(name) + ".exit", fn);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode *iv = b_.CreatePHI(i64_, 2, name);
    iv->addIncoming(lo, pre);
    b_.CreateCondBr(b_.CreateICmpSLT(iv, hi), bodyBB, exit);
    b_.SetInsertPoint(bodyBB);
    body(iv);
    LV *next = b_.CreateNUWAdd(iv, b_.getInt64(1));
    iv->addIncoming(next, b_.GetInsertBlock());
    llvm::Instruction *latch = b_.CreateBr(header);
    if (vectorize) {
      llvm::Metadata *enable[] = {llvm::MDString::get(ctx_, "llvm.loop.vectorize.enable"),
                                  llvm::ConstantAsMetadata::get(b_.getTrue())};
      auto *self = llvm::MDNode::getDistinct(ctx_, {nullptr, llvm::MDNode::get(ctx_, enable)});
      self->replaceOperandWith(0, self);
      latch->setMetadata(llvm::LLVMContext::MD_loop, self);
    }
    b_.SetInsertPoint(exit);
  }
  void loop(int64_t n, const std::function<void(LV *)> &body, const char *name = "i", bool vectorize = false) {
    loop(b_.getInt64(0), b_.getInt64(n), body, name, vectorize);
  }

  /// Creates a kernel function `void k(ctx, begin, end)` and emits its body.
  llvm::Function *makeKernel(const std::string &what, const std::function<void(LV *ctx, LV *begin, LV *end)> &body) {
    auto *k = llvm::Function::Create(kernelTy_, llvm::Function::InternalLinkage,
                                     "k" + std::to_string(kernelCount_++) + "." + what, m_);
    auto saved = b_.saveIP();
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", k));
    LV *ctx = b_.CreateBitCast(k->getArg(0), ctxTy_->getPointerTo());
    bufferOf_.clear();
    body(ctx, k->getArg(1), k->getArg(2));
    b_.CreateRetVoid();
    addAliasScopes(k);
    b_.restoreIP(saved);
    return k;
  }

  /// Creates a kernel function and emits its body; then calls it from the
  /// entry function over [0, n), in parallel when `work` is large.
  void kernel(const std::string &what, int64_t n, int64_t work,
              const std::function<void(LV *ctx, LV *begin, LV *end)> &body) {
    llvm::Function *k = makeKernel(what, body);
    if (n <= 1 || work < kParallelThreshold) {
      b_.CreateCall(kernelTy_, k, {ctxI8_, b_.getInt64(0), b_.getInt64(n)});
    } else {
      int64_t perIter = std::max<int64_t>(1, work / n);
      int64_t grain = std::max<int64_t>(1, kParallelThreshold / 4 / perIter);
      b_.CreateCall(parallelFor_, {k, ctxI8_, b_.getInt64(n), b_.getInt64(grain)});
    }
  }

  //--- math ---------------------------------------------------------------

  LV *cf(double v) { return llvm::ConstantFP::get(f32_, v); }
  LV *call(llvm::Intrinsic::ID id, LV *x) { return b_.CreateUnaryIntrinsic(id, x); }
  LV *select(LV *c, LV *a, LV *b) { return b_.CreateSelect(c, a, b); }

  /// exp(x): Cody-Waite range reduction and a degree-6 polynomial (Cephes
  /// expf), max error about 2 ulp; branch-free so loops vectorize.
  LV *expf(LV *x) {
    LV *xc = select(b_.CreateFCmpOGT(x, cf(88.3762626647949)), cf(88.3762626647949), x);
    xc = select(b_.CreateFCmpOLT(xc, cf(-88.0)), cf(-88.0), xc);
    LV *n = call(llvm::Intrinsic::floor, b_.CreateFAdd(b_.CreateFMul(xc, cf(1.44269504088896341)), cf(0.5)));
    LV *r = b_.CreateFSub(xc, b_.CreateFMul(n, cf(0.693359375)));
    r = b_.CreateFSub(r, b_.CreateFMul(n, cf(-2.12194440e-4)));
    LV *p = cf(1.9875691500E-4);
    for (double c : {1.3981999507E-3, 8.3334519073E-3, 4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1})
      p = b_.CreateFAdd(b_.CreateFMul(p, r), cf(c));
    LV *y = b_.CreateFAdd(b_.CreateFAdd(b_.CreateFMul(p, b_.CreateFMul(r, r)), r), cf(1.0));
    LV *ni = b_.CreateFPToSI(n, b_.getInt32Ty());
    LV *pow2 = b_.CreateBitCast(b_.CreateShl(b_.CreateAdd(ni, b_.getInt32(127)), 23), f32_);
    y = b_.CreateFMul(y, pow2);
    y = select(b_.CreateFCmpOGT(x, cf(88.72283905206835)), cf(std::numeric_limits<float>::infinity()), y);
    y = select(b_.CreateFCmpOLT(x, cf(-87.33654475055310898657)), cf(0.0), y);
    return select(b_.CreateFCmpUNO(x, x), x, y);
  }

  /// log(x): exponent split and a degree-9 polynomial (Cephes logf), max error
  /// about 2 ulp; log(0) = -inf, log(x<0) = NaN, log(inf) = inf.
  LV *logf(LV *x) {
    LV *bits = b_.CreateBitCast(x, b_.getInt32Ty());
    LV *e = b_.CreateSub(b_.CreateLShr(bits, 23), b_.getInt32(126));
    LV *mbits = b_.CreateOr(b_.CreateAnd(bits, b_.getInt32(0x807fffff)), b_.getInt32(0x3f000000));
    LV *m = b_.CreateBitCast(mbits, f32_); // in [0.5, 1)
    LV *ef = b_.CreateSIToFP(e, f32_);
    LV *small = b_.CreateFCmpOLT(m, cf(0.707106781186547524));
    ef = select(small, b_.CreateFSub(ef, cf(1.0)), ef);
    LV *t = select(small, b_.CreateFSub(b_.CreateFAdd(m, m), cf(1.0)), b_.CreateFSub(m, cf(1.0)));
    LV *z = b_.CreateFMul(t, t);
    LV *p = cf(7.0376836292E-2);
    for (double c : {-1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                     2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1})
      p = b_.CreateFAdd(b_.CreateFMul(p, t), cf(c));
    LV *y = b_.CreateFMul(b_.CreateFMul(p, t), z);
    y = b_.CreateFAdd(y, b_.CreateFMul(ef, cf(-2.12194440e-4)));
    y = b_.CreateFSub(y, b_.CreateFMul(z, cf(0.5)));
    LV *r = b_.CreateFAdd(b_.CreateFAdd(t, y), b_.CreateFMul(ef, cf(0.693359375)));
    r = select(b_.CreateFCmpOEQ(x, cf(0.0)), cf(-std::numeric_limits<float>::infinity()), r);
    r = select(b_.CreateFCmpOLT(x, cf(0.0)), cf(std::numeric_limits<float>::quiet_NaN()), r);
    r = select(b_.CreateFCmpOEQ(x, cf(std::numeric_limits<float>::infinity())), x, r);
    return select(b_.CreateFCmpUNO(x, x), x, r);
  }

  /// tanh(x): an odd polynomial for |x| < 0.625 (Cephes tanhf), else
  /// 1 - 2/(exp(2|x|) + 1) with the sign of x.
  LV *tanhf(LV *x) {
    LV *ax = call(llvm::Intrinsic::fabs, x);
    LV *z = b_.CreateFMul(x, x);
    LV *p = cf(-5.70498872745E-3);
    for (double c : {2.06390887954E-2, -5.37397155531E-2, 1.33314422036E-1, -3.33332819422E-1})
      p = b_.CreateFAdd(b_.CreateFMul(p, z), cf(c));
    LV *smallY = b_.CreateFAdd(b_.CreateFMul(b_.CreateFMul(p, z), x), x);
    LV *e = expf(b_.CreateFMul(ax, cf(2.0)));
    LV *big = b_.CreateFSub(cf(1.0), b_.CreateFDiv(cf(2.0), b_.CreateFAdd(e, cf(1.0))));
    LV *signedBig = b_.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, big, x);
    return select(b_.CreateFCmpOLT(ax, cf(0.625)), smallY, signedBig);
  }

  /// erf(x) = 1 - t(a1 + t(a2 + ...)) exp(-x^2), t = 1/(1 + p|x|), with the
  /// sign of x (Abramowitz & Stegun 7.1.26); relative error below 1e-6 in
  /// float (tested in test/unit/CodegenTest.cpp).
  LV *erff(LV *x) {
    LV *ax = call(llvm::Intrinsic::fabs, x);
    LV *t = b_.CreateFDiv(cf(1.0), b_.CreateFAdd(cf(1.0), b_.CreateFMul(ax, cf(0.3275911))));
    LV *p = cf(1.061405429);
    for (double c : {-1.453152027, 1.421413741, -0.284496736, 0.254829592})
      p = b_.CreateFAdd(b_.CreateFMul(p, t), cf(c));
    LV *y = b_.CreateFSub(cf(1.0), b_.CreateFMul(b_.CreateFMul(p, t), expf(b_.CreateFNeg(b_.CreateFMul(ax, ax)))));
    LV *big = b_.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, y, x);
    // Near 0 the formula above cancels; its Taylor series keeps the relative
    // error small: 2/sqrt(pi) (x - x^3/3 + x^5/10 - x^7/42 + x^9/216).
    LV *z = b_.CreateFMul(x, x);
    LV *s = cf(1.0 / 216);
    for (double c : {-1.0 / 42, 1.0 / 10, -1.0 / 3, 1.0})
      s = b_.CreateFAdd(b_.CreateFMul(s, z), cf(c));
    LV *small = b_.CreateFMul(b_.CreateFMul(s, x), cf(1.1283791670955126));
    return select(b_.CreateFCmpOLT(ax, cf(0.5)), small, big);
  }

  LV *sigmoidf(LV *x) { return b_.CreateFDiv(cf(1.0), b_.CreateFAdd(cf(1.0), expf(b_.CreateFNeg(x)))); }

  LV *scalarOp(ir::OpKind k, const std::vector<LV *> &a) {
    using K = ir::OpKind;
    switch (k) {
    case K::Add:
      return b_.CreateFAdd(a[0], a[1]);
    case K::Sub:
      return b_.CreateFSub(a[0], a[1]);
    case K::Mul:
      return b_.CreateFMul(a[0], a[1]);
    case K::Div:
      return b_.CreateFDiv(a[0], a[1]);
    case K::Maximum:
      return select(b_.CreateFCmpUGE(a[0], a[1]), a[0], a[1]);
    case K::Equal:
      return b_.CreateUIToFP(a[0]->getType()->isFloatTy() ? b_.CreateFCmpOEQ(a[0], a[1]) : b_.CreateICmpEQ(a[0], a[1]),
                             f32_);
    case K::Neg:
      return b_.CreateFNeg(a[0]);
    case K::Exp:
      return expf(a[0]);
    case K::Log:
      return logf(a[0]);
    case K::Sqrt:
      return call(llvm::Intrinsic::sqrt, a[0]);
    case K::Abs:
      return call(llvm::Intrinsic::fabs, a[0]);
    case K::Sign:
      return b_.CreateFSub(b_.CreateUIToFP(b_.CreateFCmpOGT(a[0], cf(0)), f32_),
                           b_.CreateUIToFP(b_.CreateFCmpOLT(a[0], cf(0)), f32_));
    case K::Step:
      return b_.CreateUIToFP(b_.CreateFCmpOGT(a[0], cf(0)), f32_);
    case K::Relu:
      return select(b_.CreateFCmpOGT(a[0], cf(0)), a[0], cf(0));
    case K::Sigmoid:
      return sigmoidf(a[0]);
    case K::Tanh:
      return tanhf(a[0]);
    case K::Erf:
      return erff(a[0]);
    case K::Cast:
      return a[0]->getType()->isFloatTy() ? a[0] : b_.CreateSIToFP(a[0], f32_);
    case K::Broadcast:
    case K::Transpose:
    case K::ModeSelect:
      return a[0]; // compiled code is in training mode unless eval-mode ran
    default:
      NNC_UNREACHABLE("not an elementwise op: " << ir::opName(k));
    }
  }

  //--- kernels ------------------------------------------------------------

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
  Access denseAccess(const ir::Value *v) {
    Access a;
    a.v = v;
    a.strides = stridesOf(shapeOf(v));
    return a;
  }

  /// How to read `v` over its own shape: densely, or, for a slice planned as
  /// a view (Storage::View), in its source from the slice's offset.
  Access readAccess(const ir::Value *v) {
    if (plan_.storage.at(v).kind != Storage::View)
      return denseAccess(v);
    const ir::Op &slice = *v->def;
    Access a = denseAccess(plan_.storage.at(v).aliasOf);
    a.offset = slice.getInt("start") * a.strides[size_t(slice.getInt("axis"))];
    return a;
  }

  /// Strides of `v` broadcast (numpy rules) to `outShape`.
  Access broadcastAccess(const ir::Value *v, const std::vector<int64_t> &outShape) {
    Access a;
    a.v = v;
    if (plan_.storage.at(v).kind == Storage::View) {
      // A slice read in place: v's dims walk its source's, from the offset.
      Access view = readAccess(v);
      std::vector<int64_t> shape = shapeOf(v);
      size_t lead = outShape.size() - shape.size();
      a = view;
      a.strides.assign(outShape.size(), 0);
      for (size_t i = 0; i < shape.size(); ++i)
        a.strides[lead + i] = shape[i] == 1 && outShape[lead + i] != 1 ? 0 : view.strides[i];
      return a;
    }
    const Storage &s = plan_.resolve(v);
    if (s.kind == Storage::Immediate) {
      a.immediate = true;
      a.imm = s.immediate;
      a.strides.assign(outShape.size(), 0);
      return a;
    }
    std::vector<int64_t> shape = shapeOf(v), st = stridesOf(shape);
    size_t lead = outShape.size() - shape.size();
    a.strides.assign(outShape.size(), 0);
    for (size_t i = 0; i < shape.size(); ++i)
      a.strides[lead + i] = shape[i] == 1 && outShape[lead + i] != 1 ? 0 : st[i];
    return a;
  }

  /// out[idx] = fn(operands[idx]) over `outShape`, parallel over the first
  /// (collapsed) dimension.
  void strided(const std::string &what, const ir::Value *out, std::vector<int64_t> shape, std::vector<Access> ins,
               const std::function<LV *(const std::vector<LV *> &)> &fn, int64_t costPerElem = 1) {
    Access o;
    o.v = out;
    o.strides = stridesOf(shape);
    strided(what, o, std::move(shape), std::move(ins), fn, costPerElem);
  }

  /// The general form: the output is written through its own access (strides
  /// and offset), so a kernel can fill part of a larger buffer.
  void strided(const std::string &what, Access outAccess, std::vector<int64_t> shape, std::vector<Access> ins,
               const std::function<LV *(const std::vector<LV *> &)> &fn, int64_t costPerElem = 1) {
    strided(
        what, std::vector<Access>{std::move(outAccess)}, std::move(shape), std::move(ins),
        [&](const std::vector<LV *> &v) { return std::vector<LV *>{fn(v)}; }, costPerElem);
  }

  /// Several outputs from one loop (fused elementwise ops): fn maps the
  /// loaded inputs to one value per output.
  void strided(const std::string &what, std::vector<Access> outs, std::vector<int64_t> shape, std::vector<Access> ins,
               const std::function<std::vector<LV *>(const std::vector<LV *> &)> &fn, int64_t costPerElem) {
    // Collapse dims d, d+1 when every access walks them as one.
    auto walksAsOne = [&](const Access &a, int d) { return a.strides[d] == a.strides[d + 1] * shape[d + 1]; };
    for (int d = int(shape.size()) - 2; d >= 0; --d) {
      bool ok = true;
      for (auto *list : {&outs, &ins})
        for (auto &a : *list)
          ok &= walksAsOne(a, d);
      if (!ok)
        continue;
      shape[d] *= shape[d + 1];
      shape.erase(shape.begin() + d + 1);
      for (auto *list : {&outs, &ins})
        for (auto &a : *list) {
          a.strides[d] = a.strides[d + 1];
          a.strides.erase(a.strides.begin() + d + 1);
        }
    }
    if (shape.empty()) {
      shape = {1};
      for (auto *list : {&outs, &ins})
        for (auto &a : *list)
          a.strides = {0};
    }
    int64_t total = 1;
    for (int64_t d : shape)
      total *= d;
    kernel(what, shape[0], total * costPerElem, [&](LV *ctx, LV *begin, LV *end) {
      std::vector<LV *> outPtrs, inPtrs;
      for (auto &a : outs)
        outPtrs.push_back(basePtr(a.v, ctx));
      for (auto &a : ins)
        inPtrs.push_back(a.immediate ? nullptr : basePtr(a.v, ctx));
      std::vector<LV *> idx(shape.size());
      auto offsetOf = [&](const Access &a) {
        LV *off = b_.getInt64(a.offset);
        for (size_t j = 0; j < idx.size(); ++j)
          if (a.strides[j])
            off = b_.CreateAdd(off, b_.CreateMul(idx[j], b_.getInt64(a.strides[j])));
        return off;
      };
      std::function<void(size_t)> nest = [&](size_t d) {
        auto body = [&](LV *i) {
          idx[d] = i;
          if (d + 1 < shape.size())
            return nest(d + 1);
          std::vector<LV *> vals;
          for (size_t k = 0; k < ins.size(); ++k) {
            if (ins[k].immediate) {
              vals.push_back(ins[k].v->type.dtype == ir::DType::F32 ? cf(ins[k].imm)
                                                                    : b_.getInt64(int64_t(ins[k].imm)));
              continue;
            }
            llvm::Type *ety = elemTy(ins[k].v);
            vals.push_back(b_.CreateLoad(ety, b_.CreateInBoundsGEP(ety, inPtrs[k], offsetOf(ins[k]))));
          }
          std::vector<LV *> results = fn(vals);
          for (size_t k = 0; k < outs.size(); ++k)
            b_.CreateStore(results[k], b_.CreateInBoundsGEP(elemTy(outs[k].v), outPtrs[k], offsetOf(outs[k])));
        };
        if (d == 0)
          loop(begin, end, body, "i0");
        else
          loop(shape[d], body, ("i" + std::to_string(d)).c_str());
      };
      nest(0);
    });
  }

  /// One loop computing a step of fused elementwise ops (see Fusion.h):
  /// operands from outside the step are loaded (broadcast or transposed),
  /// values made inside are used from registers, and only the values read
  /// elsewhere are stored.
  void lowerFused(const Step &ops) {
    std::vector<int64_t> shape = shapeOf(ops.back()->result);
    std::unordered_map<const ir::Value *, bool> madeHere;
    for (const ir::Op *op : ops)
      madeHere[op->result] = true;
    // Input k of the loop; a value read plainly by several ops is loaded once.
    std::vector<Access> ins;
    std::map<const ir::Value *, size_t> plainInput;
    std::vector<std::vector<size_t>> inputOf(ops.size());
    std::vector<Access> outs;
    int64_t cost = 0;
    std::string what = ops.size() == 1 ? "" : "fused";
    for (size_t m = 0; m < ops.size(); ++m) {
      const ir::Op &op = *ops[m];
      if (m < 3)
        what += std::string(what.empty() ? "" : ".") + ir::opName(op.kind);
      for (size_t k = 0; k < op.operands.size(); ++k) {
        const ir::Value *v = op.operands[k];
        if (madeHere.count(v)) {
          inputOf[m].push_back(SIZE_MAX);
          continue;
        }
        Access a = broadcastAccess(v, shape);
        if (op.kind == ir::OpKind::Transpose) {
          // Output dim i reads input dim perm[i].
          std::vector<int64_t> perm = op.getInts("perm");
          std::vector<int64_t> inStrides = stridesOf(shapeOf(v));
          if (!a.immediate)
            for (size_t i = 0; i < perm.size(); ++i)
              a.strides[i] = inStrides[perm[i]];
        } else if (plainInput.count(v)) {
          inputOf[m].push_back(plainInput[v]);
          continue;
        } else {
          plainInput[v] = ins.size();
        }
        inputOf[m].push_back(ins.size());
        ins.push_back(a);
      }
      if (plan_.storage.at(op.result).kind != Storage::Fused) {
        Access o;
        o.v = op.result;
        o.strides = stridesOf(shape);
        outs.push_back(o);
      }
      bool transcendental = op.kind == ir::OpKind::Exp || op.kind == ir::OpKind::Log || op.kind == ir::OpKind::Tanh ||
                            op.kind == ir::OpKind::Erf || op.kind == ir::OpKind::Sigmoid;
      cost += transcendental ? 20 : 1;
    }
    strided(
        what, outs, shape, ins,
        [&](const std::vector<LV *> &loaded) {
          std::unordered_map<const ir::Value *, LV *> value;
          std::vector<LV *> stored;
          for (size_t m = 0; m < ops.size(); ++m) {
            const ir::Op &op = *ops[m];
            std::vector<LV *> args;
            for (size_t k = 0; k < op.operands.size(); ++k)
              args.push_back(inputOf[m][k] == SIZE_MAX ? value.at(op.operands[k]) : loaded[inputOf[m][k]]);
            LV *r = scalarOp(op.kind, args);
            value[op.result] = r;
            if (plan_.storage.at(op.result).kind != Storage::Fused)
              stored.push_back(r);
          }
          return stored;
        },
        cost);
  }

  void lowerConstFill(const ir::Op &op) {
    double v = constantValue(op, bind_);
    strided("fill", op.result, shapeOf(op.result), {}, [&](const std::vector<LV *> &) { return cf(v); });
  }

  void lowerReduce(const ir::Op &op) {
    if (auto sum = plan_.stackSums.find(&op); sum != plan_.stackSums.end())
      return lowerMatMul(*sum->second, op.result);
    std::vector<int64_t> in = shapeOf(op.operand(0));
    std::vector<int64_t> axes = op.getInts("axes");
    std::vector<bool> red(in.size(), false);
    int64_t count = 1;
    for (int64_t a : axes) {
      red[a] = true;
      count *= in[a];
    }
    // Output strides in input-dim terms (keepdims layout): 0 on reduced dims.
    std::vector<int64_t> keepShape = in;
    for (size_t i = 0; i < in.size(); ++i)
      if (red[i])
        keepShape[i] = 1;
    std::vector<int64_t> os = stridesOf(keepShape), is = stridesOf(in);
    for (size_t i = 0; i < in.size(); ++i)
      if (red[i])
        os[i] = 0;
    // Collapse neighbours with the same kind whose strides chain.
    std::vector<int64_t> shape = in;
    for (int d = int(shape.size()) - 2; d >= 0; --d) {
      if (red[d] != red[d + 1] || is[d] != is[d + 1] * shape[d + 1] || os[d] != os[d + 1] * shape[d + 1])
        continue;
      shape[d] *= shape[d + 1];
      shape.erase(shape.begin() + d + 1);
      is[d] = is[d + 1];
      is.erase(is.begin() + d + 1);
      os[d] = os[d + 1];
      os.erase(os.begin() + d + 1);
      red.erase(red.begin() + d + 1);
    }
    if (shape.empty()) {
      shape = {1};
      is = {1};
      os = {0};
      red = {true};
    }
    int64_t outElems = ir::numElements(shapeOf(op.result));
    bool isMax = op.kind == ir::OpKind::ReduceMax;
    double init = isMax ? -std::numeric_limits<double>::infinity() : 0.0;
    double scale = op.kind == ir::OpKind::ReduceMean ? 1.0 / double(count) : 1.0;
    // Parallel over dim 0 if it is kept; its output block is contiguous.
    bool par = !red[0];
    int64_t n = par ? shape[0] : 1;
    int64_t total = ir::numElements(in);
    const ir::Value *src = op.operand(0), *dst = op.result;
    kernel(ir::opName(op.kind), n, total, [&](LV *ctx, LV *begin, LV *end) {
      LV *inPtr = basePtr(src, ctx), *outPtr = basePtr(dst, ctx);
      // Output elements of this slice.
      int64_t block = par ? os[0] : outElems;
      LV *oBegin = par ? b_.CreateMul(begin, b_.getInt64(block)) : b_.getInt64(0);
      LV *oEnd = par ? b_.CreateMul(end, b_.getInt64(block)) : b_.getInt64(outElems);
      loop(
          oBegin, oEnd, [&](LV *i) { b_.CreateStore(cf(init), b_.CreateInBoundsGEP(f32_, outPtr, i)); }, "init");
      auto combine = [&](LV *acc, LV *x) {
        return isMax ? select(b_.CreateFCmpUGE(acc, x), acc, x) : b_.CreateFAdd(acc, x);
      };
      std::vector<LV *> idx(shape.size());
      auto offsets = [&](size_t upto, const std::vector<int64_t> &st) {
        LV *off = b_.getInt64(0);
        for (size_t j = 0; j < upto; ++j)
          if (st[j])
            off = b_.CreateAdd(off, b_.CreateMul(idx[j], b_.getInt64(st[j])));
        return off;
      };
      std::function<void(size_t)> nest = [&](size_t d) {
        bool last = d + 1 == shape.size();
        if (last && red[d]) {
          // Innermost reduced dim: accumulate in a register.
          LV *oPtr = b_.CreateInBoundsGEP(f32_, outPtr, offsets(d, os));
          LV *inBase = offsets(d, is);
          LV *acc = reduceRow(shape[d], b_.CreateLoad(f32_, oPtr), [&](LV *a, LV *k) {
            LV *off = b_.CreateAdd(inBase, b_.CreateMul(k, b_.getInt64(is[d])));
            return combine(a, b_.CreateLoad(f32_, b_.CreateInBoundsGEP(f32_, inPtr, off)));
          });
          b_.CreateStore(acc, oPtr);
          return;
        }
        auto bodyFn = [&](LV *i) {
          idx[d] = i;
          if (!last)
            return nest(d + 1);
          LV *oPtr = b_.CreateInBoundsGEP(f32_, outPtr, offsets(d + 1, os));
          LV *x = b_.CreateLoad(f32_, b_.CreateInBoundsGEP(f32_, inPtr, offsets(d + 1, is)));
          b_.CreateStore(combine(b_.CreateLoad(f32_, oPtr), x), oPtr);
        };
        if (d == 0 && par)
          loop(begin, end, bodyFn, "r0");
        else
          loop(shape[d], bodyFn, ("r" + std::to_string(d)).c_str());
      };
      nest(0);
      if (scale != 1.0)
        loop(
            oBegin, oEnd,
            [&](LV *i) {
              LV *p = b_.CreateInBoundsGEP(f32_, outPtr, i);
              b_.CreateStore(b_.CreateFMul(b_.CreateLoad(f32_, p), cf(scale)), p);
            },
            "scale");
    });
  }

  /// Softmax, log-softmax and argmax along the last axis, one row at a time.
  void lowerRowwise(const ir::Op &op) {
    std::vector<int64_t> in = shapeOf(op.operand(0));
    int64_t len = in.back(), rows = ir::numElements(in) / std::max<int64_t>(1, len);
    const ir::Value *src = op.operand(0), *dst = op.result;
    ir::OpKind k = op.kind;
    kernel(ir::opName(k), rows, rows * len * 20, [&](LV *ctx, LV *begin, LV *end) {
      LV *inPtr = basePtr(src, ctx), *outPtr = basePtr(dst, ctx);
      loop(
          begin, end,
          [&](LV *r) {
            LV *rowOff = b_.CreateMul(r, b_.getInt64(len));
            auto at = [&](LV *ptr, LV *j) { return b_.CreateInBoundsGEP(f32_, ptr, b_.CreateAdd(rowOff, j)); };
            if (k == ir::OpKind::ArgMax) {
              // First index of the maximum, a NaN counting as the largest
              // value, as PyTorch does.
              auto best = carryLoop(len, {cf(-std::numeric_limits<double>::infinity()), b_.getInt64(0)},
                                    [&](const std::vector<LV *> &v, LV *j) {
                                      LV *x = b_.CreateLoad(f32_, at(inPtr, j));
                                      LV *firstNaN = b_.CreateAnd(b_.CreateFCmpUNO(x, x), b_.CreateFCmpORD(v[0], v[0]));
                                      LV *better = b_.CreateOr(b_.CreateFCmpOGT(x, v[0]), firstNaN);
                                      return std::vector<LV *>{select(better, x, v[0]), select(better, j, v[1])};
                                    });
              LV *bestIdx = best[1];
              b_.CreateStore(bestIdx, b_.CreateInBoundsGEP(i64_, outPtr, r));
              return;
            }
            LV *mx = reduceRow(len, cf(-std::numeric_limits<double>::infinity()), [&](LV *acc, LV *j) {
              LV *x = b_.CreateLoad(f32_, at(inPtr, j));
              return select(b_.CreateFCmpUGE(acc, x), acc, x);
            });
            LV *sum = reduceRow(len, cf(0.0), [&](LV *acc, LV *j) {
              return b_.CreateFAdd(acc, expf(b_.CreateFSub(b_.CreateLoad(f32_, at(inPtr, j)), mx)));
            });
            if (k == ir::OpKind::Softmax) {
              LV *inv = b_.CreateFDiv(cf(1.0), sum);
              loop(
                  len,
                  [&](LV *j) {
                    LV *e = expf(b_.CreateFSub(b_.CreateLoad(f32_, at(inPtr, j)), mx));
                    b_.CreateStore(b_.CreateFMul(e, inv), at(outPtr, j));
                  },
                  "j");
            } else {
              // (x - max) - log(sum): both terms are small, so large logits
              // keep their precision (x - (max + log sum) loses it).
              LV *ls = logf(sum);
              loop(
                  len,
                  [&](LV *j) {
                    LV *shifted = b_.CreateFSub(b_.CreateLoad(f32_, at(inPtr, j)), mx);
                    b_.CreateStore(b_.CreateFSub(shifted, ls), at(outPtr, j));
                  },
                  "j");
            }
          },
          "row");
    });
  }

  /// A loop over j in [0, len) carrying `init` values in registers:
  /// vals = step(vals, j) each iteration; returns the final values. Register
  /// reductions in this form are what the vectorizer handles.
  /// carryLoop for short constant trip counts (pooling windows): written out
  /// step by step, so the enclosing loop's body is straight-line code.
  std::vector<LV *> smallCarryLoop(int64_t len, const std::vector<LV *> &init,
                                   const std::function<std::vector<LV *>(const std::vector<LV *> &, LV *)> &step) {
    if (len > 16)
      return carryLoop(len, init, step);
    std::vector<LV *> v = init;
    for (int64_t i = 0; i < len; ++i)
      v = step(v, b_.getInt64(i));
    return v;
  }

  std::vector<LV *> carryLoop(int64_t len, const std::vector<LV *> &init,
                              const std::function<std::vector<LV *>(const std::vector<LV *> &, LV *)> &step) {
    return carryLoop(b_.getInt64(0), b_.getInt64(len), init, step);
  }
  /// The same over [lo, hi).
  std::vector<LV *> carryLoop(LV *lo, LV *hi, const std::vector<LV *> &init,
                              const std::function<std::vector<LV *>(const std::vector<LV *> &, LV *)> &step) {
    llvm::Function *fn = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock *pre = b_.GetInsertBlock();
    auto *header = llvm::BasicBlock::Create(ctx_, "red.header", fn);
    auto *body = llvm::BasicBlock::Create(ctx_, "red.body", fn);
    auto *exit = llvm::BasicBlock::Create(ctx_, "red.exit", fn);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode *iv = b_.CreatePHI(i64_, 2, "j");
    iv->addIncoming(lo, pre);
    std::vector<LV *> vals;
    std::vector<llvm::PHINode *> phis;
    for (LV *v : init) {
      phis.push_back(b_.CreatePHI(v->getType(), 2, "acc"));
      phis.back()->addIncoming(v, pre);
      vals.push_back(phis.back());
    }
    b_.CreateCondBr(b_.CreateICmpSLT(iv, hi), body, exit);
    b_.SetInsertPoint(body);
    std::vector<LV *> next = step(vals, iv);
    iv->addIncoming(b_.CreateNUWAdd(iv, b_.getInt64(1)), b_.GetInsertBlock());
    for (size_t i = 0; i < phis.size(); ++i)
      phis[i]->addIncoming(next[i], b_.GetInsertBlock());
    b_.CreateBr(header);
    b_.SetInsertPoint(exit);
    return vals;
  }

  /// acc = init; for j < len: acc = step(acc, j); returns acc.
  LV *reduceRow(int64_t len, LV *init, const std::function<LV *(LV *, LV *)> &step) {
    return carryLoop(len, {init},
                     [&](const std::vector<LV *> &v, LV *j) { return std::vector<LV *>{step(v[0], j)}; })[0];
  }

  /// slice, pad and concat: strided copies between a buffer and a part of
  /// another, offset along one axis.
  void lowerSliceLike(const ir::Op &op) {
    int64_t axis = op.getInt("axis");
    const ir::Value *out = op.result;
    std::vector<int64_t> outShape = shapeOf(out), outStrides = stridesOf(outShape);
    if (op.kind == ir::OpKind::Slice) {
      Access in = readAccess(op.operand(0));
      in.offset += op.getInt("start") * in.strides[size_t(axis)];
      strided("slice", out, outShape, {in}, [](const std::vector<LV *> &v) { return v[0]; });
      return;
    }
    // pad and concat: copy each operand into its place in the output.
    if (op.kind == ir::OpKind::Pad)
      lowerConstFill(op);
    int64_t at = op.kind == ir::OpKind::Pad ? op.getInt("before") : 0;
    for (const ir::Value *part : op.operands) {
      Access o;
      o.v = out;
      o.strides = outStrides;
      o.offset = at * outStrides[size_t(axis)];
      std::vector<int64_t> partShape = shapeOf(part);
      strided(ir::opName(op.kind), o, partShape, {readAccess(part)}, [](const std::vector<LV *> &v) { return v[0]; });
      at += partShape[size_t(axis)];
    }
  }

  /// gather: out[r, :] = table[ids[r], :] (zeros for an id out of range);
  /// scatter_add: out = 0, then out[ids[r], :] += upd[r, :] in order.
  void lowerGatherScatter(const ir::Op &op) {
    const ir::Value *dst = op.result, *ids = op.operand(1);
    const ir::Value *src = op.operand(0);
    int64_t n = ir::numElements(shapeOf(ids));
    std::vector<int64_t> outShape = shapeOf(dst);
    int64_t width = outShape.back();
    bool gather = op.kind == ir::OpKind::Gather;
    int64_t rows = gather ? shapeOf(src)[0] : outShape[0];
    if (!gather)
      lowerConstFill(op);
    // Scatters may hit one row twice: one thread, in index order.
    kernel(ir::opName(op.kind), gather ? n : 1, n * width, [&](LV *ctx, LV *begin, LV *end) {
      LV *idPtr = basePtr(ids, ctx), *srcPtr = basePtr(src, ctx), *outPtr = basePtr(dst, ctx);
      LV *lo = gather ? begin : static_cast<LV *>(b_.getInt64(0));
      LV *hi = gather ? end : static_cast<LV *>(b_.getInt64(n));
      loop(
          lo, hi,
          [&](LV *r) {
            LV *id = b_.CreateLoad(i64_, b_.CreateInBoundsGEP(i64_, idPtr, r));
            LV *inRange = b_.CreateAnd(b_.CreateICmpSGE(id, b_.getInt64(0)), b_.CreateICmpSLT(id, b_.getInt64(rows)));
            LV *safeId = select(inRange, id, b_.getInt64(0));
            LV *tableRow = b_.CreateMul(gather ? safeId : r, b_.getInt64(width));
            LV *outRow = b_.CreateMul(gather ? r : safeId, b_.getInt64(width));
            loop(
                width,
                [&](LV *j) {
                  LV *x = b_.CreateLoad(f32_, b_.CreateInBoundsGEP(f32_, srcPtr, b_.CreateAdd(tableRow, j)));
                  LV *o = b_.CreateInBoundsGEP(f32_, outPtr, b_.CreateAdd(outRow, j));
                  if (gather)
                    b_.CreateStore(select(inRange, x, cf(0.0)), o);
                  else
                    b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, o), select(inRange, x, cf(0.0))), o);
                },
                "j");
          },
          "r");
    });
  }

  /// Inverted-dropout mask: element i keeps (value 1/(1-p)) when the top 24
  /// bits of splitmix64(seed + stream * golden + i), as a fraction of 2^24,
  /// are at least p. Counter-based, so any thread split gives the same mask
  /// and the loop vectorizes.
  void lowerDropoutMask(const ir::Op &op) {
    const ir::Value *seed = op.operand(0), *dst = op.result;
    int64_t n = ir::numElements(shapeOf(dst));
    double p = op.getFloat("p");
    uint64_t stream = uint64_t(op.getInt("stream")) * 0x9e3779b97f4a7c15ULL;
    kernel("dropout_mask", n, n * 8, [&](LV *ctx, LV *begin, LV *end) {
      LV *seedPtr = basePtr(seed, ctx), *outPtr = basePtr(dst, ctx);
      LV *base = b_.CreateAdd(b_.CreateLoad(i64_, seedPtr), b_.getInt64(int64_t(stream)));
      loop(
          begin, end,
          [&](LV *i) {
            LV *z = b_.CreateAdd(base, b_.CreateMul(i, b_.getInt64(int64_t(0x9e3779b97f4a7c15ULL))));
            z = b_.CreateMul(b_.CreateXor(z, b_.CreateLShr(z, 30)), b_.getInt64(int64_t(0xbf58476d1ce4e5b9ULL)));
            z = b_.CreateMul(b_.CreateXor(z, b_.CreateLShr(z, 27)), b_.getInt64(int64_t(0x94d049bb133111ebULL)));
            z = b_.CreateXor(z, b_.CreateLShr(z, 31));
            LV *u = b_.CreateUIToFP(b_.CreateLShr(z, 40),
                                    f32_); // 24 bits: exact in f32
            LV *keep = b_.CreateFCmpOGE(u, cf(p * double(1 << 24)));
            b_.CreateStore(select(keep, cf(1.0 / (1.0 - p)), cf(0.0)), b_.CreateInBoundsGEP(f32_, outPtr, i));
          },
          "i");
    });
  }

  /// causal_mask and sinusoid: tables computed here and stored as a
  /// constant global, copied into the result buffer.
  void lowerTable(const ir::Op &op) {
    std::vector<int64_t> shape = shapeOf(op.result);
    int64_t n = ir::numElements(shape), cols = shape.back(), rows = shape[shape.size() - 2];
    std::vector<float> data(size_t(n), 0.0f);
    for (int64_t e = 0; e < n; ++e) {
      int64_t j = e % cols, i = (e / cols) % rows;
      if (op.kind == ir::OpKind::CausalMask) {
        data[size_t(e)] = j > i + op.getInt("offset") ? float(op.getFloat("value")) : 0.0f;
      } else { // PE[t, 2k] = sin(t / 10000^(2k/D)), PE[t, 2k+1] = cos(...)
        double freq = std::pow(10000.0, -double(j - j % 2) / double(cols));
        data[size_t(e)] = float(j % 2 ? std::cos(double(i) * freq) : std::sin(double(i) * freq));
      }
    }
    auto *init = llvm::ConstantDataArray::get(ctx_, llvm::ArrayRef<float>(data));
    auto *table = new llvm::GlobalVariable(m_, init->getType(), true, llvm::GlobalValue::PrivateLinkage, init,
                                           ir::opName(op.kind));
    const ir::Value *dst = op.result;
    kernel(ir::opName(op.kind), n, n, [&](LV *ctx, LV *begin, LV *end) {
      LV *out = basePtr(dst, ctx);
      LV *src = b_.CreateBitCast(table, f32_->getPointerTo());
      loop(
          begin, end, [&](LV *i) { b_.CreateStore(ld(src, i), at(out, i)); }, "i");
    });
  }

  void lowerOneHot(const ir::Op &op) {
    int64_t classes = op.getInt("classes");
    int64_t rows = ir::numElements(shapeOf(op.operand(0)));
    const ir::Value *src = op.operand(0), *dst = op.result;
    kernel("one_hot", rows, rows * classes, [&](LV *ctx, LV *begin, LV *end) {
      LV *inPtr = basePtr(src, ctx), *outPtr = basePtr(dst, ctx);
      loop(
          begin, end,
          [&](LV *r) {
            LV *rowOff = b_.CreateMul(r, b_.getInt64(classes));
            LV *label = b_.CreateLoad(i64_, b_.CreateInBoundsGEP(i64_, inPtr, r));
            loop(
                classes,
                [&](LV *j) {
                  LV *hit = b_.CreateUIToFP(b_.CreateICmpEQ(j, label), f32_);
                  b_.CreateStore(hit, b_.CreateInBoundsGEP(f32_, outPtr, b_.CreateAdd(rowOff, j)));
                },
                "c");
          },
          "row");
    });
  }

  /// C = op(A) op(B), for matrices or stacks of them: a call to the
  /// runtime's blocked GEMM (runtime/Gemm.h) around the micro-kernel the JIT
  /// emitted for this CPU, with the shapes and strides as a constant
  /// descriptor. It splits the work over threads itself. An operand that is a
  /// matrix broadcast over the stack is read in place (stack stride 0); with
  /// `into` (a reduce_sum over the stack, see MemoryPlan::stackSums) the
  /// products of the stack are summed into it.
  /// The GEMM descriptor (see runtime::GemmDesc) of a matmul, or of the
  /// reduce_sum over its stack when `summed`.
  std::vector<int64_t> matmulDesc(const ir::Op &op, bool summed) {
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

  void lowerMatMul(const ir::Op &op, const ir::Value *into = nullptr) {
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

  /// Before a loop: packs the loop-invariant B of the body's matmuls once
  /// (MemoryPlan::packedB); the products in the loop read the packed copy.
  void packLoopInvariants(const ir::Function &body) {
    for (const auto &op : body.ops) {
      auto packed = plan_.packedB.find(op.get());
      if (packed == plan_.packedB.end())
        continue;
      auto *fp = f32_->getPointerTo();
      auto *fnTy = llvm::FunctionType::get(b_.getVoidTy(), {i64_->getPointerTo(), fp, fp}, false);
      llvm::FunctionCallee pack = m_.getOrInsertFunction("nnc_rt_sgemm_pack_b", fnTy);
      b_.CreateCall(pack, {gemmDesc(matmulDesc(*op, false)), basePtr(op->operand(1), ctxPtr_),
                           arenaPtr(packed->second, ctxPtr_)});
    }
  }

  /// A constant GEMM descriptor (see runtime::GemmDesc) in the module.
  LV *gemmDesc(const std::vector<int64_t> &desc) {
    NNC_ASSERT(desc.size() == 14) << "a GEMM descriptor has 14 fields";
    auto *arrTy = llvm::ArrayType::get(i64_, desc.size());
    std::vector<llvm::Constant *> vals;
    for (int64_t v : desc)
      vals.push_back(b_.getInt64(uint64_t(v)));
    auto *g = new llvm::GlobalVariable(m_, arrTy, true, llvm::GlobalValue::PrivateLinkage,
                                       llvm::ConstantArray::get(arrTy, vals), "gemm.desc");
    return b_.CreateConstInBoundsGEP2_64(arrTy, g, 0, 0);
  }

  /// Calls nnc_rt_sgemm with the descriptor `desc`, or with `alpha`,
  /// nnc_rt_sgemm_scaled (C (+)= alpha A B).
  void callGemm(LV *desc, LV *a, LV *bm, LV *c, LV *alpha = nullptr) {
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
  void callGemm(const std::vector<int64_t> &desc, LV *a, LV *bm, LV *c) { callGemm(gemmDesc(desc), a, bm, c); }

  //--- convolution and pooling --------------------------------------------
  // Loop nests over one image plane at a time (which stays in L1), with the
  // kernel offsets outermost: for each tap (kh, kw) the valid output rows
  // and columns form a contiguous range computed up front, so the innermost
  // loop over output columns has no bounds checks and vectorizes.

  /// The outputs o in [0, out) with 0 <= o * stride + off < in, as [lo, hi).
  std::pair<LV *, LV *> validRange(LV *off, int64_t stride, int64_t in, int64_t out) {
    LV *zero = b_.getInt64(0);
    LV *lo = select(b_.CreateICmpSGE(off, zero), zero,
                    b_.CreateSDiv(b_.CreateAdd(b_.CreateNeg(off), b_.getInt64(stride - 1)), b_.getInt64(stride)));
    LV *top = b_.CreateSub(b_.getInt64(in - 1), off);
    LV *n = b_.CreateAdd(b_.CreateSDiv(top, b_.getInt64(stride)), b_.getInt64(1));
    n = select(b_.CreateICmpSLT(n, b_.getInt64(out)), n, b_.getInt64(out));
    LV *hi = select(b_.CreateICmpSLT(top, zero), zero, n);
    return {lo, hi};
  }

  LV *at(LV *base, LV *i) { return b_.CreateInBoundsGEP(f32_, base, i); }
  LV *ld(LV *base, LV *i) { return b_.CreateLoad(f32_, at(base, i)); }
  LV *mulC(LV *a, int64_t c) { return b_.CreateMul(a, b_.getInt64(c)); }
  LV *addC(LV *a, int64_t c) { return b_.CreateAdd(a, b_.getInt64(c)); }

  struct ConvGeom {
    int64_t N, C, H, W, O, OH, OW, G, Cg, Og, KH, KW;
    ir::Window2D w;
  };
  ConvGeom convGeom(const ir::Op &op) {
    ConvGeom g;
    g.w = ir::window2DOf(op);
    std::vector<int64_t> xs, ys;
    switch (op.kind) {
    case ir::OpKind::Conv2D:
      xs = shapeOf(op.operand(0));
      ys = shapeOf(op.result);
      break;
    case ir::OpKind::Conv2DGradInput:
      xs = shapeOf(op.result);
      ys = shapeOf(op.operand(0));
      break;
    default:
      xs = shapeOf(op.operand(1));
      ys = shapeOf(op.operand(0));
      break;
    }
    g.N = xs[0], g.C = xs[1], g.H = xs[2], g.W = xs[3];
    g.O = ys[1], g.OH = ys[2], g.OW = ys[3];
    g.G = op.getInt("groups", 1);
    g.Cg = g.C / g.G, g.Og = g.O / g.G, g.KH = g.w.kh, g.KW = g.w.kw;
    return g;
  }

  /// For each tap (kh, kw) of the kernel: body(tapIndex, ohLo, ohHi, owLo,
  /// owHi, hoff, woff) where input row = oh * sh + hoff, column = ow * sw +
  /// woff.
  void forEachTap(const ConvGeom &g, const std::function<void(LV *, LV *, LV *, LV *, LV *, LV *, LV *)> &body) {
    loop(
        g.KH,
        [&](LV *kh) {
          LV *hoff = addC(mulC(kh, g.w.dh), -g.w.pt);
          auto [ohLo, ohHi] = validRange(hoff, g.w.sh, g.H, g.OH);
          loop(
              g.KW,
              [&](LV *kw) {
                LV *woff = addC(mulC(kw, g.w.dw), -g.w.pl);
                auto [owLo, owHi] = validRange(woff, g.w.sw, g.W, g.OW);
                body(b_.CreateAdd(mulC(kh, g.KW), kw), ohLo, ohHi, owLo, owHi, hoff, woff);
              },
              "kw");
        },
        "kh");
  }

  void zeroFill(LV *base, LV *from, int64_t n) {
    loop(
        n, [&](LV *i) { b_.CreateStore(cf(0.0), at(base, b_.CreateAdd(from, i))); }, "z");
  }

  /// The op's scratch space (see MemoryPlan::scratch), typed f32.
  LV *scratchPtr(const ir::Op &op, LV *ctx) { return arenaPtr(plan_.scratch.at(&op), ctx); }
  /// The arena at byte offset `off`, typed f32.
  LV *arenaPtr(int64_t off, LV *ctx) {
    LV *arena = b_.CreateLoad(i8p_, b_.CreateStructGEP(ctxTy_, ctx, 1), "arena");
    LV *typed =
        b_.CreateBitCast(b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), arena, uint64_t(off)), f32_->getPointerTo());
    bufferOf_[typed] = off;
    return typed;
  }

  /// im2col of image n: col[n][(c * KH + kh) * KW + kw][oh * OW + ow] =
  /// x[n, c, oh * sh + kh * dh - pt, ow * sw + kw * dw - pl], zero outside.
  /// With `toImage`, the adjoint (col2im): x[n] = 0, then x += col at the
  /// same places.
  void im2col(const ConvGeom &g, LV *x, LV *col, LV *n, bool toImage) {
    int64_t plane = g.H * g.W, P = g.OH * g.OW, taps = g.KH * g.KW;
    LV *colBase = mulC(n, g.C * taps * P);
    if (toImage)
      zeroFill(x, mulC(n, g.C * plane), g.C * plane);
    loop(
        g.C,
        [&](LV *c) {
          LV *xPlane = mulC(b_.CreateAdd(mulC(n, g.C), c), plane);
          forEachTap(g, [&](LV *tap, LV *ohLo, LV *ohHi, LV *owLo, LV *owHi, LV *hoff, LV *woff) {
            LV *row = b_.CreateAdd(colBase, mulC(b_.CreateAdd(mulC(c, taps), tap), P));
            if (!toImage)
              zeroFill(col, row, P);
            loop(
                ohLo, ohHi,
                [&](LV *oh) {
                  LV *ih = b_.CreateAdd(mulC(oh, g.w.sh), hoff);
                  LV *cRow = b_.CreateAdd(row, mulC(oh, g.OW));
                  LV *xRow = b_.CreateAdd(b_.CreateAdd(xPlane, mulC(ih, g.W)), woff);
                  loop(
                      owLo, owHi,
                      [&](LV *ow) {
                        LV *cp = at(col, b_.CreateAdd(cRow, ow)), *xp = at(x, b_.CreateAdd(xRow, mulC(ow, g.w.sw)));
                        if (toImage)
                          b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, xp), b_.CreateLoad(f32_, cp)), xp);
                        else
                          b_.CreateStore(b_.CreateLoad(f32_, xp), cp);
                      },
                      "ow");
                },
                "oh");
          });
        },
        "c");
  }

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
  void lowerConv(const ir::Op &op) {
    ConvGeom g = convGeom(op);
    int64_t taps = g.KH * g.KW, K = g.Cg * taps, P = g.OH * g.OW, colImage = g.C * taps * P;
    int64_t work = 2 * g.N * g.O * K * P;
    const ir::Value *r = op.result, *a = op.operand(0), *bw = op.operand(1);
    auto plus = [&](LV *p, LV *elems) { return b_.CreateInBoundsGEP(f32_, p, elems); };
    auto at = [&](LV *n, int64_t perImage, int64_t offset) {
      return b_.CreateAdd(mulC(n, perImage), b_.getInt64(offset));
    };
    // desc: batch, M, N, K, rsA, csA, bsA, rsB, csB, bsB, ldc, bsC, accumulate
    switch (op.kind) {
    case ir::OpKind::Conv2D:
      kernel("conv2d", g.N, work, [&](LV *ctx, LV *begin, LV *end) {
        LV *x = basePtr(a, ctx), *w = basePtr(bw, ctx), *y = basePtr(r, ctx), *col = scratchPtr(op, ctx);
        loop(
            begin, end,
            [&](LV *n) {
              im2col(g, x, col, n, false);
              for (int64_t gi = 0; gi < g.G; ++gi)
                callGemm({1, g.Og, P, K, K, 1, 0, P, 1, 0, P, 0, 0, 0}, plus(w, b_.getInt64(gi * g.Og * K)),
                         plus(col, at(n, colImage, gi * K * P)), plus(y, at(n, g.O * P, gi * g.Og * P)));
            },
            "n");
      });
      return;
    case ir::OpKind::Conv2DGradInput:
      kernel("conv2d_grad_input", g.N, work, [&](LV *ctx, LV *begin, LV *end) {
        LV *dy = basePtr(a, ctx), *w = basePtr(bw, ctx), *dx = basePtr(r, ctx), *col = scratchPtr(op, ctx);
        loop(
            begin, end,
            [&](LV *n) {
              // col[n] = Wᵀ dy[n]: A(i, k) = W[k, i].
              for (int64_t gi = 0; gi < g.G; ++gi)
                callGemm({1, K, P, g.Og, 1, K, 0, P, 1, 0, P, 0, 0, 0}, plus(w, b_.getInt64(gi * g.Og * K)),
                         plus(dy, at(n, g.O * P, gi * g.Og * P)), plus(col, at(n, colImage, gi * K * P)));
              im2col(g, dx, col, n, true);
            },
            "n");
      });
      return;
    case ir::OpKind::Conv2DGradWeight: {
      kernel("conv2d_im2col", g.N, g.N * colImage, [&](LV *ctx, LV *begin, LV *end) {
        LV *x = basePtr(bw, ctx), *col = scratchPtr(op, ctx);
        loop(
            begin, end, [&](LV *n) { im2col(g, x, col, n, false); }, "n");
      });
      LV *dy = basePtr(a, ctxPtr_), *dw = basePtr(r, ctxPtr_), *col = scratchPtr(op, ctxPtr_);
      // dW = sum_n dy[n] col[n]ᵀ, B(k, j) = col[n][j, k]: one GEMM summing
      // its stack over the images (bsC = 0).
      for (int64_t gi = 0; gi < g.G; ++gi)
        callGemm({g.N, g.Og, K, P, P, 1, g.O * P, 1, P, colImage, K, 0, 0, 0}, plus(dy, b_.getInt64(gi * g.Og * P)),
                 plus(col, b_.getInt64(gi * K * P)), plus(dw, b_.getInt64(gi * g.Og * K)));
      return;
    }
    default:
      NNC_UNREACHABLE("not a convolution");
    }
  }

  /// Pooling over planes [N*C] of an [N, C, H, W] input (x) and its pooled
  /// [N, C, OH, OW] form. Windows are visited tap by tap in row-major order;
  /// max pooling keeps the first maximum (NaN wins, as in PyTorch), average
  /// pooling divides by the full window (padding counts, as PyTorch's
  /// default count_include_pad).
  void lowerPool(const ir::Op &op) {
    ir::Window2D w = ir::window2DOf(op);
    bool isGrad = op.kind == ir::OpKind::MaxPool2DGrad || op.kind == ir::OpKind::AvgPool2DGrad;
    std::vector<int64_t> xs = shapeOf(isGrad ? op.result : op.operands.back());
    std::vector<int64_t> ys = shapeOf(isGrad ? op.operand(0) : op.result);
    int64_t planes = xs[0] * xs[1], H = xs[2], W = xs[3], OH = ys[2], OW = ys[3];
    int64_t plane = H * W, oplane = OH * OW;
    bool isMax = op.kind != ir::OpKind::AvgPool2D && op.kind != ir::OpKind::AvgPool2DGrad;
    double inv = 1.0 / double(w.kh * w.kw);
    const ir::Value *r = op.result;
    const ir::Value *keys = isMax ? op.operands.back() : nullptr;
    const ir::Value *vals = op.operand(0); // x, v or dy
    // Without padding, and with every window inside the image, no tap needs
    // a bounds check.
    bool inside = w.pt == 0 && w.pl == 0 && (OH - 1) * w.sh + w.kh <= H && (OW - 1) * w.sw + w.kw <= W;
    auto inRange = [&](LV *i, int64_t n) {
      return inside ? b_.getTrue()
                    : b_.CreateAnd(b_.CreateICmpSGE(i, b_.getInt64(0)), b_.CreateICmpSLT(i, b_.getInt64(n)));
    };
    // Max-pool gradient over windows that tile the image (stride = kernel,
    // no padding): each input position is in one window, so every position
    // is written once, dy at the window's first maximum and 0 elsewhere; no
    // zero fill first and no read-modify-write, and the loop over output
    // columns vectorizes.
    if (op.kind == ir::OpKind::MaxPool2DGrad && inside && w.sh == w.kh && w.sw == w.kw && w.dh == 1 && w.dw == 1) {
      kernel("max_pool2d_grad.tiled", planes, planes * plane * 4, [&](LV *ctx, LV *begin, LV *end) {
        LV *dy = basePtr(vals, ctx), *out = basePtr(r, ctx), *key = basePtr(keys, ctx);
        loop(
            begin, end,
            [&](LV *p) {
              LV *xPlane = mulC(p, plane), *yPlane = mulC(p, oplane);
              if (OH * w.kh != H || OW * w.kw != W)
                zeroFill(out, xPlane, plane); // rows or columns no window covers
              loop(
                  OH,
                  [&](LV *oh) {
                    loop(
                        OW,
                        [&](LV *ow) {
                          LV *corner = b_.CreateAdd(xPlane, b_.CreateAdd(mulC(oh, w.kh * W), mulC(ow, w.kw)));
                          std::vector<LV *> best{cf(0.0), b_.getInt64(-1)};
                          for (int64_t i = 0; i < w.kh; ++i)
                            for (int64_t j = 0; j < w.kw; ++j) {
                              LV *kv = ld(key, addC(corner, i * W + j));
                              LV *better = b_.CreateOr(b_.CreateFCmpOGT(kv, best[0]), b_.CreateFCmpUNO(kv, kv));
                              LV *take = b_.CreateOr(b_.CreateICmpSLT(best[1], b_.getInt64(0)), better);
                              best = {select(take, kv, best[0]), select(take, b_.getInt64(i * w.kw + j), best[1])};
                            }
                          LV *g = ld(dy, b_.CreateAdd(yPlane, b_.CreateAdd(mulC(oh, OW), ow)));
                          for (int64_t i = 0; i < w.kh; ++i)
                            for (int64_t j = 0; j < w.kw; ++j)
                              b_.CreateStore(select(b_.CreateICmpEQ(best[1], b_.getInt64(i * w.kw + j)), g, cf(0.0)),
                                             at(out, addC(corner, i * W + j)));
                        },
                        "ow", /*vectorize=*/true);
                  },
                  "oh");
            },
            "p");
      });
      return;
    }
    kernel(ir::opName(op.kind), planes, planes * oplane * w.kh * w.kw * 2, [&](LV *ctx, LV *begin, LV *end) {
      LV *in = basePtr(vals, ctx), *out = basePtr(r, ctx), *key = keys ? basePtr(keys, ctx) : nullptr;
      loop(
          begin, end,
          [&](LV *p) {
            LV *xPlane = mulC(p, plane), *yPlane = mulC(p, oplane);
            if (isGrad)
              zeroFill(out, xPlane, plane);
            loop(
                OH,
                [&](LV *oh) {
                  LV *h0 = addC(mulC(oh, w.sh), -w.pt);
                  loop(
                      OW,
                      [&](LV *ow) {
                        LV *w0 = addC(mulC(ow, w.sw), -w.pl);
                        LV *yIdx = b_.CreateAdd(yPlane, b_.CreateAdd(mulC(oh, OW), ow));
                        // Carry (best key, its index) or the running sum
                        // over the window.
                        std::vector<LV *> init =
                            isMax ? std::vector<LV *>{cf(-std::numeric_limits<double>::infinity()), b_.getInt64(-1)}
                                  : std::vector<LV *>{cf(0.0)};
                        if (!isMax && isGrad)
                          init.clear();
                        auto res =
                            init.empty() ? init : smallCarryLoop(w.kh, init, [&](const std::vector<LV *> &v, LV *kh) {
                              LV *ih = b_.CreateAdd(h0, kh);
                              LV *rowOk = inRange(ih, H);
                              return smallCarryLoop(w.kw, v, [&](const std::vector<LV *> &u, LV *kw) {
                                LV *iw = b_.CreateAdd(w0, kw);
                                LV *ok = b_.CreateAnd(rowOk, inRange(iw, W));
                                LV *idx = b_.CreateAdd(mulC(select(ok, ih, b_.getInt64(0)), W),
                                                       select(ok, iw, b_.getInt64(0)));
                                if (!isMax)
                                  return std::vector<LV *>{
                                      b_.CreateFAdd(u[0], select(ok, ld(in, b_.CreateAdd(xPlane, idx)), cf(0.0)))};
                                LV *kv = ld(key, b_.CreateAdd(xPlane, idx));
                                LV *better = b_.CreateOr(b_.CreateFCmpOGT(kv, u[0]), b_.CreateFCmpUNO(kv, kv));
                                LV *take =
                                    b_.CreateAnd(ok, b_.CreateOr(b_.CreateICmpSLT(u[1], b_.getInt64(0)), better));
                                return std::vector<LV *>{select(take, kv, u[0]), select(take, idx, u[1])};
                              });
                            });
                        if (!isMax) {
                          if (!isGrad) {
                            b_.CreateStore(b_.CreateFMul(res[0], cf(inv)), at(out, yIdx));
                            return;
                          }
                          LV *share = b_.CreateFMul(ld(in, yIdx), cf(inv));
                          smallCarryLoop(w.kh, {}, [&](const std::vector<LV *> &, LV *kh) {
                            LV *ih = b_.CreateAdd(h0, kh);
                            return smallCarryLoop(w.kw, {}, [&](const std::vector<LV *> &, LV *kw) {
                              LV *iw = b_.CreateAdd(w0, kw);
                              LV *ok = b_.CreateAnd(inRange(ih, H), inRange(iw, W));
                              LV *idx = b_.CreateAdd(xPlane, b_.CreateAdd(mulC(select(ok, ih, b_.getInt64(0)), W),
                                                                          select(ok, iw, b_.getInt64(0))));
                              LV *xp = at(out, idx);
                              b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, xp), select(ok, share, cf(0.0))), xp);
                              return std::vector<LV *>{};
                            });
                          });
                          return;
                        }
                        // A window always holds a valid tap (padding <=
                        // kernel / 2).
                        LV *src = b_.CreateAdd(xPlane, res[1]);
                        switch (op.kind) {
                        case ir::OpKind::MaxPool2D:
                          b_.CreateStore(res[0], at(out, yIdx));
                          break;
                        case ir::OpKind::MaxPool2DPick:
                          b_.CreateStore(ld(in, src), at(out, yIdx));
                          break;
                        default: { // grad: dx[argmax] += dy
                          LV *xp = at(out, src);
                          b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(f32_, xp), ld(in, yIdx)), xp);
                        }
                        }
                      },
                      // Rows are short (OW); the vectorizer still declines
                      // the scattering gradients.
                      "ow", /*vectorize=*/true);
                },
                "oh");
          },
          "p");
    });
  }

  /// scan: a loop in the entry function over the steps; each step sets
  /// ctx.t and runs the body's kernels, which find their operands and result
  /// at that step (Storage::ScanStep). The code does not grow with T.
  void lowerScan(const ir::Op &op) {
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

  void lowerStep(const Step &step) {
    if (step.size() > 1)
      return lowerFused(step);
    lowerOp(*step[0]);
  }

  void lowerOp(const ir::Op &op) {
    const Storage &s = plan_.storage.at(op.result);
    if (s.kind == Storage::Alias || s.kind == Storage::Immediate || s.kind == Storage::View)
      return; // reshape is a view; scalar constants are folded into their users
    switch (op.kind) {
    case ir::OpKind::Const:
      return lowerConstFill(op);
    case ir::OpKind::ReduceSum:
    case ir::OpKind::ReduceMean:
    case ir::OpKind::ReduceMax:
      return lowerReduce(op);
    case ir::OpKind::Softmax:
    case ir::OpKind::LogSoftmax:
    case ir::OpKind::ArgMax:
      return lowerRowwise(op);
    case ir::OpKind::OneHot:
      return lowerOneHot(op);
    case ir::OpKind::CausalMask:
    case ir::OpKind::Sinusoid:
      return lowerTable(op);
    case ir::OpKind::Scan:
      return lowerScan(op);
    case ir::OpKind::MatMul:
      return lowerMatMul(op);
    case ir::OpKind::Slice:
    case ir::OpKind::Pad:
    case ir::OpKind::Concat:
      return lowerSliceLike(op);
    case ir::OpKind::Gather:
    case ir::OpKind::ScatterAdd:
      return lowerGatherScatter(op);
    case ir::OpKind::DropoutMask:
      return lowerDropoutMask(op);
    case ir::OpKind::Conv2D:
    case ir::OpKind::Conv2DGradInput:
    case ir::OpKind::Conv2DGradWeight:
      return lowerConv(op);
    case ir::OpKind::MaxPool2D:
    case ir::OpKind::MaxPool2DGrad:
    case ir::OpKind::MaxPool2DPick:
    case ir::OpKind::AvgPool2D:
    case ir::OpKind::AvgPool2DGrad:
      return lowerPool(op);
    case ir::OpKind::Reshape:
      NNC_UNREACHABLE("reshape is always a view");
    default:
      NNC_ASSERT(readsOperandsElementwise(op.kind)) << "no lowering for " << ir::opName(op.kind);
      return lowerFused({&op});
    }
  }

  /// Result j's value lives elsewhere (an argument, another result, or an
  /// immediate): copy or fill it into result buffer j.
  void copyResult(int j) {
    const ir::Value *v = f_.results[size_t(j)];
    std::vector<int64_t> shape = shapeOf(v);
    int64_t n = ir::numElements(shape);
    const Storage &s = plan_.resolve(v);
    llvm::Type *ety = elemTy(v);
    kernel("copy", 1, n, [&](LV *ctx, LV *, LV *) {
      LV *dst = resultPtr(j, ety, ctx);
      LV *src = s.kind == Storage::Immediate ? nullptr : basePtr(v, ctx);
      loop(
          n,
          [&](LV *i) {
            LV *x = src ? b_.CreateLoad(ety, b_.CreateInBoundsGEP(ety, src, i))
                        : (ety == f32_ ? cf(s.immediate) : static_cast<LV *>(b_.getInt64(int64_t(s.immediate))));
            b_.CreateStore(x, b_.CreateInBoundsGEP(ety, dst, i));
          },
          "c");
    });
  }

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

} // namespace

ProfileLayout profileLayout(const ir::Function &f) {
  ProfileLayout l;
  std::vector<const ir::Function *> bodies;
  // Gives fn's ops their slots and queues the loop bodies they run.
  auto add = [&](const ir::Function &fn) {
    for (const auto &op : fn.ops) {
      l.slot[op.get()] = l.ops.size();
      l.ops.push_back(op.get());
      l.owner.push_back(&fn);
      if (op->body && std::find(bodies.begin(), bodies.end(), op->body) == bodies.end())
        bodies.push_back(op->body);
    }
  };
  add(f);
  l.ops.push_back(nullptr); // the copying of results
  l.owner.push_back(&f);
  for (size_t i = 0; i < bodies.size(); ++i) // grows with nested bodies
    add(*bodies[i]);
  return l;
}

std::unique_ptr<llvm::Module> lowerToLLVM(const ir::Function &f, const ir::Bindings &bindings, const MemoryPlan &plan,
                                          llvm::LLVMContext &ctx, const std::string &symbol, double *profile) {
  auto m = std::make_unique<llvm::Module>("nnc." + f.name, ctx);
  Emitter(f, bindings, plan, ctx, *m, profile).emit(symbol);
  std::string err;
  llvm::raw_string_ostream os(err);
  NNC_ASSERT(!llvm::verifyModule(*m, &os)) << "invalid LLVM IR for @" << f.name << ": " << os.str();
  return m;
}

} // namespace nnc::codegen
