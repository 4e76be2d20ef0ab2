// Parse tree -> AST. The generated ANTLR headers are included only here.
#include "frontend/ASTBuilder.h"

#include "NNLexer.h"
#include "NNParser.h"
#include "antlr4-runtime.h"

#include <cstdio>
#include <cstdlib>

namespace nnc::frontend {
size_t invalidUtf8(const std::string &s);
namespace {

using namespace nnc::grammar;
using P = NNParser;

SourceLoc locOf(const SourceFile &f, antlr4::Token *t) {
  SourceLoc l;
  l.file = &f;
  l.line = uint32_t(t->getLine());
  l.col = uint32_t(t->getCharPositionInLine()) + 1;
  size_t len = t->getType() == antlr4::Token::EOF ? 1 : t->getText().size();
  l.length = uint32_t(std::max<size_t>(1, len));
  return l;
}

/// Sends ANTLR's syntax errors to the diagnostics engine, with a note at the
/// bracket an error leaves open. A second error on the line of the previous
/// one is ANTLR's recovery talking, and is dropped.
class ErrorListener : public antlr4::BaseErrorListener {
public:
  ErrorListener(const SourceFile &f, DiagnosticEngine &d, const std::vector<antlr4::Token *> &tokens)
      : f_(f), d_(d), tokens_(tokens) {}
  void syntaxError(antlr4::Recognizer *, antlr4::Token *offending, size_t line, size_t col, const std::string &msg,
                   std::exception_ptr) override {
    if (line == lastLine_)
      return;
    lastLine_ = line;
    SourceLoc l{&f_, uint32_t(line), uint32_t(col) + 1, 1};
    if (offending && offending->getType() != antlr4::Token::EOF)
      l.length = uint32_t(std::max<size_t>(1, offending->getText().size()));
    std::vector<antlr4::Token *> open =
        offending ? openBrackets(offending->getTokenIndex()) : std::vector<antlr4::Token *>{};
    std::string text = offending ? offending->getText() : "";
    // A model, layer or train block without its '}': the next declaration's
    // keyword is where the parser notices.
    if (text == "model" || text == "train" || text == "layer") {
      for (antlr4::Token *t : open)
        if (t->getText() == "{") {
          d_.error(l, "syntax error: expected '}' before '" + text + "'");
          d_.note(locOf(f_, t), "to match this '{'");
          return;
        }
    }
    d_.error(l, rewrite(msg));
    if (open.empty())
      return;
    std::string top = open.back()->getText(), closer = top == "(" ? "')'" : top == "[" ? "']'" : "'}'";
    // (On the error's own line the caret shows the bracket well enough.)
    if (msg.find(closer) != std::string::npos && open.back()->getLine() != line)
      d_.note(locOf(f_, open.back()), "to match this '" + top + "'");
  }

private:
  // ANTLR says "mismatched input 'x' expecting ..."; say it like a compiler.
  static std::string rewrite(std::string msg) {
    auto replace = [&](const std::string &from, const std::string &to) {
      size_t p = msg.find(from);
      if (p != std::string::npos)
        msg.replace(p, from.size(), to);
    };
    replace("<EOF>", "end of file");
    replace("mismatched input", "unexpected");
    replace("extraneous input", "unexpected");
    replace("no viable alternative at input", "cannot parse");
    replace(" expecting ", ", expected ");
    return "syntax error: " + msg;
  }
  /// The brackets opened and not closed before token `end`, outermost first.
  std::vector<antlr4::Token *> openBrackets(size_t end) const {
    std::vector<antlr4::Token *> stack;
    for (size_t i = 0; i < end && i < tokens_.size(); ++i) {
      const std::string &t = tokens_[i]->getText();
      if (t == "(" || t == "[" || t == "{")
        stack.push_back(tokens_[i]);
      else if ((t == ")" || t == "]" || t == "}") && !stack.empty())
        stack.pop_back();
    }
    return stack;
  }
  const SourceFile &f_;
  DiagnosticEngine &d_;
  const std::vector<antlr4::Token *> &tokens_;
  size_t lastLine_ = 0;
};

class Builder {
public:
  explicit Builder(const SourceFile &f) : f_(f) {}

  std::unique_ptr<ast::Program> program(P::ProgramContext *ctx) {
    auto p = std::make_unique<ast::Program>();
    for (auto *d : ctx->decl()) {
      if (auto *m = d->modelDecl())
        p->models.push_back(model(m));
      else if (auto *l = d->layerDecl())
        p->layers.push_back(layer(l));
      else if (auto *t = d->trainDecl())
        p->trains.push_back(train(t));
    }
    return p;
  }

  ast::ExprPtr expression(P::ReplExprContext *ctx) { return expr(ctx->expr()); }
  ast::Stmt statement(P::ReplStmtContext *ctx) { return modelStmt(ctx->modelStmt()); }

private:
  SourceLoc loc(antlr4::Token *t) { return locOf(f_, t); }
  SourceLoc loc(antlr4::ParserRuleContext *c) { return loc(c->getStart()); }

  ast::ModelDecl model(P::ModelDeclContext *ctx) {
    ast::ModelDecl m;
    m.name = ctx->name->getText();
    m.loc = loc(ctx);
    m.nameLoc = loc(ctx->name);
    for (auto *s : ctx->modelStmt())
      m.body.push_back(modelStmt(s));
    return m;
  }

  ast::Stmt modelStmt(P::ModelStmtContext *ctx) {
    ast::Stmt s;
    s.loc = loc(ctx);
    if (auto *c = dynamic_cast<P::InputStmtContext *>(ctx)) {
      s.kind = ast::Stmt::Input;
      s.name = c->name->getText();
      s.nameLoc = loc(c->name);
      s.type = type(c->tensorType());
    } else if (auto *c = dynamic_cast<P::LabelStmtContext *>(ctx)) {
      s.kind = ast::Stmt::Label;
      s.name = c->name->getText();
      s.nameLoc = loc(c->name);
      s.type = type(c->tensorType());
    } else if (auto *c = dynamic_cast<P::OutputStmtContext *>(ctx)) {
      s.kind = ast::Stmt::Output;
      s.name = c->name->getText();
      s.nameLoc = loc(c->name->getStart());
      s.value = expr(c->expr());
    } else if (auto *c = dynamic_cast<P::LossStmtContext *>(ctx)) {
      s.kind = ast::Stmt::Loss;
      if (c->name) {
        s.name = c->name->getText();
        s.nameLoc = loc(c->name);
      }
      for (auto *sel : c->sel)
        s.updates.push_back({sel->getText(), loc(sel)});
      s.value = expr(c->expr());
    } else {
      auto *l = static_cast<P::LetStmtContext *>(ctx);
      s.kind = ast::Stmt::Let;
      s.name = l->name->getText();
      s.nameLoc = loc(l->name);
      for (auto *t : l->more)
        s.more.push_back({t->getText(), loc(t)});
      s.value = expr(l->expr());
    }
    return s;
  }

  ast::LayerDecl layer(P::LayerDeclContext *ctx) {
    ast::LayerDecl l;
    l.name = ctx->name->getText();
    l.loc = loc(ctx);
    l.nameLoc = loc(ctx->name);
    for (auto *p : ctx->layerParam()) {
      ast::LayerParam lp;
      lp.name = p->name->getText();
      lp.loc = loc(p->name);
      if (p->expr())
        lp.defaultValue = expr(p->expr());
      l.params.push_back(std::move(lp));
    }
    for (auto *s : ctx->layerStmt()) {
      ast::Stmt st;
      st.loc = loc(s);
      if (auto *r = dynamic_cast<P::ReturnStmtContext *>(s)) {
        st.kind = ast::Stmt::Return;
        st.value = expr(r->expr());
      } else {
        auto *let = static_cast<P::LayerLetStmtContext *>(s);
        st.kind = ast::Stmt::Let;
        st.name = let->name->getText();
        st.nameLoc = loc(let->name);
        for (auto *t : let->more)
          st.more.push_back({t->getText(), loc(t)});
        st.value = expr(let->expr());
      }
      l.body.push_back(std::move(st));
    }
    return l;
  }

  ast::TrainDecl train(P::TrainDeclContext *ctx) {
    ast::TrainDecl t;
    t.model = ctx->name->getText();
    t.loc = loc(ctx);
    t.modelLoc = loc(ctx->name);
    for (auto *s : ctx->trainStmt())
      t.items.push_back(trainItem(s));
    return t;
  }

  ast::TrainItem trainItem(P::TrainStmtContext *ctx) {
    ast::TrainItem it;
    it.loc = loc(ctx);
    if (auto *s = dynamic_cast<P::TrainSettingContext *>(ctx)) {
      it.kind = ast::TrainItem::Setting;
      it.key = s->key->getText();
      it.value = expr(s->expr());
    } else if (auto *c = dynamic_cast<P::TrainCallContext *>(ctx)) {
      it.kind = ast::TrainItem::Call;
      it.key = c->callee->getText();
      auto call = std::make_unique<ast::Expr>();
      call->kind = ast::Expr::Call;
      call->loc = loc(ctx);
      call->loc.length = uint32_t(it.key.size());
      call->name = it.key;
      if (c->argList())
        args(c->argList(), call->args);
      it.value = std::move(call);
    } else {
      auto *b = static_cast<P::TrainBlockContext *>(ctx);
      it.kind = ast::TrainItem::Block;
      it.key = b->kind->getText();
      if (b->name)
        it.name = b->name->getText();
      for (auto *s : b->trainStmt())
        it.items.push_back(trainItem(s));
    }
    return it;
  }

  ast::TypeSpec type(P::TensorTypeContext *ctx) {
    ast::TypeSpec t;
    t.dtype = ctx->dtype->getText();
    t.loc = loc(ctx->dtype);
    for (auto *d : ctx->dim()) {
      ast::DimSpec ds;
      ds.loc = loc(d);
      if (d->INT()) {
        errno = 0;
        long long v = std::strtoll(d->INT()->getText().c_str(), nullptr, 10);
        ds.size = errno ? -2 : v; // -2: out of range, diagnosed by Sema
      } else {
        ds.sym = d->ID()->getText();
      }
      t.dims.push_back(ds);
    }
    return t;
  }

  void args(P::ArgListContext *ctx, std::vector<ast::Arg> &out) {
    for (auto *a : ctx->arg()) {
      ast::Arg arg;
      if (a->name) {
        arg.name = a->name->getText();
        arg.nameLoc = loc(a->name);
      }
      arg.value = expr(a->expr());
      out.push_back(std::move(arg));
    }
  }

  ast::ExprPtr make(ast::Expr::Kind k, SourceLoc l) {
    auto e = std::make_unique<ast::Expr>();
    e->kind = k;
    e->loc = l;
    return e;
  }

  /// The left operand of a binary or pipe expression (the chain `a + b + c`
  /// nests to the left), or null.
  static P::ExprContext *leftOperand(P::ExprContext *ctx) {
    if (auto *m = dynamic_cast<P::MulExprContext *>(ctx))
      return m->expr(0);
    if (auto *w = dynamic_cast<P::PowExprContext *>(ctx))
      return w->expr(0);
    if (auto *a = dynamic_cast<P::AddExprContext *>(ctx))
      return a->expr(0);
    if (auto *p = dynamic_cast<P::PipeExprContext *>(ctx))
      return p->expr();
    return nullptr;
  }

  /// Operator chains of any length (`x + x + ... + x`, `x |> f |> g ...`)
  /// are built bottom-up in a loop: their trees are as deep as they are
  /// long. Other nesting is bounded by the parser's nesting limit.
  ast::ExprPtr expr(P::ExprContext *ctx) {
    std::vector<P::ExprContext *> chain;
    for (P::ExprContext *c = ctx; leftOperand(c); c = leftOperand(c))
      chain.push_back(c);
    ast::ExprPtr acc = operand(chain.empty() ? ctx : leftOperand(chain.back()));
    for (size_t i = chain.size(); i-- > 0;)
      acc = link(chain[i], std::move(acc));
    return acc;
  }

  /// An expression that is not a binary or pipe expression.
  ast::ExprPtr operand(P::ExprContext *ctx) {
    if (auto *p = dynamic_cast<P::PrimaryExprContext *>(ctx))
      return primary(p->primary());
    auto *n = static_cast<P::NegExprContext *>(ctx);
    auto e = make(ast::Expr::Neg, loc(ctx));
    e->lhs = expr(n->expr());
    return e;
  }

  /// The binary or pipe expression `ctx` over its already-built left operand.
  ast::ExprPtr link(P::ExprContext *ctx, ast::ExprPtr lhs) {
    antlr4::Token *op = nullptr;
    P::ExprContext *right = nullptr;
    if (auto *m = dynamic_cast<P::MulExprContext *>(ctx)) {
      op = m->op;
      right = m->expr(1);
    } else if (auto *w = dynamic_cast<P::PowExprContext *>(ctx)) {
      op = w->op;
      right = w->expr(1);
    } else if (auto *a = dynamic_cast<P::AddExprContext *>(ctx)) {
      op = a->op;
      right = a->expr(1);
    }
    if (op) {
      auto e = make(ast::Expr::Binary, loc(op));
      e->op = op->getText()[0];
      e->lhs = std::move(lhs);
      e->rhs = expr(right);
      return e;
    }
    auto *t = static_cast<P::PipeExprContext *>(ctx)->pipeTarget();
    auto e = make(ast::Expr::Call, loc(t));
    e->name = t->callee->getText();
    e->loc.length = uint32_t(e->name.size());
    e->piped = true;
    ast::Arg first;
    first.value = std::move(lhs);
    e->args.push_back(std::move(first));
    if (t->argList())
      args(t->argList(), e->args);
    if (t->inst) {
      e->instance = t->inst->getText();
      e->instanceLoc = loc(t->inst);
    }
    return e;
  }

  ast::ExprPtr primary(P::PrimaryContext *ctx) {
    if (auto *c = dynamic_cast<P::CallPrimaryContext *>(ctx)) {
      auto e = make(ast::Expr::Call, loc(ctx));
      e->name = c->callee->getText();
      e->loc.length = uint32_t(e->name.size());
      if (c->argList())
        args(c->argList(), e->args);
      if (c->inst) {
        e->instance = c->inst->getText();
        e->instanceLoc = loc(c->inst);
      }
      return e;
    }
    if (auto *n = dynamic_cast<P::NamePrimaryContext *>(ctx)) {
      auto e = make(ast::Expr::Name, loc(ctx));
      e->name = n->getText(); // "h.w" for a parameter of instance h
      e->loc.length = uint32_t(e->name.size());
      return e;
    }
    if (auto *n = dynamic_cast<P::NumberPrimaryContext *>(ctx)) {
      auto e = make(ast::Expr::Number, loc(ctx));
      std::string text = n->getText();
      e->number = std::strtod(text.c_str(), nullptr);
      e->isInteger = n->INT() != nullptr;
      return e;
    }
    if (auto *s = dynamic_cast<P::StringPrimaryContext *>(ctx)) {
      auto e = make(ast::Expr::String, loc(ctx));
      std::string raw = s->getText();
      std::string text;
      for (size_t i = 1; i + 1 < raw.size(); ++i) {
        if (raw[i] == '\\' && i + 2 < raw.size()) {
          char c = raw[++i];
          text += c == 'n' ? '\n' : c == 't' ? '\t' : c;
        } else {
          text += raw[i];
        }
      }
      e->name = text;
      return e;
    }
    if (auto *p = dynamic_cast<P::ParenPrimaryContext *>(ctx))
      return expr(p->expr());
    auto *l = static_cast<P::ListPrimaryContext *>(ctx);
    auto e = make(ast::Expr::List, loc(ctx));
    for (auto *x : l->expr())
      e->elems.push_back(expr(x));
    return e;
  }

  const SourceFile &f_;
};

} // namespace

/// The offset of the first byte that is not part of valid UTF-8, or npos.
/// ANTLR decodes its input as UTF-8 and throws on anything else.
size_t invalidUtf8(const std::string &s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size())
      return i;
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc >> 6) != 0x2)
        return i;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid too.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff))
      return i;
    i += len;
  }
  return std::string::npos;
}

namespace {

/// Whether a token ends an operand, so that a '-' after it subtracts
/// rather than negates.
bool endsOperand(antlr4::Token *t) {
  switch (t->getType()) {
  case NNLexer::ID:
  case NNLexer::INT:
  case NNLexer::FLOAT:
  case NNLexer::STRING:
    return true;
  default: {
    const std::string &s = t->getText();
    return s == ")" || s == "]" || s == "input" || s == "label" || s == "output" || s == "loss" || s == "model" ||
           s == "layer" || s == "train";
  }
  }
}

/// The parser descends once per bracket and per unary minus, so input
/// nested tens of thousands deep would overflow its stack. Like clang's
/// -fbracket-depth, nesting beyond kMaxNesting is refused from the tokens,
/// before any recursive stage sees the text. Long flat chains (`a + b + ...`)
/// are not nesting: the parser and every later stage take them in loops.
bool checkNesting(const SourceFile &file, const std::vector<antlr4::Token *> &tokens, DiagnosticEngine &diags) {
  std::vector<antlr4::Token *> open;
  size_t unary = 0;
  antlr4::Token *prev = nullptr, *firstUnary = nullptr;
  for (antlr4::Token *t : tokens) {
    const std::string &s = t->getText();
    bool minus = s == "-" && t->getType() != NNLexer::STRING && (!prev || !endsOperand(prev));
    if (minus) {
      if (unary++ == 0)
        firstUnary = t;
    } else if (t->getType() != antlr4::Token::EOF) {
      unary = 0;
    }
    if (s == "(" || s == "[" || s == "{")
      open.push_back(t);
    else if ((s == ")" || s == "]" || s == "}") && !open.empty())
      open.pop_back();
    prev = t;
    if (open.size() + unary <= kMaxNesting)
      continue;
    diags.error(locOf(file, t), "expression nested too deeply: more than " + std::to_string(kMaxNesting) +
                                    " levels of brackets and unary minus signs");
    // The expression's outermost bracket (a block's '{' is not part of it).
    antlr4::Token *outer = unary ? firstUnary : nullptr;
    for (antlr4::Token *o : open)
      if (o->getText() != "{") {
        outer = o;
        break;
      }
    if (outer && outer != t)
      diags.note(locOf(file, outer), "the outermost level opens here; bind parts of the expression to names");
    return false;
  }
  return true;
}

/// The ANTLR objects a parse tree lives in (the tree is owned by them).
struct Parse {
  std::unique_ptr<antlr4::ANTLRInputStream> input;
  std::unique_ptr<NNLexer> lexer;
  std::unique_ptr<antlr4::CommonTokenStream> tokens;
  std::unique_ptr<NNParser> parser;

  /// Lexes and parses `file` with grammar rule `rule`, reporting every
  /// error; returns the tree, or null after errors.
  template <class Ctx> Ctx *run(const SourceFile &file, DiagnosticEngine &diags, Ctx *(NNParser::*rule)());
};

template <class Ctx> Ctx *Parse::run(const SourceFile &file, DiagnosticEngine &diags, Ctx *(NNParser::*rule)()) {
  if (size_t bad = invalidUtf8(file.text); bad != std::string::npos) {
    SourceLoc l{&file, 1, 1, 1};
    for (size_t i = 0; i < bad; ++i) {
      if (file.text[i] == '\n') {
        ++l.line;
        l.col = 1;
      } else if ((static_cast<unsigned char>(file.text[i]) & 0xc0) != 0x80) {
        ++l.col;
      }
    }
    char hex[8];
    snprintf(hex, sizeof hex, "0x%02x", static_cast<unsigned char>(file.text[bad]));
    diags.error(l, std::string("the file is not valid UTF-8: unexpected byte ") + hex);
    return nullptr;
  }
  input = std::make_unique<antlr4::ANTLRInputStream>(file.text);
  lexer = std::make_unique<NNLexer>(input.get());
  lexer->removeErrorListeners();
  tokens = std::make_unique<antlr4::CommonTokenStream>(lexer.get());
  tokens->fill();
  unsigned before = diags.errorCount();
  // Characters outside the language become ERRCHAR tokens; report them here
  // with a clearer message than the parser would give.
  // After an unterminated string the rest of its line is noise: one error.
  size_t skipLine = 0;
  for (antlr4::Token *t : tokens->getTokens()) {
    if (t->getType() != NNLexer::ERRCHAR || t->getLine() == skipLine)
      continue;
    std::string c = t->getText();
    if (c == "\"")
      skipLine = t->getLine();
    diags.error(locOf(file, t), c == "\"" ? "unterminated string literal" : "unexpected character '" + c + "'");
  }
  if (diags.errorCount() != before || !checkNesting(file, tokens->getTokens(), diags))
    return nullptr;
  parser = std::make_unique<NNParser>(tokens.get());
  std::vector<antlr4::Token *> all = tokens->getTokens();
  ErrorListener listener(file, diags, all);
  parser->removeErrorListeners();
  parser->addErrorListener(&listener);
  Ctx *tree = (parser.get()->*rule)();
  parser->removeErrorListeners();
  if (diags.errorCount() != before)
    return nullptr;
  return tree;
}

} // namespace

std::unique_ptr<ast::Program> parseProgram(const SourceFile &file, DiagnosticEngine &diags) {
  Parse p;
  auto *tree = p.run(file, diags, &NNParser::program);
  return tree ? Builder(file).program(tree) : nullptr;
}

ast::ExprPtr parseExpression(const SourceFile &file, DiagnosticEngine &diags) {
  Parse p;
  auto *tree = p.run(file, diags, &NNParser::replExpr);
  return tree ? Builder(file).expression(tree) : nullptr;
}

std::optional<ast::Stmt> parseModelStatement(const SourceFile &file, DiagnosticEngine &diags) {
  Parse p;
  auto *tree = p.run(file, diags, &NNParser::replStmt);
  if (!tree)
    return std::nullopt;
  return Builder(file).statement(tree);
}

} // namespace nnc::frontend
