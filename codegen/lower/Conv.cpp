// Convolutions (im2col + GEMM) and their gradients.
#include "codegen/Emitter.h"

namespace nnc::codegen {

std::pair<LV *, LV *> Emitter::validRange(LV *off, int64_t stride, int64_t in, int64_t out) {
  LV *zero = b_.getInt64(0);
  LV *lo = select(b_.CreateICmpSGE(off, zero), zero,
                  b_.CreateSDiv(b_.CreateAdd(b_.CreateNeg(off), b_.getInt64(stride - 1)), b_.getInt64(stride)));
  LV *top = b_.CreateSub(b_.getInt64(in - 1), off);
  LV *n = b_.CreateAdd(b_.CreateSDiv(top, b_.getInt64(stride)), b_.getInt64(1));
  n = select(b_.CreateICmpSLT(n, b_.getInt64(out)), n, b_.getInt64(out));
  LV *hi = select(b_.CreateICmpSLT(top, zero), zero, n);
  return {lo, hi};
}

Emitter::ConvGeom Emitter::convGeom(const ir::Op &op) {
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

void Emitter::forEachTap(const ConvGeom &g, const std::function<void(LV *, LV *, LV *, LV *, LV *, LV *, LV *)> &body) {
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

void Emitter::im2col(const ConvGeom &g, LV *x, LV *col, LV *n, bool toImage) {
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

void Emitter::lowerConv(const ir::Op &op) {
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

} // namespace nnc::codegen
