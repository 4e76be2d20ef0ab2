// Line input for the REPL. On a terminal: libedit (BSD-licensed) line
// editing, history kept in a file across sessions, and tab completion
// through a callback. Otherwise (a pipe, a script): plain lines, with reads
// that survive signals (Ctrl-C during a read does not end the input).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nnc::repl {

class LineEditor {
public:
  /// Candidates for the word that ends the text before the cursor.
  using Completer = std::function<std::vector<std::string>(const std::string &beforeCursor)>;

  /// `interactive`: use libedit on the terminal (stdin and stdout are ttys);
  /// `historyPath` is read now and appended to as lines are entered ("" for none).
  LineEditor(bool interactive, const std::string &historyPath, Completer complete);
  ~LineEditor();
  LineEditor(const LineEditor &) = delete;
  LineEditor &operator=(const LineEditor &) = delete;

  /// The next line without its newline; nullopt at the end of the input.
  /// On a terminal, a Ctrl-C while editing abandons the line and returns "".
  std::optional<std::string> read(const std::string &prompt);
  /// The last read() was abandoned with Ctrl-C (and returned "").
  bool cancelled() const;
  /// Adds an entered input (a command or a whole declaration) to the history.
  void remember(const std::string &entry);
  bool interactive() const { return interactive_; }

  /// The longest common prefix of `words`.
  static std::string commonPrefix(const std::vector<std::string> &words);

private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  bool interactive_;
};

} // namespace nnc::repl
