// The REPL's internals, shared by its files (tools/repl/): the session's
// state (Session::Impl) and its commands. Repl.cpp reads inputs and hands
// them to the session; repl/Commands.cpp holds the table of :commands (name,
// help, handler) and the dispatch; each handler lives in the file of its
// concern — repl/Declarations.cpp (declarations, statements, :load, :model),
// repl/Training.cpp (:train, :eval, :set, :save, :restore, :time, :reset),
// repl/Inspect.cpp (:show, :print, :emit, expressions) — and repl/Format.cpp
// prints tensors.
#pragma once

#include "tools/Driver.h"
#include "tools/Repl.h"

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace nnc::repl {

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

std::vector<Word> words(const std::string &s, size_t from = 0);
std::string trim(const std::string &s);
/// True when `t` begins a model, layer or train declaration.
bool startsDeclaration(const std::string &t);

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

const char *kindName(Decl::Kind k);
/// The declarations of a parsed input, in order of kind.
std::vector<Decl> declsOf(const ast::Program &p, const std::shared_ptr<SourceFile> &file);
/// Parses the inputs holding `decls` again and gathers those declarations
/// into one program (the AST owns its nodes, so each use gets a fresh copy).
std::unique_ptr<ast::Program> combine(const std::vector<Decl> &decls);

/// A tensor as nested lists of numbers, aligned (repl/Format.cpp).
std::string formatTensor(const runtime::Tensor &t);
/// `t` sliced by `spec` ("0:2, :, 3"): per dimension an index (which drops
/// the dimension), a range a:b, or ':'; negative numbers count from the end.
runtime::Tensor slice(const runtime::Tensor &t, const std::string &spec, size_t col);
std::string mib(double bytes);
std::string evalText(const runtime::EvalResult &r);

/// One :command as entered: its words and where they came from.
struct Call {
  const std::string &line;           ///< the input, trimmed
  std::vector<Word> words;           ///< words[0] is the ":name" itself
  std::vector<Word> args;            ///< the words after it
  std::string name;                  ///< the name without the colon
  std::shared_ptr<SourceFile> chunk; ///< the input as a source file, for diagnostics
  uint32_t lineNo;                   ///< of the input's first line
  DiagnosticEngine &diags;
  bool &quit; ///< set by :quit
  /// Throws a usage error when the command was given arguments.
  void noArgs() const;
  /// The text from the second argument on, as a source file at its place
  /// (:emit KIND EXPR compiles EXPR with diagnostics pointing into the line).
  std::shared_ptr<SourceFile> restFile() const;
};

/// A :command: its names, its help, and its handler.
struct Command {
  std::string name;
  std::vector<std::string> aliases; ///< other names it answers to (:q, :h)
  std::string usage, summary, details;
  void (*run)(Session::Impl &, const Call &);
};

/// Every :command, in the order :help lists them (repl/Commands.cpp).
const std::vector<Command> &commandTable();
/// The command named (or aliased) `name`, or null.
const Command *findCommand(const std::string &name);

extern const std::vector<std::string> kSettings, kEmitKinds, kFunctions;

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
  uint64_t currentSeed() { return current().config.seed; }
  /// The current model lowered with `expr` as an extra output "__value",
  /// reduced to a function computing only that value (inference mode).
  struct ExprFunction {
    frontend::LoweredModel lowered;
    ir::Function *fn = nullptr;
  };

  //--- dispatch and help (repl/Commands.cpp) --------------------------------
  void help(const std::vector<Word> &args);
  static UsageError unknownCommand(const Word &w);
  static int64_t integer(const Word &w, int64_t lo, int64_t hi, const std::string &what);
  void command(const std::string &line, const std::shared_ptr<SourceFile> &chunk, uint32_t lineNo,
               DiagnosticEngine &diags, bool &quit);

  //--- declarations and the current model (repl/Declarations.cpp) -----------
  driver::CompiledModel &current();
  void collectNames(const ast::Program &p);
  /// Makes `next` the session's declarations, compiling model `name` ("" for
  /// the default choice). `fresh`: new weights even for the same model. All
  /// or nothing.
  void adopt(std::vector<Decl> next, const std::string &name, bool fresh, const SourceFile *anchor,
             DiagnosticEngine &diags);
  /// A model statement typed at the prompt (`h2 = dense(h, 10)`): added to
  /// the current model, or put in place of the statement binding the same
  /// name, which then recompiles keeping every weight it can.
  void addStatement(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags);
  /// Declarations entered at the prompt (or read by :load / :reload).
  void declare(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags, bool replaceAll, bool fresh);
  /// :load FILE.nn, :reload, :model [NAME], :decls.
  void loadFile(const Call &c);
  void reloadFile(const Call &c);
  void modelCmd(const Call &c);
  void listDecls(const Call &c);

  //--- training, evaluation, settings, checkpoints (repl/Training.cpp) ------
  void applySettings(driver::CompiledModel &m) const;
  /// What decides the loaded data: its sources, preprocessing, split and seed.
  std::string dataKeyOf(const driver::CompiledModel &m) const;
  driver::Data &loadedData();
  void train(const std::vector<Word> &args);
  void eval(const std::vector<Word> &args);
  void set(const std::vector<Word> &args);
  void save(const std::vector<Word> &args, const std::string &line);
  void restore(const std::vector<Word> &args, const std::string &line);
  void time(const std::vector<Word> &args);
  /// :reset: fresh weights and optimizer state.
  void reset(const Call &c);

  //--- inspecting the model and expressions (repl/Inspect.cpp) --------------
  ExprFunction lowerExpression(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags);
  runtime::Tensor evaluate(const std::shared_ptr<SourceFile> &file, DiagnosticEngine &diags, std::string *type);
  void show(const std::vector<Word> &args, DiagnosticEngine &diags);
  void emit(const std::string &line, const std::vector<Word> &args, const std::shared_ptr<SourceFile> &rest,
            DiagnosticEngine &diags);
  void printCmd(const std::string &line, size_t argStart, const std::shared_ptr<SourceFile> &chunk, uint32_t lineNo,
                DiagnosticEngine &diags);
};

} // namespace nnc::repl
