// Reshaping, slicing and joining (reshape, flatten, transpose, permute, slice, split, concat): the lowerings of these
// builtins into IR. Each is an Elaborator member named in the table in frontend/Builtins.cpp.
#include "frontend/Elaborator.h"

#include <cmath>

namespace nnc::frontend {

Val Elaborator::reshape(const ast::Expr &e, const ArgMap &args) {
  Val x = tensorArg(args, "x", e.loc);
  if (!x.ok())
    return x;
  const ir::Shape &in = x.v->type.shape;
  ir::Shape to;
  if (e.name == "flatten") {
    if (in.empty()) {
      d_.error(e.loc, "flatten expects a tensor with a batch dimension, got a scalar");
      return Val::error();
    }
    int64_t n = 1;
    for (size_t i = 1; i < in.size(); ++i) {
      if (!in[i].isStatic()) {
        d_.error(e.loc, "flatten needs static dimensions after the first, "
                        "but the input has type " +
                            x.v->type.str());
        return Val::error();
      }
      n *= in[i].size;
    }
    to = {in[0], ir::Dim(n)};
  } else {
    auto it = args.find("shape");
    const Val &sv = it->second.first;
    if (sv.kind != Val::List) {
      d_.error(it->second.second->loc, "reshape: 'shape' must be a list such as [N, 64]");
      return Val::error();
    }
    int inferAt = -1;
    for (auto &el : sv.list) {
      if (el.kind == Val::Number && el.isInt && el.num == -1 && inferAt < 0) {
        inferAt = int(to.size());
        to.push_back(ir::Dim(1));
      } else if (el.kind == Val::Number && el.isInt && el.num >= 1 && el.num <= double(ir::kMaxElements)) {
        to.push_back(ir::Dim(int64_t(el.num)));
      } else if (el.kind == Val::Symbol) {
        to.push_back(ir::Dim::symbol(el.str));
      } else {
        d_.error(el.loc, "reshape: a dimension must be a positive integer, a "
                         "symbol of the input's type, or -1 once");
        return Val::error();
      }
    }
    if (inferAt >= 0) {
      // Static sizes must divide; the input's symbols must all reappear.
      int64_t total = 1, known = 1;
      std::multiset<std::string> syms;
      for (auto &d : in) {
        if (d.isStatic())
          total *= d.size;
        else
          syms.insert(d.sym);
      }
      for (size_t i = 0; i < to.size(); ++i) {
        if (int(i) == inferAt)
          continue;
        if (to[i].isStatic()) {
          known *= to[i].size;
        } else if (auto s = syms.find(to[i].sym); s != syms.end()) {
          syms.erase(s);
        } else {
          d_.error(e.loc, "reshape: " + x.v->type.str() + " has no dimension " + to[i].sym);
          return Val::error();
        }
      }
      if (!syms.empty() || known == 0 || total % known) {
        d_.error(e.loc, "cannot reshape " + x.v->type.str() + " to " + ast::toSource(*it->second.second));
        return Val::error();
      }
      to[inferAt] = ir::Dim(total / known);
    }
  }
  ir::Value *r = build(ir::OpKind::Reshape, {x.v}, {{"shape", to}}, e.loc, "", {x});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::transpose(const ast::Expr &e, const ArgMap &args) {
  Val x = tensorArg(args, "x", e.loc);
  if (!x.ok())
    return x;
  std::vector<int64_t> perm;
  auto it = args.find("perm");
  if (it == args.end()) {
    for (int64_t i = int64_t(x.v->type.rank()) - 1; i >= 0; --i)
      perm.push_back(i);
  } else {
    const Val &pv = it->second.first;
    for (auto &el : pv.kind == Val::List ? pv.list : std::vector<Val>{}) {
      if (el.kind != Val::Number || !el.isInt || std::fabs(el.num) > 1e15) {
        d_.error(it->second.second->loc, "transpose: 'perm' must be a list of integers");
        return Val::error();
      }
      perm.push_back(int64_t(el.num));
    }
    if (pv.kind != Val::List) {
      d_.error(it->second.second->loc, "transpose: 'perm' must be a list of integers");
      return Val::error();
    }
  }
  ir::Value *r = build(ir::OpKind::Transpose, {x.v}, {{"perm", perm}}, e.loc, "", {x});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::permute(const ast::Expr &e, const ArgMap &args) {
  Val x = tensorArg(args, "x", e.loc);
  if (!x.ok())
    return x;
  auto it = args.find("dims");
  std::vector<int64_t> perm;
  bool ok = it->second.first.kind == Val::List;
  for (auto &el : ok ? it->second.first.list : std::vector<Val>{})
    if (el.kind == Val::Number && el.isInt && std::fabs(el.num) <= 1e15)
      perm.push_back(int64_t(el.num) < 0 ? int64_t(el.num) + int64_t(x.v->type.rank()) : int64_t(el.num));
    else
      ok = false;
  if (!ok) {
    d_.error(it->second.second->loc, "permute: 'dims' must be a list of integers");
    return Val::error();
  }
  ir::Value *r = build(ir::OpKind::Transpose, {x.v}, {{"perm", perm}}, e.loc, "permute", {x});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::slice(const ast::Expr &e, const ArgMap &args) {
  Val x = tensorArg(args, "x", e.loc);
  auto axis = anyIntArg(args, "axis", "slice"), start = anyIntArg(args, "start", "slice"),
       end = anyIntArg(args, "end", "slice");
  if (!x.ok() || !axis || !start || !end)
    return Val::error();
  int64_t rank = int64_t(x.v->type.rank());
  int64_t a = *axis < 0 ? *axis + rank : *axis;
  int64_t s = *start, en = *end;
  if (a >= 0 && a < rank && x.v->type.shape[a].isStatic()) {
    int64_t dim = x.v->type.shape[a].size;
    s = s < 0 ? s + dim : s;
    en = en < 0 ? en + dim : en;
  }
  ir::Value *r = build(ir::OpKind::Slice, {x.v}, {{"axis", a}, {"start", s}, {"end", en}}, e.loc, "", {x});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::split(const ast::Expr &e, const ArgMap &args) {
  Val x = tensorArg(args, "x", e.loc);
  if (!x.ok())
    return x;
  int64_t rank = int64_t(x.v->type.rank());
  int64_t axis = rank - 1;
  if (args.count("axis")) {
    auto a = anyIntArg(args, "axis", "split");
    if (!a)
      return Val::error();
    axis = *a < 0 ? *a + rank : *a;
  }
  if (axis < 0 || axis >= rank || !x.v->type.shape[axis].isStatic()) {
    d_.error(e.loc,
             "split: axis " + std::to_string(axis) + " of " + x.v->type.str() + " is not an axis of static size");
    noteOperands({x});
    return Val::error();
  }
  int64_t dim = x.v->type.shape[axis].size;
  const auto &pv = args.at("parts");
  std::vector<int64_t> sizes;
  if (pv.first.kind == Val::Number && pv.first.isInt && pv.first.num >= 1 && pv.first.num <= double(dim) &&
      dim % int64_t(pv.first.num) == 0) {
    sizes.assign(size_t(pv.first.num), dim / int64_t(pv.first.num));
  } else if (pv.first.kind == Val::List) {
    int64_t total = 0;
    for (const Val &el : pv.first.list) {
      if (el.kind != Val::Number || !el.isInt || el.num < 1 || el.num > double(dim)) {
        sizes.clear();
        break;
      }
      sizes.push_back(int64_t(el.num));
      total += sizes.back();
    }
    if (total != dim)
      sizes.clear();
  }
  if (sizes.empty()) {
    d_.error(pv.second->loc, "split: 'parts' must be a number of equal parts that divides " + std::to_string(dim) +
                                 ", or a list of positive sizes adding up to " + std::to_string(dim) + ", got " +
                                 ast::toSource(*pv.second));
    return Val::error();
  }
  Val out;
  out.kind = Val::List;
  int64_t at = 0;
  for (int64_t sz : sizes) {
    ir::Value *piece = sz == dim ? x.v
                                 : build(ir::OpKind::Slice, {x.v}, {{"axis", axis}, {"start", at}, {"end", at + sz}},
                                         e.loc, "split", {x});
    if (!piece)
      return Val::error();
    out.list.push_back(tensorVal(piece));
    at += sz;
  }
  return out;
}

Val Elaborator::concat(const ast::Expr &e, const ArgMap &args) {
  auto it = args.find("xs");
  const Val &xs = it->second.first;
  if (xs.kind != Val::List || xs.list.size() < 2) {
    d_.error(it->second.second->loc, "concat: 'xs' must be a list of at least two tensors, as in "
                                     "concat([a, b])");
    return Val::error();
  }
  std::vector<Val> parts;
  for (const Val &v : xs.list) {
    if (v.kind != Val::Tensor) {
      d_.error(v.loc, "concat: expected a tensor, but this is " + describe(v));
      return Val::error();
    }
    parts.push_back(v);
  }
  int64_t rank = int64_t(parts[0].v->type.rank());
  int64_t axis = rank - 1;
  if (args.count("axis")) {
    auto ax = anyIntArg(args, "axis", "concat");
    if (!ax)
      return Val::error();
    axis = *ax < 0 ? *ax + rank : *ax;
  }
  ir::Value *acc = parts[0].v;
  for (size_t i = 1; i < parts.size(); ++i) {
    acc = build(ir::OpKind::Concat, {acc, parts[i].v}, {{"axis", axis}}, e.loc, "", parts);
    if (!acc)
      return Val::error();
  }
  return tensorVal(acc);
}

} // namespace nnc::frontend
