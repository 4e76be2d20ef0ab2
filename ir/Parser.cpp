// Recursive-descent parser for IR text.
#include "ir/Parser.h"

#include "ir/ShapeRules.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

namespace nnc::ir {
namespace {

enum class Tok { Eof, Percent, At, Ident, Int, Float, String, Punct, Error };

struct Token {
  Tok kind = Tok::Eof;
  std::string text;
  SourceLoc loc;
};

class Lexer {
public:
  explicit Lexer(const SourceFile &f) : f_(f) {}

  Token next() {
    skipSpace();
    Token t;
    t.loc = {&f_, line_, col_, 1};
    if (pos_ >= f_.text.size())
      return t;
    char c = f_.text[pos_];
    size_t start = pos_;
    auto isIdent = [](char ch) { return std::isalnum((unsigned char)ch) || ch == '_' || ch == '.'; };
    if (c == '%' || c == '@') {
      advance();
      while (pos_ < f_.text.size() && isIdent(f_.text[pos_]))
        advance();
      t.kind = c == '%' ? Tok::Percent : Tok::At;
      t.text = f_.text.substr(start + 1, pos_ - start - 1);
    } else if (std::isalpha((unsigned char)c) || c == '_') {
      while (pos_ < f_.text.size() && isIdent(f_.text[pos_]))
        advance();
      t.kind = Tok::Ident;
      t.text = f_.text.substr(start, pos_ - start);
    } else if (std::isdigit((unsigned char)c) || ((c == '-' || c == '+') && pos_ + 1 < f_.text.size() &&
                                                  (std::isdigit((unsigned char)f_.text[pos_ + 1]) ||
                                                   f_.text[pos_ + 1] == 'i' || f_.text[pos_ + 1] == 'n'))) {
      advance();
      bool isFloat = false;
      while (pos_ < f_.text.size()) {
        char ch = f_.text[pos_];
        if (std::isdigit((unsigned char)ch)) {
          advance();
        } else if (ch == '.' || ch == 'e' || ch == 'E' || ((ch == '-' || ch == '+') && (f_.text[pos_ - 1] == 'e' || f_.text[pos_ - 1] == 'E'))) {
          isFloat = true;
          advance();
        } else if (std::isalpha((unsigned char)ch)) { // inf, nan
          isFloat = true;
          advance();
        } else {
          break;
        }
      }
      t.kind = isFloat ? Tok::Float : Tok::Int;
      t.text = f_.text.substr(start, pos_ - start);
    } else if (c == '"') {
      advance();
      while (pos_ < f_.text.size() && f_.text[pos_] != '"' && f_.text[pos_] != '\n')
        advance();
      if (pos_ >= f_.text.size() || f_.text[pos_] != '"') {
        t.kind = Tok::Error;
        t.text = "unterminated string";
        return t;
      }
      advance();
      t.kind = Tok::String;
      t.text = f_.text.substr(start + 1, pos_ - start - 2);
    } else if (c == '-' && pos_ + 1 < f_.text.size() && f_.text[pos_ + 1] == '>') {
      advance();
      advance();
      t.kind = Tok::Punct;
      t.text = "->";
    } else if (std::string("(){}[],:=").find(c) != std::string::npos) {
      advance();
      t.kind = Tok::Punct;
      t.text = std::string(1, c);
    } else {
      advance();
      t.kind = Tok::Error;
      t.text = std::string("unexpected character '") + c + "'";
    }
    t.loc.length = uint32_t(std::max<size_t>(1, pos_ - start));
    return t;
  }

private:
  void advance() {
    if (f_.text[pos_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++pos_;
  }
  void skipSpace() {
    while (pos_ < f_.text.size()) {
      char c = f_.text[pos_];
      if (std::isspace((unsigned char)c)) {
        advance();
      } else if (c == '/' && pos_ + 1 < f_.text.size() && f_.text[pos_ + 1] == '/') {
        while (pos_ < f_.text.size() && f_.text[pos_] != '\n')
          advance();
      } else {
        break;
      }
    }
  }
  const SourceFile &f_;
  size_t pos_ = 0;
  uint32_t line_ = 1, col_ = 1;
};

class Parser {
public:
  Parser(const SourceFile &f, DiagnosticEngine &d) : lex_(f), diags_(d) { tok_ = lex_.next(); }

  std::unique_ptr<Module> parse() {
    auto m = std::make_unique<Module>();
    while (tok_.kind != Tok::Eof) {
      if (!parseFunction(*m))
        return nullptr;
    }
    // Scan bodies may be defined anywhere in the module.
    for (auto &[op, loc] : scans_) {
      const std::string &name = std::get<std::string>(op->attrs.at("body"));
      op->body = m->get(name);
      if (!op->body)
        diags_.error(loc, "scan: body @" + name + " is not a function of this module");
    }
    return diags_.hasErrors() ? nullptr : std::move(m);
  }

private:
  bool error(const std::string &msg) {
    diags_.error(tok_.loc, tok_.kind == Tok::Error ? tok_.text : msg);
    return false;
  }
  void consume() { tok_ = lex_.next(); }
  bool isPunct(const char *p) const { return tok_.kind == Tok::Punct && tok_.text == p; }
  bool expectPunct(const char *p) {
    if (!isPunct(p))
      return error(std::string("expected '") + p + "'" + found());
    consume();
    return true;
  }
  std::string found() const {
    if (tok_.kind == Tok::Eof)
      return " but found end of file";
    std::string prefix = tok_.kind == Tok::Percent ? "%" : tok_.kind == Tok::At ? "@" : "";
    return " but found '" + prefix + tok_.text + "'";
  }

  bool parseDim(Dim &d) {
    if (tok_.kind == Tok::Int) {
      char *end = nullptr;
      errno = 0;
      long long v = std::strtoll(tok_.text.c_str(), &end, 10);
      if (errno || v < 0)
        return error("dimension '" + tok_.text + "' is out of range");
      d = Dim(v);
    } else if (tok_.kind == Tok::Ident) {
      d = Dim::symbol(tok_.text);
    } else {
      return error("expected a dimension (integer or symbol)" + found());
    }
    consume();
    return true;
  }

  bool parseShape(Shape &s) {
    if (!expectPunct("["))
      return false;
    while (!isPunct("]")) {
      Dim d;
      if (!parseDim(d))
        return false;
      s.push_back(d);
      if (isPunct(","))
        consume();
      else if (!isPunct("]"))
        return error("expected ',' or ']' in shape" + found());
    }
    consume();
    return true;
  }

  bool parseType(TensorType &t) {
    if (tok_.kind != Tok::Ident || (tok_.text != "f32" && tok_.text != "i64"))
      return error("expected a tensor type such as f32[N, 10]" + found());
    t.dtype = tok_.text == "f32" ? DType::F32 : DType::I64;
    consume();
    return parseShape(t.shape);
  }

  bool parseAttr(Attr &a) {
    if (tok_.kind == Tok::Int) {
      errno = 0;
      long long v = std::strtoll(tok_.text.c_str(), nullptr, 10);
      if (errno)
        return error("integer '" + tok_.text + "' is out of range");
      a = int64_t(v);
    } else if (tok_.kind == Tok::Float) {
      char *end = nullptr;
      double v = std::strtod(tok_.text.c_str(), &end);
      if (*end)
        return error("malformed number '" + tok_.text + "'");
      a = v;
    } else if (tok_.kind == Tok::Ident && (tok_.text == "true" || tok_.text == "false")) {
      a = tok_.text == "true";
    } else if (tok_.kind == Tok::Ident && (tok_.text == "inf" || tok_.text == "nan")) {
      a = std::strtod(tok_.text.c_str(), nullptr);
    } else if (tok_.kind == Tok::Ident && tok_.text == "shape") {
      consume();
      Shape s;
      if (!parseShape(s))
        return false;
      a = s;
      return true;
    } else if (tok_.kind == Tok::String) {
      a = tok_.text;
    } else if (isPunct("[")) {
      consume();
      std::vector<int64_t> v;
      while (!isPunct("]")) {
        if (tok_.kind != Tok::Int)
          return error("expected an integer in list" + found());
        v.push_back(std::strtoll(tok_.text.c_str(), nullptr, 10));
        consume();
        if (isPunct(","))
          consume();
        else if (!isPunct("]"))
          return error("expected ',' or ']'" + found());
      }
      a = v;
    } else {
      return error("expected an attribute value" + found());
    }
    consume();
    return true;
  }

  Value *lookup(const Token &t) {
    auto it = values_.find(t.text);
    if (it == values_.end()) {
      diags_.error(t.loc, "use of undefined value '%" + t.text + "'");
      return nullptr;
    }
    return it->second;
  }

  bool parseFunction(Module &m) {
    if (tok_.kind != Tok::Ident || tok_.text != "func")
      return error("expected 'func'" + found());
    consume();
    if (tok_.kind != Tok::At)
      return error("expected a function name such as @forward" + found());
    if (m.get(tok_.text))
      return error("redefinition of function '@" + tok_.text + "'");
    Function *f = m.addFunction(tok_.text);
    values_.clear();
    consume();
    if (!expectPunct("("))
      return false;
    while (!isPunct(")")) {
      if (tok_.kind != Tok::Percent)
        return error("expected an argument such as %x" + found());
      Token name = tok_;
      consume();
      if (!expectPunct(":"))
        return false;
      TensorType t;
      if (!parseType(t))
        return false;
      ArgRole role = ArgRole::Input;
      if (tok_.kind == Tok::Ident) {
        auto r = argRoleFromName(tok_.text);
        if (!r)
          return error("unknown argument role '" + tok_.text + "' (expected input, label, param, state or scalar)");
        role = *r;
        consume();
      }
      if (values_.count(name.text)) {
        diags_.error(name.loc, "redefinition of '%" + name.text + "'");
        return false;
      }
      values_[name.text] = f->addArg(name.text, t, role);
      if (isPunct(","))
        consume();
      else if (!isPunct(")"))
        return error("expected ',' or ')'" + found());
    }
    consume();
    if (!expectPunct("{"))
      return false;
    while (!(tok_.kind == Tok::Ident && tok_.text == "return")) {
      if (tok_.kind == Tok::Eof || isPunct("}"))
        return error("expected 'return' before the end of function '@" + f->name + "'");
      if (!parseOp(*f))
        return false;
    }
    consume();
    bool first = true;
    while (!isPunct("}")) {
      if (!first && !isPunct(","))
        return error("expected ',' or '}'" + found());
      if (!first)
        consume();
      first = false;
      if (tok_.kind != Tok::Ident)
        return error("expected a result name such as 'loss = %3'" + found());
      std::string rname = tok_.text;
      SourceLoc rloc = tok_.loc;
      consume();
      if (!expectPunct("="))
        return false;
      if (tok_.kind != Tok::Percent)
        return error("expected a value" + found());
      Value *v = lookup(tok_);
      if (!v)
        return false;
      if (f->result(rname)) {
        diags_.error(rloc, "duplicate result name '" + rname + "'");
        return false;
      }
      f->addResult(rname, v);
      consume();
    }
    consume();
    return true;
  }

  bool parseOp(Function &f) {
    if (tok_.kind != Tok::Percent)
      return error("expected an op such as '%0 = add %a, %b : f32[N]'" + found());
    Token def = tok_;
    consume();
    if (!expectPunct("="))
      return false;
    if (tok_.kind != Tok::Ident)
      return error("expected an op name" + found());
    Token opTok = tok_;
    auto kind = opKindFromName(tok_.text);
    if (!kind)
      return error("unknown op '" + tok_.text + "'");
    consume();
    std::vector<Value *> operands;
    while (tok_.kind == Tok::Percent) {
      Value *v = lookup(tok_);
      if (!v)
        return false;
      operands.push_back(v);
      consume();
      if (isPunct(","))
        consume();
      else
        break;
    }
    Attrs attrs;
    if (isPunct("{")) {
      consume();
      while (!isPunct("}")) {
        if (tok_.kind != Tok::Ident)
          return error("expected an attribute name" + found());
        std::string key = tok_.text;
        consume();
        if (!expectPunct("="))
          return false;
        Attr a;
        if (!parseAttr(a))
          return false;
        attrs[key] = a;
        if (isPunct(","))
          consume();
        else if (!isPunct("}"))
          return error("expected ',' or '}'" + found());
      }
      consume();
    }
    if (!expectPunct(":"))
      return false;
    TensorType annotated;
    SourceLoc typeLoc = tok_.loc;
    if (!parseType(annotated))
      return false;
    std::vector<TensorType> types;
    for (Value *v : operands)
      types.push_back(v->type);
    TypeOrError inferred = inferType(*kind, types, attrs);
    if (auto *err = std::get_if<std::string>(&inferred)) {
      diags_.error(opTok.loc, *err);
      return false;
    }
    if (std::get<TensorType>(inferred) != annotated) {
      diags_.error(typeLoc, "type " + annotated.str() + " does not match the type " +
                                std::get<TensorType>(inferred).str() + " that " + opName(*kind) + " produces");
      return false;
    }
    if (values_.count(def.text)) {
      diags_.error(def.loc, "redefinition of '%" + def.text + "'");
      return false;
    }
    Op *op = f.createOp(*kind, operands, annotated, attrs);
    values_[def.text] = op->result;
    if (*kind == OpKind::Scan)
      scans_.push_back({op, opTok.loc});
    return true;
  }

  Lexer lex_;
  DiagnosticEngine &diags_;
  Token tok_;
  std::unordered_map<std::string, Value *> values_;
  std::vector<std::pair<Op *, SourceLoc>> scans_;
};

} // namespace

std::unique_ptr<Module> parseModule(const SourceFile &file, DiagnosticEngine &diags) {
  Parser p(file, diags);
  return p.parse();
}

} // namespace nnc::ir
