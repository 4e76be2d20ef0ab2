// nnc repl: an interactive session over one evolving .nn program. Lines are
// commands (":train 3"), declarations (model / layer / train blocks, which
// may span lines), or expressions over the current model, evaluated by
// JIT-compiling them through the same pipeline as training. Every input is
// all or nothing: an error leaves the session as it was.
#pragma once

#include "tools/Driver.h"

#include <atomic>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nnc::repl {

struct ReplOptions {
  std::string file;   ///< loaded at the start (may be empty)
  std::string model;  ///< the model of `file` to start with
  std::string script; ///< read inputs from this file instead of standard input
  bool color = false; ///< colored diagnostics
};

class Session {
public:
  Session(std::ostream &out, std::ostream &err, bool color);
  ~Session();

  /// Handles one complete input (a command, an expression, or declaration
  /// text) whose first line is line `line` of input `source`. Returns false
  /// if it failed (after reporting why); the session is then unchanged.
  bool handle(const std::string &input, const std::string &source, uint32_t line);
  /// True once :quit was entered.
  bool quitting() const { return quit_; }
  /// Whether `text` (lines entered so far) is a complete input: brackets
  /// and braces balance, and a declaration has its body.
  static bool complete(const std::string &text);
  /// Completions of the word that ends `beforeCursor`: commands after ':',
  /// settings, emit kinds, and names of models, layers, parameters,
  /// bindings and builtins.
  std::vector<std::string> completions(const std::string &beforeCursor) const;
  /// The command names, each with its one-line help.
  static const std::vector<std::pair<std::string, std::string>> &commands();

  /// The session's state and commands (tools/repl/ReplImpl.h).
  struct Impl;

private:
  std::unique_ptr<Impl> impl_;
  bool quit_ = false;
};

/// Runs a whole session: interactive with line editing when standard input
/// and output are terminals, else reading standard input (or `script`) to
/// the end. Returns the exit status: 0, or 1 if any input failed.
int run(const ReplOptions &opts);

} // namespace nnc::repl
