// The compiler driver (see Driver.h): parsing, compiled models, and the
// Session that JIT-compiles and runs them. Data loading is in
// DataLoading.cpp, run settings and checkpoint contents in RunState.cpp.
#include "tools/Driver.h"

#include "frontend/ASTBuilder.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "runtime/Checkpoint.h"
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <set>
#include <sstream>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace nnc::driver {

std::optional<Source> parseFile(const std::string &path, DiagnosticEngine &diags) {
  Source src;
  src.file = std::make_unique<SourceFile>();
  src.file->name = path;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diags.error(SourceLoc{}, "cannot open '" + path + "': " + std::strerror(errno));
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  src.file->text = ss.str();
  src.program = frontend::parseProgram(*src.file, diags);
  if (!src.program)
    return std::nullopt;
  return src;
}

static std::string dirOf(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
}

CompiledModel compileModel(const Source &src, const std::string &modelName, DiagnosticEngine &diags,
                           bool withTrainConfig) {
  return compileModel(*src.program, modelName, src.file.get(), diags, withTrainConfig);
}

CompiledModel compileModel(const ast::Program &p, const std::string &modelName, const SourceFile *anchor,
                           DiagnosticEngine &diags, bool withTrainConfig) {
  if (!frontend::checkProgram(p, diags))
    throw CompileFailed{};
  const ast::ModelDecl *model = nullptr;
  if (!modelName.empty()) {
    model = p.model(modelName);
    if (!model) {
      std::vector<std::string> names;
      for (auto &m : p.models)
        names.push_back(m.name);
      std::string hint = closestMatch(modelName, names);
      diags.error(SourceLoc{anchor, 0, 0, 1},
                  "no model named '" + modelName + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?"));
      throw CompileFailed{};
    }
  } else if (!p.trains.empty() && p.model(p.trains.front().model)) {
    model = p.model(p.trains.front().model);
  } else if (p.models.size() == 1) {
    model = &p.models.front();
  } else {
    diags.error(SourceLoc{anchor, 0, 0, 1}, p.models.empty() ? "the file declares no model"
                                                             : "the file has several models; choose one with --model");
    throw CompileFailed{};
  }
  auto lowered = frontend::lowerModel(p, *model, diags);
  if (!lowered)
    throw CompileFailed{};
  CompiledModel cm;
  // Data paths are relative to the file that holds the train block.
  const ast::TrainDecl *train = p.train(model->name);
  cm.baseDir = dirOf(train && train->loc.file ? train->loc.file->name : anchor ? anchor->name : std::string("."));
  cm.lowered = std::move(*lowered);
  if (withTrainConfig) {
    auto cfg = frontend::readTrainConfig(p, cm.lowered, cm.baseDir, diags);
    if (!cfg)
      throw CompileFailed{};
    cm.config = *cfg;
  }
  cm.buildFunctions();
  return cm;
}

void CompiledModel::buildFunctions() {
  ir::Module &src = *lowered.module;
  ir::Function *forward = src.get("forward");
  ir::simplify(*forward);
  module.functions.clear();
  // Copy forward into our module so all functions live together.
  ir::Function *fwd = module.addFunction("forward");
  std::unordered_map<const ir::Value *, ir::Value *> map;
  for (size_t i = 0; i < forward->args.size(); ++i)
    map[forward->args[i]] = fwd->addArg(forward->args[i]->name, forward->args[i]->type, forward->argRoles[i]);
  map = fwd->cloneBody(*forward, map);
  for (size_t i = 0; i < forward->results.size(); ++i)
    fwd->addResult(forward->resultNames[i], map.at(forward->results[i]));
  if (!lowered.objectives.empty())
    return buildPhaseFunctions(*fwd);

  ir::Function *grad = ir::differentiate(module, *fwd, "loss", "grad");
  ir::simplify(*grad);
  ir::Function *step = ir::appendOptimizer(module, *grad, config.optimizer, "train_step");
  // Training needs only the loss, the hit count and the updates.
  std::vector<std::string> keep;
  for (size_t i = 0; i < step->results.size(); ++i) {
    const std::string &n = step->resultNames[i];
    if (n == "loss" || n == "correct" || n.rfind("new.", 0) == 0)
      keep.push_back(n);
  }
  ir::Function *trainStep = ir::extractResults(module, *step, keep, "train_step.tmp");
  ir::simplify(*trainStep);
  // Evaluation and prediction run the model in inference mode: no dropout.
  ir::Function *infer = ir::extractResults(module, *fwd, fwd->resultNames, "inference");
  ir::disableDropout(*infer);
  ir::simplify(*infer);
  std::vector<std::string> evalResults = {"loss"};
  if (lowered.accuracy)
    evalResults.push_back("correct");
  ir::Function *eval = ir::extractResults(module, *infer, evalResults, "evaluate");
  ir::simplify(*eval);
  ir::Function *pred = nullptr;
  // predict: the outputs, and what the loss compares with the label when
  // that is not one of them (binary, multi-label and regression models).
  std::vector<std::string> predResults = lowered.outputs;
  if (lowered.hasPrediction())
    predResults.push_back("prediction");
  if (!predResults.empty()) {
    pred = ir::extractResults(module, *infer, predResults, "predict");
    ir::simplify(*pred);
  }
  // Keep: forward, grad, train_step, evaluate, predict (in that order).
  std::vector<std::unique_ptr<ir::Function>> kept;
  for (auto &f : module.functions) {
    if (f.get() == step || f.get() == infer)
      continue;
    if (f.get() == trainStep)
      f->name = "train_step";
    kept.push_back(std::move(f));
  }
  std::stable_sort(kept.begin(), kept.end(), [](auto &a, auto &b) {
    auto rank = [](const std::string &n) {
      static const char *order[] = {"forward", "grad", "train_step", "evaluate", "predict"};
      for (int i = 0; i < 5; ++i)
        if (n == order[i])
          return i;
      return 5;
    };
    return rank(a->name) < rank(b->name);
  });
  module.functions = std::move(kept);
  auto errs = ir::verify(module);
  NNC_ASSERT(errs.empty()) << "pipeline produced invalid IR: " << errs.front();
}

ir::Bindings CompiledModel::bindings(int64_t batch) const {
  ir::Bindings b;
  for (auto *list : {&lowered.inputs, &lowered.labels})
    for (auto &decl : *list)
      if (!decl.type.shape.empty() && !decl.type.shape[0].isStatic())
        b[decl.type.shape[0].sym] = batch;
  return b;
}

void printWithBodies(const ir::Function &f, std::ostream &os) {
  ir::print(f, os);
  for (const auto &op : f.ops)
    if (op->body) {
      os << "\n";
      ir::print(*op->body, os);
    }
}

const ir::Function &CompiledModel::function(const std::string &name) const {
  const ir::Function *f = module.get(name);
  if (!f)
    throw runtime::Error("model '" + lowered.name + "' has no function '" + name + "'" +
                         (name == "predict" ? " (it declares no output)" : ""));
  return *f;
}

const ir::Function &CompiledModel::checked(const std::string &name) {
  if (const ir::Function *f = module.get(name + ".checked"))
    return *f;
  const ir::Function &src = function(name);
  ir::Function *f = module.addFunction(name + ".checked");
  std::unordered_map<const ir::Value *, ir::Value *> map;
  for (size_t i = 0; i < src.args.size(); ++i)
    map[src.args[i]] = f->addArg(src.args[i]->name, src.args[i]->type, src.argRoles[i]);
  map = f->cloneBody(src, map);
  for (size_t i = 0; i < src.results.size(); ++i)
    f->addResult(src.resultNames[i], map.at(src.results[i]));
  for (size_t i = 0; i < f->ops.size(); ++i) {
    const ir::Op &op = *f->ops[i];
    if (op.result && op.result->type.dtype == ir::DType::F32 && op.kind != ir::OpKind::Const)
      f->addResult("v." + std::to_string(i), op.result);
  }
  return *f;
}

int64_t CompiledModel::parameterCount() const {
  int64_t n = 0;
  for (auto &p : lowered.params)
    n += ir::numElements(p.shape);
  return n;
}

//===----------------------------------------------------------------------===//
// Session
//===----------------------------------------------------------------------===//

static runtime::Role toRole(ir::ArgRole r) {
  switch (r) {
  case ir::ArgRole::Input:
    return runtime::Role::Input;
  case ir::ArgRole::Label:
    return runtime::Role::Label;
  case ir::ArgRole::Param:
    return runtime::Role::Param;
  case ir::ArgRole::State:
    return runtime::Role::State;
  case ir::ArgRole::Scalar:
    return runtime::Role::Scalar;
  }
  return runtime::Role::Input;
}

static runtime::DType toDType(ir::DType t) { return t == ir::DType::F32 ? runtime::DType::F32 : runtime::DType::I64; }

/// The model's inputs in order (what a batch's tensors are).
static std::vector<std::string> inputNames(const CompiledModel &m) {
  std::vector<std::string> r;
  for (const frontend::TensorDecl &in : m.lowered.inputs)
    r.push_back(in.name);
  return r;
}

Session::Session(CompiledModel &model) : model_(&model) {
  checkSignature();
  jit_ = std::make_unique<codegen::JIT>();
  trainer_ = std::make_unique<runtime::Trainer>(
      [this](const std::string &fn, int64_t batch) -> const runtime::CompiledFn & { return compiled(fn, batch); },
      state_);
  trainer_->setInputNames(inputNames(model));
}

void Session::checkSignature() const {
  const auto &inputs = model_->lowered.inputs;
  if (inputs.empty())
    throw runtime::Error("model '" + model_->lowered.name + "' has no inputs; training from a data file needs one");
  for (const frontend::TensorDecl &in : inputs) {
    const ir::TensorType &t = in.type;
    if (t.shape.empty() || t.shape[0].isStatic()) {
      ir::TensorType want = t;
      if (want.shape.empty())
        want.shape.push_back(ir::Dim::symbol("N"));
      else
        want.shape[0] = ir::Dim::symbol("N");
      throw runtime::Error("input '" + in.name + "' : " + t.str() + " needs a symbolic batch dimension first, as in " +
                           want.str());
    }
    for (size_t i = 1; i < t.shape.size(); ++i)
      if (!t.shape[i].isStatic())
        throw runtime::Error("input '" + in.name + "' : " + t.str() +
                             ": only the first (batch) dimension may be symbolic when training from a file");
    if (t.shape[0] != inputs[0].type.shape[0])
      throw runtime::Error("inputs '" + inputs[0].name + "' : " + inputs[0].type.str() + " and '" + in.name +
                           "' : " + t.str() + " must share the batch dimension when training from a file");
  }
  const auto &labels = model_->lowered.labels;
  if (labels.size() > 1)
    throw runtime::Error("model '" + model_->lowered.name + "' has " + std::to_string(labels.size()) +
                         " labels; training from a data file needs at most one");
  if (labels.size() == 1) {
    const ir::TensorType &lt = labels[0].type;
    bool staticRest = true;
    for (size_t i = 1; i < lt.shape.size(); ++i)
      staticRest &= lt.shape[i].isStatic();
    if (lt.rank() < 1 || lt.shape[0] != inputs[0].type.shape[0] || !staticRest)
      throw runtime::Error("label '" + labels[0].name + "' : " + lt.str() + ": a data file gives one target per " +
                           "example, so the label must be [" + inputs[0].type.shape[0].str() +
                           ", ...] with the inputs' batch dimension first and static sizes after it");
  }
}

namespace {

/// The first NaN or infinity in an f32 tensor, as text, or "".
std::string firstNonFinite(const runtime::Tensor &t) {
  if (t.dtype() != runtime::DType::F32)
    return "";
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (!std::isfinite(t.f32()[i]))
      return fmt::format("{} (element {} of {})",
                         std::isnan(t.f32()[i]) ? "nan"
                         : t.f32()[i] > 0       ? "inf"
                                                : "-inf",
                         i, n);
  return "";
}

} // namespace

std::string Session::explainNonFinite(const std::string &fn, const std::vector<runtime::Tensor> &xb,
                                      const runtime::Tensor *yb, float lr) {
  for (auto *group : {&state_.params, &state_.state})
    for (auto &[name, t] : *group)
      if (std::string v = firstNonFinite(t); !v.empty())
        return fmt::format("'{}' already holds {} before this step", name, v);
  for (const runtime::Tensor &x : xb)
    if (std::string v = firstNonFinite(x); !v.empty())
      return "the input batch holds " + v;
  const ir::Function &f = model_->checked(fn);
  std::map<std::string, runtime::Tensor> outs = trainer_->run(f.name, xb, yb, lr);
  std::unordered_set<const ir::Value *> bad;
  std::vector<std::string> lines;
  for (size_t i = 0; i < f.ops.size(); ++i) {
    const ir::Op &op = *f.ops[i];
    auto it = outs.find("v." + std::to_string(i));
    if (it == outs.end())
      continue;
    std::string v = firstNonFinite(it->second);
    if (v.empty())
      continue;
    bool inherited = false;
    for (const ir::Value *x : op.operands)
      inherited |= bad.count(x) > 0;
    bad.insert(op.result);
    if (inherited)
      continue;
    if (lines.empty()) {
      std::istringstream in(ir::toString(f));
      for (std::string line; std::getline(in, line);)
        lines.push_back(line);
    }
    std::string text = i + 1 < lines.size() ? lines[i + 1] : ir::opName(op.kind);
    text.erase(0, text.find_first_not_of(' '));
    std::string where = "an op nnc added";
    if (op.loc.valid()) {
      std::string src = op.loc.file->lineText(op.loc.line);
      src.erase(0, src.find_first_not_of(" \t"));
      where = fmt::format("{} (`{}`)", op.loc.str(), src);
    }
    return fmt::format("the first non-finite value, {}, comes from `{}` at {}, whose operands are finite", v, text,
                       where);
  }
  return "a re-run of the step with every intermediate checked stayed finite: the optimized step rounds differently "
         "here (it fuses ops, e.g. it applies the learning rate to a factor of a product before multiplying, which "
         "overflows for values near the f32 limit)";
}

void Session::checkData(const runtime::Dataset &d, const std::string &what, bool withLabel) const {
  // Each example must fill one row of the input (and label) declaration.
  auto check = [&](const runtime::Tensor &t, const frontend::TensorDecl &decl, const char *kind, const char *unit) {
    int64_t have = 1, want = 1;
    for (size_t i = 1; i < t.rank(); ++i)
      have *= t.dim(i);
    for (size_t i = 1; i < decl.type.shape.size(); ++i)
      want *= decl.type.shape[i].size;
    if (want != have)
      throw runtime::Error(fmt::format("{}: examples have {} {}, but {} '{}' : {} expects {}", what, have, unit, kind,
                                       decl.name, decl.type.str(), want));
    if ((t.dtype() == runtime::DType::F32) != (decl.type.dtype == ir::DType::F32))
      throw runtime::Error(fmt::format("{}: examples hold {} values, but {} '{}' is {}", what,
                                       runtime::dtypeName(t.dtype()), kind, decl.name, decl.type.str()));
  };
  if (d.inputs.size() != model_->lowered.inputs.size())
    throw runtime::Error(fmt::format("{}: examples have {} input tensors, but model '{}' has {} inputs", what,
                                     d.inputs.size(), model_->lowered.name, model_->lowered.inputs.size()));
  for (size_t i = 0; i < d.inputs.size(); ++i)
    check(d.inputs[i], model_->lowered.inputs[i], "input", "features");
  if (!withLabel)
    return;
  if (!model_->lowered.labels.empty())
    check(d.y, model_->lowered.labels[0], "label", "label values");
  if (model_->lowered.classification)
    runtime::checkLabels(d, model_->lowered.numClasses, what);
}

void Session::checkData(const Data &d) const {
  const frontend::TrainConfig &c = model_->config;
  auto located = [&](const runtime::Dataset &ds, const char *what, SourceLoc at) {
    try {
      checkData(ds, what);
    } catch (const LocatedError &) {
      throw;
    } catch (const runtime::Error &e) {
      throw LocatedError(at, e.what());
    }
  };
  located(d.train, "training data", c.data.loc);
  if (d.test.size())
    located(d.test, "test data", c.test.loc.valid() ? c.test.loc : c.data.loc);
}

void Session::checkBatchNorm(int64_t examples) const {
  const frontend::LoweredModel &low = model_->lowered;
  if (!low.batchNormPerExample || examples <= 0)
    return;
  // A training batch of b examples gives b * perExample values per channel;
  // one value has no variance (PyTorch refuses it the same way).
  int64_t batch = model_->config.batch, last = examples % batch;
  int64_t smallest = examples < batch ? examples : last ? last : batch;
  if (smallest * low.batchNormPerExample > 1)
    return;
  throw LocatedError(low.batchNormLoc,
                     fmt::format("batch_norm needs more than one value per channel in every training batch (PyTorch: "
                                 "\"Expected more than 1 value per channel when training\"), but {} training "
                                 "example{} in batches of {} leave{} a batch of 1; change the batch size or the split",
                                 examples, examples == 1 ? "" : "s", batch, examples == 1 ? "s" : ""));
}

void Session::checkMemory(const ir::Function &f, int64_t batch) const {
  // Every buffer the function touches, at its concrete size, before anything
  // is allocated; the arena is at most the sum of its intermediates.
  ir::Bindings b = model_->bindings(batch);
  double bytes = 0;
  auto add = [&](const ir::Value *v) {
    double n = 1;
    for (int64_t d : ir::concreteShape(v->type.shape, b))
      n *= double(d);
    bytes += n * (v->type.dtype == ir::DType::F32 ? 4 : 8);
  };
  for (const ir::Value *a : f.args)
    add(a);
  for (const auto &op : f.ops)
    add(op->result);
  double physical = double(sysconf(_SC_PHYS_PAGES)) * double(sysconf(_SC_PAGESIZE));
  if (physical > 0 && bytes > physical)
    throw runtime::Error(fmt::format("{} of model '{}' at batch size {} needs up to {:.1f} GiB of memory, more than "
                                     "this machine's {:.1f} GiB",
                                     f.name, model_->lowered.name, batch, bytes / (1 << 30), physical / (1 << 30)));
}

runtime::CompiledFn Session::toRuntime(const codegen::CompiledFunction &c) {
  runtime::CompiledFn r;
  r.entry = c.entry;
  r.arenaBytes = c.arenaBytes;
  for (auto &a : c.args)
    r.args.push_back({a.name, toDType(a.dtype), a.shape, toRole(a.role)});
  for (size_t j = 0; j < c.results.size(); ++j) {
    const codegen::BufferSpec &a = c.results[j];
    r.results.push_back({a.name, toDType(a.dtype), a.shape, runtime::Role::Input, c.resultArg[j]});
  }
  return r;
}

const runtime::CompiledFn &Session::compiled(const std::string &fn, int64_t batch) {
  auto key = std::make_pair(fn, batch);
  auto it = cache_.find(key);
  if (it != cache_.end())
    return it->second;
  const ir::Function &f = model_->function(fn);
  checkMemory(f, batch);
  codegen::CodegenOptions opts;
  opts.profile = profiling_;
  // The trainer binds "new.X" results written over X (see runtime::BufferSpec);
  // a checked run must leave the weights as they were.
  opts.inPlaceUpdates = fn.size() < 8 || fn.compare(fn.size() - 8, 8, ".checked") != 0;
  codegen::CompiledFunction c = jit_->compile(f, model_->bindings(batch), opts);
  compileSeconds_ += c.compileSeconds;
  fromCache_ += c.fromCache ? 1 : 0;
  memory_[key] = {c.arenaBytes, c.unplannedBytes};
  if (c.profile)
    profiles_[key] = c;
  return cache_.emplace(key, toRuntime(c)).first->second;
}

const codegen::CompiledFunction *Session::profile(const std::string &fn, int64_t batch) const {
  auto it = profiles_.find({fn, batch});
  return it == profiles_.end() ? nullptr : &it->second;
}

runtime::Tensor Session::initialValue(const std::string &name, std::mt19937_64 &rng) const {
  for (const frontend::ParamInfo &p : model_->lowered.params)
    if (p.name == name) {
      runtime::Tensor t(runtime::DType::F32, p.shape);
      runtime::initialize(t, runtime::Init(int(p.init)), p.fanIn, p.fanOut, rng);
      return t;
    }
  for (const std::string &fn : model_->trainSteps()) {
    const ir::Function &f = model_->function(fn);
    for (size_t i = 0; i < f.args.size(); ++i) {
      if (f.argRoles[i] != ir::ArgRole::State || f.args[i]->name != name)
        continue;
      runtime::Tensor t(runtime::DType::F32, ir::concreteShape(f.args[i]->type.shape, {}));
      // The model's own state (running statistics) starts as it declares;
      // optimizer state starts at zero.
      for (const frontend::ParamInfo &st : model_->lowered.states)
        if (st.name == name)
          runtime::initialize(t, runtime::Init(int(st.init)), 1, 1, rng);
      return t;
    }
  }
  NNC_UNREACHABLE("no model tensor named " << name);
}

void Session::initialize(uint64_t seed) {
  // Refuse absurd models before allocating their parameters.
  for (const std::string &fn : model_->trainSteps())
    checkMemory(model_->function(fn), std::max<int64_t>(1, model_->config.batch));
  std::mt19937_64 rng(seed ^ 0x6e6e63ULL);
  state_.params.clear();
  state_.state.clear();
  for (const frontend::ParamInfo &p : model_->lowered.params)
    state_.params.emplace(p.name, initialValue(p.name, rng));
  for (const std::string &fn : model_->trainSteps()) {
    const ir::Function &f = model_->function(fn);
    for (size_t i = 0; i < f.args.size(); ++i)
      if (f.argRoles[i] == ir::ArgRole::State && !state_.state.count(f.args[i]->name))
        state_.state.emplace(f.args[i]->name, initialValue(f.args[i]->name, rng));
  }
}

Session::Rebind Session::rebind(CompiledModel &model, uint64_t seed) {
  for (const std::string &fn : model.trainSteps())
    checkMemory(model.function(fn), std::max<int64_t>(1, model.config.batch));
  CompiledModel *old = model_;
  model_ = &model;
  try {
    checkSignature();
  } catch (...) {
    model_ = old;
    throw;
  }
  trainer_->setInputNames(inputNames(model));
  Rebind r;
  // Compiled code: kept where the function's IR is the same as the old
  // model's (what it was compiled from); REPL expressions ("adhoc.<n>") are
  // cached by their own IR.
  std::set<std::string> same;
  for (const auto &g : model.module.functions) {
    const ir::Function *o = old->module.get(g->name);
    bool unchanged = o && ir::toString(*o) == ir::toString(*g);
    (unchanged ? r.unchanged : r.recompile).push_back(g->name);
    if (unchanged)
      same.insert(g->name);
  }
  auto stale = [&](const std::pair<std::string, int64_t> &key) {
    return !same.count(key.first) && key.first.rfind("adhoc.", 0) != 0;
  };
  for (auto c = cache_.begin(); c != cache_.end();)
    c = stale(c->first) ? cache_.erase(c) : std::next(c);
  for (auto c = memory_.begin(); c != memory_.end();)
    c = stale(c->first) ? memory_.erase(c) : std::next(c);
  for (auto c = profiles_.begin(); c != profiles_.end();)
    c = stale(c->first) ? profiles_.erase(c) : std::next(c);
  // Tensors: kept where name and shape match, else initialized.
  runtime::ModelState next;
  std::mt19937_64 rng(seed ^ 0x6e6e63ULL);
  auto carry = [&](const std::string &name, std::map<std::string, runtime::Tensor> &from,
                   std::map<std::string, runtime::Tensor> &to) {
    runtime::Tensor init = initialValue(name, rng);
    auto it = from.find(name);
    if (it != from.end() && it->second.shape() == init.shape()) {
      to.emplace(name, std::move(it->second));
      r.kept.push_back(name);
    } else {
      to.emplace(name, std::move(init));
      r.fresh.push_back(name);
    }
    if (it != from.end())
      from.erase(it);
  };
  for (const frontend::ParamInfo &p : model.lowered.params)
    carry(p.name, state_.params, next.params);
  for (const std::string &fn : model.trainSteps()) {
    const ir::Function &step = model.function(fn);
    for (size_t i = 0; i < step.args.size(); ++i)
      if (step.argRoles[i] == ir::ArgRole::State && !next.state.count(step.args[i]->name))
        carry(step.args[i]->name, state_.state, next.state);
  }
  for (auto *group : {&state_.params, &state_.state})
    for (auto &[name, t] : *group)
      r.dropped.push_back(name);
  state_ = std::move(next);
  return r;
}

std::map<std::string, runtime::Tensor>
Session::runFunction(const ir::Function &f, const std::vector<runtime::Tensor> &x, const runtime::Tensor *y) {
  int64_t batch = x.at(0).rank() ? x[0].dim(0) : 1;
  // The trainer runs functions by name through the session's cache; each
  // distinct function gets a name of its own there ("adhoc.<n>").
  auto key = std::make_pair(ir::toString(f), batch);
  auto it = adhoc_.find(key);
  if (it == adhoc_.end()) {
    checkMemory(f, batch);
    codegen::CompiledFunction c = jit_->compile(f, model_->bindings(batch));
    compileSeconds_ += c.compileSeconds;
    std::string name = "adhoc." + std::to_string(adhoc_.size());
    cache_.emplace(std::make_pair(name, batch), toRuntime(c));
    it = adhoc_.emplace(key, name).first;
  }
  return trainer_->run(it->second, x, y, 0.0f);
}

runtime::Checkpoint Session::load(const std::string &path) {
  runtime::Checkpoint ck = runtime::loadSafetensors(path);
  runtime::Checkpoint rest;
  rest.metadata = ck.metadata;
  // Everything is checked before anything is replaced, and every mismatch is
  // listed at once (as PyTorch's load_state_dict does): missing, unexpected
  // and mis-shaped tensors.
  runtime::ModelState next = state_;
  std::vector<std::string> problems;
  std::vector<std::pair<std::string, runtime::Tensor *>> matched;
  for (auto &[name, t] : ck.tensors) {
    runtime::Tensor *dst = nullptr;
    if (auto p = next.params.find(name); p != next.params.end())
      dst = &p->second;
    else if (auto s = next.state.find(name); s != next.state.end())
      dst = &s->second;
    else if (name.rfind("best.", 0) == 0 || name.rfind("data.", 0) == 0) {
      rest.tensors[name] = t; // a training run's state (also best.<optimizer state>); the caller's
      continue;
    } else if (ir::isOptimizerStateName(name))
      continue; // state of another optimizer: start this one fresh
    else {
      problems.push_back("unexpected: '" + name + "' " + t.typeString() + " is not a parameter of the model");
      continue;
    }
    if (t.shape() != dst->shape() || t.dtype() != dst->dtype())
      problems.push_back("mis-shaped: '" + name + "' is " + t.typeString() + " but the model needs " +
                         dst->typeString());
    else
      matched.push_back({name, dst});
  }
  for (auto &[name, t] : next.params)
    if (!ck.tensors.count(name))
      problems.push_back("missing: parameter '" + name + "' " + t.typeString() + " is not in the file");
  if (!problems.empty()) {
    std::string msg = "'" + path + "' does not fit model '" + model_->lowered.name + "'";
    if (auto w = ck.metadata.find("nnc.model"); w != ck.metadata.end() && w->second != model_->lowered.name)
      msg += " (the file was written for model '" + w->second + "')";
    msg += fmt::format(": {} {}", problems.size(), problems.size() == 1 ? "mismatch" : "mismatches");
    const size_t shown = 20;
    for (size_t i = 0; i < problems.size() && i < shown; ++i)
      msg += "\n  " + problems[i];
    if (problems.size() > shown)
      msg += fmt::format("\n  ... and {} more", problems.size() - shown);
    throw runtime::Error(msg);
  }
  for (auto &[name, dst] : matched) {
    const runtime::Tensor &t = ck.tensors.at(name);
    if (t.dtype() == runtime::DType::F32)
      for (int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(t.f32()[i]))
          throw runtime::Error(
              fmt::format("'{}': tensor '{}' holds a non-finite value ({}) at element {}", path, name, t.f32()[i], i));
    *dst = t;
  }
  state_ = std::move(next);
  return rest;
}

void Session::save(const std::string &path, const std::map<std::string, std::string> &metadata,
                   const std::map<std::string, runtime::Tensor> &extra) {
  std::vector<std::pair<std::string, const runtime::Tensor *>> tensors;
  for (auto &[n, t] : state_.params)
    tensors.push_back({n, &t});
  for (auto &[n, t] : state_.state)
    tensors.push_back({n, &t});
  // load() refuses non-finite weights, so they are never written.
  for (auto &[n, t] : tensors)
    if (std::string v = firstNonFinite(*t); !v.empty())
      throw runtime::Error(fmt::format("not writing '{}': '{}' holds {}, and nnc could not read it back", path, n, v));
  for (auto &[n, t] : extra)
    tensors.push_back({n, &t});
  runtime::saveSafetensors(path, tensors, metadata);
}

} // namespace nnc::driver
