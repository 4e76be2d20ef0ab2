#include "tools/Repl.h"
#include "tools/Interrupt.h"

#include "frontend/ASTBuilder.h"
#include "frontend/Sema.h"
#include "ir/Printer.h"
#include "ir/transforms/Passes.h"
#include "runtime/Checkpoint.h"
#include "runtime/ThreadPool.h"
#include "tools/LineEditor.h"
#include "tools/ReplStatements.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

namespace nnc::repl {

using driver::interrupted;

namespace {

/// A mistake in a command line, at columns [col, col + len) of it.
struct UsageError {
  size_t col, len;
  std::string message;
};

/// A word of a command line and where it starts.
struct Word {
  std::string text;
  size_t col;
};

std::vector<Word> words(const std::string &s, size_t from = 0) {
  std::vector<Word> out;
  size_t i = from;
  while (i < s.size()) {
    while (i < s.size() && isspace(static_cast<unsigned char>(s[i])))
      ++i;
    size_t start = i;
    while (i < s.size() && !isspace(static_cast<unsigned char>(s[i])))
      ++i;
    if (i > start)
      out.push_back({s.substr(start, i - start), start});
  }
  return out;
}

std::string trim(const std::string &s) {
  size_t a = s.find_first_not_of(" \t\r\n"), b = s.find_last_not_of(" \t\r\n");
  return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

/// True when `t` begins a model, layer or train declaration.
bool startsDeclaration(const std::string &t) {
  for (const char *kw : {"model", "layer", "train"}) {
    size_t n = std::strlen(kw);
    if (t.compare(0, n, kw) == 0 && t.size() > n && isspace(static_cast<unsigned char>(t[n]))) {
      size_t i = t.find_first_not_of(" \t\r\n", n);
      return i != std::string::npos && (isalpha(static_cast<unsigned char>(t[i])) || t[i] == '_');
    }
  }
  return false;
}

/// One declaration the session holds, and the input that declared it.
struct Decl {
  enum Kind { Model, Layer, Train } kind;
  std::string name; ///< for a train block, the model it trains
  std::shared_ptr<SourceFile> file;
  size_t index; ///< among the declarations of its kind in `file`
  /// A model's statements typed at the prompt since it was declared, in order
  /// (each input holds one; see ReplStatements.h).
  std::vector<std::shared_ptr<SourceFile>> typed;
};

const char *kindName(Decl::Kind k) { return k == Decl::Model ? "model" : k == Decl::Layer ? "layer" : "train"; }

/// The declarations of a parsed input, in order of kind.
std::vector<Decl> declsOf(const ast::Program &p, const std::shared_ptr<SourceFile> &file) {
  std::vector<Decl> out;
  for (size_t i = 0; i < p.models.size(); ++i)
    out.push_back({Decl::Model, p.models[i].name, file, i});
  for (size_t i = 0; i < p.layers.size(); ++i)
    out.push_back({Decl::Layer, p.layers[i].name, file, i});
  for (size_t i = 0; i < p.trains.size(); ++i)
    out.push_back({Decl::Train, p.trains[i].model, file, i});
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

//===----------------------------------------------------------------------===//
// Tensors as text
//===----------------------------------------------------------------------===//

std::string number(const runtime::Tensor &t, int64_t i) {
  return t.dtype() == runtime::DType::F32 ? fmt::format("{:.4g}", t.f32()[i]) : std::to_string(t.i64()[i]);
}

/// Nested brackets, eliding the middle of dimensions longer than 8.
void formatInto(const runtime::Tensor &t, size_t dim, int64_t offset, size_t width, int indent, std::string &out) {
  if (t.rank() == 0) {
    out += number(t, 0);
    return;
  }
  int64_t n = t.dim(dim), stride = 1;
  for (size_t d = dim + 1; d < t.rank(); ++d)
    stride *= t.dim(d);
  out += "[";
  bool last = dim + 1 == t.rank();
  for (int64_t i = 0; i < n; ++i) {
    if (n > 8 && i == 3) {
      out += last ? "..., " : "...,\n" + std::string(size_t(indent + 1), ' ');
      i = n - 3;
    }
    if (last) {
      std::string v = number(t, offset + i);
      out += std::string(width > v.size() ? width - v.size() : 0, ' ') + v;
    } else {
      formatInto(t, dim + 1, offset + i * stride, width, indent + 1, out);
    }
    if (i + 1 < n)
      out += last ? ", " : ",\n" + std::string(size_t(indent + 1), ' ');
  }
  out += "]";
}

std::string formatTensor(const runtime::Tensor &t) {
  size_t width = 0;
  for (int64_t i = 0; i < t.numel(); ++i)
    width = std::max(width, number(t, i).size());
  std::string out;
  formatInto(t, 0, 0, width, 0, out);
  return out;
}

/// `t` sliced by `spec` ("0:2, :, 3"): per dimension an index (which drops
/// the dimension), a range a:b, or ':'; negative numbers count from the end.
runtime::Tensor slice(const runtime::Tensor &t, const std::string &spec, size_t col) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : spec) {
    if (c == ',') {
      parts.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(trim(cur));
  if (parts.size() > t.rank())
    throw UsageError{col, spec.size() + 2,
                     fmt::format("{} indices for a tensor of rank {} ({})", parts.size(), t.rank(), t.typeString())};
  std::vector<int64_t> lo, hi;
  std::vector<bool> keep;
  auto parseIndex = [&](const std::string &s, int64_t n, int64_t dflt) -> int64_t {
    if (s.empty())
      return dflt;
    char *end = nullptr;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (*end)
      throw UsageError{col, spec.size() + 2, "'" + s + "' is not an index"};
    return v < 0 ? v + n : v;
  };
  for (size_t d = 0; d < t.rank(); ++d) {
    int64_t n = t.dim(d);
    std::string p = d < parts.size() ? parts[d] : ":";
    size_t colon = p.find(':');
    if (colon == std::string::npos) {
      int64_t i = parseIndex(p, n, 0);
      if (i < 0 || i >= n)
        throw UsageError{col, spec.size() + 2,
                         fmt::format("index {} is out of range for dimension {} of size {}", p, d, n)};
      lo.push_back(i);
      hi.push_back(i + 1);
      keep.push_back(false);
    } else {
      int64_t a = std::clamp<int64_t>(parseIndex(trim(p.substr(0, colon)), n, 0), 0, n);
      int64_t b = std::clamp<int64_t>(parseIndex(trim(p.substr(colon + 1)), n, n), 0, n);
      lo.push_back(a);
      hi.push_back(std::max(a, b));
      keep.push_back(true);
    }
  }
  std::vector<int64_t> shape;
  for (size_t d = 0; d < t.rank(); ++d)
    if (keep[d])
      shape.push_back(hi[d] - lo[d]);
  runtime::Tensor r(t.dtype(), shape);
  size_t esz = t.dtype() == runtime::DType::F32 ? 4 : 8;
  std::vector<int64_t> idx(lo), strides(t.rank(), 1);
  for (size_t d = t.rank(); d-- > 1;)
    strides[d - 1] = strides[d] * t.dim(d);
  for (int64_t k = 0; k < r.numel(); ++k) {
    int64_t off = 0;
    for (size_t d = 0; d < t.rank(); ++d)
      off += idx[d] * strides[d];
    std::memcpy(static_cast<char *>(r.data()) + size_t(k) * esz,
                static_cast<const char *>(t.data()) + size_t(off) * esz, esz);
    for (size_t d = t.rank(); d-- > 0;) {
      if (++idx[d] < hi[d])
        break;
      idx[d] = lo[d];
    }
  }
  return r;
}

std::string mib(double bytes) { return fmt::format("{:.2f} MiB", bytes / (1 << 20)); }

std::string evalText(const runtime::EvalResult &r) {
  std::string s = fmt::format("loss {:.4f}", r.loss);
  if (r.accuracy >= 0)
    s += fmt::format(" acc {:.4f}", r.accuracy);
  return s;
}

//===----------------------------------------------------------------------===//
// Commands
//===----------------------------------------------------------------------===//

struct Command {
  std::string name, usage, summary, details;
};

const std::vector<Command> &commandTable() {
  static const std::vector<Command> table = {
      {"help", ":help [COMMAND]", "list the commands, or explain one", ""},
      {"load", ":load FILE.nn", "read a .nn file; its declarations replace the session's, and the weights start fresh",
       "The model trained by the file's first train block (or its only model) becomes the current model."},
      {"reload", ":reload", "read the last loaded file again, keeping what did not change",
       "Functions whose IR did not change keep their compiled code, and weights whose name and shape did not\n"
       "change keep their values, as when a declaration is entered again at the prompt."},
      {"model", ":model [NAME]", "show the current model, or switch to model NAME (fresh weights)", ""},
      {"decls", ":decls", "list the declarations the session holds and where each came from", ""},
      {"train", ":train [N] [epochs|steps]", "train N more epochs (default: the train block's epochs) or N steps",
       "Progress is shown as in `nnc train`. Ctrl-C stops training after the step in flight and returns to\n"
       "the prompt; the weights and optimizer state then hold every step made (a second Ctrl-C before that\n"
       "ends nnc). A stopped epoch counts as\n"
       "done: the next :train starts the following epoch. The train block's checkpoint(...) and log are\n"
       "not written by the REPL; use :save."},
      {"eval", ":eval [train|val|test]...", "loss (and accuracy) on the data sets, all by default", ""},
      {"set", ":set [NAME VALUE]",
       "change a setting between runs: lr, batch, epochs, seed, threads, rows; alone: show them",
       "lr: learning rate; batch: batch size; epochs: the default of :train; seed: initialization, shuffling\n"
       "and the validation split (changing it reloads the data); threads: worker threads; rows: how many\n"
       "training examples an expression is evaluated on (default 4). Settings survive recompilation."},
      {"show", ":show [params|shapes|memory|config]",
       "the model's parameters, the shapes of its values, planned memory, or the training setup", ""},
      {"print", ":print NAME[SLICE]", "print a parameter or state tensor, or an expression's value, or a slice of it",
       "A slice gives per dimension an index, a range a:b or ':' (negative numbers count from the end):\n"
       "  :print h.w[0:2, -3:]    :print logits[0]    :print h.b"},
      {"emit", ":emit ir|grad|train|evaluate|predict|llvm|asm|ast [FUNCTION|EXPR]",
       "print a compilation stage of the model, or of an expression",
       "ir: the forward function (or FUNCTION); grad: the gradient; train: the train step with the optimizer;\n"
       "llvm, asm: the machine code of FUNCTION (default train_step) at the current batch size. With an\n"
       "expression instead of a function name, ir/llvm/asm show the code that evaluates it, and grad the\n"
       "gradient of the (scalar) expression with respect to the parameters it reads: :emit grad sum(h.w * h.w)"},
      {"save", ":save FILE", "write weights, optimizer state and the training state to a safetensors file", ""},
      {"restore", ":restore FILE", "load weights (and optimizer and training state, if present) from a checkpoint",
       "Also restores the data statistics and the seed of the validation split the checkpoint was trained\n"
       "with, so :eval reports what the run that saved it reported."},
      {"time", ":time [train_step|evaluate|predict] [CALLS]",
       "time a compiled step on the first batch of the training data (weights are restored afterwards)", ""},
      {"reset", ":reset", "fresh weights and optimizer state; the epoch count starts over", ""},
      {"quit", ":quit", "leave the REPL (also Ctrl-D)", ""},
  };
  return table;
}

const std::vector<std::string> kSettings = {"lr", "batch", "epochs", "seed", "threads", "rows"};
const std::vector<std::string> kEmitKinds = {"ir", "grad", "train", "evaluate", "predict", "llvm", "asm", "ast"};
const std::vector<std::string> kFunctions = {"forward", "grad", "train_step", "evaluate", "predict"};

} // namespace

const std::vector<std::pair<std::string, std::string>> &Session::commands() {
  static const std::vector<std::pair<std::string, std::string>> list = [] {
    std::vector<std::pair<std::string, std::string>> l;
    for (const Command &c : commandTable())
      l.push_back({c.name, c.summary});
    return l;
  }();
  return list;
}

//===----------------------------------------------------------------------===//
// The session
//===----------------------------------------------------------------------===//

struct Session::Impl {
  std::ostream &out, &err;
  bool color;
  std::vector<Decl> decls;
  std::unique_ptr<driver::CompiledModel> model;
  std::unique_ptr<driver::Session> session;
  std::optional<driver::Data> data;
  std::string dataKey;
  std::optional<runtime::Standardizer> fitted; ///< a restored checkpoint's statistics
  runtime::FitState fit;
  std::optional<double> lr;
  std::optional<int64_t> batch, epochs;
  std::optional<uint64_t> seed;
  int64_t rows = 4;
  std::string lastFile;
  size_t indent = 0; ///< of the input being handled (commands are handled trimmed)
  /// Names for completion: models, layers, bindings, inputs, parameters.
  std::set<std::string> names;

  Impl(std::ostream &o, std::ostream &e, bool c) : out(o), err(e), color(c) {}

  driver::CompiledModel &current() {
    if (!model)
      throw runtime::Error(decls.empty() ? "no model yet: :load a .nn file or enter a model declaration"
                                         : "no current model: choose one with :model NAME");
    return *model;
  }

  void applySettings(driver::CompiledModel &m) const {
    if (lr)
      m.config.lr = *lr;
    if (batch)
      m.config.batch = *batch;
    if (epochs)
      m.config.epochs = *epochs;
    if (seed)
      m.config.seed = *seed;
  }

  /// What decides the loaded data: its sources, preprocessing, split and seed.
  std::string dataKeyOf(const driver::CompiledModel &m) const {
    const frontend::TrainConfig &c = m.config;
    auto src = [](const frontend::DataSource &s) {
      std::string k = fmt::format("{} {} {} {} {} {} [", int(s.kind), s.path, s.context, s.stride, s.images, s.labels);
      for (int64_t d : s.image)
        k += std::to_string(d) + " ";
      k += "] label";
      for (const runtime::ColumnRef &r : s.label)
        k += " " + r.str();
      for (const auto &col : s.columns) {
        k += " " + col.input + (col.rest ? "=rest" : "=");
        for (const runtime::ColumnRef &r : col.refs)
          k += r.str() + ",";
      }
      return k;
    };
    std::string k = src(c.data) + "|" + src(c.test) + fmt::format("|{:.17g}|{}|", c.split, c.seed);
    // Which columns go where depends on the model's inputs and label too.
    for (const auto *decls : {&m.lowered.inputs, &m.lowered.labels})
      for (const frontend::TensorDecl &t : *decls)
        k += t.name + ":" + t.type.str() + " ";
    for (const frontend::Transform &t : c.transforms)
      k += fmt::format("{}:{:.17g} ", int(t.kind), t.factor);
    if (!m.lowered.labels.empty())
      k += m.lowered.labels[0].type.str();
    return k;
  }

  driver::Data &loadedData() {
    driver::CompiledModel &m = current();
    std::string key = dataKeyOf(m);
    if (!data || key != dataKey) {
      driver::Data d = driver::loadData(m, fitted ? &*fitted : nullptr);
      data = std::move(d);
      dataKey = key;
    }
    session->checkData(*data);
    return *data;
  }

  uint64_t currentSeed() { return current().config.seed; }

  void collectNames(const ast::Program &p) {
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

  /// Makes `next` the session's declarations, compiling model `name` ("" for
  /// the default choice). `fresh`: new weights even for the same model. All
  /// or nothing.
  void adopt(std::vector<Decl> next, const std::string &name, bool fresh, const SourceFile *anchor,
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

  /// A model statement typed at the prompt (`h2 = dense(h, 10)`): added to
  /// the current model, or put in place of the statement binding the same
  /// name, which then recompiles keeping every weight it can.
  void addStatement(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags) {
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

  /// Declarations entered at the prompt (or read by :load / :reload).
  void declare(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags, bool replaceAll, bool fresh) {
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

  //--- expressions ---------------------------------------------------------

  /// The current model lowered with `expr` as an extra output "__value",
  /// reduced to a function computing only that value (inference mode).
  struct ExprFunction {
    frontend::LoweredModel lowered;
    ir::Function *fn = nullptr;
  };

  ExprFunction lowerExpression(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags) {
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

  runtime::Tensor evaluate(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags, std::string *type) {
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
        rowsData.inputs.emplace_back(in.type.dtype == ir::DType::F32 ? runtime::DType::F32 : runtime::DType::I64,
                                     shape);
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

  //--- commands ------------------------------------------------------------

  void help(const std::vector<Word> &args) {
    if (args.empty()) {
      out << "Enter a command, a declaration (model, layer or train block; it may span lines), a model\n"
             "statement (h2 = dense(h, 10), output pred = argmax(logits), loss = ...; it joins the current\n"
             "model, or takes the place of the one binding the same name, until the model is declared\n"
             "again), or an expression over the current model's inputs, bindings and parameters (e.g.\n"
             "softmax(logits), mean(h.w)), evaluated on the first `rows` training examples.\n\n";
      for (const Command &c : commandTable()) {
        if (c.usage.size() > 36)
          out << fmt::format("  {}\n  {:<36} {}\n", c.usage, "", c.summary);
        else
          out << fmt::format("  {:<36} {}\n", c.usage, c.summary);
      }
      out << "\nLine editing, history (~/.nnc_history) and Tab completion on a terminal; Ctrl-C stops training.\n";
      return;
    }
    std::string n = args[0].text[0] == ':' ? args[0].text.substr(1) : args[0].text;
    for (const Command &c : commandTable())
      if (c.name == n) {
        out << c.usage << "\n  " << c.summary << "\n";
        if (!c.details.empty()) {
          std::istringstream in(c.details);
          for (std::string line; std::getline(in, line);)
            out << "  " << line << "\n";
        }
        return;
      }
    throw unknownCommand(args[0]);
  }

  static UsageError unknownCommand(const Word &w) {
    std::vector<std::string> names;
    for (const Command &c : commandTable())
      names.push_back(c.name);
    std::string n = w.text[0] == ':' ? w.text.substr(1) : w.text;
    std::string hint = closestMatch(n, names);
    return UsageError{w.col, w.text.size(),
                      "unknown command '" + n + "'" +
                          (hint.empty() ? "; :help lists them" : "; did you mean :" + hint + "?")};
  }

  static int64_t integer(const Word &w, int64_t lo, int64_t hi, const std::string &what) {
    char *end = nullptr;
    errno = 0;
    long long v = std::strtoll(w.text.c_str(), &end, 10);
    if (w.text.empty() || *end || errno || v < lo || v > hi)
      throw UsageError{w.col, w.text.size(),
                       fmt::format("{} must be an integer in [{}, {}], got '{}'", what, lo, hi, w.text)};
    return v;
  }

  void train(const std::vector<Word> &args) {
    driver::CompiledModel &m = current();
    int64_t n = m.config.epochs;
    bool steps = false;
    if (!args.empty())
      n = integer(args[0], 1, 100000000, "the number of epochs or steps");
    if (args.size() >= 2) {
      if (args[1].text == "steps" || args[1].text == "step")
        steps = true;
      else if (args[1].text != "epochs" && args[1].text != "epoch")
        throw UsageError{args[1].col, args[1].text.size(), "expected 'epochs' or 'steps', got '" + args[1].text + "'"};
    }
    if (args.size() > 2)
      throw UsageError{args[2].col, args[2].text.size(),
                       "unexpected '" + args[2].text + "'; usage: :train [N] [epochs|steps]"};
    driver::Data &d = loadedData();
    runtime::TrainOptions topts = driver::trainOptions(m);
    int64_t batches = (d.train.size() + topts.batch - 1) / topts.batch;
    if (steps) {
      topts.maxSteps = n;
      topts.epochs = fit.epoch + (n + batches - 1) / batches;
    } else {
      topts.epochs = fit.epoch + n;
    }
    topts.augment = driver::augmentation(m, d);
    topts.diagnose = [&](const std::vector<runtime::Tensor> &xb, const runtime::Tensor &yb, float rate) {
      return session->explainNonFinite("train_step", xb, &yb, rate);
    };
    topts.interactive = isatty(STDOUT_FILENO) != 0;
    topts.log = &out;
    topts.continuing = true;
    topts.interrupt = &interrupted;
    // A failed run (divergence) leaves the model as it was before it.
    runtime::ModelState before = session->state();
    runtime::FitState fitBefore = fit;
    out << fmt::format(
        "training {} from epoch {}: {}{}, batch {}, {} training and {} validation examples\n", m.lowered.name,
        fit.epoch + 1, driver::optimizerText(m.config),
        m.config.schedule.kind == runtime::LrSchedule::Constant ? "" : ", " + driver::scheduleText(m.config.schedule),
        topts.batch, d.train.size(), d.val.size());
    interrupted = false;
    runtime::TrainResult r;
    try {
      session->checkBatchNorm(d.train.size());
      r = session->trainer().fit(d.train, d.val, topts, fit);
    } catch (...) {
      session->state() = std::move(before);
      fit = std::move(fitBefore);
      interrupted = false;
      throw;
    }
    interrupted = false;
    fit = std::move(r.state);
    if (r.stoppedMidEpoch)
      out << fmt::format("{} after step {} of {} in epoch {}: train {} over those steps\n",
                         r.interrupted ? "interrupted" : "stopped", r.partialSteps, r.partialBatches, fit.epoch,
                         evalText(r.partial));
    else if (r.interrupted)
      out << fmt::format("interrupted after epoch {}\n", fit.epoch);
    out << fmt::format("{} step{} in {:.3g}s; {} epoch{} trained in this session\n", r.steps, r.steps == 1 ? "" : "s",
                       r.seconds, fit.epoch, fit.epoch == 1 ? "" : "s");
  }

  void eval(const std::vector<Word> &args) {
    driver::CompiledModel &m = current();
    driver::Data &d = loadedData();
    std::vector<std::pair<std::string, const runtime::Dataset *>> sets;
    for (const Word &w : args) {
      if (w.text == "train" || w.text == "val" || w.text == "test")
        sets.push_back({w.text, w.text == "train" ? &d.train : w.text == "val" ? &d.val : &d.test});
      else
        throw UsageError{w.col, w.text.size(), "expected train, val or test, got '" + w.text + "'"};
    }
    if (sets.empty())
      sets = {{"train", &d.train}, {"val", &d.val}, {"test", &d.test}};
    std::string line;
    for (auto &[name, set] : sets) {
      if (!set->size()) {
        if (args.size())
          throw runtime::Error("the " + name + " set is empty");
        continue;
      }
      runtime::EvalResult r = session->trainer().evaluate(*set, m.config.batch, m.lowered.accuracy);
      line += fmt::format("{}{} {}", line.empty() ? "" : " | ", name, evalText(r));
    }
    out << line << "\n";
  }

  void set(const std::vector<Word> &args) {
    if (args.empty()) {
      driver::CompiledModel *m = model.get();
      auto show = [&](const std::string &k, const std::string &v, bool changed) {
        out << fmt::format("  {:<8} {}{}\n", k, v, changed ? "  (set)" : "");
      };
      show("lr", m ? fmt::format("{:g}", m->config.lr) : "-", lr.has_value());
      show("batch", m ? std::to_string(m->config.batch) : "-", batch.has_value());
      show("epochs", m ? std::to_string(m->config.epochs) : "-", epochs.has_value());
      show("seed", m ? std::to_string(m->config.seed) : "-", seed.has_value());
      show("threads", std::to_string(runtime::globalThreadPool().threads()), false);
      show("rows", std::to_string(rows), rows != 4);
      return;
    }
    const Word &k = args[0];
    if (args.size() != 2)
      throw UsageError{k.col, k.text.size(),
                       "usage: :set NAME VALUE (" + std::string("lr, batch, epochs, seed, threads, rows)")};
    const Word &v = args[1];
    if (k.text == "lr") {
      char *end = nullptr;
      double x = std::strtod(v.text.c_str(), &end);
      if (v.text.empty() || *end || !std::isfinite(x) || x <= 0 || x > 10)
        throw UsageError{v.col, v.text.size(), "the learning rate must be a number in (0, 10], got '" + v.text + "'"};
      lr = x;
    } else if (k.text == "batch") {
      batch = integer(v, 1, int64_t(1) << 20, "the batch size");
    } else if (k.text == "epochs") {
      epochs = integer(v, 1, 1000000, "the number of epochs");
    } else if (k.text == "seed") {
      seed = uint64_t(integer(v, 0, INT64_MAX, "the seed"));
    } else if (k.text == "threads") {
      runtime::setGlobalThreads(int(integer(v, 1, 1024, "the number of threads")));
    } else if (k.text == "rows") {
      rows = integer(v, 1, 1000000, "the number of rows");
    } else {
      std::string hint = closestMatch(k.text, kSettings);
      throw UsageError{k.col, k.text.size(),
                       "unknown setting '" + k.text + "'" +
                           (hint.empty() ? "; the settings are lr, batch, epochs, seed, threads, rows"
                                         : "; did you mean '" + hint + "'?")};
    }
    if (model)
      applySettings(*model);
    out << k.text << " = " << v.text << "\n";
  }

  void show(const std::vector<Word> &args, DiagnosticEngine &diags) {
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
        out << fmt::format("  {:<24} f32[{}]{:>{}}{}\n", p.name, shape, n, std::max<int>(1, 22 - int(shape.size())),
                           "");
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
      out << fmt::format(
          "  model      {}\n  optimizer  {}\n  schedule   {}\n  batch      {}\n  epochs     {} per :train "
          "({} trained)\n  seed       {}\n",
          m.lowered.name, driver::optimizerText(c), driver::scheduleText(c.schedule), c.batch, c.epochs, fit.epoch,
          c.seed);
      std::string src = c.data.kind == frontend::DataSource::None  ? "none"
                        : c.data.kind == frontend::DataSource::IDX ? c.data.images + ", " + c.data.labels
                                                                   : c.data.path;
      if (c.data.kind == frontend::DataSource::NPY) {
        src.clear();
        for (const auto &a : c.data.arrays)
          src += (src.empty() ? "" : ", ") + a.second;
        src += (c.data.labelArray.empty() ? "" : ", ") + c.data.labelArray;
      }
      out << fmt::format("  data       {}{}\n", src,
                         c.split > 0 ? fmt::format(" (validation split {:g})", c.split) : "");
      if (c.earlyStop)
        out << fmt::format("  early stop on {}, patience {}\n", c.monitor, c.patience);
      return;
    }
    throw UsageError{args[0].col, what.size(), "expected params, shapes, memory or config, got '" + what + "'"};
  }

  void emit(const std::string &line, const std::vector<Word> &args, const std::shared_ptr<SourceFile> &rest,
            DiagnosticEngine &diags) {
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

  void save(const std::vector<Word> &args, const std::string &line) {
    driver::CompiledModel &m = current();
    if (args.size() != 1)
      throw UsageError{0, line.size(), "usage: :save FILE"};
    const std::string &path = args[0].text;
    driver::Data empty;
    const driver::Data &d = m.config.data.kind == frontend::DataSource::None ? empty : loadedData();
    driver::saveCheckpoint(*session, d, fit, path);
    out << fmt::format("saved {} (model {}, {} epoch{} trained)\n", path, m.lowered.name, fit.epoch,
                       fit.epoch == 1 ? "" : "s");
  }

  void restore(const std::vector<Word> &args, const std::string &line) {
    driver::CompiledModel &m = current();
    if (args.size() != 1)
      throw UsageError{0, line.size(), "usage: :restore FILE"};
    const std::string &path = args[0].text;
    runtime::ModelState before = session->state();
    runtime::Checkpoint ck = session->load(path);
    std::optional<runtime::Standardizer> stats;
    runtime::FitState nextFit;
    std::optional<uint64_t> ckSeed;
    try {
      if (auto it = ck.metadata.find("nnc.model"); it != ck.metadata.end() && it->second != m.lowered.name)
        throw runtime::Error("'" + path + "' holds model '" + it->second + "', not '" + m.lowered.name + "'");
      stats = driver::storedStandardizer(ck, path, m.config);
      if (ck.metadata.count("nnc.fit_state"))
        nextFit = driver::storedFitState(ck, path, session->state());
      ckSeed = driver::storedSeed(ck, path);
    } catch (...) {
      session->state() = std::move(before);
      throw;
    }
    fit = std::move(nextFit);
    fitted = stats;
    data.reset();
    std::string note;
    if (ckSeed && *ckSeed != m.config.seed) {
      seed = *ckSeed;
      applySettings(m);
      note = fmt::format("; seed set to {}, the checkpoint's (its validation split)", *ckSeed);
    }
    out << fmt::format("restored {} ({} epoch{} trained){}\n", path, fit.epoch, fit.epoch == 1 ? "" : "s", note);
  }

  void time(const std::vector<Word> &args) {
    driver::CompiledModel &m = current();
    std::string fn = "train_step";
    int64_t calls = 0;
    for (const Word &w : args) {
      if (std::find(kFunctions.begin() + 2, kFunctions.end(), w.text) != kFunctions.end())
        fn = w.text;
      else
        calls = integer(w, 1, 100000000, "the number of calls");
    }
    m.function(fn); // throws when the model has none
    driver::Data &d = loadedData();
    int64_t b = std::min<int64_t>(m.config.batch, d.train.size());
    runtime::Dataset first = runtime::take(d.train, b);
    double compileBefore = session->compileSeconds();
    runtime::ModelState before = session->state();
    std::vector<double> t;
    try {
      t = session->trainer().timeCalls(fn, first.inputs, fn == "predict" ? nullptr : &first.y, float(m.config.lr), 3,
                                       calls ? calls : 10, calls ? calls : 100000, calls ? 0.0 : 1.0);
    } catch (...) {
      session->state() = std::move(before);
      throw;
    }
    session->state() = std::move(before); // timing steps are not training
    std::sort(t.begin(), t.end());
    double median = t[t.size() / 2];
    out << fmt::format("{} at batch {}: median {:.4f} ms over {} calls (min {:.4f}), {:.0f} samples/s; compiled in "
                       "{:.3f}s\n",
                       fn, b, median * 1e3, t.size(), t.front() * 1e3, double(b) / median,
                       session->compileSeconds() - compileBefore);
  }

  void printCmd(const std::string &line, size_t argStart, const std::shared_ptr<SourceFile> &chunk, uint32_t lineNo,
                DiagnosticEngine &diags) {
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

  void command(const std::string &line, const std::shared_ptr<SourceFile> &chunk, uint32_t lineNo,
               DiagnosticEngine &diags, bool &quit) {
    std::vector<Word> ws = words(line);
    const Word &cmd = ws.at(0);
    std::string name = cmd.text.substr(1);
    std::vector<Word> args(ws.begin() + 1, ws.end());
    auto restFile = [&] {
      auto f = std::make_shared<SourceFile>();
      f->name = chunk->name;
      f->text = std::string(lineNo - 1, '\n') + std::string(args.size() > 1 ? args[1].col : 0, ' ') +
                (args.size() > 1 ? line.substr(args[1].col) : "");
      return f;
    };
    auto noArgs = [&] {
      if (!args.empty())
        throw UsageError{args[0].col, line.size() - args[0].col, ":" + name + " takes no arguments"};
    };
    if (name == "help" || name == "h" || name == "?")
      return help(args);
    if (name == "quit" || name == "q" || name == "exit") {
      noArgs();
      quit = true;
      return;
    }
    if (name == "load") {
      if (args.size() != 1)
        throw UsageError{0, line.size(), "usage: :load FILE.nn"};
      auto src = driver::parseFile(args[0].text, diags);
      if (!src)
        throw driver::CompileFailed{};
      std::shared_ptr<SourceFile> file(src->file.release());
      declare(file, diags, /*replaceAll=*/true, /*fresh=*/true);
      lastFile = args[0].text;
      return;
    }
    if (name == "reload") {
      noArgs();
      if (lastFile.empty())
        throw runtime::Error("nothing to reload: no file was loaded (:load FILE.nn)");
      auto src = driver::parseFile(lastFile, diags);
      if (!src)
        throw driver::CompileFailed{};
      std::shared_ptr<SourceFile> file(src->file.release());
      declare(file, diags, false, false);
      return;
    }
    if (name == "model") {
      if (args.empty()) {
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
          exists |= d.name == args[0].text;
          models.push_back(d.name);
        }
      if (!exists) {
        std::string hint = closestMatch(args[0].text, models);
        throw UsageError{args[0].col, args[0].text.size(),
                         "no model named '" + args[0].text + "'" +
                             (hint.empty() ? "" : "; did you mean '" + hint + "'?")};
      }
      adopt(decls, args[0].text, true, chunk.get(), diags);
      return;
    }
    if (name == "decls") {
      noArgs();
      if (decls.empty())
        out << "no declarations\n";
      for (const Decl &d : decls) {
        auto prog = frontend::parseProgram(*d.file, diags);
        SourceLoc loc = d.kind == Decl::Model   ? prog->models[d.index].loc
                        : d.kind == Decl::Layer ? prog->layers[d.index].loc
                                                : prog->trains[d.index].loc;
        out << fmt::format("  {} {:<16} {}{}\n", kindName(d.kind), d.name, loc.str(),
                           model && d.kind == Decl::Model && d.name == model->lowered.name ? "  (current)" : "");
        for (const auto &f : d.typed) {
          auto st = frontend::parseModelStatement(*f, diags);
          out << fmt::format("    + {:<16} {}\n", st && !st->name.empty() ? st->name : "loss", st ? st->loc.str() : "");
        }
      }
      return;
    }
    if (name == "train")
      return train(args);
    if (name == "eval")
      return eval(args);
    if (name == "set")
      return set(args);
    if (name == "show")
      return show(args, diags);
    if (name == "print")
      return printCmd(line, cmd.col + cmd.text.size(), chunk, lineNo, diags);
    if (name == "emit")
      return emit(line, args, restFile(), diags);
    if (name == "save")
      return save(args, line);
    if (name == "restore")
      return restore(args, line);
    if (name == "time")
      return time(args);
    if (name == "reset") {
      noArgs();
      current();
      session->initialize(currentSeed());
      fit = {};
      out << "fresh weights and optimizer state\n";
      return;
    }
    throw unknownCommand(cmd);
  }
};

Session::Session(std::ostream &out, std::ostream &err, bool color) : impl_(std::make_unique<Impl>(out, err, color)) {}
Session::~Session() = default;

bool Session::handle(const std::string &input, const std::string &source, uint32_t line) {
  Impl &s = *impl_;
  DiagnosticEngine diags(&s.err, s.color);
  auto chunk = std::make_shared<SourceFile>();
  chunk->name = source;
  chunk->text = std::string(line > 0 ? line - 1 : 0, '\n') + input;
  std::string t = trim(input);
  // Where command errors point: the command's line.
  size_t indent = input.find_first_not_of(" \t");
  s.indent = indent == std::string::npos ? 0 : indent;
  auto at = [&](size_t col, size_t len) {
    return SourceLoc{chunk.get(), line, uint32_t(indent + col + 1), uint32_t(std::max<size_t>(1, len))};
  };
  try {
    if (t.empty() || t.compare(0, 2, "//") == 0)
      return true;
    if (t[0] == ':') {
      s.command(t, chunk, line, diags, quit_);
    } else if (startsDeclaration(t)) {
      s.declare(chunk, diags, false, false);
    } else if (startsStatement(t)) {
      s.addStatement(chunk, diags);
    } else {
      s.printCmd(t, 0, chunk, line, diags); // an expression, perhaps with a slice
    }
    return !diags.hasErrors();
  } catch (const driver::CompileFailed &) {
    return false;
  } catch (const UsageError &e) {
    s.out << std::flush;
    diags.error(at(e.col, e.len), e.message);
  } catch (const driver::LocatedError &e) {
    s.out << std::flush;
    diags.error(e.loc, e.what());
  } catch (const runtime::Error &e) {
    s.out << std::flush;
    diags.error(at(0, t.find(' ') == std::string::npos ? t.size() : t.find(' ')), e.what());
  } catch (const std::exception &e) {
    s.out << std::flush;
    diags.error(at(0, t.size()), e.what());
  }
  return false;
}

bool Session::complete(const std::string &text) {
  int depth = 0, braces = 0;
  bool brace = false, inString = false, lineComment = false, blockComment = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i], n = i + 1 < text.size() ? text[i + 1] : '\0';
    if (lineComment) {
      lineComment = c != '\n';
      continue;
    }
    if (blockComment) {
      if (c == '*' && n == '/') {
        blockComment = false;
        ++i;
      }
      continue;
    }
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"' || c == '\n')
        inString = false;
      continue;
    }
    if (c == '/' && n == '/')
      lineComment = true;
    else if (c == '/' && n == '*')
      blockComment = true;
    else if (c == '"')
      inString = true;
    else if (c == '(' || c == '[')
      ++depth;
    else if (c == ')' || c == ']')
      --depth;
    else if (c == '{') {
      ++braces;
      brace = true;
    } else if (c == '}')
      --braces;
  }
  if (blockComment)
    return false;
  std::string t = trim(text);
  if (!t.empty() && t[0] == ':')
    return true;
  // A declaration ends with the brace that closes its body (an unclosed
  // bracket inside is the parser's to report); an expression when its
  // brackets balance.
  if (startsDeclaration(t))
    return braces <= 0 && brace;
  return depth <= 0 && braces <= 0;
}

std::vector<std::string> Session::completions(const std::string &before) const {
  const Impl &s = *impl_;
  size_t start = before.size();
  while (start > 0 &&
         (isalnum(static_cast<unsigned char>(before[start - 1])) || before[start - 1] == '_' ||
          before[start - 1] == '.' || before[start - 1] == ':' || before[start - 1] == '/' || before[start - 1] == '-'))
    --start;
  std::string word = before.substr(start);
  std::vector<Word> head = words(before.substr(0, start));
  std::vector<std::string> pool;
  if (head.empty() && !word.empty() && word[0] == ':') {
    for (const Command &c : commandTable())
      pool.push_back(":" + c.name);
  } else if (!head.empty() && head[0].text[0] == ':') {
    std::string cmd = head[0].text.substr(1);
    if (cmd == "help" && head.size() == 1)
      for (const Command &c : commandTable())
        pool.push_back(c.name);
    else if (cmd == "set" && head.size() == 1)
      pool = kSettings;
    else if (cmd == "emit" && head.size() == 1)
      pool = kEmitKinds;
    else if (cmd == "show" && head.size() == 1)
      pool = {"params", "shapes", "memory", "config"};
    else if (cmd == "eval")
      pool = {"train", "val", "test"};
    else if (cmd == "train" && head.size() == 2)
      pool = {"epochs", "steps"};
    else if (cmd == "time")
      pool = {"train_step", "evaluate", "predict"};
    else if (cmd == "model") {
      for (const Decl &d : s.decls)
        if (d.kind == Decl::Model)
          pool.push_back(d.name);
    } else if (cmd == "load" || cmd == "save" || cmd == "restore") {
      // File names.
      size_t slash = word.rfind('/');
      std::string dir = slash == std::string::npos ? "." : word.substr(0, slash + 1);
      std::string prefix = slash == std::string::npos ? "" : dir;
      if (DIR *d = opendir(dir.c_str())) {
        while (dirent *e = readdir(d)) {
          std::string n = e->d_name;
          if (n == "." || n == "..")
            continue;
          bool isDir = e->d_type == DT_DIR;
          pool.push_back(prefix + n + (isDir ? "/" : ""));
        }
        closedir(d);
      }
    } else if (cmd == "emit" && head.size() == 2) {
      pool = kFunctions;
      pool.insert(pool.end(), s.names.begin(), s.names.end());
    } else if (cmd == "print" || cmd == "emit") {
      pool.assign(s.names.begin(), s.names.end());
      if (s.session)
        for (auto &[n, t] : s.session->state().state)
          pool.push_back(n);
    }
  } else {
    pool.assign(s.names.begin(), s.names.end());
    for (const std::string &b : frontend::builtinNames())
      pool.push_back(b);
    if (head.empty())
      for (const char *kw : {"model", "layer", "train"})
        pool.push_back(kw);
  }
  std::vector<std::string> out;
  for (const std::string &p : pool)
    if (p.compare(0, word.size(), word) == 0)
      out.push_back(p);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

//===----------------------------------------------------------------------===//
// The loop
//===----------------------------------------------------------------------===//

namespace {

std::string historyPath() {
  if (const char *p = std::getenv("NNC_HISTORY"))
    return p;
  if (const char *home = std::getenv("HOME"))
    return std::string(home) + "/.nnc_history";
  return "";
}

} // namespace

int run(const ReplOptions &opts) {
  // Ctrl-C sets a flag that training polls; reads are not restarted, so
  // the line editor sees it too.
  driver::CatchInterrupts catcher(false);

  bool tty = opts.script.empty() && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  Session session(std::cout, std::cerr, opts.color);
  std::vector<std::string> scriptLines;
  size_t next = 0;
  if (!opts.script.empty()) {
    std::ifstream in(opts.script, std::ios::binary);
    if (!in) {
      std::cerr << "nnc: error: cannot open '" << opts.script << "': " << std::strerror(errno) << "\n";
      return 1;
    }
    for (std::string l; std::getline(in, l);)
      scriptLines.push_back(l);
  }
  LineEditor editor(tty, tty ? historyPath() : "", [&](const std::string &b) { return session.completions(b); });
  std::string source = !opts.script.empty() ? opts.script : tty ? "<repl>" : "<stdin>";
  bool ok = true;
  if (tty)
    std::cout << "nnc repl: :help lists the commands, Ctrl-D leaves\n";
  if (!opts.file.empty()) {
    ok &= session.handle(":load " + opts.file, "<command line>", 1);
    if (ok && !opts.model.empty())
      ok &= session.handle(":model " + opts.model, "<command line>", 1);
  }
  std::string buffer;
  uint32_t lineNo = 0, startLine = 0;
  for (;;) {
    std::optional<std::string> line;
    if (!opts.script.empty())
      line = next < scriptLines.size() ? std::optional<std::string>(scriptLines[next++]) : std::nullopt;
    else {
      interrupted = false; // a Ctrl-C typed ahead while busy does not carry over
      line = editor.read(buffer.empty() ? "nnc> " : "...> ");
    }
    if (tty && editor.cancelled()) { // Ctrl-C while editing: drop the input so far
      buffer.clear();
      continue;
    }
    if (!line) {
      if (!trim(buffer).empty())
        ok &= session.handle(buffer, source, startLine); // reports what is missing
      break;
    }
    ++lineNo;
    // A command ends an unfinished input (the parser says what it lacks).
    if (!buffer.empty() && trim(*line).compare(0, 1, ":") == 0) {
      ok &= session.handle(buffer, source, startLine);
      buffer.clear();
    }
    if (buffer.empty()) {
      if (trim(*line).empty())
        continue;
      startLine = lineNo;
      buffer = *line;
    } else {
      buffer += "\n" + *line;
    }
    if (!Session::complete(buffer))
      continue;
    editor.remember(buffer);
    ok &= session.handle(buffer, source, startLine);
    std::cout << std::flush;
    buffer.clear();
    if (session.quitting())
      break;
  }
  return ok ? 0 : 1;
}

} // namespace nnc::repl
