// Reductions and the row-wise ops (softmax, log_softmax, argmax).
#include "codegen/Emitter.h"

#include <limits>

namespace nnc::codegen {

void Emitter::lowerReduce(const ir::Op &op) {
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

void Emitter::lowerRowwise(const ir::Op &op) {
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

} // namespace nnc::codegen
