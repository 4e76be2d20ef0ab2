// The REPL's :commands: the table (name, help, handler) and the dispatch.
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

void Call::noArgs() const {
  if (!args.empty())
    throw UsageError{args[0].col, line.size() - args[0].col, ":" + name + " takes no arguments"};
}

std::shared_ptr<SourceFile> Call::restFile() const {
  auto f = std::make_shared<SourceFile>();
  f->name = chunk->name;
  f->text = std::string(lineNo - 1, '\n') + std::string(args.size() > 1 ? args[1].col : 0, ' ') +
            (args.size() > 1 ? line.substr(args[1].col) : "");
  return f;
}

const std::vector<Command> &commandTable() {
  static const std::vector<Command> table = {
      {"help",
       {"h", "?"},
       ":help [COMMAND]",
       "list the commands, or explain one",
       "",
       [](Session::Impl &s, const Call &c) { s.help(c.args); }},
      {"load",
       {},
       ":load FILE.nn",
       "read a .nn file; its declarations replace the session's, and the weights start fresh",
       "The model trained by the file's first train block (or its only model) becomes the current model.",
       [](Session::Impl &s, const Call &c) { s.loadFile(c); }},
      {"reload",
       {},
       ":reload",
       "read the last loaded file again, keeping what did not change",
       "Functions whose IR did not change keep their compiled code, and weights whose name and shape did not\n"
       "change keep their values, as when a declaration is entered again at the prompt.",
       [](Session::Impl &s, const Call &c) { s.reloadFile(c); }},
      {"model",
       {},
       ":model [NAME]",
       "show the current model, or switch to model NAME (fresh weights)",
       "",
       [](Session::Impl &s, const Call &c) { s.modelCmd(c); }},
      {"decls",
       {},
       ":decls",
       "list the declarations the session holds and where each came from",
       "",
       [](Session::Impl &s, const Call &c) { s.listDecls(c); }},
      {"train",
       {},
       ":train [N] [epochs|steps]",
       "train N more epochs (default: the train block's epochs) or N steps",
       "Progress is shown as in `nnc train`. Ctrl-C stops training after the step in flight and returns to\n"
       "the prompt; the weights and optimizer state then hold every step made (a second Ctrl-C before that\n"
       "ends nnc). A stopped epoch counts as\n"
       "done: the next :train starts the following epoch. The train block's checkpoint(...) and log are\n"
       "not written by the REPL; use :save.",
       [](Session::Impl &s, const Call &c) { s.train(c.args); }},
      {"eval",
       {},
       ":eval [train|val|test]...",
       "loss (and accuracy) on the data sets, all by default",
       "",
       [](Session::Impl &s, const Call &c) { s.eval(c.args); }},
      {"set",
       {},
       ":set [NAME VALUE]",
       "change a setting between runs: lr, batch, epochs, seed, threads, rows; alone: show them",
       "lr: learning rate; batch: batch size; epochs: the default of :train; seed: initialization, shuffling\n"
       "and the validation split (changing it reloads the data); threads: worker threads; rows: how many\n"
       "training examples an expression is evaluated on (default 4). Settings survive recompilation.",
       [](Session::Impl &s, const Call &c) { s.set(c.args); }},
      {"show",
       {},
       ":show [params|shapes|memory|config]",
       "the model's parameters, the shapes of its values, planned memory, or the training setup",
       "",
       [](Session::Impl &s, const Call &c) { s.show(c.args, c.diags); }},
      {"print",
       {},
       ":print NAME[SLICE]",
       "print a parameter or state tensor, or an expression's value, or a slice of it",
       "A slice gives per dimension an index, a range a:b or ':' (negative numbers count from the end):\n"
       "  :print h.w[0:2, -3:]    :print logits[0]    :print h.b",
       [](Session::Impl &s, const Call &c) {
         s.printCmd(c.line, c.words[0].col + c.words[0].text.size(), c.chunk, c.lineNo, c.diags);
       }},
      {"emit",
       {},
       ":emit ir|grad|train|evaluate|predict|llvm|asm|ast [FUNCTION|EXPR]",
       "print a compilation stage of the model, or of an expression",
       "ir: the forward function (or FUNCTION); grad: the gradient; train: the train step with the optimizer;\n"
       "llvm, asm: the machine code of FUNCTION (default train_step) at the current batch size. With an\n"
       "expression instead of a function name, ir/llvm/asm show the code that evaluates it, and grad the\n"
       "gradient of the (scalar) expression with respect to the parameters it reads: :emit grad sum(h.w * h.w)",
       [](Session::Impl &s, const Call &c) { s.emit(c.line, c.args, c.restFile(), c.diags); }},
      {"save",
       {},
       ":save FILE",
       "write weights, optimizer state and the training state to a safetensors file",
       "",
       [](Session::Impl &s, const Call &c) { s.save(c.args, c.line); }},
      {"restore",
       {},
       ":restore FILE",
       "load weights (and optimizer and training state, if present) from a checkpoint",
       "Also restores the data statistics and the seed of the validation split the checkpoint was trained\n"
       "with, so :eval reports what the run that saved it reported.",
       [](Session::Impl &s, const Call &c) { s.restore(c.args, c.line); }},
      {"time",
       {},
       ":time [train_step|evaluate|predict] [CALLS]",
       "time a compiled step on the first batch of the training data (weights are restored afterwards)",
       "",
       [](Session::Impl &s, const Call &c) { s.time(c.args); }},
      {"reset",
       {},
       ":reset",
       "fresh weights and optimizer state; the epoch count starts over",
       "",
       [](Session::Impl &s, const Call &c) { s.reset(c); }},
      {"quit",
       {"q", "exit"},
       ":quit",
       "leave the REPL (also Ctrl-D)",
       "",
       [](Session::Impl &, const Call &c) {
         c.noArgs();
         c.quit = true;
       }},
  };
  return table;
}

const std::vector<std::string> kSettings = {"lr", "batch", "epochs", "seed", "threads", "rows"};
const std::vector<std::string> kEmitKinds = {"ir", "grad", "train", "evaluate", "predict", "llvm", "asm", "ast"};
const std::vector<std::string> kFunctions = {"forward", "grad", "train_step", "evaluate", "predict"};

const Command *findCommand(const std::string &name) {
  for (const Command &c : commandTable())
    if (c.name == name || std::find(c.aliases.begin(), c.aliases.end(), name) != c.aliases.end())
      return &c;
  return nullptr;
}

void Session::Impl::help(const std::vector<Word> &args) {
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

UsageError Session::Impl::unknownCommand(const Word &w) {
  std::vector<std::string> names;
  for (const Command &c : commandTable())
    names.push_back(c.name);
  std::string n = w.text[0] == ':' ? w.text.substr(1) : w.text;
  std::string hint = closestMatch(n, names);
  return UsageError{w.col, w.text.size(),
                    "unknown command '" + n + "'" +
                        (hint.empty() ? "; :help lists them" : "; did you mean :" + hint + "?")};
}

int64_t Session::Impl::integer(const Word &w, int64_t lo, int64_t hi, const std::string &what) {
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(w.text.c_str(), &end, 10);
  if (w.text.empty() || *end || errno || v < lo || v > hi)
    throw UsageError{w.col, w.text.size(),
                     fmt::format("{} must be an integer in [{}, {}], got '{}'", what, lo, hi, w.text)};
  return v;
}

void Session::Impl::command(const std::string &line, const std::shared_ptr<SourceFile> &chunk, uint32_t lineNo,
                            DiagnosticEngine &diags, bool &quit) {
  Call c{line, words(line), {}, "", chunk, lineNo, diags, quit};
  c.args.assign(c.words.begin() + 1, c.words.end());
  c.name = c.words.at(0).text.substr(1);
  const Command *cmd = findCommand(c.name);
  if (!cmd)
    throw unknownCommand(c.words[0]);
  cmd->run(*this, c);
}

} // namespace nnc::repl
