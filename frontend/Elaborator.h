// The elaborator: walks one model's statements in order with a scope of
// named values and builds its @forward function. Layer calls are inlined with
// a fresh scope that binds the layer's parameters to the call's arguments;
// parameters of builtin layers (dense) are named after the binding or the
// explicit `as` instance, so `as` with the same name shares weights. Each
// builtin becomes a few IR ops built through the IR's shape rules; a rule
// failure is reported at the call with notes on where its operands were
// defined.
//
// Internal to the frontend. The walk, name binding and argument helpers are
// in Elaborator.cpp; each builtin's lowering is a member defined in
// builtins/<Family>.cpp and named in the table in Builtins.cpp.
#pragma once

#include "frontend/Builtins.h"
#include "frontend/Sema.h"
#include "ir/Builder.h"

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace nnc::frontend {

/// 0, 1, ..., rank - 1: every axis, for reductions over a whole tensor.
std::vector<int64_t> allAxes(size_t rank);

/// Names with a meaning of their own in model expressions: `params` and
/// `weights` (parameter sets), `true` and `false` (Sema.cpp).
extern const std::set<std::string> kSpecialNames, kConstantNames;

/// The symbolic dimensions declared by any model's inputs and labels; they may
/// be named in shape lists (`reshape(x, [N, 64])`) (Sema.cpp).
std::set<std::string> declaredSymbols(const ast::Program &p);

/// A value during elaboration: a tensor, or a compile-time constant.
struct Val {
  enum Kind { Error, Tensor, Number, String, List, ParamSet, Symbol } kind = Error;
  ir::Value *v = nullptr;
  double num = 0;
  bool isInt = false;
  std::string str;
  std::vector<Val> list;
  bool weightsOnly = false; ///< ParamSet: `weights` (no biases) vs `params`
  SourceLoc loc;            ///< where the value was defined (for notes)
  std::string name;         ///< the name it was bound to, if any

  static Val error() { return Val{}; }
  bool ok() const { return kind != Error; }
};

/// Where a tensor came from, for notes on shape errors.
struct Origin {
  std::string name;
  SourceLoc loc;
};

/// Names in scope during elaboration.
using Scope = std::map<std::string, Val>;

/// Arguments bound to parameter names (positional first, then named).
struct ArgMap : std::map<std::string, std::pair<Val, const ast::Expr *>> {};

class Elaborator {
public:
  Elaborator(const ast::Program &p, DiagnosticEngine &d) : p_(p), d_(d) {}

  std::optional<LoweredModel> run(const ast::ModelDecl &m);

  //--- elementwise functions, activations, reductions (builtins/Math.cpp) ---
  /// relu, sigmoid, tanh, exp, log, sqrt, abs, softmax, log_softmax, argmax:
  /// one IR op of the same name on `x`.
  Val unaryBuiltin(const ast::Expr &e, const ArgMap &args);
  /// maximum(a, b), minimum(a, b): elementwise, broadcasting as arithmetic
  /// does; the gradient of a tie goes to b.
  Val minMax(const ast::Expr &e, const ArgMap &args);
  /// clamp(x, lo, hi): minimum(hi, maximum(lo, x)), so that the gradient is 1
  /// where lo <= x <= hi (bounds included, as torch.clamp) and 0 outside;
  /// lo > hi gives hi everywhere, as torch does.
  Val clamp(const ast::Expr &e, const ArgMap &args);
  /// sum, mean, max over `axes` (default: all), keeping them when `keepdims`.
  Val reduction(const ast::Expr &e, const ArgMap &args);
  /// Activations built from primitives, so they need no gradient rules of
  /// their own; each form is chosen to stay finite for any input.
  Val activation(const ast::Expr &e, const ArgMap &args);

  //--- dense, matmul, embedding (builtins/Dense.cpp) --------------------
  /// dense(x, units): x W + b with W [K, units] over the last axis of x [N, ..., K].
  Val dense(const ast::Expr &e, const ArgMap &args);
  /// matmul(a, b): the matrix product, batched over leading axes.
  Val matmul(const ast::Expr &e, const ArgMap &args);
  /// embedding(ids, vocab, dim): rows of a learned [vocab, dim] table for i64 ids.
  Val embedding(const ast::Expr &e, const ArgMap &args);

  //--- convolution and pooling (builtins/Conv.cpp) ----------------------
  /// conv2d over [N, C, H, W] and conv1d over [N, C, L] (as a conv2d of
  /// height 1). Weights are [channels, C/groups, KH, KW] ([channels,
  /// C/groups, K] for conv1d), PyTorch's layout, He-initialized.
  Val conv(const ast::Expr &e, const ArgMap &args);
  /// max_pool2d and avg_pool2d over each window of [N, C, H, W].
  Val pool(const ast::Expr &e, const ArgMap &args);
  /// global_avg_pool: [N, C, H, W] -> [N, C], the mean of each channel.
  Val globalAvgPool(const ast::Expr &e, const ArgMap &args);

  //--- rnn, lstm, gru (builtins/Recurrent.cpp) --------------------------
  /// rnn, lstm and gru over x [N, T, F]: the input projection of every step
  /// at once (x W_ih + b_ih, time-major), then a scan whose body is the cell
  /// (h W_hh + b_hh and the gates). Weights are PyTorch's transposed:
  /// w_ih [F, G*H], w_hh [H, G*H], b_ih and b_hh [G*H], gates in PyTorch's
  /// order (lstm i, f, g, o; gru r, z, n). The LSTM carry is [h, c].
  Val recurrent(const ast::Expr &e, const ArgMap &args);

  //--- attention and positions (builtins/Attention.cpp) -----------------
  /// attention(q, k, v): scaled dot-product attention (see attend).
  Val attentionCall(const ast::Expr &e, const ArgMap &args);
  /// Self-attention over x [N, T, D]: q, k, v = x Wq + bq, ...; each split
  /// into `heads` heads [N, heads, T, D/heads]; attention per head; heads
  /// merged back to [N, T, D] and projected by Wo + bo.
  Val multiHeadAttention(const ast::Expr &e, const ArgMap &args);
  /// x [N, T, D] plus a [T, D] table of position vectors: sinusoidal
  /// (Vaswani et al.; not trained) or a learned parameter <instance>.pos.
  Val positionalEncoding(const ast::Expr &e, const ArgMap &args);

  //--- normalization and dropout (builtins/Norm.cpp) --------------------
  /// (x - mean) / sqrt(var + eps) * scale + shift over the last axis, with
  /// the biased variance, as torch.nn.LayerNorm; scale starts at 1, shift at 0.
  Val layerNorm(const ast::Expr &e, const ArgMap &args);
  /// Batch normalization of x [N, C] over the batch axis, as
  /// torch.nn.BatchNorm1d: training normalizes with the batch's mean and
  /// biased variance and updates the running statistics (with the unbiased
  /// variance) through `new.<instance>.running_*` results; evaluation
  /// (mode_select's second operand) uses the running statistics.
  Val batchNorm(const ast::Expr &e, const ArgMap &args);
  /// x * mask, where the mask comes from the per-step seed argument `rng` and
  /// a stream number unique to this call; evaluation replaces the mask by 1.
  Val dropout(const ast::Expr &e, const ArgMap &args);

  //--- losses and penalties (builtins/Loss.cpp) -------------------------
  /// cross_entropy(logits, labels): mean negative log-likelihood of
  /// softmax(logits) [N, ..., C] for i64 class labels [N, ...].
  Val crossEntropy(const ast::Expr &e, const ArgMap &args);
  /// Losses comparing two f32 tensors of one shape, averaged over all elements.
  Val pairLoss(const ast::Expr &e, const ArgMap &args);
  /// mse(pred, target): the mean of the squared differences.
  Val mse(const ast::Expr &e, const ArgMap &args);
  /// l1(x), l2(x): the sum of |x| or x^2 over a tensor or a parameter set.
  Val penalty(const ast::Expr &e, const ArgMap &args);

  //--- noise and gradients as values (builtins/Generative.cpp) ----------
  /// normal(shape, mean, std) and uniform(shape, low, high): noise drawn
  /// inside the compiled step from the per-step seed `rng` (like dropout's
  /// masks), one stream per call; the shape may hold the batch symbol.
  Val noise(const ast::Expr &e, const ArgMap &args);
  /// grad(f, wrt): d f / d wrt for an f32 scalar f and a tensor wrt computed
  /// before it, as ops of the model (differentiable again).
  Val gradCall(const ast::Expr &e, const ArgMap &args);
  /// norm(x, axis = last, keepdims = false): the Euclidean norm over `axis`.
  Val norm(const ast::Expr &e, const ArgMap &args);

  //--- reshaping, slicing, joining (builtins/Shape.cpp) -----------------
  /// reshape(x, shape) (one entry may be -1) and flatten(x): [N, ...] -> [N, prod(...)].
  Val reshape(const ast::Expr &e, const ArgMap &args);
  /// transpose(x, perm): axes permuted (default: reversed).
  Val transpose(const ast::Expr &e, const ArgMap &args);
  /// permute(x, dims): result axis i is x's axis dims[i].
  Val permute(const ast::Expr &e, const ArgMap &args);
  /// slice(x, start, end, axis): entries [start, end) along axis.
  Val slice(const ast::Expr &e, const ArgMap &args);
  /// split(x, parts, axis = last): `parts` equal pieces (an integer that
  /// divides the axis) or pieces of the listed sizes (summing to the axis);
  /// a list of tensors, usually destructured: `a, b = split(x, 2)`.
  Val split(const ast::Expr &e, const ArgMap &args);
  /// concat(xs, axis): a list of tensors joined along axis (default last).
  Val concat(const ast::Expr &e, const ArgMap &args);

private:
  //--- several objectives (builtins/Generative.cpp) -------------------------
  /// The losses of a model whose losses say what they update: one result
  /// `loss.<name>` each; every selector must pick parameters the loss
  /// depends on, and every parameter must be updated by some loss.
  bool objectives(const std::vector<const ast::Stmt *> &stmts, const std::vector<std::pair<Val, SourceLoc>> &losses);

  //--- the walk, names and arguments (Elaborator.cpp) ----------------------
  ir::TensorType toType(const ast::TypeSpec &t);
  Val tensorVal(ir::Value *v);
  /// Numbers become scalar constants; other non-tensors are errors.
  Val asTensor(const Val &v, SourceLoc at);
  static std::string describe(const Val &v);
  /// Notes on where the tensors involved in a failed op were defined.
  void noteOperands(const std::vector<Val> &vals);
  /// Builds an op; on a shape-rule failure reports it at `at`, in the words
  /// of the builtin `callee` rather than the IR op's name.
  ir::Value *build(ir::OpKind k, std::vector<ir::Value *> ops, ir::Attrs attrs, SourceLoc at, const std::string &callee,
                   const std::vector<Val> &context = {});
  /// Evaluates `e`. An operator chain (see ast::chain) is evaluated from its
  /// innermost expression up, each level's value kept in `chained_` for the
  /// level above, whose own eval of its chain operand then returns at once:
  /// the same ops in the same order as recursion, with no recursion along
  /// the chain.
  Val eval(const ast::Expr &e, Scope &scope);
  Val evalOne(const ast::Expr &e, Scope &scope);
  /// `inst.leaf`: a parameter (or state) an earlier statement created.
  Val namedParam(const ast::Expr &e);
  Val binary(const ast::Expr &e, Scope &scope);
  /// x ^ p for a constant p: products for integers (|p| <= 64; negative ones
  /// divide), sqrt for 0.5, exp(p log x) otherwise (x > 0).
  Val power(const ast::Expr &e, const Val &a, const Val &b);
  ArgMap bind(const ast::Expr &e, const std::vector<std::string> &params, Scope &scope, bool &ok);
  Val call(const ast::Expr &e, Scope &scope);
  /// Binds a statement's name to `v`, or, for `a, b, ... = expr`, each name
  /// to one element of the list `v`.
  void bindNames(const ast::Stmt &s, Val v, Scope &scope);
  Val callLayer(const ast::Expr &e, const ast::LayerDecl &l, Scope &scope);
  /// The instance name for a call that creates parameters: `as` name, else
  /// the binding name, made unique within the current scope.
  std::string instanceName(const ast::Expr &e);
  std::string qualify(const std::string &n) const { return prefix_.empty() ? n : prefix_ + "." + n; }
  /// A parameter of the current instance: created, or reused when shared.
  ir::Value *param(const std::string &inst, const std::string &leaf, std::vector<int64_t> shape, ParamInfo::Init init,
                   int64_t fanIn, int64_t fanOut, bool isBias, SourceLoc at);
  /// Marks the scale and shift of normalization instance `inst` (param groups
  /// select them as `norms`).
  void markNorm(const std::string &inst);
  std::optional<int64_t> intArg(const ArgMap &args, const std::string &name, const char *callee, int64_t lo = 1);
  std::optional<bool> boolArg(const ArgMap &args, const std::string &name, const char *callee, bool dflt);
  /// Tensor argument `name` (numbers are turned into scalar constants).
  Val tensorArg(const ArgMap &args, const std::string &name, SourceLoc callLoc);
  /// An optional tensor argument: nullopt when it is not given, else as
  /// tensorArg (an error Val after reporting a bad one).
  std::optional<Val> optionalTensorArg(const ArgMap &args, const std::string &name, SourceLoc callLoc);
  /// Axes from `axis` (an integer or a list, negative counts from the end).
  std::optional<std::vector<int64_t>> axesArg(const ArgMap &args, int64_t rank, const char *callee);
  /// Lowers a call of the builtin `bi` through its table entry's lowering.
  Val callBuiltin(const Builtin &bi, const ast::Expr &e, const ArgMap &args);
  std::optional<double> floatArg(const ArgMap &args, const std::string &name, const std::string &callee, double dflt,
                                 double lo, double hi);
  static std::string fmtNum(double v);
  Val requireF32(const ArgMap &args, const std::string &name, const ast::Expr &e);
  /// An integer argument (no range check), for axes and positions.
  std::optional<int64_t> anyIntArg(const ArgMap &args, const std::string &name, const std::string &callee);

  //--- helpers of builtins/Conv.cpp -----------------------------------------------------
  /// A window argument: one positive integer for every spatial axis, or a
  /// list of `rank` of them; `dflt` when absent.
  std::optional<std::vector<int64_t>> windowArg(const ArgMap &args, const std::string &name, const std::string &callee,
                                                size_t rank, std::optional<int64_t> dflt, int64_t lo = 1);
  /// Padding (top, left, bottom, right) from `padding`: integers as for
  /// windowArg, "valid" (none) or "same" (the output keeps the input's size;
  /// stride 1 only; an odd total puts the extra row/column at the end, as
  /// PyTorch does).
  std::optional<std::vector<int64_t>> paddingArg(const ArgMap &args, const std::string &callee, size_t rank,
                                                 const std::vector<int64_t> &kernel, const std::vector<int64_t> &dil,
                                                 const std::vector<int64_t> &stride, bool allowSame);

  //--- helpers of builtins/Recurrent.cpp ------------------------------------------------
  /// x W (+ b) for x [..., K] of any rank >= 2: a stack of rows times one
  /// matrix (W broadcast over the leading dimensions for rank > 2).
  ir::Value *project(ir::Value *x, ir::Value *w, ir::Value *bias);

  //--- helpers of builtins/Attention.cpp ------------------------------------------------
  /// softmax(q kᵀ / sqrt(d) + masks) v with q [..., T, d], k [..., S, d],
  /// v [..., S, dv]. The causal mask adds -1e9 where key j > query i; a
  /// padding mask m : f32 [N, S] (1 keeps, 0 drops a key) adds (m - 1) 1e9.
  std::optional<ir::Value *> attend(const ast::Expr &e, ir::Value *q, ir::Value *k, ir::Value *v, bool causal,
                                    const Val *mask, const std::vector<Val> &context);

  //--- helpers of builtins/Norm.cpp -----------------------------------------------------
  ir::Value *state(const std::string &name, int64_t size, ParamInfo::Init init, SourceLoc at);

  const ast::Program &p_;
  DiagnosticEngine &d_;
  LoweredModel out_;
  ir::Function *fn_ = nullptr;
  std::unique_ptr<ir::Builder> b_;
  std::string binding_; ///< the statement being elaborated, for instance names
  std::string prefix_;  ///< instance path of the layer being inlined
  bool shared_ = false;
  bool reuse_ = false;            ///< inlining a shared instance: parameters already exist
  ir::Value *ceLogits_ = nullptr; ///< scores of the first cross_entropy, for accuracy
  /// The first bce_with_logits, mse or huber: what it compares (for the task).
  struct {
    ir::Value *pred = nullptr, *target = nullptr;
    bool bce = false;
  } firstPair_;
  int dropoutStreams_ = 0;                                        ///< one random stream per dropout call
  int noiseStreams_ = 0;                                          ///< one random stream per normal/uniform call
  std::vector<std::pair<std::string, ir::Value *>> stateUpdates_; ///< new.<state> results
  int depth_ = 0;
  /// Values of operator-chain levels evaluated ahead of the level above (see eval).
  std::unordered_map<const ast::Expr *, Val> chained_;
  std::set<std::string> usedInstances_;
  std::map<std::string, std::string> instanceCallee_; ///< qualified instance -> callee
};

} // namespace nnc::frontend
