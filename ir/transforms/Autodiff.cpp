// Reverse-mode symbolic differentiation on the graph IR.
//
// Algorithm: clone the function; mark the values that depend on a
// differentiated argument (forward sweep); seed the adjoint of the output with
// 1; walk the ops backwards, and for each op whose result has an adjoint apply
// the op's vector-Jacobian rule, which emits ordinary IR ops and accumulates
// (adds) into the adjoints of the operands that need one. Broadcasting in
// elementwise ops is undone with Builder::sumTo. The result is a plain function
// that the simplifier optimizes like any other.
#include "ir/transforms/Passes.h"

#include "ir/Builder.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

namespace nnc::ir {
namespace {

class Differentiator {
public:
  Differentiator(Module &m, Function &g, std::unordered_set<const Value *> needsGrad)
      : m_(m), g_(g), b_(g), needs_(std::move(needsGrad)) {}

  /// Seeds the adjoint of `output` with `seed` (1 when null) and runs the
  /// reverse sweep.
  void run(Value *output, Value *seed = nullptr) {
    adj_[output] = seed ? seed : b_.constant(1.0);
    // Snapshot the forward ops: the rules append new ops to the function.
    std::vector<Op *> forward;
    for (auto &op : g_.ops)
      forward.push_back(op.get());
    for (auto it = forward.rbegin(); it != forward.rend(); ++it) {
      Op *op = *it;
      auto a = adj_.find(op->result);
      if (a == adj_.end() || hasTrait(op->kind, OpTrait::NoGrad))
        continue;
      b_.setLoc(op->loc);
      rule(*op, a->second);
    }
  }

  Value *adjoint(Value *v) {
    auto it = adj_.find(v);
    return it == adj_.end() ? nullptr : it->second;
  }

  /// `v`, or the value that replaced it in the function (a loop rebuilt to
  /// save values for the backward pass).
  Value *current(Value *v) const {
    for (auto it = replaced_.find(v); it != replaced_.end(); it = replaced_.find(v))
      v = it->second;
    return v;
  }

private:
  bool wants(Value *v) const { return needs_.count(v) != 0; }

  void accumulate(Value *v, Value *contribution) {
    if (!wants(v))
      return;
    NNC_ASSERT(contribution->type.shape == v->type.shape)
        << "adjoint shape " << contribution->type.str() << " for value of type " << v->type.str();
    auto it = adj_.find(v);
    if (it == adj_.end())
      adj_[v] = contribution;
    else
      it->second = b_.add(it->second, contribution);
  }

  /// The adjoint of a reduction output, reshaped so that it broadcasts over
  /// the reduced input.
  Value *keepDims(const Op &op, Value *g) {
    if (op.getBool("keepdims"))
      return g;
    Shape s = op.operand(0)->type.shape;
    for (int64_t a : op.getInts("axes"))
      s[a] = Dim(1);
    return b_.reshape(g, s);
  }

  void rule(const Op &op, Value *g) {
    Value *y = op.result;
    Value *a = op.operands.empty() ? nullptr : op.operand(0);
    Value *bv = op.operands.size() > 1 ? op.operand(1) : nullptr;
    switch (op.kind) {
    case OpKind::Add: // d(a+b) = g, g
      accumulate(a, b_.sumTo(g, a->type.shape));
      accumulate(bv, b_.sumTo(g, bv->type.shape));
      return;
    case OpKind::Sub: // d(a-b) = g, -g
      accumulate(a, b_.sumTo(g, a->type.shape));
      if (wants(bv))
        accumulate(bv, b_.sumTo(b_.neg(g), bv->type.shape));
      return;
    case OpKind::Mul: // d(a*b) = g*b, g*a
      if (wants(a))
        accumulate(a, b_.sumTo(b_.mul(g, bv), a->type.shape));
      if (wants(bv))
        accumulate(bv, b_.sumTo(b_.mul(g, a), bv->type.shape));
      return;
    case OpKind::Div: // d(a/b) = g/b, -g*a/b^2 = -(g*y)/b
      if (wants(a))
        accumulate(a, b_.sumTo(b_.div(g, bv), a->type.shape));
      if (wants(bv))
        accumulate(bv, b_.sumTo(b_.neg(b_.div(b_.mul(g, y), bv)), bv->type.shape));
      return;
    case OpKind::Maximum: { // d max(a,b) = g*[a>b], g*[a<=b]
      Value *mask = b_.unary(OpKind::Step, b_.sub(a, bv));
      if (wants(a))
        accumulate(a, b_.sumTo(b_.mul(g, mask), a->type.shape));
      if (wants(bv))
        accumulate(bv, b_.sumTo(b_.mul(g, b_.sub(b_.constant(1.0), mask)), bv->type.shape));
      return;
    }
    case OpKind::Minimum: { // d min(a,b) = g*[a<b], g*[a>=b]: ties go to b, as for maximum
      Value *mask = b_.unary(OpKind::Step, b_.sub(bv, a));
      if (wants(a))
        accumulate(a, b_.sumTo(b_.mul(g, mask), a->type.shape));
      if (wants(bv))
        accumulate(bv, b_.sumTo(b_.mul(g, b_.sub(b_.constant(1.0), mask)), bv->type.shape));
      return;
    }
    case OpKind::Neg: // d(-a) = -g
      accumulate(a, b_.neg(g));
      return;
    case OpKind::Exp: // d exp(a) = g*exp(a) = g*y
      accumulate(a, b_.mul(g, y));
      return;
    case OpKind::Log: // d log(a) = g/a
      accumulate(a, b_.div(g, a));
      return;
    case OpKind::Sqrt: // d sqrt(a) = g/(2*sqrt(a)) = g/(2y)
      accumulate(a, b_.div(g, b_.mul(b_.constant(2.0), y)));
      return;
    case OpKind::Abs: // d |a| = g*sign(a)
      accumulate(a, b_.mul(g, b_.unary(OpKind::Sign, a)));
      return;
    case OpKind::Relu: // d relu(a) = g*[a>0]
      accumulate(a, b_.mul(g, b_.unary(OpKind::Step, a)));
      return;
    case OpKind::Sigmoid: // d sigmoid(a) = g*y*(1-y)
      accumulate(a, b_.mul(g, b_.mul(y, b_.sub(b_.constant(1.0), y))));
      return;
    case OpKind::Tanh: // d tanh(a) = g*(1-y^2)
      accumulate(a, b_.mul(g, b_.sub(b_.constant(1.0), b_.mul(y, y))));
      return;
    case OpKind::Erf: // d erf(a) = g * 2/sqrt(pi) * exp(-a^2)
      accumulate(a, b_.mul(g, b_.mul(b_.constant(1.1283791670955126), b_.unary(OpKind::Exp, b_.neg(b_.mul(a, a))))));
      return;
    case OpKind::ReduceSum: // d sum(a) = g broadcast back over the reduced axes
      accumulate(a, b_.broadcast(keepDims(op, g), a->type.shape));
      return;
    case OpKind::ReduceMean: { // d mean(a) = broadcast(g) / count
      Shape reduced;
      for (int64_t ax : op.getInts("axes"))
        reduced.push_back(a->type.shape[ax]);
      Value *scale = b_.create(OpKind::Const, {}, {{"value", 1.0}, {"divisor", reduced}});
      accumulate(a, b_.mul(b_.broadcast(keepDims(op, g), a->type.shape), scale));
      return;
    }
    case OpKind::ReduceMax: { // d max(a) = g shared equally among the maxima
      std::vector<int64_t> axes = op.getInts("axes");
      Value *yk = keepDims(op, y);
      Value *mask = b_.create(OpKind::Equal, {a, yk});
      Value *count = b_.reduce(OpKind::ReduceSum, mask, axes, /*keepdims=*/true);
      accumulate(a, b_.mul(b_.div(mask, count), keepDims(op, g)));
      return;
    }
    case OpKind::Softmax: { // d softmax(a) = y*(g - sum(g*y))
      int64_t last = int64_t(a->type.rank()) - 1;
      Value *dot = b_.reduce(OpKind::ReduceSum, b_.mul(g, y), {last}, true);
      accumulate(a, b_.mul(y, b_.sub(g, dot)));
      return;
    }
    case OpKind::LogSoftmax: { // d logsoftmax(a) = g - exp(y)*sum(g)
      int64_t last = int64_t(a->type.rank()) - 1;
      Value *sum = b_.reduce(OpKind::ReduceSum, g, {last}, true);
      accumulate(a, b_.sub(g, b_.mul(b_.unary(OpKind::Exp, y), sum)));
      return;
    }
    case OpKind::Broadcast: // d broadcast(a) = sum of g over the broadcast axes
      accumulate(a, b_.sumTo(g, a->type.shape));
      return;
    case OpKind::Reshape: // d reshape(a) = reshape(g) back
      accumulate(a, b_.reshape(g, a->type.shape));
      return;
    case OpKind::Transpose: { // d transpose(a, p) = transpose(g, p^-1)
      std::vector<int64_t> perm = op.getInts("perm"), inv(perm.size());
      for (size_t i = 0; i < perm.size(); ++i)
        inv[perm[i]] = int64_t(i);
      accumulate(a, b_.transpose(g, inv));
      return;
    }
    case OpKind::ModeSelect: // training takes the first operand: d = g, 0
      accumulate(a, g);
      return;
    case OpKind::Slice: { // d slice(a) = g padded back with zeros
      int64_t axis = op.getInt("axis"), dim = a->type.shape[axis].size;
      accumulate(a, b_.create(OpKind::Pad, {g},
                              {{"axis", axis}, {"before", op.getInt("start")}, {"after", dim - op.getInt("end")}}));
      return;
    }
    case OpKind::Pad: { // d pad(a) = the slice of g where a sits
      int64_t axis = op.getInt("axis"), before = op.getInt("before");
      accumulate(a, b_.create(OpKind::Slice, {g},
                              {{"axis", axis}, {"start", before}, {"end", before + a->type.shape[axis].size}}));
      return;
    }
    case OpKind::Concat: { // d concat(a, b) = the two slices of g
      int64_t axis = op.getInt("axis"), na = a->type.shape[axis].size, nb = bv->type.shape[axis].size;
      if (wants(a))
        accumulate(a, b_.create(OpKind::Slice, {g}, {{"axis", axis}, {"start", int64_t(0)}, {"end", na}}));
      if (wants(bv))
        accumulate(bv, b_.create(OpKind::Slice, {g}, {{"axis", axis}, {"start", na}, {"end", na + nb}}));
      return;
    }
    case OpKind::Gather: // d gather(T, ids) = scatter_add(g, ids) into T's
                         // rows; ids get none
      accumulate(a, b_.create(OpKind::ScatterAdd, {g, bv}, {{"rows", a->type.shape[0].size}}));
      return;
    case OpKind::ScatterAdd: // d scatter_add(u, ids) = gather(g, ids)
      accumulate(a, b_.create(OpKind::Gather, {g, bv}));
      return;
    case OpKind::MatMul: {
      // y = op(A) op(B); with op = transpose where ta/tb is set:
      //   ta=0 tb=0: dA = g Bᵀ      dB = Aᵀ g
      //   ta=0 tb=1: dA = g B       dB = gᵀ A
      //   ta=1 tb=0: dA = B gᵀ      dB = A g
      //   ta=1 tb=1: dA = Bᵀ gᵀ     dB = gᵀ Aᵀ
      bool ta = op.getBool("ta"), tb = op.getBool("tb");
      if (wants(a)) {
        Value *da = !ta ? b_.matmul(g, bv, false, !tb) : b_.matmul(bv, g, tb, true);
        accumulate(a, da);
      }
      if (wants(bv)) {
        Value *db = !tb ? b_.matmul(a, g, !ta, false) : b_.matmul(g, a, true, ta);
        accumulate(bv, db);
      }
      return;
    }
    case OpKind::Conv2D:
    case OpKind::Conv2DGradInput:
    case OpKind::Conv2DGradWeight:
      return convRule(op, g);
    case OpKind::Scan:
      return scanRule(op, g);
    case OpKind::MaxPool2D: // the gradient goes to each window's maximum
    case OpKind::MaxPool2DPick:
      accumulate(a, b_.create(OpKind::MaxPool2DGrad, {g, op.operands.back()}, op.attrs));
      return;
    case OpKind::MaxPool2DGrad: // linear in dy; piecewise constant in x
      accumulate(a, b_.create(OpKind::MaxPool2DPick, {g, bv}, op.attrs));
      return;
    case OpKind::AvgPool2D: {
      Attrs at = op.attrs;
      at["size"] = std::vector<int64_t>{a->type.shape[2].size, a->type.shape[3].size};
      accumulate(a, b_.create(OpKind::AvgPool2DGrad, {g}, at));
      return;
    }
    case OpKind::AvgPool2DGrad: {
      Attrs at = op.attrs;
      at.erase("size");
      accumulate(a, b_.create(OpKind::AvgPool2D, {g}, at));
      return;
    }
    case OpKind::Const:
    case OpKind::CausalMask:
    case OpKind::Sinusoid:
    case OpKind::DropoutMask:
    case OpKind::Random:
    case OpKind::StopGradient:
    case OpKind::Equal:
    case OpKind::Sign:
    case OpKind::Step:
    case OpKind::Cast:
    case OpKind::ArgMax:
    case OpKind::OneHot:
      return; // not differentiable (filtered by NoGrad) or constant
    }
    NNC_UNREACHABLE("no gradient rule for " << opName(op.kind));
  }

  /// conv2d and its two adjoints are bilinear, and each one's partial
  /// derivatives are the other two (with the window attributes kept):
  ///   y  = conv2d(x, w)               dx = grad_input(g, w)   dw =
  ///   grad_weight(g, x) x' = grad_input(dy, w)          ddy = conv2d(g, w) dw
  ///   = grad_weight(dy, g) w' = grad_weight(dy, x)         ddy = conv2d(x, g)
  ///   dx = grad_input(dy, g)
  void convRule(const Op &op, Value *g) {
    Value *a = op.operand(0), *b = op.operand(1);
    Attrs win = op.attrs;
    win.erase("size");
    win.erase("kernel");
    auto withSize = [&](const Value *img) {
      Attrs at = win;
      at["size"] = std::vector<int64_t>{img->type.shape[2].size, img->type.shape[3].size};
      return at;
    };
    auto withKernel = [&](const Value *w) {
      Attrs at = win;
      at["kernel"] = std::vector<int64_t>{w->type.shape[2].size, w->type.shape[3].size};
      return at;
    };
    switch (op.kind) {
    case OpKind::Conv2D: // a = x, b = w
      if (wants(a))
        accumulate(a, b_.create(OpKind::Conv2DGradInput, {g, b}, withSize(a)));
      if (wants(b))
        accumulate(b, b_.create(OpKind::Conv2DGradWeight, {g, a}, withKernel(b)));
      return;
    case OpKind::Conv2DGradInput: // a = dy, b = w; g is shaped like x
      if (wants(a))
        accumulate(a, b_.create(OpKind::Conv2D, {g, b}, win));
      if (wants(b))
        accumulate(b, b_.create(OpKind::Conv2DGradWeight, {a, g}, withKernel(b)));
      return;
    case OpKind::Conv2DGradWeight: // a = dy, b = x; g is shaped like w
      if (wants(a))
        accumulate(a, b_.create(OpKind::Conv2D, {b, g}, win));
      if (wants(b))
        accumulate(b, b_.create(OpKind::Conv2DGradInput, {a, g}, withSize(b)));
      return;
    default:
      NNC_UNREACHABLE("not a convolution");
    }
  }

  //--- scan ---------------------------------------------------------------

  /// A fresh function name in the module.
  std::string freshName(const std::string &base) {
    for (int i = 0;; ++i) {
      std::string n = base + (i ? "." + std::to_string(i) : "");
      if (!m_.get(n))
        return n;
    }
  }

  /// Clones `src`'s ops into `dst`, with src's arguments named in `args`
  /// mapped to the given values; returns the image of src's first result.
  static Value *inlineInto(Function &dst, const Function &src, const std::map<std::string, Value *> &args) {
    std::unordered_map<const Value *, Value *> map;
    for (Value *a : src.args)
      map[a] = args.at(a->name);
    map = dst.cloneBody(src, map);
    return map.at(src.results[0]);
  }

  /// The reverse-mode rule of a loop is itself made of loops. With f the
  /// body, c_t the carry after step t (result[t]) and g the adjoint of the
  /// result, for mode carry (steps in order t = 0..T-1; mirrored for
  /// reverse):
  ///   Abar[t] = g[t] + VJP_c f(c_t, x[t+1], w)(Abar[t+1])   a scan in the
  ///             opposite direction (x[T] and Abar[T] are zero)
  ///   dx[t]   = VJP_x f(c_{t-1}, x[t], w)(Abar[t])         a map over t
  ///   dw      = sum_t VJP_w f(c_{t-1}, x[t], w)(Abar[t])   a sum over t
  ///   dinit   = VJP_c f(init, x[0], w)(Abar[0])            one step, inline
  /// Each new body recomputes what it needs of f's forward step, except the
  /// values the forward loop is rebuilt to keep beside its carry (products
  /// with the carry and the sums they feed, see savedValues): those are read
  /// as sequences z[t], and sequences the bodies no longer read are dropped.
  /// Modes map and sum need only the last two (with g[t], or g, as Abar[t]).
  void scanRule(const Op &op, Value *g) {
    const Function &f = *op.body;
    std::string mode = op.getString("mode");
    bool carry = mode == "carry", sum = mode == "sum", reverse = op.getBool("reverse");
    size_t first = carry ? 1 : 0, nseq = size_t(op.getInt("nseq")), ninv = op.operands.size() - first - nseq;
    int64_t T = op.operand(first)->type.shape[0].size;

    // VJP of the body in a scratch module: args (f's args..., adj), results
    // d.<arg> for every f32 argument.
    Module scratch;
    Function *vjp = scratch.addFunction(f.name + ".vjp");
    std::unordered_map<const Value *, Value *> map;
    std::vector<Value *> fargs;
    for (size_t i = 0; i < f.args.size(); ++i) {
      fargs.push_back(vjp->addArg("a" + std::to_string(i), f.args[i]->type, ArgRole::Input));
      map[f.args[i]] = fargs.back();
    }
    Value *seed = vjp->addArg("adj", f.results[0]->type, ArgRole::Input);
    map = vjp->cloneBody(f, map);
    std::unordered_set<const Value *> needs(fargs.begin(), fargs.end());
    for (auto &o : vjp->ops)
      if (!hasTrait(o->kind, OpTrait::NoGrad))
        for (Value *v : o->operands)
          if (needs.count(v)) {
            needs.insert(o->result);
            break;
          }
    Differentiator d(scratch, *vjp, needs);
    d.run(map.at(f.results[0]), seed);
    Builder vb(*vjp);
    for (size_t i = 0; i < fargs.size(); ++i) {
      Value *adj = d.adjoint(fargs[i]);
      vjp->addResult("d" + std::to_string(i), adj ? adj : vb.constant(0.0, fargs[i]->type.shape));
    }
    // Values the forward loop keeps for the backward loops (see savedValues):
    // the VJP reads them as arguments z0, z1, ... instead of computing them.
    Users users = usersOf(f);
    std::vector<const Value *> saved = carry ? savedValues(f, users) : std::vector<const Value *>{};
    for (size_t k = 0; k < saved.size(); ++k) {
      Value *zv = map.at(saved[k]);
      vjp->replaceAllUses(zv, vjp->addArg("z" + std::to_string(k), zv->type, ArgRole::Input));
    }
    auto part = [&](size_t i) { return extractResults(scratch, *vjp, {"d" + std::to_string(i)}, vjp->name + ".d"); };

    // Steps of the sequences and the carry as whole sequences [T, ...].
    auto stepShape = [](const Value *v) { return Shape(v->type.shape.begin() + 1, v->type.shape.end()); };
    auto withSteps = [&](const Shape &s, int64_t n) {
      Shape r = s;
      r.insert(r.begin(), Dim(n));
      return r;
    };
    auto sliceSteps = [&](Value *v, int64_t a, int64_t b) {
      return b_.create(OpKind::Slice, {v}, {{"axis", int64_t(0)}, {"start", a}, {"end", b}});
    };
    auto stepAt = [&](Value *v, int64_t t) { return b_.reshape(sliceSteps(v, t, t + 1), stepShape(v)); };

    std::vector<Value *> seqs(op.operands.begin() + long(first), op.operands.begin() + long(first + nseq));
    std::vector<Value *> invs(op.operands.begin() + long(first + nseq), op.operands.end());
    Value *abar = g; // the adjoint flowing into each step's result
    Value *cprev = nullptr;
    std::vector<Value *> savedSeqs; // [T, ...] for each saved value
    if (carry) {
      Value *init = op.operand(0), *y = op.result;
      if (!saved.empty()) {
        std::tie(y, savedSeqs) = saveInForwardLoop(op, saved);
      }
      Value *init1 = b_.reshape(init, withSteps(init->type.shape, 1));
      // c_{t-1} for every step (mirrored when reverse).
      cprev = T == 1    ? init1
              : reverse ? b_.create(OpKind::Concat, {sliceSteps(y, 1, T), init1}, {{"axis", int64_t(0)}})
                        : b_.create(OpKind::Concat, {init1, sliceSteps(y, 0, T - 1)}, {{"axis", int64_t(0)}});
      // x (and saved values) of the step after each step (zeros after the last).
      auto nextSteps = [&](Value *x) {
        if (T == 1)
          return b_.constant(0.0, x->type.shape);
        if (reverse)
          return b_.create(OpKind::Pad, {sliceSteps(x, 0, T - 1)},
                           {{"axis", int64_t(0)}, {"before", int64_t(1)}, {"after", int64_t(0)}});
        return b_.create(OpKind::Pad, {sliceSteps(x, 1, T)},
                         {{"axis", int64_t(0)}, {"before", int64_t(0)}, {"after", int64_t(1)}});
      };
      // Abar: a carry scan in the other direction with body
      // R(a, g_t, c_t, xnext_t..., w...) = g_t + VJP_c(c_t, xnext_t..., w...)(a).
      Function *dc = part(0);
      Function *r = m_.addFunction(freshName(f.name + ".adj"));
      Shape cs = init->type.shape;
      Value *a = r->addArg("a", init->type, ArgRole::Input);
      Value *gt = r->addArg("g", init->type, ArgRole::Input);
      Value *ct = r->addArg("c", init->type, ArgRole::Input);
      std::map<std::string, Value *> args{{"a0", ct}, {"adj", a}};
      std::vector<Value *> operands{b_.constant(0.0, cs), g, y};
      // Sequences the body does not read are dropped below, before the
      // shifted copies are made.
      std::vector<Value *> nextOf;
      for (size_t i = 0; i < nseq; ++i) {
        args["a" + std::to_string(1 + i)] = r->addArg("x" + std::to_string(i), f.args[1 + i]->type, ArgRole::Input);
        nextOf.push_back(seqs[i]);
      }
      for (size_t k = 0; k < saved.size(); ++k) {
        args["z" + std::to_string(k)] = r->addArg("z" + std::to_string(k), saved[k]->type, ArgRole::Input);
        nextOf.push_back(savedSeqs[k]);
      }
      for (size_t j = 0; j < ninv; ++j)
        args["a" + std::to_string(1 + nseq + j)] =
            r->addArg("w" + std::to_string(j), f.args[1 + nseq + j]->type, ArgRole::Input);
      Value *back = inlineInto(*r, *dc, args);
      Builder rb(*r);
      r->addResult("a", rb.add(gt, back));
      std::vector<bool> used = r->argsUsed();
      for (size_t i = 0; i < nextOf.size(); ++i)
        operands.push_back(used[3 + i] ? nextSteps(nextOf[i]) : nullptr);
      operands.insert(operands.end(), invs.begin(), invs.end());
      int64_t nseqR = int64_t(2 + nextOf.size());
      dropUnusedArgs(*r, operands, nseqR, true);
      abar = scan(r, "carry", !reverse, operands, nseqR, cs);
      if (wants(init)) {
        int64_t t0 = reverse ? T - 1 : 0;
        std::map<std::string, Value *> at{{"a0", init}, {"adj", stepAt(abar, t0)}};
        for (size_t i = 0; i < nseq; ++i)
          at["a" + std::to_string(1 + i)] = stepAt(seqs[i], t0);
        for (size_t j = 0; j < ninv; ++j)
          at["a" + std::to_string(1 + nseq + j)] = invs[j];
        for (size_t k = 0; k < saved.size(); ++k)
          at["z" + std::to_string(k)] = stepAt(savedSeqs[k], t0);
        accumulate(init, inlineInto(g_, *dc, at));
      }
    }
    // dx and dw: maps and sums over the steps, with body
    // B(c_{t-1}?, x_t..., abar_t, w...) = VJP_arg f(c_{t-1}?, x_t..., w...)(abar_t).
    // In mode sum every step's adjoint is g itself (an invariant).
    auto adjointLoop = [&](size_t argIndex, bool toSum) {
      Function *dpart = part(argIndex);
      Function *bfun = m_.addFunction(freshName(f.name + (toSum ? ".dsum" : ".dmap")));
      std::map<std::string, Value *> args;
      std::vector<Value *> operands;
      if (carry) {
        args["a0"] = bfun->addArg("c", f.args[0]->type, ArgRole::Input);
        operands.push_back(cprev);
      }
      for (size_t i = 0; i < nseq; ++i) {
        args["a" + std::to_string(first + i)] =
            bfun->addArg("x" + std::to_string(i), f.args[first + i]->type, ArgRole::Input);
        operands.push_back(seqs[i]);
      }
      for (size_t k = 0; k < saved.size(); ++k) {
        args["z" + std::to_string(k)] = bfun->addArg("z" + std::to_string(k), saved[k]->type, ArgRole::Input);
        operands.push_back(savedSeqs[k]);
      }
      size_t nseqHere = operands.size();
      if (!sum) {
        args["adj"] = bfun->addArg("adj", f.results[0]->type, ArgRole::Input);
        operands.push_back(abar);
        ++nseqHere;
      }
      for (size_t j = 0; j < ninv; ++j) {
        args["a" + std::to_string(first + nseq + j)] =
            bfun->addArg("w" + std::to_string(j), f.args[first + nseq + j]->type, ArgRole::Input);
        operands.push_back(invs[j]);
      }
      if (sum) {
        args["adj"] = bfun->addArg("adj", f.results[0]->type, ArgRole::Input);
        operands.push_back(g);
      }
      bfun->addResult("d", inlineInto(*bfun, *dpart, args));
      int64_t n = int64_t(nseqHere);
      dropUnusedArgs(*bfun, operands, n, false);
      return scan(bfun, toSum ? "sum" : "map", false, operands, n, f.args[argIndex]->type.shape);
    };
    std::vector<Value *> seqAdj(nseq, nullptr);
    auto seqAdjoint = [&](size_t i) {
      if (!seqAdj[i])
        seqAdj[i] = adjointLoop(first + i, false);
      return seqAdj[i];
    };
    for (size_t i = 0; i < nseq; ++i)
      if (wants(seqs[i]))
        accumulate(seqs[i], seqAdjoint(i));
    // The recurrent weight of a cell whose step computes x_t + u(c_{t-1}) W
    // (the gates of rnn and lstm): the adjoint of that product at step t is
    // the adjoint of x_t, so dW = sum_t u(c_{t-1})ᵀ dx_t is one matrix
    // product over all steps at once instead of a loop that runs the cell
    // again at every step.
    auto stackedWeightGrad = [&](size_t j) -> Value * {
      if (!carry)
        return nullptr;
      const Value *w = f.args[first + nseq + j], *c = f.args[0];
      auto only = [&](const Value *v) { return users[v].size() == 1 ? users[v][0] : nullptr; };
      const Op *mm = only(w);
      if (!mm || mm->kind != OpKind::MatMul || mm->operand(1) != w || mm->operand(0) == w || mm->getBool("ta") ||
          mm->getBool("tb") || w->type.rank() != 2)
        return nullptr;
      const Value *u = mm->operand(0);
      const Op *sum = only(mm->result);
      if (!sum || sum->kind != OpKind::Add || sum->result->type != mm->result->type)
        return nullptr;
      const Value *x = sum->operand(0) == mm->result ? sum->operand(1) : sum->operand(0);
      size_t i = size_t(std::find(f.args.begin(), f.args.end(), x) - f.args.begin());
      if (i < first || i >= first + nseq || x->type != mm->result->type || only(x) != sum)
        return nullptr;
      Value *outerU = nullptr; // u(c_{t-1}) for every step
      if (u == c)
        outerU = cprev;
      else if (u->def && u->def->kind == OpKind::Slice && u->def->operand(0) == c)
        outerU = b_.create(
            OpKind::Slice, {cprev},
            {{"axis", u->def->getInt("axis") + 1}, {"start", u->def->getInt("start")}, {"end", u->def->getInt("end")}});
      if (!outerU)
        return nullptr;
      Value *prod = b_.matmul(outerU, seqAdjoint(i - first), /*ta=*/true);
      return b_.reduce(OpKind::ReduceSum, prod, {0}, false);
    };
    for (size_t j = 0; j < ninv; ++j)
      if (wants(invs[j])) {
        Value *dw = stackedWeightGrad(j);
        accumulate(invs[j], dw ? dw : adjointLoop(first + nseq + j, true));
      }
  }

  /// Values of a carry loop's step that its backward loops would otherwise
  /// compute again from the carry, at the cost of a matrix product: each
  /// product that depends on the carry, followed through additions of terms
  /// that do not (the gates' x_t + h W + b). Only those that can sit beside
  /// the carry (same dims but the last, which is static) are kept.
  static std::vector<const Value *> savedValues(const Function &f, Users &users) {
    const Value *c = f.args[0];
    const Shape &cs = c->type.shape;
    if (cs.empty() || !cs.back().isStatic() || c->type.dtype != DType::F32)
      return {};
    std::unordered_set<const Value *> dep{c};
    for (const auto &o : f.ops)
      if (std::any_of(o->operands.begin(), o->operands.end(), [&](const Value *v) { return dep.count(v) != 0; }))
        dep.insert(o->result);
    std::vector<const Value *> saved;
    for (const auto &o : f.ops) {
      if (o->kind != OpKind::MatMul || !dep.count(o->result))
        continue;
      const Value *v = o->result;
      for (;;) {
        const auto &us = users[v];
        if (us.size() != 1 || (us[0]->kind != OpKind::Add && us[0]->kind != OpKind::Sub) ||
            us[0]->result->type != v->type)
          break;
        const Value *other = us[0]->operand(0) == v ? us[0]->operand(1) : us[0]->operand(0);
        if (dep.count(other))
          break;
        v = us[0]->result;
      }
      const Shape &vs = v->type.shape;
      bool fits = vs.size() == cs.size() && vs.back().isStatic() && v != f.results[0] &&
                  std::equal(vs.begin(), vs.end() - 1, cs.begin()) &&
                  std::find(saved.begin(), saved.end(), v) == saved.end();
      if (fits)
        saved.push_back(v);
    }
    return saved;
  }

  /// Rebuilds the forward loop `op` so each step also outputs the `saved`
  /// values of its body, concatenated after the carry along the last axis.
  /// Every use of the old loop's result now reads the carry part of the new
  /// one. Returns that carry part and the sequence of each saved value.
  std::pair<Value *, std::vector<Value *>> saveInForwardLoop(const Op &op, const std::vector<const Value *> &saved) {
    const Function &f = *op.body;
    size_t mark = g_.ops.size();
    Shape cs = f.args[0]->type.shape;
    int64_t last = int64_t(cs.size()) - 1, width = cs.back().size, carryWidth = width;
    for (const Value *z : saved)
      width += z->type.shape.back().size;
    Shape xs = cs;
    xs.back() = Dim(width);

    Function *fx = m_.addFunction(freshName(f.name + ".save"));
    Builder xb(*fx);
    std::unordered_map<const Value *, Value *> map;
    Value *cx = fx->addArg(f.args[0]->name, TensorType{DType::F32, xs}, ArgRole::Input);
    map[f.args[0]] = xb.create(OpKind::Slice, {cx}, {{"axis", last}, {"start", int64_t(0)}, {"end", carryWidth}});
    for (size_t i = 1; i < f.args.size(); ++i)
      map[f.args[i]] = fx->addArg(f.args[i]->name, f.args[i]->type, f.argRoles[i]);
    map = fx->cloneBody(f, map);
    std::vector<Value *> parts{map.at(f.results[0])};
    for (const Value *z : saved)
      parts.push_back(map.at(z));
    fx->addResult(f.resultNames[0], xb.create(OpKind::Concat, parts, {{"axis", last}}));

    Shape zeros = cs;
    zeros.back() = Dim(width - carryWidth);
    std::vector<Value *> operands = op.operands;
    operands[0] = b_.create(OpKind::Concat, {op.operand(0), b_.constant(0.0, zeros)}, {{"axis", last}});
    Value *yx = scan(fx, "carry", op.getBool("reverse"), operands, op.getInt("nseq"), xs);
    auto part = [&](int64_t from, int64_t to) {
      return b_.create(OpKind::Slice, {yx}, {{"axis", last + 1}, {"start", from}, {"end", to}});
    };
    Value *y = part(0, carryWidth);
    std::vector<Value *> seqs;
    int64_t at = carryWidth;
    for (const Value *z : saved) {
      seqs.push_back(part(at, at + z->type.shape.back().size));
      at += z->type.shape.back().size;
    }
    // The new ops go right after the old loop, ahead of its users.
    auto pos = std::find_if(g_.ops.begin(), g_.ops.end(), [&](const auto &o) { return o.get() == &op; });
    std::rotate(pos + 1, g_.ops.begin() + long(mark), g_.ops.end());
    g_.replaceAllUses(op.result, y);
    replaced_[op.result] = y;
    return {y, seqs};
  }

  /// Removes the arguments of loop body `body` that nothing reads, with
  /// their operands (which may be null); a carry (`carryMode`) and at least
  /// one sequence always stay. `nseq` counts the sequences left.
  static void dropUnusedArgs(Function &body, std::vector<Value *> &operands, int64_t &nseq, bool carryMode) {
    NNC_ASSERT(operands.size() == body.args.size()) << "loop body and operands disagree";
    std::vector<bool> keep = body.argsUsed();
    size_t first = carryMode ? 1 : 0, endSeq = first + size_t(nseq);
    if (carryMode)
      keep[0] = true;
    if (std::none_of(keep.begin() + long(first), keep.begin() + long(endSeq), [](bool k) { return k; }))
      keep[first] = true;
    std::vector<Value *> ops;
    int64_t seqs = 0;
    for (size_t i = 0; i < keep.size(); ++i) {
      if (!keep[i])
        continue;
      NNC_ASSERT(operands[i]) << "a loop body argument in use has no operand";
      ops.push_back(operands[i]);
      seqs += i >= first && i < endSeq;
    }
    body.keepArgs(keep);
    operands = ops;
    nseq = seqs;
  }

  Value *scan(Function *body, const std::string &mode, bool reverse, const std::vector<Value *> &operands, int64_t nseq,
              const Shape &out) {
    Value *v = b_.create(OpKind::Scan, operands,
                         {{"body", body->name}, {"mode", mode}, {"nseq", nseq}, {"out", out}, {"reverse", reverse}});
    v->def->body = body;
    return v;
  }

  Module &m_;
  Function &g_;
  Builder b_;
  std::unordered_set<const Value *> needs_;
  std::unordered_map<const Value *, Value *> adj_;
  std::unordered_map<Value *, Value *> replaced_;
};

} // namespace

Function *differentiate(Module &m, const Function &f, const std::string &of, const std::string &name,
                        const std::vector<std::string> &wrt) {
  Value *out = f.result(of);
  NNC_ASSERT(out) << "differentiate: @" << f.name << " has no result '" << of << "'";
  NNC_ASSERT(out->type.rank() == 0 && out->type.dtype == DType::F32) << "differentiate: result must be an f32 scalar";

  Function *g = m.addFunction(name);
  std::unordered_map<const Value *, Value *> map;
  std::vector<Value *> targets;
  for (size_t i = 0; i < f.args.size(); ++i) {
    Value *a = g->addArg(f.args[i]->name, f.args[i]->type, f.argRoles[i]);
    map[f.args[i]] = a;
    bool selected =
        wrt.empty() ? f.argRoles[i] == ArgRole::Param : std::find(wrt.begin(), wrt.end(), a->name) != wrt.end();
    if (selected && a->type.dtype == DType::F32)
      targets.push_back(a);
  }
  map = g->cloneBody(f, map);

  // Forward sweep: values that depend on a target.
  std::unordered_set<const Value *> needs(targets.begin(), targets.end());
  for (auto &op : g->ops) {
    if (hasTrait(op->kind, OpTrait::NoGrad))
      continue;
    for (Value *v : op->operands)
      if (needs.count(v)) {
        needs.insert(op->result);
        break;
      }
  }

  Differentiator d(m, *g, needs);
  d.run(map.at(out));

  for (size_t i = 0; i < f.results.size(); ++i)
    g->addResult(f.resultNames[i], d.current(map.at(f.results[i])));
  Builder b(*g);
  for (Value *t : targets) {
    Value *adj = d.adjoint(t);
    if (!adj)
      adj = b.constant(0.0, t->type.shape);
    g->addResult("grad." + t->name, adj);
  }
  return g;
}

InlineGradient gradientOf(Module &m, Function &f, Value *of, Value *wrt) {
  NNC_ASSERT(of->type.rank() == 0 && of->type.dtype == DType::F32) << "gradientOf: the value must be an f32 scalar";
  // Values that depend on wrt through differentiable ops (needs), and
  // through any op (reach), to name the op that blocks a path.
  std::unordered_set<const Value *> needs{wrt}, reach{wrt};
  std::unordered_map<const Value *, const Op *> blockedBy;
  for (auto &op : f.ops) {
    const Op *block = nullptr;
    bool differentiable = !hasTrait(op->kind, OpTrait::NoGrad), reached = false;
    for (Value *v : op->operands) {
      if (needs.count(v) && differentiable)
        needs.insert(op->result);
      if (reach.count(v)) {
        reached = true;
        if (!block) {
          auto it = blockedBy.find(v);
          block = it != blockedBy.end() ? it->second : differentiable ? nullptr : op.get();
        }
      }
    }
    if (reached) {
      reach.insert(op->result);
      if (!needs.count(op->result) && block)
        blockedBy[op->result] = block;
    }
  }
  InlineGradient r;
  if (!needs.count(of)) {
    auto it = blockedBy.find(of);
    r.blockedBy = it != blockedBy.end() ? it->second : nullptr;
    return r;
  }
  Differentiator d(m, f, needs);
  d.run(of);
  r.grad = d.adjoint(wrt);
  return r;
}

} // namespace nnc::ir
