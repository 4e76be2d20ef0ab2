// Looking into the model from the REPL: :show, :print, :emit, and expressions
// compiled over the current model.
#include "tools/repl/ReplImpl.h"

#include "frontend/ASTBuilder.h"
#include "frontend/Sema.h"
#include "ir/Printer.h"
#include "ir/transforms/Passes.h"
#include "runtime/Checkpoint.h"
#include "runtime/ThreadPool.h"
#include "tools/Interrupt.h"
#include "tools/LineEditor.h"
#include "tools/ReplStatements.h"
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fmt/format.h>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

namespace nnc::repl {

using driver::interrupted;

Session::Impl::ExprFunction Session::Impl::lowerExpression(const std::shared_ptr<SourceFile> &file,
                                                           DiagnosticEngine &diags) {
  driver::CompiledModel &m = current();
  ast::ExprPtr e = frontend::parseExpression(*file, diags);
  if (!e)
    throw driver::CompileFailed{};
  auto prog = combine(decls);
  ast::ModelDecl *md = nullptr;
  for (ast::ModelDecl &d : prog->models)
    if (d.name == m.lowered.name)
      md = &d;
  NNC_ASSERT(md) << "the current model has no declaration";
  ast::Stmt s;
  s.kind = ast::Stmt::Output;
  s.loc = s.nameLoc = e->loc;
  s.name = "__value";
  s.value = std::move(e);
  md->body.push_back(std::move(s));
  if (!frontend::checkProgram(*prog, diags))
    throw driver::CompileFailed{};
  auto low = frontend::lowerModel(*prog, *md, diags);
  if (!low)
    throw driver::CompileFailed{};
  ExprFunction r;
  r.lowered = std::move(*low);
  ir::Function *fwd = r.lowered.module->get("forward");
  r.fn = ir::extractResults(*r.lowered.module, *fwd, {"__value"}, "value");
  ir::disableDropout(*r.fn);
  ir::simplify(*r.fn);
  return r;
}

runtime::Tensor Session::Impl::evaluate(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags,
                                        std::string *type) {
  ExprFunction ef = lowerExpression(file, diags);
  bool usesInput = false, usesLabel = false;
  for (size_t i = 0; i < ef.fn->args.size(); ++i) {
    usesInput |= ef.fn->argRoles[i] == ir::ArgRole::Input;
    usesLabel |= ef.fn->argRoles[i] == ir::ArgRole::Label;
  }
  runtime::Dataset rowsData;
  if (usesInput || usesLabel) {
    if (current().config.data.kind == frontend::DataSource::None)
      throw runtime::Error("the expression reads the model's inputs, but model '" + current().lowered.name +
                           "' has no train block naming data to take them from");
    rowsData = runtime::take(loadedData().train, rows);
  } else {
    rowsData.inputs.clear();
    for (const frontend::TensorDecl &in : current().lowered.inputs) {
      std::vector<int64_t> shape = {1};
      for (size_t i = 1; i < in.type.shape.size(); ++i)
        shape.push_back(in.type.shape[i].size);
      rowsData.inputs.emplace_back(in.type.dtype == ir::DType::F32 ? runtime::DType::F32 : runtime::DType::I64, shape);
    }
  }
  auto outs = session->runFunction(*ef.fn, rowsData.inputs, usesLabel ? &rowsData.y : nullptr);
  runtime::Tensor v = outs.at("__value");
  if (type) {
    const ir::TensorType &t = ef.fn->results.at(0)->type;
    *type = t.str();
    if (usesInput || usesLabel)
      *type += fmt::format(" with {} = {}", t.shape.empty() || t.shape[0].isStatic() ? "N" : t.shape[0].str(),
                           rowsData.size());
  }
  return v;
}

void Session::Impl::show(const std::vector<Word> &args, DiagnosticEngine &diags) {
  driver::CompiledModel &m = current();
  std::string what = args.empty() ? "" : args[0].text;
  if (what.empty()) {
    out << fmt::format("model {}: {} parameters, {} epoch{} trained; :show params|shapes|memory|config for more\n",
                       m.lowered.name, m.parameterCount(), fit.epoch, fit.epoch == 1 ? "" : "s");
    return;
  }
  if (what == "params") {
    int64_t total = 0;
    for (const frontend::ParamInfo &p : m.lowered.params) {
      int64_t n = ir::numElements(p.shape);
      total += n;
      std::string shape;
      for (size_t i = 0; i < p.shape.size(); ++i)
        shape += (i ? ", " : "") + std::to_string(p.shape[i]);
      out << fmt::format("  {:<24} f32[{}]{:>{}}{}\n", p.name, shape, n, std::max<int>(1, 22 - int(shape.size())), "");
    }
    int64_t stateBytes = 0;
    for (auto &[n, t] : session->state().state)
      stateBytes += int64_t(t.bytes());
    out << fmt::format("  {} parameters ({}), {} state tensors ({})\n", total, mib(double(total) * 4),
                       session->state().state.size(), mib(double(stateBytes)));
    return;
  }
  if (what == "shapes") {
    auto type = [](const ir::TensorType &t) { return t.str(); };
    for (const frontend::TensorDecl &d : m.lowered.inputs)
      out << fmt::format("  {:<16} {}  (input)\n", d.name, type(d.type));
    for (const frontend::TensorDecl &d : m.lowered.labels)
      out << fmt::format("  {:<16} {}  (label)\n", d.name, type(d.type));
    auto prog = combine(decls);
    const ast::ModelDecl *md = prog->model(m.lowered.name);
    for (const ast::Stmt &s : md->body) {
      std::vector<std::string> ns;
      if (s.kind == ast::Stmt::Let || s.kind == ast::Stmt::Output) {
        ns.push_back(s.name);
        for (auto &[n, loc] : s.more)
          ns.push_back(n);
      }
      for (const std::string &n : ns) {
        auto file = std::make_shared<SourceFile>();
        file->name = "<shapes>";
        file->text = n;
        DiagnosticEngine quiet;
        std::string t;
        try {
          ExprFunction ef = lowerExpression(file, quiet);
          t = ef.fn->results.at(0)->type.str();
        } catch (const driver::CompileFailed &) {
          t = "(not a tensor)";
        }
        out << fmt::format("  {:<16} {}{}\n", n, t, s.kind == ast::Stmt::Output ? "  (output)" : "");
      }
    }
    const ir::Function &f = m.function("forward");
    for (size_t i = 0; i < f.results.size(); ++i)
      if (f.resultNames[i] == "loss")
        out << fmt::format("  {:<16} {}  (loss)\n", "loss", f.results[i]->type.str());
    (void)diags;
    return;
  }
  if (what == "memory") {
    int64_t b = m.config.batch;
    out << fmt::format("planned memory at batch {}:\n", b);
    for (const char *fn : {"train_step", "evaluate", "predict"}) {
      if (!m.module.get(fn))
        continue;
      session->compiled(fn, b);
      auto [arena, unplanned] = session->plannedMemory(fn, b);
      out << fmt::format("  {:<11} {} arena for intermediates ({} without reuse)\n", fn, mib(double(arena)),
                         mib(double(unplanned)));
    }
    int64_t pb = 0, sb = 0;
    for (auto &[n, t] : session->state().params)
      pb += int64_t(t.bytes());
    for (auto &[n, t] : session->state().state)
      sb += int64_t(t.bytes());
    out << fmt::format("  parameters  {}; optimizer and model state {}\n", mib(double(pb)), mib(double(sb)));
    return;
  }
  if (what == "config") {
    const frontend::TrainConfig &c = m.config;
    out << fmt::format("  model      {}\n  optimizer  {}\n  schedule   {}\n  batch      {}\n  epochs     {} per :train "
                       "({} trained)\n  seed       {}\n",
                       m.lowered.name, c.phases.empty() ? driver::optimizerText(c) : driver::phasesText(c),
                       driver::scheduleText(c.schedule), c.batch, c.epochs,
                       fit.epoch, c.seed);
    std::string src = c.data.kind == frontend::DataSource::None  ? "none"
                      : c.data.kind == frontend::DataSource::IDX ? c.data.images + ", " + c.data.labels
                                                                 : c.data.path;
    if (c.data.kind == frontend::DataSource::NPY) {
      src.clear();
      for (const auto &a : c.data.arrays)
        src += (src.empty() ? "" : ", ") + a.second;
      src += (c.data.labelArray.empty() ? "" : ", ") + c.data.labelArray;
    }
    out << fmt::format("  data       {}{}\n", src, c.split > 0 ? fmt::format(" (validation split {:g})", c.split) : "");
    if (c.earlyStop)
      out << fmt::format("  early stop on {}, patience {}\n", c.monitor, c.patience);
    return;
  }
  throw UsageError{args[0].col, what.size(), "expected params, shapes, memory or config, got '" + what + "'"};
}

void Session::Impl::emit(const std::string &line, const std::vector<Word> &args,
                         const std::shared_ptr<SourceFile> &rest, DiagnosticEngine &diags) {
  driver::CompiledModel &m = current();
  if (args.empty())
    throw UsageError{0, line.size(), "usage: :emit ir|grad|train|evaluate|predict|llvm|asm|ast [FUNCTION|EXPR]"};
  const Word &kind = args[0];
  if (std::find(kEmitKinds.begin(), kEmitKinds.end(), kind.text) == kEmitKinds.end()) {
    std::string hint = closestMatch(kind.text, kEmitKinds);
    throw UsageError{kind.col, kind.text.size(),
                     "unknown stage '" + kind.text + "'" +
                         (hint.empty() ? "; expected ir, grad, train, evaluate, predict, llvm, asm or ast"
                                       : "; did you mean '" + hint + "'?")};
  }
  if (kind.text == "ast") {
    ast::dump(*combine(decls), out);
    return;
  }
  std::string target = args.size() > 1 ? trim(line.substr(args[1].col)) : "";
  bool isFunction = target.empty() || std::find(kFunctions.begin(), kFunctions.end(), target) != kFunctions.end();
  if (!isFunction) {
    if (kind.text != "ir" && kind.text != "grad" && kind.text != "llvm" && kind.text != "asm")
      throw UsageError{kind.col, kind.text.size(),
                       "'" + kind.text +
                           "' shows a function of the model; for an expression use ir, grad, llvm or asm"};
    ExprFunction ef = lowerExpression(rest, diags);
    if (kind.text == "grad") {
      const ir::TensorType &t = ef.fn->results.at(0)->type;
      if (t.rank() != 0 || t.dtype != ir::DType::F32)
        throw UsageError{args[1].col, line.size() - args[1].col,
                         "the gradient is of a scalar, but this expression is " + t.str() +
                             "; reduce it, e.g. sum(...)"};
      ir::Function *g = ir::differentiate(*ef.lowered.module, *ef.fn, "__value", "value.grad");
      ir::simplify(*g);
      driver::printWithBodies(*g, out);
    } else if (kind.text == "ir")
      driver::printWithBodies(*ef.fn, out);
    else
      out << (kind.text == "llvm" ? session->jit().emitLLVM(*ef.fn, m.bindings(m.config.batch))
                                  : session->jit().emitAssembly(*ef.fn, m.bindings(m.config.batch)));
    return;
  }
  std::string fn = !target.empty()           ? target
                   : kind.text == "ir"       ? "forward"
                   : kind.text == "grad"     ? "grad"
                   : kind.text == "train"    ? "train_step"
                   : kind.text == "evaluate" ? "evaluate"
                   : kind.text == "predict"  ? "predict"
                                             : "train_step";
  const ir::Function &f = m.function(fn); // throws when the model has none
  if (kind.text == "llvm" || kind.text == "asm") {
    codegen::CodegenOptions co;
    co.inPlaceUpdates = true; // as training compiles it
    ir::Bindings b = m.bindings(m.config.batch);
    out << (kind.text == "llvm" ? session->jit().emitLLVM(f, b, co) : session->jit().emitAssembly(f, b, co));
    return;
  }
  driver::printWithBodies(f, out);
}

void Session::Impl::printCmd(const std::string &line, size_t argStart, const std::shared_ptr<SourceFile> &chunk,
                             uint32_t lineNo, DiagnosticEngine &diags) {
  std::string text = line.substr(argStart);
  std::string e = trim(text);
  if (e.empty())
    throw UsageError{0, line.size(), "usage: :print NAME[SLICE] (a parameter, state tensor or expression)"};
  size_t lead = argStart + text.find(e);
  std::string spec;
  size_t specCol = 0;
  if (e.back() == ']') {
    int depth = 0;
    size_t open = std::string::npos;
    for (size_t i = e.size(); i-- > 0;) {
      depth += e[i] == ']' ? 1 : e[i] == '[' ? -1 : 0;
      if (depth == 0) {
        open = i;
        break;
      }
    }
    if (open != std::string::npos && open > 0 &&
        (isalnum(static_cast<unsigned char>(e[open - 1])) || e[open - 1] == '_' || e[open - 1] == ')')) {
      spec = e.substr(open + 1, e.size() - open - 2);
      specCol = lead + open;
      e = trim(e.substr(0, open));
    }
  }
  runtime::Tensor t;
  std::string type;
  auto &st = session->state();
  if (auto p = st.params.find(e); p != st.params.end()) {
    t = p->second;
    type = t.typeString() + " (parameter)";
  } else if (auto s = st.state.find(e); s != st.state.end()) {
    t = s->second;
    type = t.typeString() + " (state)";
  } else {
    auto file = std::make_shared<SourceFile>();
    file->name = chunk->name;
    file->text = std::string(lineNo - 1, '\n') + std::string(indent + lead, ' ') + e;
    t = evaluate(file, diags, &type);
  }
  if (!spec.empty() || specCol) {
    t = slice(t, spec, specCol);
    type = t.typeString() + " (slice [" + spec + "])";
  }
  out << e << " : " << type << "\n" << formatTensor(t) << "\n";
}

} // namespace nnc::repl
