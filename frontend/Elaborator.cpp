// The elaboration walk: statements, expressions, operators, layer inlining,
// instance names and parameters, and the helpers that read builtin arguments.
#include "frontend/Elaborator.h"

#include <algorithm>
#include <cmath>

namespace nnc::frontend {

std::vector<int64_t> allAxes(size_t rank) {
  std::vector<int64_t> axes(rank);
  for (size_t i = 0; i < rank; ++i)
    axes[i] = int64_t(i);
  return axes;
}

std::optional<LoweredModel> Elaborator::run(const ast::ModelDecl &m) {
  unsigned before = d_.errorCount();
  out_.name = m.name;
  out_.module = std::make_unique<ir::Module>();
  fn_ = out_.module->addFunction("forward");
  b_ = std::make_unique<ir::Builder>(*fn_);

  // Arguments first (inputs, labels), so they precede params in the
  // signature.
  Scope scope;
  for (auto &s : m.body) {
    if (s.kind != ast::Stmt::Input && s.kind != ast::Stmt::Label)
      continue;
    ir::TensorType t = toType(s.type);
    ir::Value *v = fn_->addArg(s.name, t, s.kind == ast::Stmt::Input ? ir::ArgRole::Input : ir::ArgRole::Label);
    (s.kind == ast::Stmt::Input ? out_.inputs : out_.labels).push_back({s.name, t, s.nameLoc});
    out_.rows.push_back({s.name, t.str(), 0, s.nameLoc.line});
    Val val;
    val.kind = Val::Tensor;
    val.v = v;
    val.loc = s.nameLoc;
    val.name = s.name;
    scope[s.name] = val;
  }

  std::vector<std::pair<Val, SourceLoc>> losses;
  std::vector<const ast::Stmt *> lossStmts;
  std::vector<std::pair<std::string, Val>> outputs;
  for (auto &s : m.body) {
    if (s.kind == ast::Stmt::Input || s.kind == ast::Stmt::Label)
      continue;
    binding_ = s.name.empty() ? "loss" : s.name;
    size_t paramsBefore = out_.params.size();
    Val v = eval(*s.value, scope);
    v.loc = s.nameLoc.valid() ? s.nameLoc : s.loc;
    v.name = s.name;
    {
      // `a, b = split(x, 2)`: one row for the names together, typed as the list.
      std::string name = binding_, type = v.ok() && v.v ? v.v->type.str() : "-";
      for (const auto &[more, loc] : s.more)
        name += ", " + more;
      if (v.kind == Val::List && !v.list.empty()) {
        type.clear();
        for (const Val &el : v.list)
          type += (type.empty() ? "[" : ", ") + (el.v ? el.v->type.str() : std::string("-"));
        type += "]";
      }
      LoweredModel::Row row{name, type, 0, s.loc.line};
      for (size_t i = paramsBefore; i < out_.params.size(); ++i)
        row.params += ir::numElements(out_.params[i].shape);
      out_.rows.push_back(std::move(row));
    }
    if (s.kind == ast::Stmt::Loss) {
      if (v.ok())
        v = asTensor(v, s.value->loc);
      if (v.ok() && (v.v->type.rank() != 0 || v.v->type.dtype != ir::DType::F32)) {
        d_.error(s.value->loc, "a loss must be an f32 scalar, but this expression has type " + v.v->type.str());
        if (v.v->type.rank() != 0)
          d_.note(s.value->loc, "reduce it with mean(...) or sum(...)");
        v = Val::error();
      }
      losses.push_back({v, s.loc});
      lossStmts.push_back(&s);
      continue;
    }
    if (s.kind == ast::Stmt::Output && v.ok()) {
      v = asTensor(v, s.value->loc);
      if (v.ok())
        outputs.push_back({s.name, v});
    }
    bindNames(s, v, scope);
  }
  if (d_.errorCount() != before)
    return std::nullopt;

  if (std::any_of(lossStmts.begin(), lossStmts.end(), [](const ast::Stmt *s) { return !s->updates.empty(); })) {
    if (!objectives(lossStmts, losses))
      return std::nullopt;
  } else {
    b_->setLoc(losses.front().second);
    ir::Value *loss = losses.front().first.v;
    for (size_t i = 1; i < losses.size(); ++i)
      loss = b_->add(loss, losses[i].first.v);
    fn_->addResult("loss", loss);
  }

  // Accuracy: the first output [N, C] (else the logits of the first
  // cross_entropy) against an i64 label [N].
  ir::Value *scores = !outputs.empty() ? outputs.front().second.v : ceLogits_;
  if (scores && out_.labels.size() == 1) {
    ir::Value *label = fn_->arg(out_.labels[0].name);
    const ir::Shape &ss = scores->type.shape;
    if (label->type.dtype == ir::DType::I64 && scores->type.dtype == ir::DType::F32 && scores->type.rank() == 2 &&
        label->type.rank() == 1 && ss[0] == label->type.shape[0] && ss[1].isStatic()) {
      ir::Value *pred = b_->create(ir::OpKind::ArgMax, {scores});
      ir::Value *hits = b_->create(ir::OpKind::Equal, {pred, label});
      fn_->addResult("correct", b_->reduce(ir::OpKind::ReduceSum, hits, {0}, false));
      out_.classification = true;
      out_.accuracy = true;
      out_.task = LoweredModel::Task::Classification;
      out_.numClasses = ss[1].size;
    }
  }
  // Binary, multi-label and regression targets: the first bce_with_logits,
  // mse or huber loss that compares something with the label itself.
  if (!out_.classification && firstPair_.pred && out_.labels.size() == 1 &&
      firstPair_.target == fn_->arg(out_.labels[0].name)) {
    ir::Value *z = firstPair_.pred, *y = firstPair_.target;
    int64_t perExample = 1;
    for (size_t i = 1; i < z->type.rank(); ++i)
      perExample *= z->type.shape[i].isStatic() ? z->type.shape[i].size : 0;
    bool batchFirst = z->type.rank() >= 1 && !z->type.shape[0].isStatic() && perExample > 0;
    if (batchFirst && firstPair_.bce) {
      out_.task = perExample == 1 ? LoweredModel::Task::Binary : LoweredModel::Task::MultiLabel;
      // correct = sum over examples of the fraction of its labels right.
      ir::Value *pred = b_->unary(ir::OpKind::Step, z);
      ir::Value *truth = b_->unary(ir::OpKind::Step, b_->sub(y, b_->constant(0.5)));
      ir::Value *hits = b_->create(ir::OpKind::Equal, {pred, truth});
      std::vector<int64_t> all = allAxes(hits->type.rank());
      ir::Value *sum = b_->reduce(ir::OpKind::ReduceSum, hits, all, false);
      fn_->addResult("correct", perExample == 1 ? sum : b_->mul(sum, b_->constant(1.0 / double(perExample))));
      out_.accuracy = true;
    } else if (batchFirst) {
      out_.task = LoweredModel::Task::Regression;
    }
    if (out_.hasPrediction())
      fn_->addResult("prediction", z);
  }
  for (auto &[name, v] : outputs) {
    fn_->addResult(name, v.v);
    out_.outputs.push_back(name);
  }
  for (auto &[name, v] : stateUpdates_)
    fn_->addResult("new." + name, v);
  return std::move(out_);
}

ir::TensorType Elaborator::toType(const ast::TypeSpec &t) {
  ir::TensorType r;
  r.dtype = t.dtype == "i64" ? ir::DType::I64 : ir::DType::F32;
  for (auto &d : t.dims)
    r.shape.push_back(d.sym.empty() ? ir::Dim(d.size) : ir::Dim::symbol(d.sym));
  return r;
}

Val Elaborator::tensorVal(ir::Value *v) {
  Val r;
  r.kind = Val::Tensor;
  r.v = v;
  return r;
}

Val Elaborator::asTensor(const Val &v, SourceLoc at) {
  if (v.kind == Val::Tensor || v.kind == Val::Error)
    return v;
  if (v.kind == Val::Number) {
    b_->setLoc(at);
    return tensorVal(b_->constant(v.num));
  }
  d_.error(at, std::string("expected a tensor, but this is ") + describe(v));
  return Val::error();
}

std::string Elaborator::describe(const Val &v) {
  switch (v.kind) {
  case Val::Number:
    return "a number";
  case Val::String:
    return "a string";
  case Val::List:
    return "a list";
  case Val::ParamSet:
    return v.weightsOnly ? "the set of weights" : "the set of parameters";
  case Val::Tensor:
    return "a tensor of type " + v.v->type.str();
  case Val::Error:
    return "an erroneous value";
  case Val::Symbol:
    return "the dimension " + v.str;
  }
  return "?";
}

void Elaborator::noteOperands(const std::vector<Val> &vals) {
  std::set<std::string> seen;
  for (auto &v : vals)
    if (v.kind == Val::Tensor && v.loc.valid() && !v.name.empty() && seen.insert(v.name).second)
      d_.note(v.loc, "'" + v.name + "' has type " + v.v->type.str());
}

ir::Value *Elaborator::build(ir::OpKind k, std::vector<ir::Value *> ops, ir::Attrs attrs, SourceLoc at,
                             const std::string &callee, const std::vector<Val> &context) {
  b_->setLoc(at);
  auto r = b_->tryCreate(k, std::move(ops), std::move(attrs));
  if (auto *err = std::get_if<std::string>(&r)) {
    std::string msg = *err;
    std::string op = ir::opName(k);
    if (msg.compare(0, op.size(), op) == 0 && !callee.empty())
      msg = callee + msg.substr(op.size());
    else if (!callee.empty())
      msg = callee + ": " + msg;
    d_.error(at, msg);
    noteOperands(context);
    return nullptr;
  }
  return std::get<ir::Value *>(r);
}

Val Elaborator::eval(const ast::Expr &e, Scope &scope) {
  if (auto it = chained_.find(&e); it != chained_.end()) {
    Val v = std::move(it->second);
    chained_.erase(it);
    return v;
  }
  if (!ast::chainOperand(e))
    return evalOne(e, scope);
  std::vector<const ast::Expr *> c = ast::chain(e);
  for (size_t i = c.size() - 1; i-- > 1;)
    chained_[c[i]] = evalOne(*c[i], scope);
  Val v = evalOne(e, scope);
  for (size_t i = 1; i + 1 < c.size(); ++i)
    chained_.erase(c[i]); // left by a level that did not read its operand
  return v;
}

Val Elaborator::evalOne(const ast::Expr &e, Scope &scope) {
  switch (e.kind) {
  case ast::Expr::Number: {
    Val v;
    v.kind = Val::Number;
    v.num = e.number;
    v.isInt = e.isInteger;
    return v;
  }
  case ast::Expr::String: {
    Val v;
    v.kind = Val::String;
    v.str = e.name;
    return v;
  }
  case ast::Expr::Name: {
    if (e.name == "params" || e.name == "weights") {
      Val v;
      v.kind = Val::ParamSet;
      v.weightsOnly = e.name == "weights";
      return v;
    }
    if (e.name.find('.') != std::string::npos)
      return namedParam(e);
    auto it = scope.find(e.name);
    if (it != scope.end())
      return it->second;
    Val v;
    if (kConstantNames.count(e.name)) {
      v.kind = Val::Number;
      v.isInt = true;
      v.num = e.name == "true";
      return v;
    }
    NNC_ASSERT(declaredSymbols(p_).count(e.name)) << "name checks let an unknown name through: " << e.name;
    v.kind = Val::Symbol;
    v.str = e.name;
    return v;
  }
  case ast::Expr::List: {
    Val v;
    v.kind = Val::List;
    for (auto &x : e.elems) {
      Val el = eval(*x, scope);
      if (!el.ok())
        return el;
      el.loc = x->loc;
      v.list.push_back(el);
    }
    return v;
  }
  case ast::Expr::Neg: {
    Val x = eval(*e.lhs, scope);
    if (!x.ok())
      return x;
    if (x.kind == Val::Number) {
      x.num = -x.num;
      return x;
    }
    x = asTensor(x, e.lhs->loc);
    if (!x.ok())
      return x;
    ir::Value *r = build(ir::OpKind::Neg, {x.v}, {}, e.loc, "negation", {x});
    return r ? tensorVal(r) : Val::error();
  }
  case ast::Expr::Binary:
    return binary(e, scope);
  case ast::Expr::Call:
    return call(e, scope);
  }
  return Val::error();
}

Val Elaborator::namedParam(const ast::Expr &e) {
  for (size_t i = 0; i < fn_->args.size(); ++i)
    if (fn_->args[i]->name == e.name &&
        (fn_->argRoles[i] == ir::ArgRole::Param || fn_->argRoles[i] == ir::ArgRole::State))
      return tensorVal(fn_->args[i]);
  std::vector<std::string> names;
  for (const ParamInfo &p : out_.params)
    names.push_back(p.name);
  std::string hint = didYouMean(e.name, names);
  if (hint.empty() && !names.empty()) {
    hint = "; the parameters so far are ";
    for (size_t i = 0; i < names.size() && i < 8; ++i)
      hint += (i ? ", " : "") + names[i];
    hint += names.size() > 8 ? ", ..." : "";
  }
  d_.error(e.loc, "no parameter named '" + e.name + "'" +
                      (names.empty() ? std::string(" (no statement before this one creates parameters)") : hint));
  return Val::error();
}

Val Elaborator::binary(const ast::Expr &e, Scope &scope) {
  Val a = eval(*e.lhs, scope), b = eval(*e.rhs, scope);
  if (!a.ok() || !b.ok())
    return Val::error();
  if (a.kind == Val::Number && b.kind == Val::Number) {
    Val r = a;
    r.isInt = a.isInt && b.isInt && e.op != '/' && (e.op != '^' || b.num >= 0);
    r.num = e.op == '+'   ? a.num + b.num
            : e.op == '-' ? a.num - b.num
            : e.op == '*' ? a.num * b.num
            : e.op == '^' ? std::pow(a.num, b.num)
                          : a.num / b.num;
    return r;
  }
  if (e.op == '^')
    return power(e, a, b);
  Val ta = asTensor(a, e.lhs->loc), tb = asTensor(b, e.rhs->loc);
  if (!ta.ok() || !tb.ok())
    return Val::error();
  ir::OpKind k = e.op == '+'   ? ir::OpKind::Add
                 : e.op == '-' ? ir::OpKind::Sub
                 : e.op == '*' ? ir::OpKind::Mul
                               : ir::OpKind::Div;
  const char *verb = e.op == '+' ? "add" : e.op == '-' ? "subtract" : e.op == '*' ? "multiply" : "divide";
  ta.loc = a.loc;
  ta.name = a.name;
  tb.loc = b.loc;
  tb.name = b.name;
  std::string what = std::string("cannot ") + verb + " " + ta.v->type.str() + " and " + tb.v->type.str();
  if (ta.v->type.dtype != ir::DType::F32 || tb.v->type.dtype != ir::DType::F32) {
    d_.error(e.loc, what + ": arithmetic needs f32 operands");
    noteOperands({ta, tb});
    return Val::error();
  }
  auto bc = ir::broadcastShapes(ta.v->type.shape, tb.v->type.shape);
  if (auto *err = std::get_if<std::string>(&bc)) {
    // "shapes A and B do not broadcast: dimension 4 does not match 8"
    size_t colon = err->find(": ");
    d_.error(e.loc, what + ": the shapes do not broadcast (" + err->substr(colon + 2) + ")");
    noteOperands({ta, tb});
    return Val::error();
  }
  ir::Value *r = build(k, {ta.v, tb.v}, {}, e.loc, "", {ta, tb});
  return r ? tensorVal(r) : Val::error();
}

Val Elaborator::power(const ast::Expr &e, const Val &a, const Val &b) {
  if (b.kind != Val::Number) {
    d_.error(e.rhs->loc, "the exponent of '^' must be a number, but this is " + describe(b));
    return Val::error();
  }
  Val x = asTensor(a, e.lhs->loc);
  if (!x.ok())
    return x;
  if (x.v->type.dtype != ir::DType::F32) {
    d_.error(e.loc, "'^' needs an f32 base, got " + x.v->type.str());
    return Val::error();
  }
  b_->setLoc(e.loc);
  double p = b.num;
  if (p == std::floor(p) && std::fabs(p) <= 64) {
    // x^n by squaring; x^-n = 1 / x^n; x^0 = 1.
    int64_t n = int64_t(std::fabs(p));
    ir::Value *r = nullptr, *sq = x.v;
    for (; n > 0; n >>= 1) {
      if (n & 1)
        r = r ? b_->mul(r, sq) : sq;
      if (n > 1)
        sq = b_->mul(sq, sq);
    }
    if (!r)
      return tensorVal(b_->add(b_->mul(x.v, b_->constant(0.0)), b_->constant(1.0)));
    return tensorVal(p < 0 ? b_->div(b_->constant(1.0), r) : r);
  }
  if (p == 0.5)
    return tensorVal(b_->unary(ir::OpKind::Sqrt, x.v));
  // Other exponents: exp(p log x), defined for x > 0.
  return tensorVal(
      b_->unary(ir::OpKind::Exp, b_->mul(b_->constant(p), b_->unary(ir::OpKind::Log, x.v))));
}

ArgMap Elaborator::bind(const ast::Expr &e, const std::vector<std::string> &params, Scope &scope, bool &ok) {
  ArgMap m;
  size_t pos = 0;
  ok = true;
  for (auto &a : e.args) {
    std::string name = a.name.empty() ? (pos < params.size() ? params[pos++] : "") : a.name;
    Val v = eval(*a.value, scope);
    if (!v.ok())
      ok = false;
    m[name] = {v, a.value.get()};
  }
  return m;
}

Val Elaborator::call(const ast::Expr &e, Scope &scope) {
  if (const ast::LayerDecl *l = p_.layer(e.name))
    return callLayer(e, *l, scope);
  const Builtin *bi = findBuiltin(e.name, Builtin::Model);
  NNC_ASSERT(bi) << "name checks let an unknown callee through: " << e.name;
  std::vector<std::string> names;
  for (auto &p : bi->params)
    names.push_back(p.name);
  bool ok;
  ArgMap args = bind(e, names, scope, ok);
  if (!ok)
    return Val::error();
  return callBuiltin(*bi, e, args);
}

void Elaborator::bindNames(const ast::Stmt &s, Val v, Scope &scope) {
  if (s.more.empty()) {
    scope[s.name] = v;
    return;
  }
  std::vector<std::pair<std::string, SourceLoc>> names{{s.name, s.nameLoc}};
  names.insert(names.end(), s.more.begin(), s.more.end());
  if (v.ok() && (v.kind != Val::List || v.list.size() != names.size())) {
    std::string what = v.kind == Val::List ? "a list of " + std::to_string(v.list.size()) : std::string("one value");
    d_.error(s.nameLoc, std::to_string(names.size()) + " names are bound, but the right side gives " + what);
    v = Val::error();
  }
  for (size_t i = 0; i < names.size(); ++i) {
    Val part = v.ok() ? v.list[i] : Val::error();
    part.loc = names[i].second;
    part.name = names[i].first;
    scope[names[i].first] = part;
  }
}

Val Elaborator::callLayer(const ast::Expr &e, const ast::LayerDecl &l, Scope &scope) {
  std::vector<std::string> names;
  for (auto &p : l.params)
    names.push_back(p.name);
  bool ok;
  ArgMap args = bind(e, names, scope, ok);
  if (!ok)
    return Val::error();
  if (++depth_ > 64) {
    d_.error(e.loc, "layers nested too deeply");
    --depth_;
    return Val::error();
  }
  // The instance prefix for the parameters this layer creates.
  std::string savedPrefix = prefix_, savedBinding = binding_;
  std::set<std::string> savedUsed = usedInstances_;
  bool savedShared = shared_;
  bool savedReuse = reuse_;
  std::string inst = instanceName(e);
  reuse_ = reuse_ || shared_;
  prefix_ = inst;
  usedInstances_.clear();
  Scope inner;
  for (auto &p : l.params) {
    auto it = args.find(p.name);
    Val v;
    if (it != args.end()) {
      v = it->second.first;
    } else {
      // Defaults may use the parameters before them (`layer f(x, y = x)`).
      v = eval(*p.defaultValue, inner);
    }
    v.loc = p.loc;
    v.name = p.name;
    inner[p.name] = v;
  }
  Val result = Val::error();
  for (auto &s : l.body) {
    binding_ = s.name.empty() ? "out" : s.name;
    Val v = eval(*s.value, inner);
    if (s.kind == ast::Stmt::Return) {
      result = v;
      break;
    }
    v.loc = s.nameLoc;
    v.name = s.name;
    bindNames(s, v, inner);
  }
  prefix_ = savedPrefix;
  binding_ = savedBinding;
  usedInstances_ = savedUsed;
  shared_ = savedShared;
  reuse_ = savedReuse;
  --depth_;
  if (result.ok()) {
    result.loc = {};
    result.name.clear();
  }
  return result;
}

std::string Elaborator::instanceName(const ast::Expr &e) {
  std::string base;
  if (!e.instance.empty()) {
    base = e.instance;
    auto [it, fresh] = instanceCallee_.emplace(qualify(base), e.name);
    if (!fresh && it->second != e.name) {
      d_.error(e.instanceLoc, "instance '" + base + "' is a '" + it->second + "', not a '" + e.name + "'");
    }
    shared_ = !fresh;
    usedInstances_.insert(base);
    return qualify(base);
  }
  shared_ = false;
  base = binding_;
  std::string name = base;
  // Inside a shared instance the names repeat on purpose: they must find
  // the parameters the first instantiation created.
  for (int i = 2; usedInstances_.count(name) || (!reuse_ && instanceCallee_.count(qualify(name))); ++i)
    name = base + "_" + std::to_string(i);
  usedInstances_.insert(name);
  instanceCallee_.emplace(qualify(name), e.name);
  return qualify(name);
}

ir::Value *Elaborator::param(const std::string &inst, const std::string &leaf, std::vector<int64_t> shape,
                             ParamInfo::Init init, int64_t fanIn, int64_t fanOut, bool isBias, SourceLoc at) {
  std::string name = inst + "." + leaf;
  if (ir::Value *existing = fn_->arg(name)) {
    ir::Shape want;
    for (int64_t d : shape)
      want.push_back(ir::Dim(d));
    if (existing->type.shape != want) {
      d_.error(at, "shared instance parameter '" + name + "' has shape " + ir::shapeStr(existing->type.shape) +
                       " but this call needs " + ir::shapeStr(want));
      return nullptr;
    }
    return existing;
  }
  ir::TensorType t{ir::DType::F32, {}};
  for (int64_t d : shape)
    t.shape.push_back(ir::Dim(d));
  ParamInfo info;
  info.name = name;
  info.shape = shape;
  info.init = init;
  info.fanIn = fanIn;
  info.fanOut = fanOut;
  info.isBias = isBias;
  info.loc = at;
  out_.params.push_back(info);
  return fn_->addArg(name, t, ir::ArgRole::Param);
}

void Elaborator::markNorm(const std::string &inst) {
  for (ParamInfo &p : out_.params)
    if (p.name == inst + ".scale" || p.name == inst + ".shift")
      p.isNorm = true;
}

std::optional<int64_t> Elaborator::intArg(const ArgMap &args, const std::string &name, const char *callee, int64_t lo) {
  auto it = args.find(name);
  if (it == args.end())
    return std::nullopt;
  const Val &v = it->second.first;
  if (v.kind != Val::Number || !v.isInt || v.num < double(lo) || v.num > 1e12) {
    d_.error(it->second.second->loc, std::string(callee) + ": '" + name + "' must be an integer in [" +
                                         std::to_string(lo) + ", 1000000000000], got " +
                                         ast::toSource(*it->second.second));
    return std::nullopt;
  }
  return int64_t(v.num);
}

std::optional<bool> Elaborator::boolArg(const ArgMap &args, const std::string &name, const char *callee, bool dflt) {
  auto it = args.find(name);
  if (it == args.end())
    return dflt;
  const Val &v = it->second.first;
  if (v.kind == Val::Number && v.isInt && (v.num == 0 || v.num == 1))
    return v.num == 1; // true, false, or a layer parameter holding one
  d_.error(it->second.second->loc, std::string(callee) + ": '" + name + "' must be true or false");
  return std::nullopt;
}

Val Elaborator::tensorArg(const ArgMap &args, const std::string &name, SourceLoc callLoc) {
  auto it = args.find(name);
  NNC_ASSERT(it != args.end()) << "missing required argument " << name;
  Val v = it->second.first;
  if (v.kind == Val::Tensor || v.kind == Val::Error)
    return v;
  if (v.kind == Val::Number) {
    b_->setLoc(it->second.second->loc);
    Val t = tensorVal(b_->constant(v.num));
    return t;
  }
  d_.error(it->second.second->loc, "expected a tensor, but this is " + describe(v));
  return Val::error();
}

std::optional<Val> Elaborator::optionalTensorArg(const ArgMap &args, const std::string &name, SourceLoc callLoc) {
  if (!args.count(name))
    return std::nullopt;
  return tensorArg(args, name, callLoc);
}

std::optional<std::vector<int64_t>> Elaborator::axesArg(const ArgMap &args, int64_t rank, const char *callee) {
  auto it = args.find("axis");
  std::vector<int64_t> axes;
  if (it == args.end()) {
    for (int64_t i = 0; i < rank; ++i)
      axes.push_back(i);
    return axes;
  }
  const Val &v = it->second.first;
  std::vector<Val> items = v.kind == Val::List ? v.list : std::vector<Val>{v};
  for (auto &x : items) {
    if (x.kind != Val::Number || !x.isInt || std::fabs(x.num) > 1e15) {
      d_.error(it->second.second->loc, std::string(callee) + ": 'axis' must be an integer or a list of integers");
      return std::nullopt;
    }
    int64_t a = int64_t(x.num);
    if (a < -rank || a >= rank) {
      d_.error(it->second.second->loc, std::string(callee) + ": axis " + std::to_string(a) +
                                           " is out of range for a tensor of rank " + std::to_string(rank));
      return std::nullopt;
    }
    axes.push_back(a < 0 ? a + rank : a);
  }
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) {
    d_.error(it->second.second->loc, std::string(callee) + ": an axis is listed twice");
    return std::nullopt;
  }
  return axes;
}

Val Elaborator::callBuiltin(const Builtin &bi, const ast::Expr &e, const ArgMap &args) {
  if (!e.instance.empty() && bi.instance != Builtin::Shareable) {
    d_.error(e.instanceLoc,
             bi.instance == Builtin::Own
                 ? "'" + e.name + "' takes its instance name from the binding and cannot be shared " + "with 'as " +
                       e.instance + "'; wrap it in a layer to share it"
                 : "'" + e.name + "' creates no parameters, so 'as " + e.instance + "' has nothing to share");
    return Val::error();
  }
  NNC_ASSERT(bi.lower) << "builtin without a lowering: " << e.name;
  return (this->*bi.lower)(e, args);
}

std::optional<double> Elaborator::floatArg(const ArgMap &args, const std::string &name, const std::string &callee,
                                           double dflt, double lo, double hi) {
  auto it = args.find(name);
  if (it == args.end())
    return dflt;
  const Val &v = it->second.first;
  if (v.kind != Val::Number || !std::isfinite(v.num) || v.num < lo || v.num > hi) {
    d_.error(it->second.second->loc, callee + ": '" + name + "' must be a number in [" + fmtNum(lo) + ", " +
                                         fmtNum(hi) + "], got " + ast::toSource(*it->second.second));
    return std::nullopt;
  }
  return v.num;
}

std::string Elaborator::fmtNum(double v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

Val Elaborator::requireF32(const ArgMap &args, const std::string &name, const ast::Expr &e) {
  Val x = tensorArg(args, name, e.loc);
  if (x.ok() && x.v->type.dtype != ir::DType::F32) {
    d_.error(e.loc, e.name + " expects an f32 tensor, got " + x.v->type.str());
    noteOperands({x});
    return Val::error();
  }
  return x;
}

std::optional<int64_t> Elaborator::anyIntArg(const ArgMap &args, const std::string &name, const std::string &callee) {
  auto it = args.find(name);
  const Val &v = it->second.first;
  if (v.kind != Val::Number || !v.isInt || std::fabs(v.num) > 1e15) {
    d_.error(it->second.second->loc,
             callee + ": '" + name + "' must be an integer, got " + ast::toSource(*it->second.second));
    return std::nullopt;
  }
  return int64_t(v.num);
}

} // namespace nnc::frontend
