// Diagnostics engine: clang-style messages with the source line and a caret.
#include "support/Diagnostics.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace nnc {

std::string SourceFile::lineText(uint32_t line) const {
  size_t pos = 0;
  for (uint32_t l = 1; l < line; ++l) {
    pos = text.find('\n', pos);
    if (pos == std::string::npos)
      return "";
    ++pos;
  }
  size_t end = text.find('\n', pos);
  std::string s = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
  if (!s.empty() && s.back() == '\r')
    s.pop_back();
  return s;
}

std::string SourceLoc::str() const {
  if (!file)
    return "<unknown>";
  if (!line)
    return file->name;
  return file->name + ":" + std::to_string(line) + ":" + std::to_string(col);
}

void DiagnosticEngine::report(Severity severity, SourceLoc loc, std::string message) {
  if (severity == Severity::Error) {
    ++errors_;
    if (errors_ == limit_ + 1 && out_)
      *out_ << "nnc: note: too many errors emitted, stopping now\n";
  }
  Diagnostic d{severity, loc, std::move(message)};
  bool suppressed = errors_ > limit_;
  diags_.push_back(d);
  if (out_ && !suppressed)
    print(diags_.back());
}

void DiagnosticEngine::print(const Diagnostic &d) {
  const char *kind = d.severity == Severity::Error ? "error" : d.severity == Severity::Warning ? "warning" : "note";
  const char *color = d.severity == Severity::Error     ? "\033[1;31m"
                      : d.severity == Severity::Warning ? "\033[1;35m"
                                                        : "\033[1;36m";
  std::ostream &os = *out_;
  if (color_)
    os << "\033[1m";
  os << (d.loc.file ? d.loc.str() : std::string("nnc")) << ": ";
  if (color_)
    os << color;
  os << kind << ": ";
  if (color_)
    os << "\033[0m\033[1m";
  os << d.message;
  if (color_)
    os << "\033[0m";
  os << "\n";
  if (!d.loc.valid() || !d.loc.col)
    return;
  std::string text = d.loc.file->lineText(d.loc.line);
  uint32_t col = d.loc.col, length = d.loc.length;
  // A long line (a generated expression of thousands of terms) is shown as
  // a window around the caret, as clang does.
  constexpr size_t kWindow = 120;
  if (text.size() > kWindow + 12) {
    size_t start = col > kWindow / 2 ? std::min<size_t>(col - kWindow / 2, text.size() - kWindow) : 0;
    std::string window = text.substr(start, kWindow);
    bool cutLeft = start > 0, cutRight = start + kWindow < text.size();
    if (cutLeft)
      window = "..." + window;
    if (cutRight)
      window += "...";
    col = uint32_t(col - start + (cutLeft ? 3 : 0));
    length = std::min<uint32_t>(length, uint32_t(window.size() >= col ? window.size() - col + 1 : 1));
    text = window;
  }
  os << text << "\n";
  std::string caret;
  for (uint32_t i = 1; i < col && i - 1 < text.size(); ++i)
    caret += text[i - 1] == '\t' ? '\t' : ' ';
  caret += '^';
  uint32_t avail = text.size() >= col ? uint32_t(text.size() - col) : 0;
  for (uint32_t i = 1; i < length && i <= avail; ++i)
    caret += '~';
  if (color_)
    os << "\033[1;32m" << caret << "\033[0m\n";
  else
    os << caret << "\n";
}

size_t editDistance(const std::string &a, const std::string &b) {
  // Optimal string alignment: insertions, deletions, substitutions and
  // transpositions of neighbours ("rleu" is one edit from "relu").
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i)
    d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j)
    d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string closestMatch(const std::string &name, const std::vector<std::string> &candidates) {
  std::string best;
  size_t bestDist = std::max<size_t>(1, name.size() / 3) + 1;
  for (const auto &c : candidates) {
    if (c == name)
      continue;
    size_t d = editDistance(name, c);
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return best;
}

namespace detail {
AssertFailure::AssertFailure(const char *cond, const char *file, int line) {
  msg_ << "nnc: internal compiler error: " << file << ":" << line << ": assertion `" << cond << "' failed: ";
}
AssertFailure::~AssertFailure() {
  std::cerr << msg_.str() << "\nnnc: please report this bug with the input that caused it\n";
  std::abort();
}
} // namespace detail

} // namespace nnc
