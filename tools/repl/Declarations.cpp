// The declarations a REPL session holds: declaring, model statements typed at
// the prompt, the current model, and :load, :reload, :model, :decls.
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

const char *kindName(Decl::Kind k) { return k == Decl::Model ? "model" : k == Decl::Layer ? "layer" : "train"; }

/// The declarations of a parsed input, in order of kind.
std::vector<Decl> declsOf(const ast::Program &p, const std::shared_ptr<SourceFile> &file) {
  std::vector<Decl> out;
  for (size_t i = 0; i < p.models.size(); ++i)
    out.push_back({Decl::Model, p.models[i].name, file, i, {}});
  for (size_t i = 0; i < p.layers.size(); ++i)
    out.push_back({Decl::Layer, p.layers[i].name, file, i, {}});
  for (size_t i = 0; i < p.trains.size(); ++i)
    out.push_back({Decl::Train, p.trains[i].model, file, i, {}});
  return out;
}

/// Parses the inputs holding `decls` again and gathers those declarations
/// into one program (the AST owns its nodes, so each use gets a fresh copy).
std::unique_ptr<ast::Program> combine(const std::vector<Decl> &decls) {
  std::map<const SourceFile *, std::unique_ptr<ast::Program>> parsed;
  DiagnosticEngine quiet;
  auto prog = std::make_unique<ast::Program>();
  for (const Decl &d : decls) {
    auto &p = parsed[d.file.get()];
    if (!p)
      p = frontend::parseProgram(*d.file, quiet);
    NNC_ASSERT(p) << "an input that parsed before no longer does";
    if (d.kind == Decl::Model) {
      prog->models.push_back(std::move(p->models.at(d.index)));
      for (const auto &f : d.typed) {
        auto s = frontend::parseModelStatement(*f, quiet);
        NNC_ASSERT(s) << "a statement that parsed before no longer does";
        spliceStatement(prog->models.back(), std::move(*s));
      }
    } else if (d.kind == Decl::Layer)
      prog->layers.push_back(std::move(p->layers.at(d.index)));
    else
      prog->trains.push_back(std::move(p->trains.at(d.index)));
  }
  return prog;
}

driver::CompiledModel &Session::Impl::current() {
  if (!model)
    throw runtime::Error(decls.empty() ? "no model yet: :load a .nn file or enter a model declaration"
                                       : "no current model: choose one with :model NAME");
  return *model;
}

void Session::Impl::collectNames(const ast::Program &p) {
  names.clear();
  for (const ast::ModelDecl &m : p.models)
    names.insert(m.name);
  for (const ast::LayerDecl &l : p.layers)
    names.insert(l.name);
  if (!model)
    return;
  if (const ast::ModelDecl *m = p.model(model->lowered.name))
    for (const ast::Stmt &s : m->body) {
      if (!s.name.empty())
        names.insert(s.name);
      for (auto &[n, loc] : s.more)
        names.insert(n);
    }
  for (const frontend::ParamInfo &p2 : model->lowered.params)
    names.insert(p2.name);
}

void Session::Impl::adopt(std::vector<Decl> next, const std::string &name, bool fresh, const SourceFile *anchor,
                          DiagnosticEngine &diags) {
  auto prog = combine(next);
  if (!frontend::checkProgram(*prog, diags))
    throw driver::CompileFailed{};
  bool pick = !name.empty() || !prog->models.empty();
  if (!pick || (name.empty() && prog->trains.empty() && prog->models.size() > 1)) {
    // Nothing to compile yet (say, only layers), or no obvious choice.
    decls = std::move(next);
    if (!model || !prog->model(model->lowered.name)) {
      model.reset();
      session.reset();
      data.reset();
      fit = {};
    }
    collectNames(*prog);
    if (!model && prog->models.size() > 1)
      out << "several models; choose one with :model NAME\n";
    return;
  }
  auto cm = std::make_unique<driver::CompiledModel>(driver::compileModel(*prog, name, anchor, diags));
  applySettings(*cm);
  if (!fresh && session && model && cm->lowered.name == model->lowered.name) {
    driver::Session::Rebind r = session->rebind(*cm, cm->config.seed);
    const std::vector<std::string> &changed = r.recompile, &same = r.unchanged;
    std::string line = "model " + cm->lowered.name + ": ";
    if (changed.empty())
      line += "code unchanged";
    else {
      line += "recompiling";
      for (const std::string &f : changed)
        line += " " + f;
      if (!same.empty()) {
        line += " (unchanged:";
        for (const std::string &f : same)
          line += " " + f;
        line += ")";
      }
    }
    // The best epoch so far was judged by the old evaluate function (or
    // monitor) and its weights may not fit the new model: start over.
    bool judgedAlike = std::find(changed.begin(), changed.end(), "evaluate") == changed.end() && r.fresh.empty() &&
                       r.dropped.empty() && cm->config.monitor == model->config.monitor;
    bool hadBest = fit.bestEpoch > 0;
    if (!judgedAlike)
      fit.forgetBest();
    if (!r.fresh.empty() || !r.dropped.empty()) {
      line += fmt::format("; kept {} tensor{}", r.kept.size(), r.kept.size() == 1 ? "" : "s");
      auto list = [](const std::vector<std::string> &v) {
        std::string s;
        for (size_t i = 0; i < v.size() && i < 6; ++i)
          s += (i ? ", " : "") + v[i];
        return v.size() > 6 ? s + ", ..." : s;
      };
      if (!r.fresh.empty())
        line += ", initialized " + list(r.fresh);
      if (!r.dropped.empty())
        line += ", dropped " + list(r.dropped);
    }
    if (!judgedAlike && hadBest && (cm->config.earlyStop || cm->config.schedule.kind == runtime::LrSchedule::Plateau))
      line += "; early stopping starts over";
    out << line << "\n";
  } else {
    auto s = std::make_unique<driver::Session>(*cm);
    s->initialize(cm->config.seed);
    session = std::move(s);
    fit = {};
    fitted.reset();
    data.reset();
    out << fmt::format("model {}: {} parameters in {} tensors; inputs", cm->lowered.name, cm->parameterCount(),
                       cm->lowered.params.size());
    for (const frontend::TensorDecl &d : cm->lowered.inputs)
      out << " " << d.name << " : " << d.type.str();
    if (!cm->lowered.outputs.empty()) {
      out << "; outputs";
      for (const std::string &o : cm->lowered.outputs)
        out << " " << o;
    }
    out << "\n";
  }
  model = std::move(cm);
  decls = std::move(next);
  collectNames(*prog);
}

void Session::Impl::addStatement(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags) {
  auto s = frontend::parseModelStatement(*file, diags);
  if (!s)
    throw driver::CompileFailed{};
  // Its row in the model's summary: `a, b` for `a, b = split(x, 2)`.
  std::vector<std::string> names = boundNames(*s);
  std::string row = s->name.empty() ? "loss" : names.front();
  for (size_t i = 1; i < names.size(); ++i)
    row += ", " + names[i];
  std::string what = s->name.empty() ? "the loss" : "'" + row + "'";
  auto decl = std::find_if(decls.begin(), decls.end(), [&](const Decl &d) {
    return model && d.kind == Decl::Model && d.name == model->lowered.name;
  });
  if (decl == decls.end()) {
    diags.error(s->name.empty() ? s->loc : s->nameLoc,
                "there is no current model to add " + what +
                    " to; declare one (model M { ... }), :load a file or choose one with :model NAME");
    throw driver::CompileFailed{};
  }
  std::vector<Decl> next = decls;
  Decl &d = next[size_t(decl - decls.begin())];
  d.typed.push_back(file);
  bool replaced = spliceStatement(combine({*decl})->models.front(), std::move(*s));
  std::string name = d.name;
  adopt(std::move(next), name, false, file.get(), diags);
  out << (replaced ? "redefined " : "added ") << what << " in model " << name << "\n";
  for (const frontend::LoweredModel::Row &r : model->lowered.rows)
    if (r.name == row)
      out << fmt::format("  {} : {}{}\n", r.name, r.type,
                         r.params ? fmt::format(" ({} parameters)", r.params) : std::string());
}

void Session::Impl::declare(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags, bool replaceAll,
                            bool fresh) {
  auto p = frontend::parseProgram(*file, diags);
  if (!p)
    throw driver::CompileFailed{};
  std::vector<Decl> added = declsOf(*p, file);
  std::set<std::pair<int, std::string>> seen;
  for (const Decl &d : added)
    if (!seen.insert({d.kind, d.name}).second) {
      const SourceLoc &loc = d.kind == Decl::Model   ? p->models[d.index].nameLoc
                             : d.kind == Decl::Layer ? p->layers[d.index].nameLoc
                                                     : p->trains[d.index].modelLoc;
      diags.error(loc, fmt::format("{} '{}' is declared twice here", kindName(d.kind), d.name));
      throw driver::CompileFailed{};
    }
  std::vector<Decl> next = replaceAll ? std::vector<Decl>{} : decls;
  for (const Decl &d : added) {
    auto it =
        std::find_if(next.begin(), next.end(), [&](const Decl &o) { return o.kind == d.kind && o.name == d.name; });
    if (it != next.end())
      *it = d;
    else
      next.push_back(d);
  }
  // The current model stays current; without one, the input's own model
  // (the one its train block trains, else its only one) becomes current.
  std::string name = !fresh && model ? model->lowered.name : "";
  if (name.empty() && !replaceAll) {
    if (!p->trains.empty())
      name = p->trains.front().model;
    else if (p->models.size() == 1)
      name = p->models.front().name;
  }
  adopt(std::move(next), name, fresh, file.get(), diags);
}

void Session::Impl::loadFile(const Call &c) {
  if (c.args.size() != 1)
    throw UsageError{0, c.line.size(), "usage: :load FILE.nn"};
  auto src = driver::parseFile(c.args[0].text, c.diags);
  if (!src)
    throw driver::CompileFailed{};
  std::shared_ptr<SourceFile> file(src->file.release());
  declare(file, c.diags, /*replaceAll=*/true, /*fresh=*/true);
  lastFile = c.args[0].text;
}

void Session::Impl::reloadFile(const Call &c) {
  c.noArgs();
  if (lastFile.empty())
    throw runtime::Error("nothing to reload: no file was loaded (:load FILE.nn)");
  auto src = driver::parseFile(lastFile, c.diags);
  if (!src)
    throw driver::CompileFailed{};
  std::shared_ptr<SourceFile> file(src->file.release());
  declare(file, c.diags, false, false);
}

void Session::Impl::modelCmd(const Call &c) {
  if (c.args.empty()) {
    std::vector<std::string> models;
    for (const Decl &d : decls)
      if (d.kind == Decl::Model)
        models.push_back(d.name);
    out << "current model: " << (model ? model->lowered.name : std::string("none"));
    if (!models.empty()) {
      out << "; models:";
      for (const std::string &n : models)
        out << " " << n;
    }
    out << "\n";
    return;
  }
  bool exists = false;
  std::vector<std::string> models;
  for (const Decl &d : decls)
    if (d.kind == Decl::Model) {
      exists |= d.name == c.args[0].text;
      models.push_back(d.name);
    }
  if (!exists) {
    std::string hint = closestMatch(c.args[0].text, models);
    throw UsageError{c.args[0].col, c.args[0].text.size(),
                     "no model named '" + c.args[0].text + "'" +
                         (hint.empty() ? "" : "; did you mean '" + hint + "'?")};
  }
  adopt(decls, c.args[0].text, true, c.chunk.get(), c.diags);
}

void Session::Impl::listDecls(const Call &c) {
  c.noArgs();
  if (decls.empty())
    out << "no declarations\n";
  for (const Decl &d : decls) {
    auto prog = frontend::parseProgram(*d.file, c.diags);
    SourceLoc loc = d.kind == Decl::Model   ? prog->models[d.index].loc
                    : d.kind == Decl::Layer ? prog->layers[d.index].loc
                                            : prog->trains[d.index].loc;
    out << fmt::format("  {} {:<16} {}{}\n", kindName(d.kind), d.name, loc.str(),
                       model && d.kind == Decl::Model && d.name == model->lowered.name ? "  (current)" : "");
    for (const auto &f : d.typed) {
      auto st = frontend::parseModelStatement(*f, c.diags);
      out << fmt::format("    + {:<16} {}\n", st && !st->name.empty() ? st->name : "loss", st ? st->loc.str() : "");
    }
  }
}

} // namespace nnc::repl
