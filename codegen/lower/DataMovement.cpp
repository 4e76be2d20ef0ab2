// Data movement: slices, padding, concat, gather/scatter, tables, one_hot, dropout masks.
#include "codegen/Emitter.h"
#include "ir/Tables.h"

#include <cmath>

namespace nnc::codegen {

void Emitter::lowerSliceLike(const ir::Op &op) {
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

void Emitter::lowerGatherScatter(const ir::Op &op) {
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

LV *Emitter::hashIndex(LV *base, LV *i) {
  LV *z = b_.CreateAdd(base, b_.CreateMul(i, b_.getInt64(int64_t(0x9e3779b97f4a7c15ULL))));
  z = b_.CreateMul(b_.CreateXor(z, b_.CreateLShr(z, 30)), b_.getInt64(int64_t(0xbf58476d1ce4e5b9ULL)));
  z = b_.CreateMul(b_.CreateXor(z, b_.CreateLShr(z, 27)), b_.getInt64(int64_t(0x94d049bb133111ebULL)));
  return b_.CreateXor(z, b_.CreateLShr(z, 31));
}

void Emitter::lowerDropoutMask(const ir::Op &op) {
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
          LV *z = hashIndex(base, i);
          LV *u = b_.CreateUIToFP(b_.CreateLShr(z, 40), f32_); // 24 bits: exact in f32
          LV *keep = b_.CreateFCmpOGE(u, cf(p * double(1 << 24)));
          b_.CreateStore(select(keep, cf(1.0 / (1.0 - p)), cf(0.0)), b_.CreateInBoundsGEP(f32_, outPtr, i));
        },
        "i");
  });
}

void Emitter::lowerRandom(const ir::Op &op) {
  const ir::Value *seed = op.operand(0), *dst = op.result;
  int64_t n = ir::numElements(shapeOf(dst));
  bool normal = op.getString("dist") == "normal";
  // Streams of random ops are kept apart from dropout's by an odd offset.
  uint64_t stream = (uint64_t(op.getInt("stream")) * 2 + 1) * 0xd1b54a32d192ed03ULL;
  kernel("random", n, n * (normal ? 40 : 8), [&](LV *ctx, LV *begin, LV *end) {
    LV *seedPtr = basePtr(seed, ctx), *outPtr = basePtr(dst, ctx);
    LV *base = b_.CreateAdd(b_.CreateLoad(i64_, seedPtr), b_.getInt64(int64_t(stream)));
    loop(
        begin, end,
        [&](LV *i) {
          LV *bits = hashIndex(base, i);
          LV *r;
          if (!normal) {
            LV *k = b_.CreateUIToFP(b_.CreateLShr(bits, 40), f32_); // 24 bits: exact in f32
            r = b_.CreateFMul(k, cf(1.0 / double(1 << 24)));        // [0, 1)
          } else {
            // x = 2u - 1 with u = (k + 1/2) / 2^23 for 23 random bits k: every
            // step is exact in f32, and x stays strictly inside (-1, 1).
            LV *k = b_.CreateUIToFP(b_.CreateLShr(bits, 41), f32_);
            LV *x = b_.CreateFSub(b_.CreateFMul(b_.CreateFAdd(k, cf(0.5)), cf(2.0 / double(1 << 23))), cf(1.0));
            LV *w = b_.CreateFNeg(logf(b_.CreateFMul(b_.CreateFSub(cf(1.0), x), b_.CreateFAdd(cf(1.0), x))));
            auto poly = [&](LV *t, std::initializer_list<double> cs) {
              LV *p = nullptr;
              for (double c : cs)
                p = p ? b_.CreateFAdd(cf(c), b_.CreateFMul(p, t)) : cf(c);
              return p;
            };
            LV *lo = poly(b_.CreateFSub(w, cf(2.5)),
                          {2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                           -0.00125372503, -0.00417768164, 0.246640727, 1.50140941});
            LV *sw = call(llvm::Intrinsic::sqrt, w);
            LV *hi = poly(b_.CreateFSub(sw, cf(3.0)),
                          {-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                           -0.0076224613, 0.00943887047, 1.00167406, 2.83297682});
            LV *erfinv = b_.CreateFMul(select(b_.CreateFCmpOLT(w, cf(5.0)), lo, hi), x);
            r = b_.CreateFMul(erfinv, cf(1.4142135623730951));
          }
          b_.CreateStore(r, b_.CreateInBoundsGEP(f32_, outPtr, i));
        },
        "i");
  });
}

void Emitter::lowerTable(const ir::Op &op) {
  std::vector<float> data = ir::tableValues(op);
  int64_t n = int64_t(data.size());
  auto *init = llvm::ConstantDataArray::get(ctx_, llvm::ArrayRef<float>(data));
  auto *table =
      new llvm::GlobalVariable(m_, init->getType(), true, llvm::GlobalValue::PrivateLinkage, init, ir::opName(op.kind));
  const ir::Value *dst = op.result;
  kernel(ir::opName(op.kind), n, n, [&](LV *ctx, LV *begin, LV *end) {
    LV *out = basePtr(dst, ctx);
    LV *src = b_.CreateBitCast(table, f32_->getPointerTo());
    loop(
        begin, end, [&](LV *i) { b_.CreateStore(ld(src, i), at(out, i)); }, "i");
  });
}

void Emitter::lowerOneHot(const ir::Op &op) {
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

} // namespace nnc::codegen
