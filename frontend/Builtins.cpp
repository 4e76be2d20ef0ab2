// Builtin function table. Keep in step with docs/LANGUAGE.md.
#include "frontend/Builtins.h"

namespace nnc::frontend {

const std::vector<Builtin> &builtins() {
  static const std::vector<Builtin> table = {
      // Layers and linear algebra
      {"dense", Builtin::Model, {{"x", true}, {"units", true}, {"bias", false}, {"init", false}}, "x W + b with W [K, units]"},
      {"matmul", Builtin::Model, {{"a", true}, {"b", true}}, "matrix product"},
      {"conv2d", Builtin::Model,
       {{"x", true}, {"channels", true}, {"kernel", true}, {"stride", false}, {"padding", false}, {"dilation", false},
        {"groups", false}, {"bias", false}},
       "2-D convolution of [N, C, H, W] with learned [channels, C/groups, KH, KW] weights (padding: n, [h, w], \"same\", \"valid\")"},
      {"conv1d", Builtin::Model,
       {{"x", true}, {"channels", true}, {"kernel", true}, {"stride", false}, {"padding", false}, {"dilation", false},
        {"groups", false}, {"bias", false}},
       "1-D convolution of [N, C, L] with learned [channels, C/groups, K] weights"},
      {"max_pool2d", Builtin::Model, {{"x", true}, {"kernel", true}, {"stride", false}, {"padding", false}},
       "maximum over each window of [N, C, H, W] (stride defaults to the kernel)"},
      {"avg_pool2d", Builtin::Model, {{"x", true}, {"kernel", true}, {"stride", false}, {"padding", false}},
       "mean over each window of [N, C, H, W], padding counted as zeros"},
      {"rnn", Builtin::Model,
       {{"x", true}, {"units", true}, {"h0", false}, {"reverse", false}, {"bidirectional", false}, {"output", false}},
       "Elman RNN over [N, T, F]: h' = tanh(x W_ih + b_ih + h W_hh + b_hh); all states [N, T, H] or output = \"last\""},
      {"lstm", Builtin::Model,
       {{"x", true}, {"units", true}, {"h0", false}, {"c0", false}, {"reverse", false}, {"bidirectional", false},
        {"output", false}},
       "LSTM over [N, T, F] (gates i, f, g, o as PyTorch); all hidden states [N, T, H] or output = \"last\""},
      {"gru", Builtin::Model,
       {{"x", true}, {"units", true}, {"h0", false}, {"reverse", false}, {"bidirectional", false}, {"output", false}},
       "GRU over [N, T, F] (gates r, z, n as PyTorch); all states [N, T, H] or output = \"last\""},
      {"attention", Builtin::Model, {{"q", true}, {"k", true}, {"v", true}, {"causal", false}, {"mask", false}},
       "scaled dot-product attention softmax(q kT / sqrt(d) + masks) v over [..., T, d] (mask: f32 [N, S], 1 keeps)"},
      {"multi_head_attention", Builtin::Model, {{"x", true}, {"heads", true}, {"causal", false}, {"mask", false}},
       "self-attention of [N, T, D] with learned q, k, v, output projections [D, D], split into heads"},
      {"positional_encoding", Builtin::Model, {{"x", true}, {"kind", false}},
       "x [N, T, D] plus sinusoidal (default) or learned (\"learned\") position vectors"},
      {"global_avg_pool", Builtin::Model, {{"x", true}}, "[N, C, H, W] -> [N, C], the mean of each channel"},
      // Activations and elementwise math
      {"relu", Builtin::Model, {{"x", true}}, "max(x, 0)"},
      {"sigmoid", Builtin::Model, {{"x", true}}, "1 / (1 + exp(-x))"},
      {"tanh", Builtin::Model, {{"x", true}}, "hyperbolic tangent"},
      {"exp", Builtin::Model, {{"x", true}}, "e^x"},
      {"log", Builtin::Model, {{"x", true}}, "natural logarithm"},
      {"sqrt", Builtin::Model, {{"x", true}}, "square root"},
      {"abs", Builtin::Model, {{"x", true}}, "absolute value"},
      {"gelu", Builtin::Model, {{"x", true}}, "x * Phi(x), Phi the standard normal CDF (exact, erf-based)"},
      {"leaky_relu", Builtin::Model, {{"x", true}, {"slope", false}}, "x if x > 0 else slope * x (slope 0.01)"},
      {"elu", Builtin::Model, {{"x", true}, {"alpha", false}}, "x if x > 0 else alpha * (exp(x) - 1) (alpha 1)"},
      {"softplus", Builtin::Model, {{"x", true}}, "log(1 + exp(x)), stable"},
      {"maximum", Builtin::Model, {{"a", true}, {"b", true}}, "elementwise maximum"},
      {"softmax", Builtin::Model, {{"x", true}}, "softmax over the last axis"},
      {"log_softmax", Builtin::Model, {{"x", true}}, "log of softmax over the last axis, stable"},
      // Reductions
      {"sum", Builtin::Model, {{"x", true}, {"axis", false}, {"keepdims", false}}, "sum over axes (default all)"},
      {"mean", Builtin::Model, {{"x", true}, {"axis", false}, {"keepdims", false}}, "mean over axes (default all)"},
      {"max", Builtin::Model, {{"x", true}, {"axis", false}, {"keepdims", false}}, "maximum over axes (default all)"},
      // Shapes
      {"reshape", Builtin::Model, {{"x", true}, {"shape", true}}, "same elements, new shape"},
      {"flatten", Builtin::Model, {{"x", true}}, "[N, ...] -> [N, prod(...)]"},
      {"transpose", Builtin::Model, {{"x", true}, {"perm", false}}, "permute axes (default reverse)"},
      {"permute", Builtin::Model, {{"x", true}, {"dims", true}}, "permute axes: result axis i is x's axis dims[i]"},
      {"slice", Builtin::Model, {{"x", true}, {"axis", true}, {"start", true}, {"end", true}},
       "entries [start, end) along axis (negative counts from the end)"},
      {"split", Builtin::Model, {{"x", true}, {"parts", true}, {"axis", false}},
       "pieces along axis (default last): a number of equal parts or a list of sizes; bind with a, b = split(...)"},
      {"concat", Builtin::Model, {{"xs", true}, {"axis", false}}, "join a list of tensors along axis (default last)"},
      {"dropout", Builtin::Model, {{"x", true}, {"p", false}},
       "training only: zero each entry with probability p, scale the rest by 1/(1-p) (p 0.5)"},
      {"batch_norm", Builtin::Model, {{"x", true}, {"momentum", false}, {"eps", false}},
       "normalize each feature over the batch (running statistics in evaluation), learned scale and shift"},
      {"layer_norm", Builtin::Model, {{"x", true}, {"eps", false}},
       "normalize over the last axis, then a learned scale and shift (eps 1e-5)"},
      {"embedding", Builtin::Model, {{"ids", true}, {"vocab", true}, {"dim", true}},
       "rows of a learned [vocab, dim] table for i64 ids"},
      // Losses and penalties
      {"cross_entropy", Builtin::Model, {{"logits", true}, {"labels", true}}, "mean negative log-likelihood of softmax(logits)"},
      {"mse", Builtin::Model, {{"pred", true}, {"target", true}}, "mean squared error"},
      {"bce_with_logits", Builtin::Model, {{"logits", true}, {"targets", true}},
       "mean binary cross-entropy of sigmoid(logits) against targets in [0, 1], stable"},
      {"huber", Builtin::Model, {{"pred", true}, {"target", true}, {"delta", false}},
       "mean Huber loss: 0.5 d^2 if |d| <= delta else delta (|d| - delta / 2) (delta 1)"},
      {"l1", Builtin::Model, {{"x", true}}, "sum of absolute values"},
      {"l2", Builtin::Model, {{"x", true}}, "sum of squares"},
      // Train blocks: data
      {"csv", Builtin::Train, {{"path", true}, {"label", false}, {"image", false}}, "numeric CSV, one example per row (image = [H, W] or [C, H, W] gives rows an image geometry)"},
      {"idx", Builtin::Train, {{"images", true}, {"labels", true}}, "IDX image and label files (gzipped or raw)"},
      {"text", Builtin::Train, {{"path", true}, {"context", true}, {"stride", false}},
       "byte windows of a text file: x = bytes [i, i+context), y = the same shifted by one (stride defaults to context)"},
      {"scale", Builtin::Train, {{"data", true}, {"factor", true}}, "multiply every feature by factor"},
      {"standardize", Builtin::Train, {{"data", true}}, "per-feature zero mean, unit variance (training-set statistics)"},
      {"min_max", Builtin::Train, {{"data", true}}, "per-feature scaling to [0, 1] (training-set minimum and maximum)"},
      {"one_hot", Builtin::Train, {{"data", true}}, "labels as f32 one-hot rows (for a label f32[N, C])"},
      {"random_crop", Builtin::Train, {{"data", true}, {"padding", true}}, "training only: pad images by padding zeros and crop a random window of the original size"},
      {"hflip", Builtin::Train, {{"data", true}}, "training only: mirror images left-right with probability 1/2"},
      {"random_shift", Builtin::Train, {{"data", true}, {"pixels", true}}, "training only: move images by up to pixels in each direction, zeros shifted in"},
      {"gaussian_noise", Builtin::Train, {{"data", true}, {"std", true}}, "training only: add normal noise of this standard deviation to every feature"},
      {"shuffle", Builtin::Train, {{"data", true}}, "reshuffle every epoch (seeded)"},
      {"batch", Builtin::Train, {{"data", true}, {"size", true}}, "mini-batches of size examples"},
      // Train blocks: optimizers and control
      {"sgd", Builtin::Train, {{"lr", false}, {"momentum", false}, {"nesterov", false}, {"weight_decay", false}, {"clip_norm", false}, {"clip_value", false}}, "stochastic gradient descent, with optional (Nesterov) momentum"},
      {"adam", Builtin::Train, {{"lr", false}, {"beta1", false}, {"beta2", false}, {"eps", false}, {"weight_decay", false}, {"clip_norm", false}, {"clip_value", false}}, "Adam (weight decay added to the gradient)"},
      {"adamw", Builtin::Train, {{"lr", false}, {"beta1", false}, {"beta2", false}, {"eps", false}, {"weight_decay", false}, {"clip_norm", false}, {"clip_value", false}}, "Adam with decoupled weight decay (default 0.01)"},
      {"rmsprop", Builtin::Train, {{"lr", false}, {"alpha", false}, {"eps", false}, {"momentum", false}, {"centered", false}, {"weight_decay", false}, {"clip_norm", false}, {"clip_value", false}}, "RMSProp"},
      {"adagrad", Builtin::Train, {{"lr", false}, {"eps", false}, {"weight_decay", false}, {"clip_norm", false}, {"clip_value", false}}, "Adagrad"},
      {"param_group", Builtin::Train, {{"params", true}, {"weight_decay", false}, {"lr_scale", false}}, "settings for some parameters: weights, biases, norms, params, a layer instance or a parameter name"},
      {"step", Builtin::Train, {{"every", true}, {"gamma", false}}, "learning rate times gamma (default 0.1) every N epochs"},
      {"exponential", Builtin::Train, {{"gamma", true}}, "learning rate times gamma after every epoch"},
      {"cosine", Builtin::Train, {{"warmup", false}, {"min_lr", false}}, "linear warm-up over warmup epochs, then cosine decay to min_lr at the last step"},
      {"one_cycle", Builtin::Train, {{"max_lr", false}, {"pct_start", false}, {"div_factor", false}, {"final_div_factor", false}}, "one-cycle policy (rise to max_lr, then anneal), stepped every batch"},
      {"reduce_on_plateau", Builtin::Train, {{"monitor", false}, {"factor", false}, {"patience", false}, {"min_lr", false}, {"threshold", false}}, "learning rate times factor when a metric stops improving"},
      {"checkpoint", Builtin::Train, {{"path", true}, {"every", false}}, "write the full training state every N epochs (atomically); resume with --resume"},
      {"top_k", Builtin::Train, {{"k", true}}, "metric: the label is among the k best-scored classes"},
      {"early_stop", Builtin::Train, {{"monitor", false}, {"patience", false}, {"min_delta", false}}, "stop when a metric stops improving"},
  };
  return table;
}

const Builtin *findBuiltin(const std::string &name, Builtin::Where where) {
  for (const Builtin &b : builtins())
    if (b.where == where && name == b.name)
      return &b;
  return nullptr;
}

} // namespace nnc::frontend
