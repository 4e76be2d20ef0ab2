// The Emitter's shared helpers: the entry function, buffers (arguments,
// results, arena, scan steps, alias scopes), kernels and the thread pool
// call, loops, and the dispatch of each op to its family's lowering.
#include "codegen/Emitter.h"

#include <llvm/IR/MDBuilder.h>

namespace nnc::codegen {

Emitter::Emitter(const ir::Function &f, const ir::Bindings &b, const MemoryPlan &plan, llvm::LLVMContext &ctx,
                 llvm::Module &m, double *profile)
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

void Emitter::emit(const std::string &symbol) {
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

void Emitter::profileMark(int64_t index) {
  if (!profile_)
    return;
  auto *fnTy = llvm::FunctionType::get(b_.getVoidTy(), {b_.getDoubleTy()->getPointerTo(), i64_}, false);
  llvm::FunctionCallee mark = m_.getOrInsertFunction("nnc_rt_profile_mark", fnTy);
  LV *table =
      b_.CreateIntToPtr(b_.getInt64(int64_t(reinterpret_cast<uintptr_t>(profile_))), b_.getDoubleTy()->getPointerTo());
  b_.CreateCall(mark, {table, b_.getInt64(index)});
}

void Emitter::profileMark(const ir::Op *op) {
  if (profile_)
    profileMark(int64_t(layout_.slot.at(op)));
}

LV *Emitter::basePtr(const ir::Value *v, LV *ctx) {
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

LV *Emitter::scanStepPtr(const Storage &s, LV *ctx) {
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

int64_t Emitter::storageKey(const Storage &s) {
  return s.kind == Storage::Arg ? -1 - s.index : s.kind == Storage::Result ? -1000000 - s.index : s.offset;
}

void Emitter::addAliasScopes(llvm::Function *fn) {
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

LV *Emitter::resultPtr(int j, llvm::Type *ety, LV *ctx) {
  LV *bufs = b_.CreateLoad(i8p_->getPointerTo(), b_.CreateStructGEP(ctxTy_, ctx, 0), "bufs");
  LV *raw = b_.CreateLoad(i8p_, b_.CreateConstInBoundsGEP1_64(i8p_, bufs, uint64_t(f_.args.size() + size_t(j))));
  LV *typed = b_.CreateBitCast(raw, ety->getPointerTo());
  bufferOf_[typed] = storageKey(Storage{Storage::Result, j});
  return typed;
}

void Emitter::loop(LV *lo, LV *hi, const std::function<void(LV *)> &body, const char *name, bool vectorize) {
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

void Emitter::loop(int64_t n, const std::function<void(LV *)> &body, const char *name, bool vectorize) {
  loop(b_.getInt64(0), b_.getInt64(n), body, name, vectorize);
}

llvm::Function *Emitter::makeKernel(const std::string &what,
                                    const std::function<void(LV *ctx, LV *begin, LV *end)> &body) {
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

void Emitter::kernel(const std::string &what, int64_t n, int64_t work,
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

std::vector<LV *>
Emitter::smallCarryLoop(int64_t len, const std::vector<LV *> &init,
                        const std::function<std::vector<LV *>(const std::vector<LV *> &, LV *)> &step) {
  if (len > 16)
    return carryLoop(len, init, step);
  std::vector<LV *> v = init;
  for (int64_t i = 0; i < len; ++i)
    v = step(v, b_.getInt64(i));
  return v;
}

std::vector<LV *> Emitter::carryLoop(int64_t len, const std::vector<LV *> &init,
                                     const std::function<std::vector<LV *>(const std::vector<LV *> &, LV *)> &step) {
  return carryLoop(b_.getInt64(0), b_.getInt64(len), init, step);
}

std::vector<LV *> Emitter::carryLoop(LV *lo, LV *hi, const std::vector<LV *> &init,
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

LV *Emitter::reduceRow(int64_t len, LV *init, const std::function<LV *(LV *, LV *)> &step) {
  return carryLoop(len, {init}, [&](const std::vector<LV *> &v, LV *j) { return std::vector<LV *>{step(v[0], j)}; })[0];
}

void Emitter::zeroFill(LV *base, LV *from, int64_t n) {
  loop(
      n, [&](LV *i) { b_.CreateStore(cf(0.0), at(base, b_.CreateAdd(from, i))); }, "z");
}

LV *Emitter::arenaPtr(int64_t off, LV *ctx) {
  LV *arena = b_.CreateLoad(i8p_, b_.CreateStructGEP(ctxTy_, ctx, 1), "arena");
  LV *typed =
      b_.CreateBitCast(b_.CreateConstInBoundsGEP1_64(b_.getInt8Ty(), arena, uint64_t(off)), f32_->getPointerTo());
  bufferOf_[typed] = off;
  return typed;
}

void Emitter::lowerStep(const Step &step) {
  if (step.size() > 1)
    return lowerFused(step);
  lowerOp(*step[0]);
}

void Emitter::lowerOp(const ir::Op &op) {
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
  case ir::OpKind::Random:
    return lowerRandom(op);
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

void Emitter::copyResult(int j) {
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

} // namespace nnc::codegen
