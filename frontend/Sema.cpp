// Semantic analysis entry points. Name checks over the whole program
// (NameChecker, here): duplicates, unknown names and callees with "did you
// mean", layer recursion, arity and argument names, declared types. The
// elaboration of a model into IR with shape checking is the Elaborator
// (Elaborator.h), whose builtin lowerings live in builtins/.
#include "frontend/Sema.h"

#include "frontend/Builtins.h"
#include "frontend/Elaborator.h"

#include <functional>
#include <map>
#include <set>

namespace nnc::frontend {

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

} // namespace

bool checkProgram(const ast::Program &p, DiagnosticEngine &diags) { return NameChecker(p, diags).run(); }

std::optional<LoweredModel> lowerModel(const ast::Program &p, const ast::ModelDecl &model, DiagnosticEngine &diags) {
  return Elaborator(p, diags).run(model);
}

} // namespace nnc::frontend
