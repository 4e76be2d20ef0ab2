// The runtime of the libraries `nnc compile` writes; see nnc_aot.h.
//
// A state owns the model's tensors (parameters, optimizer and model state,
// the data statistics) as the weights file holds them; a context owns one
// thread's scratch: an arena per compiled function, the batch buffers and
// the results. Calls bind buffers by role and name, as runtime::Trainer
// does for the JIT: inputs and the label from the caller (preprocessed into
// the context's batch buffers), parameters and state from the state,
// the learning rate and the dropout seed as scalars. Predictions and
// evaluation share the state (a shared lock); a train step, load and set
// take it alone. Nothing here throws past the C boundary.
#include "runtime/aot/nnc_aot.h"

#include "runtime/Checkpoint.h"
#include "runtime/FileUtil.h"
#include "runtime/Gemm.h"
#include "runtime/Seed.h"
#include "runtime/Tensor.h"
#include "runtime/ThreadPool.h"

#include <xmmintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string>
#include <vector>

using nnc::runtime::DType;
using nnc::runtime::Tensor;

namespace {

thread_local std::string lastError;

/// A failure with its error code.
struct Failure {
  int code;
  std::string message;
};

/// `p`, which must not be null.
template <class T> T *need(T *p, const char *what) {
  if (!p)
    throw Failure{NNC_AOT_EINVAL, std::string(what) + " is null"};
  return p;
}

/// Runs `body`, turning every failure into a code and a message.
template <class F> int guarded(F &&body) {
  try {
    body();
    lastError.clear();
    return NNC_AOT_OK;
  } catch (const Failure &f) {
    lastError = f.message;
    return f.code;
  } catch (const nnc::runtime::Error &e) {
    lastError = e.what();
    return NNC_AOT_EFORMAT;
  } catch (const std::bad_alloc &) {
    lastError = "out of memory";
    return NNC_AOT_ENOMEM;
  } catch (const std::exception &e) {
    lastError = e.what();
    return NNC_AOT_EINTERNAL;
  } catch (...) {
    lastError = "unknown failure";
    return NNC_AOT_EINTERNAL;
  }
}

int64_t elements(const nnc_aot_buffer &b) {
  int64_t n = 1;
  for (int i = 0; i < b.rank; ++i)
    n *= b.shape[i];
  return n;
}

size_t elementBytes(int dtype) { return dtype == NNC_AOT_F32 ? 4 : 8; }

/// Bytes of one row (example) of a buffer whose first dimension is the batch.
size_t rowBytes(const nnc_aot_buffer &b) { return size_t(elements(b) / b.shape[0]) * elementBytes(b.dtype); }

/// Flush-to-zero and denormals-are-zero for the duration of a call, as the
/// compiled code assumes (runtime::enableFlushToZero); the caller's mode
/// comes back afterwards.
struct FlushToZero {
  unsigned saved = _mm_getcsr();
  FlushToZero() { _mm_setcsr(saved | 0x8040); }
  ~FlushToZero() { _mm_setcsr(saved); }
};

} // namespace

struct nnc_aot_state {
  const nnc_aot_model *model = nullptr;
  int variant = 0;
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  std::vector<std::string> order; ///< the tensors in the weights file's order
  std::shared_mutex lock;
  std::atomic<uint64_t> rngStep{0};

  const nnc_aot_function &function(const char *name, int64_t batch) const {
    for (int i = 0; i < model->nfunctions; ++i) {
      const nnc_aot_function &f = model->functions[i];
      if (std::strcmp(f.name, name) == 0 && (batch == 0 || f.batch == batch))
        return f;
    }
    throw Failure{NNC_AOT_EINVAL, std::string("the library has no compiled '") + name + "'"};
  }

  /// The f32 tensor `name` of `count` elements.
  Tensor &f32Tensor(const char *name, int64_t count) {
    auto it = tensors.find(need(name, "the name"));
    if (it == tensors.end() || it->second.dtype() != DType::F32 || it->second.numel() != count)
      throw Failure{NNC_AOT_EINVAL, std::string("no f32 tensor '") + name + "' of " + std::to_string(count) +
                                        " elements"};
    return it->second;
  }

  /// Checks that `c` holds every parameter and state tensor the compiled
  /// functions read, with their shapes, and takes it.
  void adopt(nnc::runtime::Checkpoint c, const std::string &what) {
    for (int i = 0; i < model->nfunctions; ++i) {
      const nnc_aot_function &f = model->functions[i];
      for (int a = 0; a < f.nargs; ++a) {
        const nnc_aot_buffer &b = f.args[a];
        if (b.role != NNC_AOT_PARAM && b.role != NNC_AOT_STATE)
          continue;
        auto it = c.tensors.find(b.name);
        if (it == c.tensors.end())
          throw Failure{NNC_AOT_EFORMAT, what + " has no tensor '" + b.name + "', which model '" + model->model +
                                             "' needs"};
        std::vector<int64_t> shape(b.shape, b.shape + b.rank);
        if (it->second.shape() != shape || int(it->second.dtype() != DType::F32) != b.dtype)
          throw Failure{NNC_AOT_EFORMAT, what + ": tensor '" + b.name + "' is " + it->second.typeString() +
                                             ", but model '" + model->model + "' needs another shape"};
      }
    }
    if (model->preprocess.standardize)
      for (const char *n : {"data.mean", "data.stddev"})
        if (!c.tensors.count(n))
          throw Failure{NNC_AOT_EFORMAT, what + " has no tensor '" + std::string(n) +
                                             "' (the statistics the model's inputs are standardized with)"};
    std::vector<std::string> names;
    for (const auto &kv : c.tensors)
      names.push_back(kv.first);
    tensors = std::move(c.tensors);
    metadata = std::move(c.metadata);
    order = std::move(names);
  }
};

struct nnc_aot_ctx {
  nnc_aot_state *state = nullptr;
  std::map<const nnc_aot_function *, Tensor> arenas;
  std::map<std::string, Tensor> scratch; ///< batch inputs, labels and results by name
  std::vector<void *> bound;             ///< per argument of the next call: its input or label rows

  char *arena(const nnc_aot_function &f) {
    Tensor &t = arenas[&f];
    int64_t words = std::max<int64_t>(16, (f.arena_bytes + 3) / 4);
    if (t.numel() < words)
      t = Tensor(DType::F32, {words});
    return static_cast<char *>(t.data());
  }

  Tensor &buffer(const std::string &key, const nnc_aot_buffer &b) {
    Tensor &t = scratch[key];
    std::vector<int64_t> shape(b.shape, b.shape + b.rank);
    if (!t.data() || t.shape() != shape)
      t = Tensor(b.dtype == NNC_AOT_F32 ? DType::F32 : DType::I64, shape);
    return t;
  }

  /// Binds rows [from, from + count) of the caller's inputs and label to f's
  /// arguments (`bound`): where the rows fill the batch and need no
  /// preprocessing, the caller's memory itself (compiled code never writes
  /// its inputs); else a copy in a batch buffer (zero rows after them), f32
  /// inputs preprocessed as the data pipeline does (runtime::scale, then
  /// applyStandardizer).
  void gather(const nnc_aot_function &f, const void *const *inputs, const void *label, int64_t from, int64_t count) {
    bound.assign(size_t(f.nargs), nullptr);
    const nnc_aot_preprocess &pre = state->model->preprocess;
    const Tensor *mean = pre.standardize ? &state->tensors.at("data.mean") : nullptr;
    const Tensor *sd = pre.standardize ? &state->tensors.at("data.stddev") : nullptr;
    int input = 0;
    int64_t feature = 0; // the first standardized feature of this input
    for (int a = 0; a < f.nargs; ++a) {
      const nnc_aot_buffer &b = f.args[a];
      if (b.role != NNC_AOT_INPUT && b.role != NNC_AOT_LABEL)
        continue;
      const void *src = b.role == NNC_AOT_LABEL ? label : inputs[input++];
      if (!src)
        throw Failure{NNC_AOT_EINVAL, std::string("no data for '") + b.name + "'"};
      size_t row = rowBytes(b);
      bool preprocessed = b.role == NNC_AOT_INPUT && b.dtype == NNC_AOT_F32 && (pre.nscales || mean);
      if (count == b.shape[0] && !preprocessed) {
        bound[size_t(a)] = const_cast<char *>(static_cast<const char *>(src) + size_t(from) * row);
        continue;
      }
      Tensor &t = buffer(b.name, b);
      bound[size_t(a)] = t.data();
      const char *rows = static_cast<const char *>(src) + size_t(from) * row;
      int64_t per = elements(b) / b.shape[0];
      float *p = t.f32();
      // The copy and the first scale in one pass (the same rounding as
      // copying, then scaling).
      if (preprocessed && pre.nscales)
        for (int64_t i = 0, e = count * per; i < e; ++i)
          p[i] = reinterpret_cast<const float *>(rows)[i] * float(pre.scales[0]);
      else
        std::memcpy(t.data(), rows, size_t(count) * row);
      std::memset(static_cast<char *>(t.data()) + size_t(count) * row, 0, size_t(b.shape[0] - count) * row);
      if (!preprocessed)
        continue;
      for (int s = 1; s < pre.nscales; ++s)
        for (int64_t i = 0, e = count * per; i < e; ++i)
          p[i] *= float(pre.scales[s]);
      if (mean) {
        if (feature + per > mean->numel() || feature + per > sd->numel())
          throw Failure{NNC_AOT_EFORMAT, "the weights' data.mean and data.stddev have fewer features than the inputs"};
        for (int64_t r = 0; r < count; ++r)
          for (int64_t j = 0; j < per; ++j)
            p[r * per + j] = (p[r * per + j] - mean->f32()[feature + j]) / sd->f32()[feature + j];
      }
      feature += per;
    }
  }

  /// Calls f on the arguments gather bound; results go to `into` (one
  /// pointer per result, null: a buffer of the context's) unless written over
  /// an argument. Returns the result buffers.
  std::vector<void *> call(const nnc_aot_function &f, float lr, void *const *into = nullptr) {
    Tensor lrT(DType::F32, {}), rngT(DType::I64, {});
    lrT.f32()[0] = lr;
    rngT.i64()[0] = nnc::runtime::dropoutSeed(state->model->seed, state->rngStep++);
    std::vector<void *> bufs;
    for (int a = 0; a < f.nargs; ++a) {
      const nnc_aot_buffer &b = f.args[a];
      if (b.role == NNC_AOT_INPUT || b.role == NNC_AOT_LABEL)
        bufs.push_back(bound.at(size_t(a)));
      else if (b.role == NNC_AOT_SCALAR)
        bufs.push_back(std::strcmp(b.name, "rng") == 0 ? rngT.data() : lrT.data());
      else
        bufs.push_back(state->tensors.at(b.name).data());
    }
    for (int r = 0; r < f.nresults; ++r) {
      const nnc_aot_buffer &b = f.results[r];
      bufs.push_back(b.in_place_of >= 0 ? bufs[size_t(b.in_place_of)]
                     : into && into[r] ? into[r]
                                       : buffer(std::string("result:") + f.name + ":" + b.name, b).data());
    }
    FlushToZero ftz;
    f.entries[state->variant](bufs.data(), arena(f));
    return std::vector<void *>(bufs.begin() + f.nargs, bufs.end());
  }
};

namespace {

int resultIndex(const nnc_aot_function &f, const char *name) {
  for (int r = 0; r < f.nresults; ++r)
    if (std::strcmp(f.results[r].name, name) == 0)
      return r;
  throw Failure{NNC_AOT_EINTERNAL, std::string("compiled '") + f.name + "' has no result '" + name + "'"};
}

void requireRows(int64_t rows, const char *what) {
  if (rows < 1)
    throw Failure{NNC_AOT_EINVAL, std::string(what) + ": rows must be at least 1, got " + std::to_string(rows)};
}

/// A weights file: EIO when it cannot be read, EFORMAT when it is malformed.
nnc::runtime::Checkpoint readWeightsFile(const char *path) {
  std::string bytes;
  try {
    bytes = nnc::runtime::readFile(path);
  } catch (const nnc::runtime::Error &e) {
    throw Failure{NNC_AOT_EIO, e.what()};
  }
  return nnc::runtime::parseSafetensors(bytes, path);
}

nnc::runtime::Checkpoint readWeights(const nnc_aot_model *m, const char *path) {
  if (path)
    return readWeightsFile(path);
  if (*m->weights_size == 0)
    throw Failure{NNC_AOT_EINVAL, std::string("the library of ") + m->model +
                                      " has no weights built in (it was compiled with --weights-file): open it with "
                                      "the path of its .safetensors file"};
  std::string bytes(reinterpret_cast<const char *>(m->weights), size_t(*m->weights_size));
  return nnc::runtime::parseSafetensors(bytes, std::string("the weights built into ") + m->model);
}

/// Installs the variant's GEMM micro-kernels in the runtime.
void installKernels(const nnc_aot_variant &v) {
  nnc::runtime::GemmKernels k;
  k.mr = v.gemm_rows;
  k.nr = v.gemm_cols;
  for (int i = 0; i < v.nkernels; ++i) {
    int rows = v.kernel_rows[i];
    auto fn = reinterpret_cast<nnc::runtime::GemmMicroKernel>(v.kernels[i]);
    if (!v.kernel_in_place[i])
      k.packed[rows] = fn;
    if (v.kernel_in_place[i] || !k.inPlace[rows]) {
      k.inPlace[rows] = fn;
      k.inPlaceCols[rows] = v.kernel_cols[i];
    }
  }
  nnc::runtime::setGemmKernels(k);
}

} // namespace

extern "C" {

int nnc_aot_open(const nnc_aot_model *model, const char *path, nnc_aot_state **out) {
  return guarded([&] {
    need(out, "the state pointer");
    *out = nullptr;
    need(model, "the model");
    // The best variant this CPU runs, or the one NNC_AOT_VARIANT names (if
    // the CPU runs it: tests run each variant of a portable library).
    const char *forced = getenv("NNC_AOT_VARIANT");
    int variant = -1;
    for (int i = 0; i < model->nvariants && variant < 0; ++i)
      if (model->variants[i].supported() && (!forced || !*forced || std::strcmp(forced, model->variants[i].name) == 0))
        variant = i;
    if (variant < 0 && forced && *forced) {
      std::string names;
      for (int i = 0; i < model->nvariants; ++i)
        names += std::string(i ? ", " : "") + model->variants[i].name;
      throw Failure{NNC_AOT_ECPU, std::string("NNC_AOT_VARIANT=") + forced +
                                      " names no variant of this library that this CPU runs (it has " + names + ")"};
    }
    if (variant < 0)
      throw Failure{NNC_AOT_ECPU, std::string("this CPU runs none of the variants the library was compiled for (") +
                                      model->variants[model->nvariants - 1].name + " at the least)"};
    auto s = std::make_unique<nnc_aot_state>();
    s->model = model;
    s->variant = variant;
    s->adopt(readWeights(model, path), path ? std::string("'") + path + "'" : std::string("the built-in weights"));
    static std::once_flag once;
    std::call_once(once, [&] { installKernels(model->variants[variant]); });
    *out = s.release();
  });
}

void nnc_aot_close(nnc_aot_state *state) { delete state; }

int nnc_aot_ctx_create(nnc_aot_state *state, nnc_aot_ctx **out) {
  return guarded([&] {
    need(out, "the context pointer");
    *out = nullptr;
    auto c = std::make_unique<nnc_aot_ctx>();
    c->state = need(state, "the state");
    *out = c.release();
  });
}

void nnc_aot_ctx_destroy(nnc_aot_ctx *ctx) { delete ctx; }

int nnc_aot_predict(nnc_aot_ctx *ctx, int64_t rows, const void *const *inputs, void *const *outputs) {
  return guarded([&] {
    need(ctx, "the context");
    need(outputs, "the outputs");
    requireRows(rows, "predict");
    std::shared_lock<std::shared_mutex> lock(ctx->state->lock);
    const nnc_aot_function &f = ctx->state->function("predict", 0);
    // Rows in batches of the compiled size, the last one padded with zeros:
    // predictions are row by row (batch statistics are not used in eval mode).
    std::vector<void *> direct(size_t(f.nresults));
    for (int64_t from = 0; from < rows; from += f.batch) {
      int64_t count = std::min(f.batch, rows - from);
      ctx->gather(f, need(inputs, "the inputs"), nullptr, from, count);
      // A full batch writes into the caller's outputs; a last, partial one
      // into the context's, and its rows are copied.
      for (int r = 0; r < f.nresults; ++r) {
        const nnc_aot_buffer &b = f.results[r];
        size_t row = rowBytes(b);
        direct[size_t(r)] = count == f.batch ? static_cast<char *>(need(outputs[r], "an output")) + size_t(from) * row
                                             : nullptr;
      }
      std::vector<void *> res = ctx->call(f, 0, direct.data());
      for (int r = 0; r < f.nresults && count < f.batch; ++r) {
        const nnc_aot_buffer &b = f.results[r];
        size_t row = rowBytes(b);
        std::memcpy(static_cast<char *>(need(outputs[r], "an output")) + size_t(from) * row, res[size_t(r)],
                    size_t(count) * row);
      }
    }
  });
}

int nnc_aot_evaluate(nnc_aot_ctx *ctx, int64_t rows, const void *const *inputs, const void *label, float *loss) {
  return guarded([&] {
    need(ctx, "the context");
    need(loss, "the loss pointer");
    requireRows(rows, "evaluate");
    std::shared_lock<std::shared_mutex> lock(ctx->state->lock);
    const nnc_aot_function &full = ctx->state->function("evaluate", 0);
    const nnc_aot_function &one = ctx->state->function("evaluate", 1);
    // The mean over all rows: full batches, then the rest one row at a time
    // (padding would count the padded rows in the mean).
    double sum = 0;
    for (int64_t from = 0; from < rows;) {
      const nnc_aot_function &f = rows - from >= full.batch ? full : one;
      ctx->gather(f, need(inputs, "the inputs"), need(label, "the label"), from, f.batch);
      std::vector<void *> res = ctx->call(f, 0);
      sum += double(*static_cast<const float *>(res[size_t(resultIndex(f, "loss"))])) * double(f.batch);
      from += f.batch;
    }
    *loss = float(sum / double(rows));
  });
}

int nnc_aot_train_step(nnc_aot_ctx *ctx, int64_t rows, const void *const *inputs, const void *label, float lr,
                       float *loss) {
  return guarded([&] {
    need(ctx, "the context");
    std::unique_lock<std::shared_mutex> lock(ctx->state->lock);
    const nnc_aot_function &f = ctx->state->function("train_step", 0);
    if (rows != f.batch)
      throw Failure{NNC_AOT_EINVAL, "train_step: the library was compiled for batches of " + std::to_string(f.batch) +
                                        " rows, got " + std::to_string(rows) +
                                        " (compile with --batch to change it)"};
    ctx->gather(f, need(inputs, "the inputs"), need(label, "the label"), 0, rows);
    std::vector<void *> res = ctx->call(f, lr);
    for (int r = 0; r < f.nresults; ++r) {
      const nnc_aot_buffer &b = f.results[r];
      std::string name = b.name;
      if (name == "loss" && loss)
        *loss = *static_cast<const float *>(res[size_t(r)]);
      if (name.rfind("new.", 0) == 0 && b.in_place_of < 0) {
        Tensor &t = ctx->state->tensors.at(name.substr(4));
        std::memcpy(t.data(), res[size_t(r)], t.bytes());
      }
    }
  });
}

int nnc_aot_save(nnc_aot_state *state, const char *path) {
  return guarded([&] {
    need(state, "the state");
    need(path, "the path");
    std::shared_lock<std::shared_mutex> lock(state->lock);
    std::vector<std::pair<std::string, const Tensor *>> list;
    for (const std::string &n : state->order)
      list.push_back({n, &state->tensors.at(n)});
    try {
      nnc::runtime::saveSafetensors(path, list, state->metadata);
    } catch (const nnc::runtime::Error &e) {
      throw Failure{NNC_AOT_EIO, e.what()};
    }
  });
}

int nnc_aot_load(nnc_aot_state *state, const char *path) {
  return guarded([&] {
    need(state, "the state");
    need(path, "the path");
    nnc::runtime::Checkpoint c = readWeightsFile(path);
    std::unique_lock<std::shared_mutex> lock(state->lock);
    state->adopt(std::move(c), std::string("'") + path + "'");
  });
}

int nnc_aot_tensor_count(const nnc_aot_state *state) { return state ? int(state->order.size()) : 0; }

const char *nnc_aot_tensor_name(const nnc_aot_state *state, int i) {
  return state && i >= 0 && size_t(i) < state->order.size() ? state->order[size_t(i)].c_str() : nullptr;
}

int64_t nnc_aot_tensor_size(const nnc_aot_state *state, const char *name) {
  if (!state || !name)
    return -1;
  auto it = state->tensors.find(name);
  return it == state->tensors.end() ? -1 : it->second.numel();
}

int nnc_aot_get(nnc_aot_state *state, const char *name, float *out, int64_t count) {
  return guarded([&] {
    need(out, "the output");
    std::shared_lock<std::shared_mutex> lock(need(state, "the state")->lock);
    Tensor &t = state->f32Tensor(name, count);
    std::memcpy(out, t.data(), t.bytes());
  });
}

int nnc_aot_set(nnc_aot_state *state, const char *name, const float *in, int64_t count) {
  return guarded([&] {
    need(in, "the input");
    std::unique_lock<std::shared_mutex> lock(need(state, "the state")->lock);
    Tensor &t = state->f32Tensor(name, count);
    std::memcpy(t.data(), in, t.bytes());
  });
}

int nnc_aot_set_threads(int threads) {
  return guarded([&] {
    if (threads < 0 || threads > 1024)
      throw Failure{NNC_AOT_EINVAL, "threads must be in [0, 1024], got " + std::to_string(threads)};
    nnc::runtime::setGlobalThreads(threads);
  });
}

const char *nnc_aot_last_error(void) { return lastError.c_str(); }

const char *nnc_aot_variant_name(const nnc_aot_state *state) {
  return state ? state->model->variants[state->variant].name : "";
}

} // extern "C"
