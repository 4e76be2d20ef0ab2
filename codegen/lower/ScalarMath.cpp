// Scalar functions: exp, log, tanh, erf and every elementwise op.
#include "codegen/Emitter.h"

#include <limits>

namespace nnc::codegen {

LV *Emitter::expf(LV *x) {
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

LV *Emitter::logf(LV *x) {
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

LV *Emitter::tanhf(LV *x) {
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

LV *Emitter::erff(LV *x) {
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

LV *Emitter::scalarOp(ir::OpKind k, const std::vector<LV *> &a) {
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
  case K::Maximum: // a NaN in either operand gives NaN, as torch.maximum
    return select(b_.CreateFCmpUNO(a[1], a[1]), a[1], select(b_.CreateFCmpUGE(a[0], a[1]), a[0], a[1]));
  case K::Minimum: // a NaN in either operand gives NaN, as torch.minimum
    return select(b_.CreateFCmpUNO(a[1], a[1]), a[1], select(b_.CreateFCmpULE(a[0], a[1]), a[0], a[1]));
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
  case K::StopGradient:
    return a[0]; // compiled code is in training mode unless eval-mode ran
  default:
    NNC_UNREACHABLE("not an elementwise op: " << ir::opName(k));
  }
}

} // namespace nnc::codegen
