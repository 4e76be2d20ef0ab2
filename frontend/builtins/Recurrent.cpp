// rnn, lstm and gru: the lowerings of these builtins into IR.
// Each is an Elaborator member named in the table in frontend/Builtins.cpp.
#include "frontend/Elaborator.h"

namespace nnc::frontend {

ir::Value *Elaborator::project(ir::Value *x, ir::Value *w, ir::Value *bias) {
  ir::Value *wb = w;
  if (x->type.rank() > 2) {
    ir::Shape to(x->type.shape.begin(), x->type.shape.end() - 2);
    to.push_back(w->type.shape[0]);
    to.push_back(w->type.shape[1]);
    wb = b_->broadcast(w, to);
  }
  ir::Value *y = b_->matmul(x, wb);
  return bias ? b_->add(y, bias) : y;
}

Val Elaborator::recurrent(const ast::Expr &e, const ArgMap &args) {
  const std::string &kind = e.name;
  Val xv = requireF32(args, "x", e);
  auto units = intArg(args, "units", kind.c_str());
  auto reverse = boolArg(args, "reverse", kind.c_str(), false);
  auto bidir = boolArg(args, "bidirectional", kind.c_str(), false);
  if (!xv.ok() || !units || !reverse || !bidir)
    return Val::error();
  bool last = false;
  if (auto it = args.find("output"); it != args.end()) {
    const Val &o = it->second.first;
    if (o.kind != Val::String || (o.str != "sequence" && o.str != "last")) {
      d_.error(it->second.second->loc, kind + ": 'output' must be \"sequence\" (all states) or \"last\"");
      return Val::error();
    }
    last = o.str == "last";
  }
  const ir::TensorType &xt = xv.v->type;
  if (xt.rank() != 3 || !xt.shape[1].isStatic() || !xt.shape[2].isStatic()) {
    d_.error(e.loc, kind + " expects a sequence [N, T, F] with static T and F, got " + xt.str());
    noteOperands({xv});
    return Val::error();
  }
  int64_t T = xt.shape[1].size, F = xt.shape[2].size, H = *units;
  int64_t G = kind == "lstm" ? 4 : kind == "gru" ? 3 : 1, S = kind == "lstm" ? 2 * H : H;
  ir::Dim n = xt.shape[0];
  // Initial state [N, S]: zeros, or h0 (and c0).
  ir::Value *init = nullptr;
  std::vector<Val> given;
  for (const char *name : {"h0", "c0"}) {
    if (!args.count(name))
      continue;
    if (std::string(name) == "c0" && kind != "lstm")
      continue;
    Val v = tensorArg(args, name, e.loc);
    if (!v.ok())
      return v;
    if (v.v->type != ir::TensorType{ir::DType::F32, {n, ir::Dim(H)}}) {
      d_.error(args.at(name).second->loc, kind + ": '" + name + "' must be f32[" + n.str() + ", " + std::to_string(H) +
                                              "], got " + v.v->type.str());
      return Val::error();
    }
    given.push_back(v);
  }
  if (kind == "lstm" && given.size() == 1) {
    d_.error(e.loc, "lstm: give both 'h0' and 'c0', or neither");
    return Val::error();
  }
  b_->setLoc(e.loc);
  if (!given.empty())
    init = given.size() == 2 ? b_->create(ir::OpKind::Concat, {given[0].v, given[1].v}, {{"axis", int64_t(1)}})
                             : given[0].v;
  else
    init = b_->constant(0.0, {n, ir::Dim(S)});
  ir::Value *xs = b_->transpose(xv.v, {1, 0, 2}); // [T, N, F]
  std::string inst = instanceName(e);

  auto direction = [&](const std::string &prefix, bool rev) -> std::pair<ir::Value *, ir::Value *> {
    ir::Value *wih = param(prefix, "w_ih", {F, G * H}, ParamInfo::Glorot, F, G * H, false, e.loc);
    ir::Value *whh = param(prefix, "w_hh", {H, G * H}, ParamInfo::Glorot, H, G * H, false, e.loc);
    ir::Value *bih = param(prefix, "b_ih", {G * H}, ParamInfo::Zeros, F, G * H, true, e.loc);
    ir::Value *bhh = param(prefix, "b_hh", {G * H}, ParamInfo::Zeros, H, G * H, true, e.loc);
    if (!wih || !whh || !bih || !bhh)
      return {nullptr, nullptr};
    b_->setLoc(e.loc);
    ir::Value *xw = project(xs, wih, bih); // [T, N, G*H]
    bool gru = kind == "gru";
    if (!gru)
      xw = b_->add(xw, bhh);
    // The cell, as the scan's body.
    std::string bodyName = fn_->name + "." + prefix + ".cell";
    for (int k = 2; out_.module->get(bodyName); ++k) // instances shared with 'as'
      bodyName = fn_->name + "." + prefix + ".cell" + std::to_string(k);
    ir::Function *body = out_.module->addFunction(bodyName);
    ir::TensorType st{ir::DType::F32, {n, ir::Dim(S)}}, gt{ir::DType::F32, {n, ir::Dim(G * H)}};
    ir::Value *carry = body->addArg("carry", st, ir::ArgRole::Input);
    ir::Value *xwt = body->addArg("xw", gt, ir::ArgRole::Input);
    ir::Value *u = body->addArg("w_hh", whh->type, ir::ArgRole::Input);
    ir::Value *ub = gru ? body->addArg("b_hh", bhh->type, ir::ArgRole::Input) : nullptr;
    ir::Builder bb(*body);
    bb.setLoc(e.loc);
    auto cols = [&](ir::Value *v, int64_t k) {
      return bb.create(ir::OpKind::Slice, {v}, {{"axis", int64_t(1)}, {"start", k * H}, {"end", (k + 1) * H}});
    };
    ir::Value *next;
    if (kind == "rnn") {
      next = bb.unary(ir::OpKind::Tanh, bb.add(xwt, bb.matmul(carry, u)));
    } else if (kind == "lstm") {
      ir::Value *h = cols(carry, 0), *c = cols(carry, 1);
      ir::Value *z = bb.add(xwt, bb.matmul(h, u));
      ir::Value *i = bb.unary(ir::OpKind::Sigmoid, cols(z, 0)), *f = bb.unary(ir::OpKind::Sigmoid, cols(z, 1));
      ir::Value *g = bb.unary(ir::OpKind::Tanh, cols(z, 2)), *o = bb.unary(ir::OpKind::Sigmoid, cols(z, 3));
      ir::Value *c2 = bb.add(bb.mul(f, c), bb.mul(i, g));
      ir::Value *h2 = bb.mul(o, bb.unary(ir::OpKind::Tanh, c2));
      next = bb.create(ir::OpKind::Concat, {h2, c2}, {{"axis", int64_t(1)}});
    } else {
      ir::Value *hh = bb.add(bb.matmul(carry, u), ub);
      ir::Value *r = bb.unary(ir::OpKind::Sigmoid, bb.add(cols(xwt, 0), cols(hh, 0)));
      ir::Value *z = bb.unary(ir::OpKind::Sigmoid, bb.add(cols(xwt, 1), cols(hh, 1)));
      ir::Value *nn = bb.unary(ir::OpKind::Tanh, bb.add(cols(xwt, 2), bb.mul(r, cols(hh, 2))));
      next = bb.add(nn, bb.mul(z, bb.sub(carry, nn))); // (1 - z) n + z h
    }
    body->addResult("carry", next);
    std::vector<ir::Value *> operands{init, xw, whh};
    if (gru)
      operands.push_back(bhh);
    ir::Value *y = b_->create(ir::OpKind::Scan, operands,
                              {{"body", bodyName},
                               {"mode", std::string("carry")},
                               {"nseq", int64_t(1)},
                               {"out", st.shape},
                               {"reverse", rev},
                               // what the loop is, for exporters (ONNX's RNN/LSTM/GRU ops)
                               {"cell", kind},
                               {"units", H}});
    y->def->body = body;
    // Hidden states [N, T, H] and the state after the last step taken.
    ir::Value *hs =
        S == H ? y : b_->create(ir::OpKind::Slice, {y}, {{"axis", int64_t(2)}, {"start", int64_t(0)}, {"end", H}});
    ir::Value *seq = b_->transpose(hs, {1, 0, 2});
    int64_t t = rev ? 0 : T - 1;
    ir::Value *fin = b_->reshape(
        b_->create(ir::OpKind::Slice, {hs}, {{"axis", int64_t(0)}, {"start", t}, {"end", t + 1}}), {n, ir::Dim(H)});
    return {seq, fin};
  };
  auto fwd = direction(*bidir ? inst + ".forward" : inst, *reverse);
  if (!fwd.first)
    return Val::error();
  if (!*bidir)
    return tensorVal(last ? fwd.second : fwd.first);
  auto bwd = direction(inst + ".backward", !*reverse);
  if (!bwd.first)
    return Val::error();
  b_->setLoc(e.loc);
  if (last)
    return tensorVal(b_->create(ir::OpKind::Concat, {fwd.second, bwd.second}, {{"axis", int64_t(1)}}));
  return tensorVal(b_->create(ir::OpKind::Concat, {fwd.first, bwd.first}, {{"axis", int64_t(2)}}));
}

} // namespace nnc::frontend
