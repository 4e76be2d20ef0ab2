#include "tools/Repl.h"

#include "tools/Interrupt.h"
#include "tools/repl/ReplImpl.h"

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

std::vector<Word> words(const std::string &s, size_t from) {
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
