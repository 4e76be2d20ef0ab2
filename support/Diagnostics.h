// Source locations and the diagnostics engine shared by every stage that reads
// user text (.nn files, IR text). Diagnostics print like clang:
//   file:line:col: error: message
//     source line
//            ^~~~
//   file:line:col: note: ...
// User mistakes go through here; compiler bugs go through NNC_ASSERT.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace nnc {

/// A source buffer: a name for messages and the text (for caret lines).
struct SourceFile {
  std::string name;
  std::string text;
  /// The text of 1-based line `line`, without its newline.
  std::string lineText(uint32_t line) const;
};

/// A position in a source file; line and column are 1-based, 0 means unknown.
struct SourceLoc {
  const SourceFile *file = nullptr;
  uint32_t line = 0;
  uint32_t col = 0;
  /// Number of characters the construct spans on its line (for ~~~ marks).
  uint32_t length = 1;
  bool valid() const { return file && line; }
  std::string str() const; ///< "file:line:col"
};

enum class Severity { Error, Warning, Note };

struct Diagnostic {
  Severity severity;
  SourceLoc loc;
  std::string message;
};

/// Collects diagnostics and prints them as they arrive.
class DiagnosticEngine {
public:
  explicit DiagnosticEngine(std::ostream *out = nullptr, bool color = false) : out_(out), color_(color) {}

  void error(SourceLoc loc, std::string message) { report(Severity::Error, loc, std::move(message)); }
  void warning(SourceLoc loc, std::string message) { report(Severity::Warning, loc, std::move(message)); }
  void note(SourceLoc loc, std::string message) { report(Severity::Note, loc, std::move(message)); }
  void report(Severity severity, SourceLoc loc, std::string message);

  unsigned errorCount() const { return errors_; }
  bool hasErrors() const { return errors_ != 0; }
  const std::vector<Diagnostic> &diagnostics() const { return diags_; }
  /// Stop reporting after this many errors (prints a final note).
  void setErrorLimit(unsigned limit) { limit_ = limit; }

private:
  void print(const Diagnostic &d);
  std::ostream *out_;
  bool color_;
  unsigned errors_ = 0;
  unsigned limit_ = 20;
  std::vector<Diagnostic> diags_;
};

/// Levenshtein distance, for "did you mean" suggestions.
size_t editDistance(const std::string &a, const std::string &b);
/// The candidate closest to `name` within a distance that still looks like a typo, or "".
std::string closestMatch(const std::string &name, const std::vector<std::string> &candidates);

namespace detail {
/// Aborts with a message when destroyed; collects `<<` arguments first.
class AssertFailure {
public:
  AssertFailure(const char *cond, const char *file, int line);
  [[noreturn]] ~AssertFailure();
  template <class T> AssertFailure &operator<<(const T &v) {
    msg_ << v;
    return *this;
  }

private:
  std::ostringstream msg_;
};
} // namespace detail

} // namespace nnc

/// An internal invariant: a failure is a compiler bug, never a user error.
#define NNC_ASSERT(cond)                                                                           \
  if (cond) {                                                                                      \
  } else                                                                                           \
    ::nnc::detail::AssertFailure(#cond, __FILE__, __LINE__)

#define NNC_UNREACHABLE(msg) ::nnc::detail::AssertFailure("unreachable", __FILE__, __LINE__) << msg
