#include "tools/LineEditor.h"

#include <histedit.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <unistd.h>

namespace nnc::repl {

struct LineEditor::Impl {
  EditLine *el = nullptr;
  History *hist = nullptr;
  std::string historyPath;
  std::string prompt;
  Completer complete;
  // Non-interactive input: what has been read but not returned yet.
  std::string pending;
  bool eof = false;

  static char *promptOf(EditLine *el) {
    Impl *self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    return const_cast<char *>(self->prompt.c_str());
  }

  bool cancelled = false;

  static unsigned char onCancel(EditLine *el, int) {
    Impl *self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    self->cancelled = true;
    return CC_NEWLINE;
  }

  /// Tab: completes the word before the cursor as far as the candidates
  /// agree, or lists them when they diverge right there.
  static unsigned char onTab(EditLine *el, int) {
    Impl *self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    const LineInfo *li = el_line(el);
    std::string before(li->buffer, size_t(li->cursor - li->buffer));
    std::vector<std::string> words = self->complete(before);
    size_t start = before.size();
    while (start > 0 && (isalnum(static_cast<unsigned char>(before[start - 1])) || before[start - 1] == '_' ||
                         before[start - 1] == '.' || before[start - 1] == ':'))
      --start;
    std::string word = before.substr(start);
    if (words.empty())
      return CC_REFRESH_BEEP;
    std::string common = commonPrefix(words);
    if (common.size() > word.size()) {
      std::string rest = common.substr(word.size());
      if (words.size() == 1)
        rest += ' ';
      el_insertstr(el, rest.c_str());
      return CC_REFRESH;
    }
    if (words.size() == 1)
      return CC_REFRESH;
    std::fputs("\n", stdout);
    size_t width = 0;
    for (const std::string &w : words)
      width = std::max(width, w.size());
    size_t perLine = std::max<size_t>(1, 78 / (width + 2)), n = 0;
    for (const std::string &w : words) {
      std::fprintf(stdout, "%-*s", int(width + 2), w.c_str());
      if (++n % perLine == 0)
        std::fputs("\n", stdout);
    }
    if (n % perLine)
      std::fputs("\n", stdout);
    std::fflush(stdout);
    return CC_REDISPLAY;
  }
};

LineEditor::LineEditor(bool interactive, const std::string &historyPath, Completer complete)
    : impl_(std::make_unique<Impl>()), interactive_(interactive) {
  impl_->complete = std::move(complete);
  if (!interactive_)
    return;
  impl_->historyPath = historyPath;
  impl_->el = el_init("nnc", stdin, stdout, stderr);
  impl_->hist = history_init();
  HistEvent ev;
  history(impl_->hist, &ev, H_SETSIZE, 2000);
  history(impl_->hist, &ev, H_SETUNIQUE, 1);
  if (!historyPath.empty())
    history(impl_->hist, &ev, H_LOAD, historyPath.c_str()); // a missing file is an empty history
  el_set(impl_->el, EL_CLIENTDATA, impl_.get());
  el_set(impl_->el, EL_PROMPT, &Impl::promptOf);
  el_set(impl_->el, EL_EDITOR, "emacs");
  el_set(impl_->el, EL_HIST, history, impl_->hist);
  el_set(impl_->el, EL_ADDFN, "nnc-complete", "Complete the word before the cursor", &Impl::onTab);
  el_set(impl_->el, EL_BIND, "^I", "nnc-complete", nullptr);
  // While a line is edited, Ctrl-C is a key (not a signal, which could land
  // outside libedit's read and be missed): it abandons the line.
  el_set(impl_->el, EL_SETTY, "-d", "-isig", nullptr);
  el_set(impl_->el, EL_ADDFN, "nnc-cancel", "Abandon the line", &Impl::onCancel);
  el_set(impl_->el, EL_BIND, "^C", "nnc-cancel", nullptr);
  el_source(impl_->el, nullptr); // the user's ~/.editrc, if any
}

LineEditor::~LineEditor() {
  if (impl_->el)
    el_end(impl_->el);
  if (impl_->hist)
    history_end(impl_->hist);
}

std::optional<std::string> LineEditor::read(const std::string &prompt) {
  if (interactive_) {
    impl_->prompt = prompt;
    int count = 0;
    errno = 0;
    impl_->cancelled = false;
    const char *line = el_gets(impl_->el, &count);
    if (impl_->cancelled) {
      std::fputs("^C\n", stdout);
      std::fflush(stdout);
      return std::string();
    }
    if (!line) {
      if (errno == EINTR) { // Ctrl-C while editing: a fresh line
        el_reset(impl_->el);
        std::fputs("^C\n", stdout);
        return std::string();
      }
      std::fputs("\n", stdout);
      return std::nullopt;
    }
    std::string s(line, size_t(count));
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
      s.pop_back();
    return s;
  }
  // Plain reads: a signal interrupting read() is not the end of the input.
  for (;;) {
    size_t nl = impl_->pending.find('\n');
    if (nl != std::string::npos) {
      std::string s = impl_->pending.substr(0, nl);
      impl_->pending.erase(0, nl + 1);
      if (!s.empty() && s.back() == '\r')
        s.pop_back();
      return s;
    }
    if (impl_->eof) {
      if (impl_->pending.empty())
        return std::nullopt;
      std::string s = std::move(impl_->pending);
      impl_->pending.clear();
      return s;
    }
    char buf[4096];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      impl_->eof = true;
    else
      impl_->pending.append(buf, size_t(n));
  }
}

void LineEditor::remember(const std::string &input) {
  std::string entry = input.substr(0, input.find_last_not_of(" \t") + 1);
  if (!interactive_ || entry.empty())
    return;
  HistEvent ev;
  history(impl_->hist, &ev, H_ENTER, entry.c_str());
  if (!impl_->historyPath.empty())
    history(impl_->hist, &ev, H_SAVE, impl_->historyPath.c_str()); // every entry, so a crash loses none
}

bool LineEditor::cancelled() const { return impl_->cancelled; }

std::string LineEditor::commonPrefix(const std::vector<std::string> &words) {
  if (words.empty())
    return "";
  std::string p = words[0];
  for (const std::string &w : words) {
    size_t i = 0;
    while (i < p.size() && i < w.size() && p[i] == w[i])
      ++i;
    p.resize(i);
  }
  return p;
}

} // namespace nnc::repl
