// Max and average pooling and their gradients.
#include "codegen/Emitter.h"

#include <limits>

namespace nnc::codegen {

void Emitter::lowerPool(const ir::Op &op) {
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
                              LV *idx =
                                  b_.CreateAdd(mulC(select(ok, ih, b_.getInt64(0)), W), select(ok, iw, b_.getInt64(0)));
                              if (!isMax)
                                return std::vector<LV *>{
                                    b_.CreateFAdd(u[0], select(ok, ld(in, b_.CreateAdd(xPlane, idx)), cf(0.0)))};
                              LV *kv = ld(key, b_.CreateAdd(xPlane, idx));
                              LV *better = b_.CreateOr(b_.CreateFCmpOGT(kv, u[0]), b_.CreateFCmpUNO(kv, kv));
                              LV *take = b_.CreateAnd(ok, b_.CreateOr(b_.CreateICmpSLT(u[1], b_.getInt64(0)), better));
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

} // namespace nnc::codegen
