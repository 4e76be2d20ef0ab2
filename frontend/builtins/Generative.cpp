// Builtins of generative models: noise drawn inside the compiled step
// (normal, uniform), gradients as values of the model (grad, for gradient
// penalties), the Euclidean norm; and the check of a model whose losses
// update parameter sets of their own (a GAN's discriminator and generator).
#include "frontend/Elaborator.h"
#include "frontend/ParamSelect.h"
#include "ir/transforms/Passes.h"

#include <algorithm>
#include <unordered_set>

namespace nnc::frontend {

Val Elaborator::noise(const ast::Expr &e, const ArgMap &args) {
  const std::string &f = e.name;
  bool normal = f == "normal";
  auto it = args.find("shape");
  const Val &sv = it->second.first;
  if (sv.kind != Val::List || sv.list.empty()) {
    d_.error(it->second.second->loc, f + ": 'shape' must be a list such as [N, 64]");
    return Val::error();
  }
  ir::Shape shape;
  for (const Val &el : sv.list) {
    if (el.kind == Val::Number && el.isInt && el.num >= 1 && el.num <= double(ir::kMaxElements)) {
      shape.push_back(ir::Dim(int64_t(el.num)));
    } else if (el.kind == Val::Symbol) {
      shape.push_back(ir::Dim::symbol(el.str));
    } else {
      d_.error(el.loc.valid() ? el.loc : it->second.second->loc,
               f + ": a dimension must be a positive integer or a symbol of the inputs' types, such as N");
      return Val::error();
    }
  }
  const char *a = normal ? "mean" : "low", *b = normal ? "std" : "high";
  auto lo = floatArg(args, a, f, 0, -1e30, 1e30);
  auto hi = floatArg(args, b, f, 1, normal ? 0 : -1e30, 1e30);
  if (!lo || !hi)
    return Val::error();
  if (!normal && !(*lo < *hi)) {
    d_.error(e.loc, "uniform: 'low' (" + fmtNum(*lo) + ") must be below 'high' (" + fmtNum(*hi) + ")");
    return Val::error();
  }
  ir::Value *rng = fn_->arg("rng");
  if (!rng)
    rng = fn_->addArg("rng", {ir::DType::I64, {}}, ir::ArgRole::Scalar);
  ir::Value *r = build(ir::OpKind::Random, {rng},
                       {{"dist", std::string(normal ? "normal" : "uniform")},
                        {"shape", shape},
                        {"stream", int64_t(noiseStreams_++)}},
                       e.loc, f);
  if (!r)
    return Val::error();
  b_->setLoc(e.loc);
  // normal: mean + std * z; uniform: low + (high - low) * u.
  double scale = normal ? *hi : *hi - *lo;
  if (scale != 1)
    r = b_->mul(r, b_->constant(scale));
  if (*lo != 0)
    r = b_->add(r, b_->constant(*lo));
  return tensorVal(r);
}

Val Elaborator::gradCall(const ast::Expr &e, const ArgMap &args) {
  Val f = tensorArg(args, "f", e.loc), x = tensorArg(args, "wrt", e.loc);
  if (!f.ok() || !x.ok())
    return Val::error();
  const ast::Expr *fe = args.at("f").second, *xe = args.at("wrt").second;
  if (f.v->type.rank() != 0 || f.v->type.dtype != ir::DType::F32) {
    d_.error(fe->loc, "grad: the value to differentiate must be an f32 scalar, but '" + ast::toSource(*fe) +
                          "' has type " + f.v->type.str());
    d_.note(fe->loc, "reduce it first, e.g. grad(sum(" + ast::toSource(*fe) + "), " + ast::toSource(*xe) + ")");
    return Val::error();
  }
  if (x.v->type.dtype != ir::DType::F32) {
    d_.error(xe->loc, "grad: can only differentiate with respect to an f32 tensor, but '" + ast::toSource(*xe) +
                          "' has type " + x.v->type.str());
    return Val::error();
  }
  ir::InlineGradient g = ir::gradientOf(*out_.module, *fn_, f.v, x.v);
  if (!g.grad) {
    if (g.blockedBy) {
      d_.error(e.loc, "grad: '" + ast::toSource(*fe) + "' depends on '" + ast::toSource(*xe) +
                          "' only through '" + ir::opName(g.blockedBy->kind) + "', which has no gradient");
      if (g.blockedBy->loc.valid())
        d_.note(g.blockedBy->loc, "'" + std::string(ir::opName(g.blockedBy->kind)) + "' is here");
    } else {
      d_.error(e.loc, "grad: '" + ast::toSource(*fe) + "' does not depend on '" + ast::toSource(*xe) + "'");
    }
    return Val::error();
  }
  return tensorVal(g.grad);
}

Val Elaborator::norm(const ast::Expr &e, const ArgMap &args) {
  Val xv = requireF32(args, "x", e);
  if (!xv.ok())
    return xv;
  int64_t rank = int64_t(xv.v->type.rank());
  std::optional<std::vector<int64_t>> axes;
  if (args.count("axis"))
    axes = axesArg(args, rank, "norm");
  else if (rank > 0)
    axes = std::vector<int64_t>{rank - 1};
  else
    axes = std::vector<int64_t>{};
  auto keep = boolArg(args, "keepdims", "norm", false);
  if (!axes || !keep)
    return Val::error();
  b_->setLoc(e.loc);
  ir::Value *sq = b_->mul(xv.v, xv.v);
  ir::Value *sum = axes->empty() ? sq : build(ir::OpKind::ReduceSum, {sq}, {{"axes", *axes}, {"keepdims", *keep}},
                                              e.loc, "norm", {xv});
  if (!sum)
    return Val::error();
  return tensorVal(b_->unary(ir::OpKind::Sqrt, sum));
}

bool Elaborator::objectives(const std::vector<const ast::Stmt *> &stmts,
                            const std::vector<std::pair<Val, SourceLoc>> &losses) {
  unsigned before = d_.errorCount();
  std::vector<std::string> names;
  for (size_t i = 0; i < stmts.size(); ++i) {
    const ast::Stmt &s = *stmts[i];
    if (s.updates.empty()) {
      d_.error(s.loc, std::string("this loss says nothing about what it updates, but others do: add 'updates ...' ") +
                          (s.name.empty() ? "with a name (loss NAME updates SELECTOR = ...)"
                                          : "(loss " + s.name + " updates SELECTOR = ...)"));
      if (const ast::Stmt *other = *std::find_if(stmts.begin(), stmts.end(),
                                                 [](const ast::Stmt *x) { return !x->updates.empty(); }))
        d_.note(other->loc, "loss '" + other->name + "' says what it updates here");
      continue;
    }
    if (std::find(names.begin(), names.end(), s.name) != names.end()) {
      d_.error(s.nameLoc, "a second loss named '" + s.name + "'");
      continue;
    }
    names.push_back(s.name);
    LoweredModel::Objective o;
    o.name = s.name;
    o.loc = s.loc;
    // The parameters the loss depends on through differentiable ops.
    std::unordered_set<const ir::Value *> feeds;
    {
      std::unordered_map<const ir::Value *, std::unordered_set<const ir::Value *>> from;
      for (size_t k = 0; k < fn_->args.size(); ++k)
        if (fn_->argRoles[k] == ir::ArgRole::Param)
          from[fn_->args[k]] = {fn_->args[k]};
      for (auto &op : fn_->ops) {
        if (ir::hasTrait(op->kind, ir::OpTrait::NoGrad))
          continue;
        std::unordered_set<const ir::Value *> u;
        for (ir::Value *v : op->operands)
          if (auto it = from.find(v); it != from.end())
            u.insert(it->second.begin(), it->second.end());
        if (!u.empty())
          from[op->result] = std::move(u);
      }
      if (auto it = from.find(losses[i].first.v); it != from.end())
        feeds = it->second;
    }
    std::set<std::string> picked;
    for (const auto &[sel, loc] : s.updates) {
      std::vector<std::string> ps = selectParams(out_.params, sel, isParamSetName(sel));
      if (ps.empty()) {
        d_.error(loc, "loss '" + s.name + "' updates \"" + sel + "\", but model '" + out_.name +
                          "' has no parameter or layer instance of that name" + paramSuggestion(out_.params, sel));
        continue;
      }
      std::vector<std::string> unreached;
      for (const std::string &p : ps)
        if (!feeds.count(fn_->arg(p)))
          unreached.push_back(p);
      if (!unreached.empty()) {
        std::string list;
        for (size_t k = 0; k < unreached.size() && k < 4; ++k)
          list += (k ? ", " : "") + ("'" + unreached[k] + "'");
        if (unreached.size() > 4)
          list += ", ...";
        d_.error(loc, "loss '" + s.name + "' updates \"" + sel + "\", but its value does not depend on " +
                          (unreached.size() == ps.size() ? std::string(ps.size() == 1 ? "it" : "them")
                                                         : "all of them: not on " + list));
        continue;
      }
      picked.insert(ps.begin(), ps.end());
    }
    for (const ParamInfo &p : out_.params) // the model's order
      if (picked.count(p.name))
        o.params.push_back(p.name);
    b_->setLoc(losses[i].second);
    fn_->addResult("loss." + s.name, losses[i].first.v);
    out_.objectives.push_back(std::move(o));
  }
  if (d_.errorCount() != before)
    return false;
  for (const ParamInfo &p : out_.params) {
    bool updated = std::any_of(out_.objectives.begin(), out_.objectives.end(), [&](const LoweredModel::Objective &o) {
      return std::find(o.params.begin(), o.params.end(), p.name) != o.params.end();
    });
    if (updated)
      continue;
    std::string losses;
    for (const auto &o : out_.objectives)
      losses += (losses.empty() ? "'" : ", '") + o.name + "'";
    d_.error(p.loc, "parameter '" + p.name + "' is updated by no loss (the losses are " + losses +
                        "): add it to a loss's 'updates'");
  }
  return d_.errorCount() == before;
}

} // namespace nnc::frontend
