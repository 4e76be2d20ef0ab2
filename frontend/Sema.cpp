// Semantic analysis: name checks over the whole program, then elaboration of
// a model into IR with shape checking.
//
// Elaboration walks a model's statements in order with a scope of named
// values. Layer calls are inlined with a fresh scope that binds the layer's
// parameters to the call's arguments; parameters of builtin layers (dense)
// are named after the binding or the explicit `as` instance, so `as` with the
// same name shares weights. Each builtin becomes a few IR ops built through
// the IR's shape rules; a rule failure is reported at the call with notes on
// where its operands were defined.
#include "frontend/Sema.h"

#include "frontend/Builtins.h"
#include "ir/Builder.h"
#include "ir/ShapeRules.h"
#include "ir/transforms/Passes.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>

namespace nnc::frontend {

namespace {
/// 0, 1, ..., rank - 1: every axis, for reductions over a whole tensor.
std::vector<int64_t> allAxes(size_t rank) {
  std::vector<int64_t> axes(rank);
  for (size_t i = 0; i < rank; ++i)
    axes[i] = int64_t(i);
  return axes;
}
} // namespace

const char *taskName(LoweredModel::Task t) {
  switch (t) {
  case LoweredModel::Task::Classification:
    return "classification";
  case LoweredModel::Task::Binary:
    return "binary";
  case LoweredModel::Task::MultiLabel:
    return "multilabel";
  case LoweredModel::Task::Regression:
    return "regression";
  case LoweredModel::Task::Other:
    break;
  }
  return "other";
}

std::vector<std::string> builtinNames() {
  std::vector<std::string> r;
  for (const Builtin &b : builtins())
    r.push_back(b.name);
  return r;
}

namespace {

std::string suggest(const std::string &name, const std::vector<std::string> &candidates) {
  return didYouMean(name, candidates);
}

std::vector<std::string> builtinNamesFor(Builtin::Where w) {
  std::vector<std::string> r;
  for (const Builtin &b : builtins())
    if (b.where == w)
      r.push_back(b.name);
  return r;
}

const std::set<std::string> kSpecialNames = {"params", "weights"};
const std::set<std::string> kConstantNames = {"true", "false"};

/// The symbolic dimensions declared by any model's inputs and labels; they may
/// be named in shape lists (`reshape(x, [N, 64])`).
std::set<std::string> declaredSymbols(const ast::Program &p) {
  std::set<std::string> r;
  for (auto &m : p.models)
    for (auto &s : m.body)
      if (s.kind == ast::Stmt::Input || s.kind == ast::Stmt::Label)
        for (auto &d : s.type.dims)
          if (!d.sym.empty())
            r.insert(d.sym);
  return r;
}

//===----------------------------------------------------------------------===//
// Name checks
//===----------------------------------------------------------------------===//

class NameChecker {
public:
  NameChecker(const ast::Program &p, DiagnosticEngine &d) : p_(p), d_(d), symbols_(declaredSymbols(p)) {}

  bool run() {
    unsigned before = d_.errorCount();
    std::map<std::string, SourceLoc> decls;
    auto declare = [&](const std::string &name, SourceLoc loc, const char *what) {
      auto [it, fresh] = decls.emplace(name, loc);
      if (!fresh) {
        d_.error(loc, std::string("redefinition of ") + what + " '" + name + "'");
        d_.note(it->second, "previous definition is here");
      }
      if (findBuiltin(name, Builtin::Model))
        d_.error(loc, std::string(what) + " '" + name + "' has the name of a builtin function");
    };
    for (auto &l : p_.layers)
      declare(l.name, l.nameLoc, "layer");
    for (auto &m : p_.models)
      declare(m.name, m.nameLoc, "model");
    for (auto &l : p_.layers)
      checkLayer(l);
    for (auto &m : p_.models)
      checkModel(m);
    checkRecursion();
    std::map<std::string, SourceLoc> trained;
    for (auto &t : p_.trains) {
      if (!p_.model(t.model)) {
        std::vector<std::string> names;
        for (auto &m : p_.models)
          names.push_back(m.name);
        d_.error(t.modelLoc, "train block for unknown model '" + t.model + "'" + suggest(t.model, names));
      }
      auto [it, fresh] = trained.emplace(t.model, t.modelLoc);
      if (!fresh) {
        d_.error(t.modelLoc, "second train block for model '" + t.model + "'");
        d_.note(it->second, "first train block is here");
      }
    }
    if (p_.models.empty() && p_.layers.empty() && p_.trains.empty())
      d_.error(SourceLoc{}, "the file declares no model");
    return d_.errorCount() == before;
  }

private:
  using Scope = std::map<std::string, SourceLoc>;

  void define(Scope &scope, const std::string &name, SourceLoc loc) {
    if (kSpecialNames.count(name)) {
      d_.error(loc, "'" + name + "' is reserved: it names the model's parameters");
      return;
    }
    if (kConstantNames.count(name)) {
      d_.error(loc, "'" + name + "' is reserved: it is a boolean constant");
      return;
    }
    auto [it, fresh] = scope.emplace(name, loc);
    if (!fresh) {
      d_.error(loc, "redefinition of '" + name + "'");
      d_.note(it->second, "previous definition is here");
    }
  }

  void checkModel(const ast::ModelDecl &m) {
    Scope scope;
    later_.clear();
    for (auto &s : m.body) {
      if (!s.name.empty() && s.kind != ast::Stmt::Loss)
        later_.emplace(s.name, s.nameLoc);
      for (auto &[name, loc] : s.more)
        later_.emplace(name, loc);
    }
    bool hasLoss = false, hasInput = false;
    for (auto &s : m.body) {
      if (s.value)
        checkExpr(*s.value, scope, /*inModel=*/true);
      if (s.kind == ast::Stmt::Input || s.kind == ast::Stmt::Label)
        checkType(s.type);
      hasLoss |= s.kind == ast::Stmt::Loss;
      hasInput |= s.kind == ast::Stmt::Input;
      if (s.kind == ast::Stmt::Output && (s.name == "loss" || s.name == "correct"))
        d_.error(s.nameLoc, "output name '" + s.name + "' is reserved for the " +
                                (s.name == "loss" ? "training objective" : "count of correct predictions"));
      if (!s.name.empty() && s.kind != ast::Stmt::Loss)
        define(scope, s.name, s.nameLoc);
      for (auto &[name, loc] : s.more)
        define(scope, name, loc);
    }
    if (!hasInput)
      d_.error(m.nameLoc, "model '" + m.name + "' has no input");
    if (!hasLoss)
      d_.error(m.nameLoc, "model '" + m.name +
                              "' has no loss (add a statement such as 'loss = "
                              "cross_entropy(logits, y)')");
  }

  void checkLayer(const ast::LayerDecl &l) {
    Scope scope;
    later_.clear();
    for (auto &s : l.body) {
      if (!s.name.empty())
        later_.emplace(s.name, s.nameLoc);
      for (auto &[name, loc] : s.more)
        later_.emplace(name, loc);
    }
    const ast::LayerParam *firstDefault = nullptr;
    for (auto &prm : l.params) {
      if (prm.defaultValue) {
        checkExpr(*prm.defaultValue, scope, false);
        if (!firstDefault)
          firstDefault = &prm;
      } else if (firstDefault) {
        d_.error(prm.loc, "parameter '" + prm.name + "' needs a default value: it follows '" + firstDefault->name +
                              "', which has one");
      }
      define(scope, prm.name, prm.loc);
    }
    const ast::Stmt *ret = nullptr;
    for (auto &s : l.body) {
      if (ret) {
        d_.error(s.loc, "statement after 'return' in layer '" + l.name + "'");
        break;
      }
      checkExpr(*s.value, scope, false);
      if (s.kind == ast::Stmt::Return) {
        ret = &s;
      } else {
        define(scope, s.name, s.nameLoc);
        for (auto &[name, loc] : s.more)
          define(scope, name, loc);
      }
    }
    if (!ret)
      d_.error(l.nameLoc, "layer '" + l.name + "' does not return a value (end it with 'return <expr>')");
  }

  void checkType(const ast::TypeSpec &t) {
    if (t.dtype != "f32" && t.dtype != "i64")
      d_.error(t.loc,
               "unknown element type '" + t.dtype + "' (expected f32 or i64)" + suggest(t.dtype, {"f32", "i64"}));
    bool dimsOk = true;
    double elements = 1;
    for (auto &d : t.dims) {
      if (!d.sym.empty())
        continue;
      if (d.size == -2 || d.size > ir::kMaxElements) {
        d_.error(d.loc, "dimension is too large (the limit is 2^40)");
        dimsOk = false;
      } else if (d.size <= 0) {
        d_.error(d.loc, "dimension must be positive");
        dimsOk = false;
      } else {
        elements *= double(d.size);
      }
    }
    if (dimsOk && elements > double(ir::kMaxElements))
      d_.error(t.loc, "this tensor type has more than 2^40 elements");
  }

  /// Checks `e` bottom-up along its operator chain (see ast::chain): the
  /// innermost expression first, then each level's other operands, in the
  /// order a recursive walk would report them.
  void checkExpr(const ast::Expr &top, const Scope &scope, bool inModel) {
    std::vector<const ast::Expr *> c = ast::chain(top);
    checkOperand(*c.back(), scope, inModel);
    for (size_t i = c.size() - 1; i-- > 0;) {
      const ast::Expr &e = *c[i];
      if (e.kind == ast::Expr::Binary) {
        checkExpr(*e.rhs, scope, inModel);
      } else if (e.kind == ast::Expr::Call) {
        for (size_t j = 1; j < e.args.size(); ++j)
          checkExpr(*e.args[j].value, scope, inModel);
        checkCallee(e);
      }
    }
  }

  /// An expression that continues no operator chain.
  void checkOperand(const ast::Expr &e, const Scope &scope, bool inModel) {
    switch (e.kind) {
    case ast::Expr::Name:
      // `h.w`: a parameter of a layer instance, looked up when lowering.
      if (e.name.find('.') != std::string::npos) {
        if (!inModel)
          d_.error(e.loc, "a parameter name such as '" + e.name +
                              "' can only be used in a model; a layer receives what it needs as arguments");
        return;
      }
      if (!scope.count(e.name) && !kSpecialNames.count(e.name) && !kConstantNames.count(e.name) &&
          !symbols_.count(e.name)) {
        if (auto it = later_.find(e.name); it != later_.end()) {
          d_.error(e.loc, "'" + e.name + "' is used before it is defined");
          d_.note(it->second, "'" + e.name + "' is defined here");
          return;
        }
        std::vector<std::string> names;
        for (auto &[n, l] : scope)
          names.push_back(n);
        d_.error(e.loc, "unknown name '" + e.name + "'" + suggest(e.name, names));
      }
      return;
    case ast::Expr::Call:
      for (auto &a : e.args)
        checkExpr(*a.value, scope, inModel);
      checkCallee(e);
      return;
    case ast::Expr::Binary:
    case ast::Expr::Neg:
      NNC_UNREACHABLE("a chain's operator is not its innermost operand");
    case ast::Expr::List:
      for (auto &x : e.elems)
        checkExpr(*x, scope, inModel);
      return;
    case ast::Expr::Number:
    case ast::Expr::String:
      return;
    }
  }

  /// The callee of a call and its arguments' names (the arguments' values
  /// are checked by the caller).
  void checkCallee(const ast::Expr &e) {
    std::vector<std::string> paramNames;
    size_t required = 0;
    if (const Builtin *b = findBuiltin(e.name, Builtin::Model)) {
      for (auto &p : b->params) {
        paramNames.push_back(p.name);
        required += p.required;
      }
    } else if (const ast::LayerDecl *l = p_.layer(e.name)) {
      for (auto &p : l->params) {
        paramNames.push_back(p.name);
        required += p.defaultValue ? 0 : 1;
      }
    } else {
      std::vector<std::string> names = builtinNamesFor(Builtin::Model);
      for (auto &l : p_.layers)
        names.push_back(l.name);
      std::string hint = suggest(e.name, names);
      if (findBuiltin(e.name, Builtin::Train))
        hint = " in a model ('" + e.name + "' belongs in a train block)";
      d_.error(e.loc, "unknown function '" + e.name + "'" + hint);
      return;
    }
    bindArgs(e, paramNames, required);
  }

  /// Checks positional/named arguments against parameter names.
  void bindArgs(const ast::Expr &e, const std::vector<std::string> &params, size_t required) {
    // concat(x, s) for concat([x, s]): the second tensor would be read as
    // the axis (or clash with axis = ...). A name first may hold a list
    // (split's parts), so only a second positional that is not a number
    // gives it away.
    if (!params.empty() && params[0] == "xs" && e.args.size() >= 2 && e.args[0].name.empty() &&
        e.args[1].name.empty() && e.args[0].value->kind != ast::Expr::List &&
        e.args[1].value->kind != ast::Expr::Number && e.args[1].value->kind != ast::Expr::Neg) {
      std::string list, rest;
      for (const auto &a : e.args)
        if (a.name.empty())
          list += (list.empty() ? "" : ", ") + ast::toSource(*a.value);
        else
          rest += ", " + a.name + " = " + ast::toSource(*a.value);
      d_.error(e.loc, "'" + e.name + "' takes its tensors as one list: " + e.name + "([" + list + "]" + rest + ")");
      return;
    }
    std::vector<bool> bound(params.size(), false);
    size_t pos = 0;
    bool sawNamed = false;
    for (auto &a : e.args) {
      if (a.name.empty()) {
        if (sawNamed) {
          d_.error(a.value->loc, "positional argument after a named argument in call to '" + e.name + "'");
          return;
        }
        if (pos >= params.size()) {
          d_.error(a.value->loc, "too many arguments to '" + e.name + "': it takes " + std::to_string(params.size()));
          return;
        }
        bound[pos++] = true;
        continue;
      }
      sawNamed = true;
      auto it = std::find(params.begin(), params.end(), a.name);
      if (it == params.end()) {
        d_.error(a.nameLoc, "'" + e.name + "' has no parameter named '" + a.name + "'" + suggest(a.name, params));
        continue;
      }
      size_t i = size_t(it - params.begin());
      if (bound[i])
        d_.error(a.nameLoc, "argument '" + a.name + "' given twice in call to '" + e.name + "'");
      bound[i] = true;
    }
    for (size_t i = 0; i < required && i < params.size(); ++i)
      if (!bound[i])
        d_.error(e.loc, "missing argument '" + params[i] + "' in call to '" + e.name + "'");
  }

  void checkRecursion() {
    // Depth-first search over layer-calls-layer edges.
    std::map<std::string, int> state; // 0 new, 1 on stack, 2 done
    std::function<void(const ast::LayerDecl &)> visit = [&](const ast::LayerDecl &l) {
      state[l.name] = 1;
      auto walk = [&](const ast::Expr &root) {
        std::vector<const ast::Expr *> todo{&root}; // chains are deep: no recursion
        while (!todo.empty()) {
          const ast::Expr &e = *todo.back();
          todo.pop_back();
          if (e.kind == ast::Expr::Call) {
            if (const ast::LayerDecl *callee = p_.layer(e.name)) {
              if (state[callee->name] == 1)
                d_.error(e.loc,
                         "layer '" + l.name + "' calls itself through '" + e.name + "'; layers cannot be recursive");
              else if (state[callee->name] == 0)
                visit(*callee);
            }
          }
          for (size_t i = e.args.size(); i-- > 0;)
            todo.push_back(e.args[i].value.get());
          for (size_t i = e.elems.size(); i-- > 0;)
            todo.push_back(e.elems[i].get());
          if (e.rhs)
            todo.push_back(e.rhs.get());
          if (e.lhs)
            todo.push_back(e.lhs.get());
        }
      };
      for (auto &prm : l.params)
        if (prm.defaultValue)
          walk(*prm.defaultValue);
      for (auto &s : l.body)
        if (s.value)
          walk(*s.value);
      state[l.name] = 2;
    };
    for (auto &l : p_.layers)
      if (state[l.name] == 0)
        visit(l);
  }

  const ast::Program &p_;
  DiagnosticEngine &d_;
  std::set<std::string> symbols_;
  Scope later_; ///< every name the current model or layer defines
};

//===----------------------------------------------------------------------===//
// Elaboration into IR
//===----------------------------------------------------------------------===//

/// A value during elaboration: a tensor, or a compile-time constant.
struct Val {
  enum Kind { Error, Tensor, Number, String, List, ParamSet, Symbol } kind = Error;
  ir::Value *v = nullptr;
  double num = 0;
  bool isInt = false;
  std::string str;
  std::vector<Val> list;
  bool weightsOnly = false; ///< ParamSet: `weights` (no biases) vs `params`
  SourceLoc loc;            ///< where the value was defined (for notes)
  std::string name;         ///< the name it was bound to, if any

  static Val error() { return Val{}; }
  bool ok() const { return kind != Error; }
};

/// Where a tensor came from, for notes on shape errors.
struct Origin {
  std::string name;
  SourceLoc loc;
};

class Elaborator {
public:
  Elaborator(const ast::Program &p, DiagnosticEngine &d) : p_(p), d_(d) {}

  std::optional<LoweredModel> run(const ast::ModelDecl &m) {
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

    b_->setLoc(losses.front().second);
    ir::Value *loss = losses.front().first.v;
    for (size_t i = 1; i < losses.size(); ++i)
      loss = b_->add(loss, losses[i].first.v);
    fn_->addResult("loss", loss);

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

private:
  using Scope = std::map<std::string, Val>;

  ir::TensorType toType(const ast::TypeSpec &t) {
    ir::TensorType r;
    r.dtype = t.dtype == "i64" ? ir::DType::I64 : ir::DType::F32;
    for (auto &d : t.dims)
      r.shape.push_back(d.sym.empty() ? ir::Dim(d.size) : ir::Dim::symbol(d.sym));
    return r;
  }

  //--- values -------------------------------------------------------------

  Val tensorVal(ir::Value *v) {
    Val r;
    r.kind = Val::Tensor;
    r.v = v;
    return r;
  }

  /// Numbers become scalar constants; other non-tensors are errors.
  Val asTensor(const Val &v, SourceLoc at) {
    if (v.kind == Val::Tensor || v.kind == Val::Error)
      return v;
    if (v.kind == Val::Number) {
      b_->setLoc(at);
      return tensorVal(b_->constant(v.num));
    }
    d_.error(at, std::string("expected a tensor, but this is ") + describe(v));
    return Val::error();
  }

  static std::string describe(const Val &v) {
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

  /// Notes on where the tensors involved in a failed op were defined.
  void noteOperands(const std::vector<Val> &vals) {
    std::set<std::string> seen;
    for (auto &v : vals)
      if (v.kind == Val::Tensor && v.loc.valid() && !v.name.empty() && seen.insert(v.name).second)
        d_.note(v.loc, "'" + v.name + "' has type " + v.v->type.str());
  }

  /// Builds an op; on a shape-rule failure reports it at `at`, in the words
  /// of the builtin `callee` rather than the IR op's name.
  ir::Value *build(ir::OpKind k, std::vector<ir::Value *> ops, ir::Attrs attrs, SourceLoc at, const std::string &callee,
                   const std::vector<Val> &context = {}) {
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

  //--- expressions --------------------------------------------------------

  /// Evaluates `e`. An operator chain (see ast::chain) is evaluated from its
  /// innermost expression up, each level's value kept in `chained_` for the
  /// level above, whose own eval of its chain operand then returns at once:
  /// the same ops in the same order as recursion, with no recursion along
  /// the chain.
  Val eval(const ast::Expr &e, Scope &scope) {
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

  Val evalOne(const ast::Expr &e, Scope &scope) {
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

  /// `inst.leaf`: a parameter (or state) an earlier statement created.
  Val namedParam(const ast::Expr &e) {
    for (size_t i = 0; i < fn_->args.size(); ++i)
      if (fn_->args[i]->name == e.name &&
          (fn_->argRoles[i] == ir::ArgRole::Param || fn_->argRoles[i] == ir::ArgRole::State))
        return tensorVal(fn_->args[i]);
    std::vector<std::string> names;
    for (const ParamInfo &p : out_.params)
      names.push_back(p.name);
    std::string hint = suggest(e.name, names);
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

  Val binary(const ast::Expr &e, Scope &scope) {
    Val a = eval(*e.lhs, scope), b = eval(*e.rhs, scope);
    if (!a.ok() || !b.ok())
      return Val::error();
    if (a.kind == Val::Number && b.kind == Val::Number) {
      Val r = a;
      r.isInt = a.isInt && b.isInt && e.op != '/';
      r.num = e.op == '+' ? a.num + b.num : e.op == '-' ? a.num - b.num : e.op == '*' ? a.num * b.num : a.num / b.num;
      return r;
    }
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

  /// Arguments bound to parameter names (positional first, then named).
  using ArgMap = std::map<std::string, std::pair<Val, const ast::Expr *>>;

  ArgMap bind(const ast::Expr &e, const std::vector<std::string> &params, Scope &scope, bool &ok) {
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

  Val call(const ast::Expr &e, Scope &scope) {
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
    return callBuiltin(e, args);
  }

  /// Binds a statement's name to `v`, or, for `a, b, ... = expr`, each name
  /// to one element of the list `v`.
  void bindNames(const ast::Stmt &s, Val v, Scope &scope) {
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

  Val callLayer(const ast::Expr &e, const ast::LayerDecl &l, Scope &scope) {
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

  /// The instance name for a call that creates parameters: `as` name, else
  /// the binding name, made unique within the current scope.
  std::string instanceName(const ast::Expr &e) {
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

  std::string qualify(const std::string &n) const { return prefix_.empty() ? n : prefix_ + "." + n; }

  /// A parameter of the current instance: created, or reused when shared.
  ir::Value *param(const std::string &inst, const std::string &leaf, std::vector<int64_t> shape, ParamInfo::Init init,
                   int64_t fanIn, int64_t fanOut, bool isBias, SourceLoc at) {
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

  /// Marks the scale and shift of normalization instance `inst` (param groups
  /// select them as `norms`).
  void markNorm(const std::string &inst) {
    for (ParamInfo &p : out_.params)
      if (p.name == inst + ".scale" || p.name == inst + ".shift")
        p.isNorm = true;
  }

  //--- builtins -----------------------------------------------------------

  std::optional<int64_t> intArg(const ArgMap &args, const std::string &name, const char *callee, int64_t lo = 1) {
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

  std::optional<bool> boolArg(const ArgMap &args, const std::string &name, const char *callee, bool dflt) {
    auto it = args.find(name);
    if (it == args.end())
      return dflt;
    const Val &v = it->second.first;
    if (v.kind == Val::Number && v.isInt && (v.num == 0 || v.num == 1))
      return v.num == 1; // true, false, or a layer parameter holding one
    d_.error(it->second.second->loc, std::string(callee) + ": '" + name + "' must be true or false");
    return std::nullopt;
  }

  /// Tensor argument `name` (numbers are turned into scalar constants).
  Val tensorArg(const ArgMap &args, const std::string &name, SourceLoc callLoc) {
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

  /// Axes from `axis` (an integer or a list, negative counts from the end).
  std::optional<std::vector<int64_t>> axesArg(const ArgMap &args, int64_t rank, const char *callee) {
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

  Val callBuiltin(const ast::Expr &e, const ArgMap &args) {
    const std::string &f = e.name;
    SourceLoc at = e.loc;
    if (!e.instance.empty() && f != "dense" && f != "embedding" && f != "layer_norm" && f != "batch_norm" &&
        f != "conv2d" && f != "conv1d") {
      bool hasParams = f == "rnn" || f == "lstm" || f == "gru" || f == "multi_head_attention";
      d_.error(e.instanceLoc,
               hasParams ? "'" + f + "' takes its instance name from the binding and cannot be shared " + "with 'as " +
                               e.instance + "'; wrap it in a layer to share it"
                         : "'" + f + "' creates no parameters, so 'as " + e.instance + "' has nothing to share");
      return Val::error();
    }
    auto unaryOp = [&](ir::OpKind k) -> Val {
      Val x = tensorArg(args, "x", at);
      if (!x.ok())
        return x;
      ir::Value *r = build(k, {x.v}, {}, at, f, {x});
      return r ? tensorVal(r) : Val::error();
    };
    if (f == "relu")
      return unaryOp(ir::OpKind::Relu);
    if (f == "sigmoid")
      return unaryOp(ir::OpKind::Sigmoid);
    if (f == "tanh")
      return unaryOp(ir::OpKind::Tanh);
    if (f == "exp")
      return unaryOp(ir::OpKind::Exp);
    if (f == "log")
      return unaryOp(ir::OpKind::Log);
    if (f == "sqrt")
      return unaryOp(ir::OpKind::Sqrt);
    if (f == "abs")
      return unaryOp(ir::OpKind::Abs);
    if (f == "softmax")
      return unaryOp(ir::OpKind::Softmax);
    if (f == "log_softmax")
      return unaryOp(ir::OpKind::LogSoftmax);
    if (f == "argmax")
      return unaryOp(ir::OpKind::ArgMax);
    if (f == "maximum" || f == "matmul") {
      Val a = tensorArg(args, "a", at), b = tensorArg(args, "b", at);
      if (!a.ok() || !b.ok())
        return Val::error();
      ir::Value *r = build(f == "matmul" ? ir::OpKind::MatMul : ir::OpKind::Maximum, {a.v, b.v}, {}, at, "", {a, b});
      return r ? tensorVal(r) : Val::error();
    }
    if (f == "dense")
      return dense(e, args);
    if (f == "conv2d" || f == "conv1d")
      return conv(e, args);
    if (f == "max_pool2d" || f == "avg_pool2d")
      return pool(e, args);
    if (f == "attention")
      return attentionCall(e, args);
    if (f == "rnn" || f == "lstm" || f == "gru")
      return recurrent(e, args);
    if (f == "multi_head_attention")
      return multiHeadAttention(e, args);
    if (f == "positional_encoding")
      return positionalEncoding(e, args);
    if (f == "global_avg_pool") {
      Val x = requireF32(args, "x", e);
      if (!x.ok())
        return x;
      if (x.v->type.rank() != 4) {
        d_.error(at, "global_avg_pool expects a batch of images [N, C, H, W], got " + x.v->type.str());
        noteOperands({x});
        return Val::error();
      }
      b_->setLoc(at);
      return tensorVal(b_->reduce(ir::OpKind::ReduceMean, x.v, {2, 3}, false));
    }
    if (f == "sum" || f == "mean" || f == "max") {
      Val x = tensorArg(args, "x", at);
      if (!x.ok())
        return x;
      auto axes = axesArg(args, int64_t(x.v->type.rank()), f.c_str());
      auto keep = boolArg(args, "keepdims", f.c_str(), false);
      if (!axes || !keep)
        return Val::error();
      ir::OpKind k = f == "sum" ? ir::OpKind::ReduceSum : f == "mean" ? ir::OpKind::ReduceMean : ir::OpKind::ReduceMax;
      ir::Value *r = build(k, {x.v}, {{"axes", *axes}, {"keepdims", *keep}}, at, f, {x});
      return r ? tensorVal(r) : Val::error();
    }
    if (f == "reshape" || f == "flatten")
      return reshape(e, args);
    if (f == "transpose") {
      Val x = tensorArg(args, "x", at);
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
      ir::Value *r = build(ir::OpKind::Transpose, {x.v}, {{"perm", perm}}, at, "", {x});
      return r ? tensorVal(r) : Val::error();
    }
    if (f == "cross_entropy")
      return crossEntropy(e, args);
    if (f == "permute")
      return permute(e, args);
    if (f == "slice")
      return slice(e, args);
    if (f == "split")
      return split(e, args);
    if (f == "concat")
      return concat(e, args);
    if (f == "embedding")
      return embedding(e, args);
    if (f == "layer_norm")
      return layerNorm(e, args);
    if (f == "dropout")
      return dropout(e, args);
    if (f == "batch_norm")
      return batchNorm(e, args);
    if (f == "gelu" || f == "leaky_relu" || f == "elu" || f == "softplus")
      return activation(e, args);
    if (f == "bce_with_logits" || f == "huber")
      return pairLoss(e, args);
    if (f == "mse") {
      Val p = tensorArg(args, "pred", at), t = tensorArg(args, "target", at);
      if (!p.ok() || !t.ok())
        return Val::error();
      if (p.v->type.shape != t.v->type.shape || t.v->type.dtype != ir::DType::F32) {
        d_.error(at, "mse: prediction " + p.v->type.str() + " and target " + t.v->type.str() +
                         " must have the same f32 type");
        noteOperands({p, t});
        return Val::error();
      }
      b_->setLoc(at);
      if (!firstPair_.pred)
        firstPair_ = {p.v, t.v, false};
      ir::Value *d = b_->sub(p.v, t.v);
      std::vector<int64_t> all = allAxes(d->type.rank());
      return tensorVal(b_->reduce(ir::OpKind::ReduceMean, b_->mul(d, d), all, false));
    }
    if (f == "l1" || f == "l2")
      return penalty(e, args);
    NNC_UNREACHABLE("builtin without a lowering: " << f);
  }

  std::optional<double> floatArg(const ArgMap &args, const std::string &name, const std::string &callee, double dflt,
                                 double lo, double hi) {
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

  static std::string fmtNum(double v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }

  Val requireF32(const ArgMap &args, const std::string &name, const ast::Expr &e) {
    Val x = tensorArg(args, name, e.loc);
    if (x.ok() && x.v->type.dtype != ir::DType::F32) {
      d_.error(e.loc, e.name + " expects an f32 tensor, got " + x.v->type.str());
      noteOperands({x});
      return Val::error();
    }
    return x;
  }

  /// Activations built from primitives, so they need no gradient rules of
  /// their own; each form is chosen to stay finite for any input.
  Val activation(const ast::Expr &e, const ArgMap &args) {
    Val xv = requireF32(args, "x", e);
    if (!xv.ok())
      return xv;
    ir::Value *x = xv.v;
    b_->setLoc(e.loc);
    auto relu = [&](ir::Value *v) { return b_->unary(ir::OpKind::Relu, v); };
    if (e.name == "gelu") { // x/2 * (1 + erf(x / sqrt 2))
      ir::Value *cdf = b_->add(b_->constant(1.0), b_->unary(ir::OpKind::Erf, b_->mul(b_->constant(M_SQRT1_2), x)));
      return tensorVal(b_->mul(b_->mul(b_->constant(0.5), x), cdf));
    }
    if (e.name == "leaky_relu") { // relu(x) - slope * relu(-x)
      auto slope = floatArg(args, "slope", e.name, 0.01, 0, 1e6);
      if (!slope)
        return Val::error();
      return tensorVal(b_->sub(relu(x), b_->mul(b_->constant(*slope), relu(b_->neg(x)))));
    }
    if (e.name == "elu") { // relu(x) + alpha * (exp(-relu(-x)) - 1): exp sees only x <= 0
      auto alpha = floatArg(args, "alpha", e.name, 1.0, 0, 1e6);
      if (!alpha)
        return Val::error();
      ir::Value *neg = b_->sub(b_->unary(ir::OpKind::Exp, b_->neg(relu(b_->neg(x)))), b_->constant(1.0));
      return tensorVal(b_->add(relu(x), b_->mul(b_->constant(*alpha), neg)));
    }
    // softplus: relu(x) + log(1 + exp(-|x|))
    ir::Value *tail =
        b_->unary(ir::OpKind::Log,
                  b_->add(b_->constant(1.0), b_->unary(ir::OpKind::Exp, b_->neg(b_->unary(ir::OpKind::Abs, x)))));
    return tensorVal(b_->add(relu(x), tail));
  }

  /// Losses comparing two f32 tensors of one shape, averaged over all elements.
  Val pairLoss(const ast::Expr &e, const ArgMap &args) {
    bool bce = e.name == "bce_with_logits";
    Val p = requireF32(args, bce ? "logits" : "pred", e), t = requireF32(args, bce ? "targets" : "target", e);
    if (!p.ok() || !t.ok())
      return Val::error();
    if (p.v->type.shape != t.v->type.shape) {
      d_.error(e.loc, e.name + ": " + (bce ? "logits " : "prediction ") + p.v->type.str() + " and " +
                          (bce ? "targets " : "target ") + t.v->type.str() + " must have the same shape");
      noteOperands({p, t});
      return Val::error();
    }
    b_->setLoc(e.loc);
    if (!firstPair_.pred)
      firstPair_ = {p.v, t.v, bce};
    ir::Value *z = p.v, *y = t.v, *per;
    if (bce) { // relu(z) - z*y + log(1 + exp(-|z|))
      ir::Value *tail =
          b_->unary(ir::OpKind::Log,
                    b_->add(b_->constant(1.0), b_->unary(ir::OpKind::Exp, b_->neg(b_->unary(ir::OpKind::Abs, z)))));
      per = b_->add(b_->sub(b_->unary(ir::OpKind::Relu, z), b_->mul(z, y)), tail);
    } else { // m = [|d| < delta]: m d^2/2 + (1 - m) delta (|d| - delta/2)
      auto delta = floatArg(args, "delta", e.name, 1.0, 1e-12, 1e12);
      if (!delta)
        return Val::error();
      ir::Value *d = b_->sub(z, y), *a = b_->unary(ir::OpKind::Abs, d);
      ir::Value *m = b_->unary(ir::OpKind::Step, b_->sub(b_->constant(*delta), a));
      ir::Value *quad = b_->mul(b_->mul(b_->constant(0.5), m), b_->mul(d, d));
      ir::Value *lin =
          b_->mul(b_->sub(b_->constant(1.0), m), b_->mul(b_->constant(*delta), b_->sub(a, b_->constant(0.5 * *delta))));
      per = b_->add(quad, lin);
    }
    std::vector<int64_t> all = allAxes(per->type.rank());
    return tensorVal(b_->reduce(ir::OpKind::ReduceMean, per, all, false));
  }

  /// An integer argument (no range check), for axes and positions.
  std::optional<int64_t> anyIntArg(const ArgMap &args, const std::string &name, const std::string &callee) {
    auto it = args.find(name);
    const Val &v = it->second.first;
    if (v.kind != Val::Number || !v.isInt || std::fabs(v.num) > 1e15) {
      d_.error(it->second.second->loc,
               callee + ": '" + name + "' must be an integer, got " + ast::toSource(*it->second.second));
      return std::nullopt;
    }
    return int64_t(v.num);
  }

  /// split(x, parts, axis = last): `parts` equal pieces (an integer that
  /// divides the axis) or pieces of the listed sizes (summing to the axis);
  /// a list of tensors, usually destructured: `a, b = split(x, 2)`.
  Val split(const ast::Expr &e, const ArgMap &args) {
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

  Val permute(const ast::Expr &e, const ArgMap &args) {
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

  Val slice(const ast::Expr &e, const ArgMap &args) {
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

  Val concat(const ast::Expr &e, const ArgMap &args) {
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

  /// (x - mean) / sqrt(var + eps) * scale + shift over the last axis, with
  /// the biased variance, as torch.nn.LayerNorm; scale starts at 1, shift at 0.
  Val layerNorm(const ast::Expr &e, const ArgMap &args) {
    Val xv = requireF32(args, "x", e);
    auto eps = floatArg(args, "eps", e.name, 1e-5, 1e-12, 1);
    if (!xv.ok() || !eps)
      return Val::error();
    ir::Value *x = xv.v;
    if (x->type.rank() == 0 || !x->type.shape.back().isStatic()) {
      d_.error(e.loc, "layer_norm needs a last axis of static size, got " + x->type.str());
      noteOperands({xv});
      return Val::error();
    }
    int64_t last = int64_t(x->type.rank()) - 1, width = x->type.shape.back().size;
    std::string inst = instanceName(e);
    ir::Value *scale = param(inst, "scale", {width}, ParamInfo::Ones, width, width, false, e.loc);
    ir::Value *shift = param(inst, "shift", {width}, ParamInfo::Zeros, width, width, true, e.loc);
    markNorm(inst);
    if (!scale || !shift)
      return Val::error();
    b_->setLoc(e.loc);
    ir::Value *centered = b_->sub(x, b_->reduce(ir::OpKind::ReduceMean, x, {last}, true));
    ir::Value *var = b_->reduce(ir::OpKind::ReduceMean, b_->mul(centered, centered), {last}, true);
    ir::Value *inv = b_->div(b_->constant(1.0), b_->unary(ir::OpKind::Sqrt, b_->add(var, b_->constant(*eps))));
    return tensorVal(b_->add(b_->mul(b_->mul(centered, inv), scale), shift));
  }

  /// Batch normalization of x [N, C] over the batch axis, as
  /// torch.nn.BatchNorm1d: training normalizes with the batch's mean and
  /// biased variance and updates the running statistics (with the unbiased
  /// variance) through `new.<instance>.running_*` results; evaluation
  /// (mode_select's second operand) uses the running statistics.
  Val batchNorm(const ast::Expr &e, const ArgMap &args) {
    Val xv = requireF32(args, "x", e);
    auto momentum = floatArg(args, "momentum", e.name, 0.1, 0, 1);
    auto eps = floatArg(args, "eps", e.name, 1e-5, 1e-12, 1);
    if (!xv.ok() || !momentum || !eps)
      return Val::error();
    ir::Value *x = xv.v;
    // [N, C] (BatchNorm1d) or [N, C, ...] (BatchNorm2d for images): one
    // statistic per channel over the batch and every other axis.
    bool okShape = x->type.rank() >= 2;
    for (size_t i = 1; okShape && i < x->type.rank(); ++i)
      okShape = x->type.shape[i].isStatic();
    if (!okShape) {
      d_.error(e.loc, "batch_norm expects features [N, C] (or images [N, C, H, W]) with static sizes after N, got " +
                          x->type.str());
      noteOperands({xv});
      return Val::error();
    }
    int64_t c = x->type.shape[1].size, perExample = 1;
    std::vector<int64_t> axes{0};
    ir::Shape row{ir::Dim(1), ir::Dim(c)}, chan{ir::Dim(c)};
    for (size_t i = 2; i < x->type.rank(); ++i) {
      axes.push_back(int64_t(i));
      row.push_back(ir::Dim(1));
      chan.push_back(ir::Dim(1));
      perExample *= x->type.shape[i].size;
    }
    std::string inst = instanceName(e);
    if (shared_) {
      d_.error(e.instanceLoc, "batch_norm instances cannot be shared: each "
                              "keeps its own running statistics");
      return Val::error();
    }
    ir::Value *scale = param(inst, "scale", {c}, ParamInfo::Ones, c, c, false, e.loc);
    ir::Value *shift = param(inst, "shift", {c}, ParamInfo::Zeros, c, c, true, e.loc);
    markNorm(inst);
    ir::Value *runMean = state(inst + ".running_mean", c, ParamInfo::Zeros, e.loc);
    ir::Value *runVar = state(inst + ".running_var", c, ParamInfo::Ones, e.loc);
    if (!scale || !shift)
      return Val::error();
    b_->setLoc(e.loc);
    ir::Value *mean = b_->reduce(ir::OpKind::ReduceMean, x, axes, true);
    ir::Value *centered = b_->sub(x, mean);
    ir::Value *var = b_->reduce(ir::OpKind::ReduceMean, b_->mul(centered, centered), axes, true);
    ir::Value *useMean = b_->create(ir::OpKind::ModeSelect, {mean, b_->reshape(runMean, row)});
    ir::Value *useVar = b_->create(ir::OpKind::ModeSelect, {var, b_->reshape(runVar, row)});
    ir::Value *inv = b_->div(b_->constant(1.0), b_->unary(ir::OpKind::Sqrt, b_->add(useVar, b_->constant(*eps))));
    ir::Value *y =
        b_->add(b_->mul(b_->mul(b_->sub(x, useMean), inv), b_->reshape(scale, chan)), b_->reshape(shift, chan));
    // Running statistics: r' = (1 - m) r + m * batch, the variance unbiased
    // by n / (n - 1) with n (examples x positions) counted at run time (the
    // batch size is symbolic).
    ir::Value *n = b_->reduce(ir::OpKind::ReduceSum, b_->constant(double(perExample), {x->type.shape[0], ir::Dim(1)}),
                              {0, 1}, false);
    ir::Value *unbiased = b_->mul(var, b_->div(n, b_->sub(n, b_->constant(1.0))));
    auto blend = [&](ir::Value *r, ir::Value *batch) {
      return b_->add(b_->mul(b_->constant(1 - *momentum), r),
                     b_->mul(b_->constant(*momentum), b_->reshape(batch, {ir::Dim(c)})));
    };
    if (!out_.batchNormPerExample || perExample < out_.batchNormPerExample) {
      out_.batchNormPerExample = perExample;
      out_.batchNormLoc = e.loc;
    }
    stateUpdates_.push_back({inst + ".running_mean", blend(runMean, mean)});
    stateUpdates_.push_back({inst + ".running_var", blend(runVar, unbiased)});
    return tensorVal(y);
  }

  ir::Value *state(const std::string &name, int64_t size, ParamInfo::Init init, SourceLoc at) {
    ParamInfo info;
    info.name = name;
    info.shape = {size};
    info.init = init;
    info.loc = at;
    out_.states.push_back(info);
    return fn_->addArg(name, {ir::DType::F32, {ir::Dim(size)}}, ir::ArgRole::State);
  }

  /// x * mask, where the mask comes from the per-step seed argument `rng` and
  /// a stream number unique to this call; evaluation replaces the mask by 1.
  Val dropout(const ast::Expr &e, const ArgMap &args) {
    Val xv = requireF32(args, "x", e);
    auto p = floatArg(args, "p", e.name, 0.5, 0, 0.999);
    if (!xv.ok() || !p)
      return Val::error();
    if (*p == 0)
      return xv;
    ir::Value *rng = fn_->arg("rng");
    if (!rng)
      rng = fn_->addArg("rng", {ir::DType::I64, {}}, ir::ArgRole::Scalar);
    ir::Value *mask =
        build(ir::OpKind::DropoutMask, {rng},
              {{"p", *p}, {"shape", xv.v->type.shape}, {"stream", int64_t(dropoutStreams_++)}}, e.loc, "dropout", {xv});
    if (!mask)
      return Val::error();
    b_->setLoc(e.loc);
    return tensorVal(b_->mul(xv.v, mask));
  }

  Val embedding(const ast::Expr &e, const ArgMap &args) {
    Val ids = tensorArg(args, "ids", e.loc);
    auto vocab = intArg(args, "vocab", "embedding"), dim = intArg(args, "dim", "embedding");
    if (!ids.ok() || !vocab || !dim)
      return Val::error();
    if (ids.v->type.dtype != ir::DType::I64) {
      d_.error(e.loc, "embedding expects i64 token ids, got " + ids.v->type.str());
      noteOperands({ids});
      return Val::error();
    }
    if (!ir::staticElements({ir::Dim(*vocab), ir::Dim(*dim)})) {
      d_.error(e.loc, "embedding: a table of " + std::to_string(*vocab) + " x " + std::to_string(*dim) +
                          " would have more than 2^40 elements");
      return Val::error();
    }
    // N(0, 1) initialization, as torch.nn.Embedding: LeCun normal with
    // fan-in 1.
    ir::Value *table = param(instanceName(e), "table", {*vocab, *dim}, ParamInfo::Lecun, 1, *dim, false, e.loc);
    if (!table)
      return Val::error();
    ir::Value *r = build(ir::OpKind::Gather, {table, ids.v}, {}, e.loc, "embedding", {ids});
    return r ? tensorVal(r) : Val::error();
  }

  /// A window argument: one positive integer for every spatial axis, or a
  /// list of `rank` of them; `dflt` when absent.
  std::optional<std::vector<int64_t>> windowArg(const ArgMap &args, const std::string &name, const std::string &callee,
                                                size_t rank, std::optional<int64_t> dflt, int64_t lo = 1) {
    auto it = args.find(name);
    if (it == args.end()) {
      NNC_ASSERT(dflt) << "required window argument " << name;
      return std::vector<int64_t>(rank, *dflt);
    }
    const Val &v = it->second.first;
    auto okInt = [&](const Val &x) {
      return x.kind == Val::Number && x.isInt && x.num >= double(lo) && x.num <= 1048576;
    };
    std::vector<int64_t> out;
    if (okInt(v))
      out.assign(rank, int64_t(v.num));
    else if (v.kind == Val::List && v.list.size() == rank && std::all_of(v.list.begin(), v.list.end(), okInt))
      for (const Val &x : v.list)
        out.push_back(int64_t(x.num));
    if (out.empty()) {
      std::string what = rank == 1 ? "an integer" : "an integer or a list of " + std::to_string(rank) + " integers";
      d_.error(it->second.second->loc, callee + ": '" + name + "' must be " + what + " in [" + std::to_string(lo) +
                                           ", 1048576], got " + ast::toSource(*it->second.second));
      return std::nullopt;
    }
    return out;
  }

  /// Padding (top, left, bottom, right) from `padding`: integers as for
  /// windowArg, "valid" (none) or "same" (the output keeps the input's size;
  /// stride 1 only; an odd total puts the extra row/column at the end, as
  /// PyTorch does).
  std::optional<std::vector<int64_t>> paddingArg(const ArgMap &args, const std::string &callee, size_t rank,
                                                 const std::vector<int64_t> &kernel, const std::vector<int64_t> &dil,
                                                 const std::vector<int64_t> &stride, bool allowSame) {
    auto it = args.find("padding");
    std::vector<int64_t> before(rank, 0), after(rank, 0);
    if (it != args.end() && it->second.first.kind == Val::String) {
      const std::string &mode = it->second.first.str;
      if (mode == "same" && allowSame) {
        if (std::any_of(stride.begin(), stride.end(), [](int64_t s) { return s != 1; })) {
          d_.error(it->second.second->loc, callee + ": padding \"same\" needs stride 1");
          return std::nullopt;
        }
        for (size_t i = 0; i < rank; ++i) {
          int64_t total = dil[i] * (kernel[i] - 1);
          before[i] = total / 2;
          after[i] = total - before[i];
        }
      } else if (mode != "valid") {
        d_.error(it->second.second->loc, callee + ": 'padding' must be an integer, a list of integers" +
                                             std::string(allowSame ? ", \"same\"" : "") + " or \"valid\"");
        return std::nullopt;
      }
    } else {
      auto p = windowArg(args, "padding", callee, rank, 0, 0);
      if (!p)
        return std::nullopt;
      before = after = *p;
    }
    // Stored as the IR's [top, left, bottom, right]; 1-D convolutions use
    // the width axis only.
    if (rank == 1)
      return std::vector<int64_t>{0, before[0], 0, after[0]};
    return std::vector<int64_t>{before[0], before[1], after[0], after[1]};
  }

  /// conv2d over [N, C, H, W] and conv1d over [N, C, L] (as a conv2d of
  /// height 1). Weights are [channels, C/groups, KH, KW] ([channels,
  /// C/groups, K] for conv1d), PyTorch's layout, He-initialized.
  Val conv(const ast::Expr &e, const ArgMap &args) {
    bool is1d = e.name == "conv1d";
    size_t rank = is1d ? 1 : 2;
    Val xv = requireF32(args, "x", e);
    auto channels = intArg(args, "channels", e.name.c_str());
    auto kernel = windowArg(args, "kernel", e.name, rank, std::nullopt);
    auto stride = windowArg(args, "stride", e.name, rank, 1);
    auto dil = windowArg(args, "dilation", e.name, rank, 1);
    auto groups = args.count("groups") ? intArg(args, "groups", e.name.c_str()) : std::optional<int64_t>(1);
    auto bias = boolArg(args, "bias", e.name.c_str(), true);
    if (!xv.ok() || !channels || !kernel || !stride || !dil || !groups || !bias)
      return Val::error();
    auto pad = paddingArg(args, e.name, rank, *kernel, *dil, *stride, true);
    if (!pad)
      return Val::error();
    const ir::TensorType &xt = xv.v->type;
    size_t want = is1d ? 3 : 4;
    bool shapeOk = xt.rank() == want;
    for (size_t i = 1; shapeOk && i < want; ++i)
      shapeOk = xt.shape[i].isStatic();
    if (!shapeOk) {
      d_.error(e.loc, e.name + " expects " + (is1d ? "[N, C, L]" : "[N, C, H, W]") +
                          " with static sizes after N, but its input has type " + xt.str());
      noteOperands({xv});
      if (xt.rank() == 2 && !is1d)
        d_.note(e.loc, "reshape flat images first, e.g. reshape(x, [N, 1, 28, 28])");
      return Val::error();
    }
    int64_t c = xt.shape[1].size, g = *groups;
    if (c % g || *channels % g) {
      d_.error(e.loc, e.name + ": " + std::to_string(c) + " input and " + std::to_string(*channels) +
                          " output channels must both be divisible by groups = " + std::to_string(g));
      noteOperands({xv});
      return Val::error();
    }
    std::vector<int64_t> k4 = is1d ? std::vector<int64_t>{1, (*kernel)[0]} : *kernel;
    std::vector<int64_t> s4 = is1d ? std::vector<int64_t>{1, (*stride)[0]} : *stride;
    std::vector<int64_t> d4 = is1d ? std::vector<int64_t>{1, (*dil)[0]} : *dil;
    std::vector<int64_t> wshape = {*channels, c / g};
    wshape.insert(wshape.end(), kernel->begin(), kernel->end());
    ir::Shape ws;
    for (int64_t d : wshape)
      ws.push_back(ir::Dim(d));
    if (!ir::staticElements(ws)) {
      d_.error(e.loc, e.name + ": weights " + ir::shapeStr(ws) + " would have more than 2^40 elements");
      return Val::error();
    }
    std::string inst = instanceName(e);
    int64_t fanIn = (c / g) * k4[0] * k4[1];
    ir::Value *w = param(inst, "w", wshape, ParamInfo::He, fanIn, (*channels / g) * k4[0] * k4[1], false, e.loc);
    if (!w)
      return Val::error();
    b_->setLoc(e.loc);
    ir::Value *x = xv.v;
    if (is1d) {
      x = b_->reshape(x, {xt.shape[0], ir::Dim(c), ir::Dim(1), xt.shape[2]});
      w = b_->reshape(w, {ir::Dim(*channels), ir::Dim(c / g), ir::Dim(1), ir::Dim(k4[1])});
    }
    ir::Value *y = build(ir::OpKind::Conv2D, {x, w}, {{"stride", s4}, {"dilation", d4}, {"pad", *pad}, {"groups", g}},
                         e.loc, e.name, {xv});
    if (!y)
      return Val::error();
    if (*bias) {
      ir::Value *bv = param(inst, "b", {*channels}, ParamInfo::Zeros, fanIn, *channels, true, e.loc);
      if (!bv)
        return Val::error();
      y = b_->add(y, b_->reshape(bv, {ir::Dim(*channels), ir::Dim(1), ir::Dim(1)}));
    }
    if (is1d) {
      const ir::Shape &ys = y->type.shape;
      y = b_->reshape(y, {ys[0], ys[1], ys[3]});
    }
    return tensorVal(y);
  }

  /// x W (+ b) for x [..., K] of any rank >= 2: a stack of rows times one
  /// matrix (W broadcast over the leading dimensions for rank > 2).
  ir::Value *project(ir::Value *x, ir::Value *w, ir::Value *bias) {
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

  /// rnn, lstm and gru over x [N, T, F]: the input projection of every step
  /// at once (x W_ih + b_ih, time-major), then a scan whose body is the cell
  /// (h W_hh + b_hh and the gates). Weights are PyTorch's transposed:
  /// w_ih [F, G*H], w_hh [H, G*H], b_ih and b_hh [G*H], gates in PyTorch's
  /// order (lstm i, f, g, o; gru r, z, n). The LSTM carry is [h, c].
  Val recurrent(const ast::Expr &e, const ArgMap &args) {
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
        d_.error(args.at(name).second->loc, kind + ": '" + name + "' must be f32[" + n.str() + ", " +
                                                std::to_string(H) + "], got " + v.v->type.str());
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
                                 {"reverse", rev}});
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

  /// softmax(q kᵀ / sqrt(d) + masks) v with q [..., T, d], k [..., S, d],
  /// v [..., S, dv]. The causal mask adds -1e9 where key j > query i; a
  /// padding mask m : f32 [N, S] (1 keeps, 0 drops a key) adds (m - 1) 1e9.
  std::optional<ir::Value *> attend(const ast::Expr &e, ir::Value *q, ir::Value *k, ir::Value *v, bool causal,
                                    const Val *mask, const std::vector<Val> &context) {
    const ir::TensorType &qt = q->type, &kt = k->type, &vt = v->type;
    size_t r = qt.rank();
    if (r < 2 || kt.rank() != r || vt.rank() != r || qt.dtype != ir::DType::F32 || !qt.shape.back().isStatic() ||
        !qt.shape[r - 2].isStatic() || !kt.shape[r - 2].isStatic()) {
      d_.error(e.loc, "attention expects f32 q [..., T, d], k [..., S, d] and v [..., S, dv] of one rank with static "
                      "T, S and d, got " +
                          qt.str() + ", " + kt.str() + " and " + vt.str());
      noteOperands(context);
      return std::nullopt;
    }
    int64_t T = qt.shape[r - 2].size, S = kt.shape[r - 2].size, d = qt.shape.back().size;
    ir::Value *scores = build(ir::OpKind::MatMul, {q, k}, {{"tb", true}}, e.loc, "attention (q kᵀ)", context);
    if (!scores)
      return std::nullopt;
    b_->setLoc(e.loc);
    scores = b_->mul(scores, b_->constant(1.0 / std::sqrt(double(d))));
    if (causal)
      scores = b_->add(
          scores, b_->create(ir::OpKind::CausalMask, {},
                             {{"shape", ir::Shape{ir::Dim(T), ir::Dim(S)}}, {"value", -1e9}, {"offset", int64_t(0)}}));
    if (mask) {
      const ir::TensorType &mt = mask->v->type;
      if (mt.dtype != ir::DType::F32 || mt.rank() != 2 || mt.shape[0] != qt.shape[0] || mt.shape[1] != ir::Dim(S)) {
        d_.error(e.loc, "attention: the padding mask must be f32 [" + qt.shape[0].str() + ", " + std::to_string(S) +
                            "] (1 keeps a key, 0 drops it), got " + mt.str());
        noteOperands({*mask});
        return std::nullopt;
      }
      ir::Shape ms{mt.shape[0]};
      for (size_t i = 1; i + 1 < r; ++i)
        ms.push_back(ir::Dim(1));
      ms.push_back(ir::Dim(S));
      ir::Value *add = b_->mul(b_->sub(mask->v, b_->constant(1.0)), b_->constant(1e9));
      scores = b_->add(scores, b_->reshape(add, ms));
    }
    ir::Value *p = b_->unary(ir::OpKind::Softmax, scores);
    return build(ir::OpKind::MatMul, {p, v}, {}, e.loc, "attention (weights v)", context);
  }

  Val attentionCall(const ast::Expr &e, const ArgMap &args) {
    Val q = requireF32(args, "q", e), k = requireF32(args, "k", e), v = requireF32(args, "v", e);
    auto causal = boolArg(args, "causal", "attention", false);
    if (!q.ok() || !k.ok() || !v.ok() || !causal)
      return Val::error();
    Val mask;
    if (args.count("mask")) {
      mask = tensorArg(args, "mask", e.loc);
      if (!mask.ok())
        return mask;
    }
    auto r = attend(e, q.v, k.v, v.v, *causal, args.count("mask") ? &mask : nullptr, {q, k, v});
    return r && *r ? tensorVal(*r) : Val::error();
  }

  /// Self-attention over x [N, T, D]: q, k, v = x Wq + bq, ...; each split
  /// into `heads` heads [N, heads, T, D/heads]; attention per head; heads
  /// merged back to [N, T, D] and projected by Wo + bo.
  Val multiHeadAttention(const ast::Expr &e, const ArgMap &args) {
    Val xv = requireF32(args, "x", e);
    auto heads = intArg(args, "heads", "multi_head_attention");
    auto causal = boolArg(args, "causal", "multi_head_attention", false);
    if (!xv.ok() || !heads || !causal)
      return Val::error();
    Val mask;
    if (args.count("mask")) {
      mask = tensorArg(args, "mask", e.loc);
      if (!mask.ok())
        return mask;
    }
    const ir::TensorType &xt = xv.v->type;
    if (xt.rank() != 3 || !xt.shape[1].isStatic() || !xt.shape[2].isStatic()) {
      d_.error(e.loc, "multi_head_attention expects a sequence [N, T, D] with static T and D, got " + xt.str());
      noteOperands({xv});
      return Val::error();
    }
    int64_t T = xt.shape[1].size, D = xt.shape[2].size, H = *heads;
    if (D % H) {
      d_.error(e.loc, "multi_head_attention: the model width " + std::to_string(D) + " is not divisible by " +
                          std::to_string(H) + " heads");
      noteOperands({xv});
      return Val::error();
    }
    std::string inst = instanceName(e);
    ir::Value *ws[4], *bs[4];
    const char *names[4] = {"q", "k", "v", "o"};
    for (int i = 0; i < 4; ++i) {
      ws[i] = param(inst, std::string(names[i]) + ".w", {D, D}, ParamInfo::Glorot, D, D, false, e.loc);
      bs[i] = param(inst, std::string(names[i]) + ".b", {D}, ParamInfo::Zeros, D, D, true, e.loc);
      if (!ws[i] || !bs[i])
        return Val::error();
    }
    b_->setLoc(e.loc);
    ir::Dim n = xt.shape[0];
    auto split = [&](ir::Value *y) { // [N, T, D] -> [N, H, T, D/H]
      return b_->transpose(b_->reshape(y, {n, ir::Dim(T), ir::Dim(H), ir::Dim(D / H)}), {0, 2, 1, 3});
    };
    ir::Value *q = split(project(xv.v, ws[0], bs[0])), *k = split(project(xv.v, ws[1], bs[1])),
              *v = split(project(xv.v, ws[2], bs[2]));
    auto att = attend(e, q, k, v, *causal, args.count("mask") ? &mask : nullptr, {xv});
    if (!att || !*att)
      return Val::error();
    b_->setLoc(e.loc);
    ir::Value *merged = b_->reshape(b_->transpose(*att, {0, 2, 1, 3}), {n, ir::Dim(T), ir::Dim(D)});
    return tensorVal(project(merged, ws[3], bs[3]));
  }

  /// x [N, T, D] plus a [T, D] table of position vectors: sinusoidal
  /// (Vaswani et al.; not trained) or a learned parameter <instance>.pos.
  Val positionalEncoding(const ast::Expr &e, const ArgMap &args) {
    Val xv = requireF32(args, "x", e);
    if (!xv.ok())
      return xv;
    std::string kind = "sinusoidal";
    if (auto it = args.find("kind"); it != args.end()) {
      const Val &k = it->second.first;
      if (k.kind != Val::String || (k.str != "sinusoidal" && k.str != "learned")) {
        d_.error(it->second.second->loc, "positional_encoding: 'kind' must be \"sinusoidal\" or \"learned\"");
        return Val::error();
      }
      kind = k.str;
    }
    const ir::TensorType &xt = xv.v->type;
    if (xt.rank() != 3 || !xt.shape[1].isStatic() || !xt.shape[2].isStatic()) {
      d_.error(e.loc, "positional_encoding expects a sequence [N, T, D] with static T and D, got " + xt.str());
      noteOperands({xv});
      return Val::error();
    }
    int64_t T = xt.shape[1].size, D = xt.shape[2].size;
    if (kind == "sinusoidal" && !e.instance.empty()) {
      d_.error(e.instanceLoc,
               "sinusoidal positional encodings have no parameters, so 'as " + e.instance + "' has nothing to share");
      return Val::error();
    }
    ir::Value *table;
    if (kind == "learned") {
      // N(0, 0.02^2)-like scale: LeCun normal with fan-in 2500.
      table = param(instanceName(e), "pos", {T, D}, ParamInfo::Lecun, 2500, D, false, e.loc);
      if (!table)
        return Val::error();
    } else {
      b_->setLoc(e.loc);
      table = b_->create(ir::OpKind::Sinusoid, {}, {{"shape", ir::Shape{ir::Dim(T), ir::Dim(D)}}});
    }
    b_->setLoc(e.loc);
    return tensorVal(b_->add(xv.v, table));
  }

  Val pool(const ast::Expr &e, const ArgMap &args) {
    Val xv = requireF32(args, "x", e);
    auto kernel = windowArg(args, "kernel", e.name, 2, std::nullopt);
    if (!xv.ok() || !kernel)
      return Val::error();
    auto stride = args.count("stride") ? windowArg(args, "stride", e.name, 2, 1) : kernel;
    if (!stride)
      return Val::error();
    auto pad = paddingArg(args, e.name, 2, *kernel, {1, 1}, *stride, false);
    if (!pad)
      return Val::error();
    ir::OpKind k = e.name == "max_pool2d" ? ir::OpKind::MaxPool2D : ir::OpKind::AvgPool2D;
    ir::Value *y = build(k, {xv.v}, {{"kernel", *kernel}, {"stride", *stride}, {"pad", *pad}}, e.loc, e.name, {xv});
    return y ? tensorVal(y) : Val::error();
  }

  Val dense(const ast::Expr &e, const ArgMap &args) {
    Val x = tensorArg(args, "x", e.loc);
    auto units = intArg(args, "units", "dense");
    auto bias = boolArg(args, "bias", "dense", true);
    if (!x.ok() || !units || !bias)
      return Val::error();
    ParamInfo::Init init = ParamInfo::He;
    if (auto it = args.find("init"); it != args.end()) {
      const Val &v = it->second.first;
      static const std::map<std::string, ParamInfo::Init> inits = {{"he", ParamInfo::He},
                                                                   {"glorot", ParamInfo::Glorot},
                                                                   {"lecun", ParamInfo::Lecun},
                                                                   {"zeros", ParamInfo::Zeros}};
      auto found = v.kind == Val::String ? inits.find(v.str) : inits.end();
      if (found == inits.end()) {
        d_.error(it->second.second->loc, "dense: 'init' must be one of \"he\", "
                                         "\"glorot\", \"lecun\", \"zeros\"");
        return Val::error();
      }
      init = found->second;
    }
    const ir::TensorType &xt = x.v->type;
    if (xt.dtype != ir::DType::F32 || xt.rank() < 2) {
      d_.error(e.loc,
               "dense expects an f32 matrix [N, K] (or a stack [N, ..., K]), but its input has type " + xt.str());
      noteOperands({x});
      return Val::error();
    }
    if (!xt.shape.back().isStatic()) {
      d_.error(e.loc, "dense needs a static number of input features, but the input has type " + xt.str());
      return Val::error();
    }
    int64_t k = xt.shape.back().size;
    if (!ir::staticElements({ir::Dim(k), ir::Dim(*units)})) {
      d_.error(e.loc, "dense: a weight matrix of " + std::to_string(k) + " x " + std::to_string(*units) +
                          " would have more than 2^40 elements");
      return Val::error();
    }
    std::string inst = instanceName(e);
    ir::Value *w = param(inst, "w", {k, *units}, init, k, *units, false, e.loc);
    if (!w)
      return Val::error();
    b_->setLoc(e.loc);
    ir::Value *y = project(x.v, w, nullptr);
    if (*bias) {
      ir::Value *bv = param(inst, "b", {*units}, ParamInfo::Zeros, k, *units, true, e.loc);
      if (!bv)
        return Val::error();
      y = b_->add(y, bv);
    }
    return tensorVal(y);
  }

  Val reshape(const ast::Expr &e, const ArgMap &args) {
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

  Val crossEntropy(const ast::Expr &e, const ArgMap &args) {
    Val logits = tensorArg(args, "logits", e.loc), labels = tensorArg(args, "labels", e.loc);
    if (!logits.ok() || !labels.ok())
      return Val::error();
    const ir::TensorType &lt = logits.v->type, yt = labels.v->type;
    // Logits [N, ..., C] and labels [N, ...]: one class index per position
    // (a sequence model predicts one per time step).
    if (lt.dtype != ir::DType::F32 || lt.rank() < 2 || !lt.shape.back().isStatic()) {
      d_.error(e.loc, "cross_entropy expects logits [N, C] with a static number of classes C, got " + lt.str());
      noteOperands({logits});
      return Val::error();
    }
    ir::Shape lead(lt.shape.begin(), lt.shape.end() - 1);
    if (yt.dtype != ir::DType::I64 || yt.rank() != lead.size()) {
      d_.error(e.loc, "cross_entropy expects labels as i64 class indices " + ir::shapeStr(lead) + ", got " + yt.str());
      noteOperands({labels});
      return Val::error();
    }
    if (yt.shape != lead) {
      d_.error(e.loc,
               "cross_entropy: " + std::string("logits ") + lt.str() + " and labels " + yt.str() +
                   (yt.shape[0] != lt.shape[0] ? " have different batch dimensions" : " have different positions"));
      noteOperands({logits, labels});
      return Val::error();
    }
    // -mean over positions of log_softmax(logits)[..., y], as
    // sum(log_softmax * one_hot) over classes, then the mean.
    if (!ceLogits_)
      ceLogits_ = logits.v;
    b_->setLoc(e.loc);
    int64_t last = int64_t(lt.rank()) - 1;
    ir::Value *lsm = b_->unary(ir::OpKind::LogSoftmax, logits.v);
    ir::Value *oh = b_->create(ir::OpKind::OneHot, {labels.v}, {{"classes", lt.shape.back().size}});
    ir::Value *picked = b_->reduce(ir::OpKind::ReduceSum, b_->mul(lsm, oh), {last}, false);
    std::vector<int64_t> all;
    for (int64_t i = 0; i < last; ++i)
      all.push_back(i);
    return tensorVal(b_->neg(b_->reduce(ir::OpKind::ReduceMean, picked, all, false)));
  }

  Val penalty(const ast::Expr &e, const ArgMap &args) {
    auto it = args.find("x");
    const Val &v = it->second.first;
    std::vector<ir::Value *> targets;
    if (v.kind == Val::ParamSet) {
      for (auto &p : out_.params)
        if (!(v.weightsOnly && p.isBias))
          targets.push_back(fn_->arg(p.name));
      if (targets.empty()) {
        d_.error(it->second.second->loc, e.name + "(" + it->second.second->name +
                                             ") is empty here: no parameters have been created before "
                                             "this statement");
        return Val::error();
      }
    } else if (v.kind == Val::String || (v.kind == Val::List && !v.list.empty() && v.list[0].kind == Val::String)) {
      // Chosen parameters: "h1.w" by name, "h1" for all of a layer instance's.
      std::vector<Val> names = v.kind == Val::String ? std::vector<Val>{v} : v.list;
      for (const Val &n : names) {
        bool matched = false;
        for (auto &p : out_.params)
          if (n.kind == Val::String && (p.name == n.str || p.name.rfind(n.str + ".", 0) == 0)) {
            matched = true;
            if (std::find(targets.begin(), targets.end(), fn_->arg(p.name)) == targets.end())
              targets.push_back(fn_->arg(p.name));
          }
        if (!matched) {
          std::vector<std::string> known; // parameters and their layer instances
          for (auto &p : out_.params) {
            known.push_back(p.name);
            known.push_back(p.name.substr(0, p.name.rfind('.')));
          }
          std::string m = n.kind == Val::String ? closestMatch(n.str, known) : "";
          d_.error(it->second.second->loc,
                   e.name + ": " +
                       (n.kind == Val::String
                            ? "no parameter or layer instance \"" + n.str + "\" has been created before this statement"
                            : std::string("a list of parameters holds names (strings) only")) +
                       (m.empty() ? "" : "; did you mean \"" + m + "\"?"));
          return Val::error();
        }
      }
    } else {
      Val t = tensorArg(args, "x", e.loc);
      if (!t.ok())
        return t;
      targets.push_back(t.v);
    }
    b_->setLoc(e.loc);
    ir::Value *total = nullptr;
    for (ir::Value *t : targets) {
      std::vector<int64_t> all = allAxes(t->type.rank());
      ir::Value *term = e.name == "l1" ? b_->unary(ir::OpKind::Abs, t) : b_->mul(t, t);
      term = b_->reduce(ir::OpKind::ReduceSum, term, all, false);
      total = total ? b_->add(total, term) : term;
    }
    return tensorVal(total);
  }

  const ast::Program &p_;
  DiagnosticEngine &d_;
  LoweredModel out_;
  ir::Function *fn_ = nullptr;
  std::unique_ptr<ir::Builder> b_;
  std::string binding_; ///< the statement being elaborated, for instance names
  std::string prefix_;  ///< instance path of the layer being inlined
  bool shared_ = false;
  bool reuse_ = false;            ///< inlining a shared instance: parameters already exist
  ir::Value *ceLogits_ = nullptr; ///< scores of the first cross_entropy, for accuracy
  /// The first bce_with_logits, mse or huber: what it compares (for the task).
  struct {
    ir::Value *pred = nullptr, *target = nullptr;
    bool bce = false;
  } firstPair_;
  int dropoutStreams_ = 0;                                        ///< one random stream per dropout call
  std::vector<std::pair<std::string, ir::Value *>> stateUpdates_; ///< new.<state> results
  int depth_ = 0;
  /// Values of operator-chain levels evaluated ahead of the level above (see eval).
  std::unordered_map<const ast::Expr *, Val> chained_;
  std::set<std::string> usedInstances_;
  std::map<std::string, std::string> instanceCallee_; ///< qualified instance -> callee
};

} // namespace

bool checkProgram(const ast::Program &p, DiagnosticEngine &diags) { return NameChecker(p, diags).run(); }

std::optional<LoweredModel> lowerModel(const ast::Program &p, const ast::ModelDecl &model, DiagnosticEngine &diags) {
  return Elaborator(p, diags).run(model);
}

} // namespace nnc::frontend
