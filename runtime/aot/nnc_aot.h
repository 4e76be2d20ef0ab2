/* The runtime of the libraries `nnc compile` writes, as C. A generated
 * library holds its model's compiled functions (codegen/AOT.h), a
 * description of them in the structs below (written by nnc as C source),
 * the weights, and this runtime (runtime/aot/AotRuntime.cpp with the GEMM
 * driver and thread pool of runtime/). The model's own header (<model>.h)
 * wraps these functions under the model's name; user code never includes
 * this file. Every function returns 0 or an NNC_AOT_E* code and leaves a
 * message for nnc_aot_last_error() on the calling thread; none aborts.
 *
 * Internal names only: `nnc compile` makes every symbol of the library
 * local except the model's API, so two libraries built by nnc link into one
 * program. */
#ifndef NNC_AOT_H
#define NNC_AOT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The calling convention of compiled functions (codegen/JIT.h's EntryFn). */
typedef void (*nnc_aot_entry)(void **buffers, char *arena);
/* A GEMM micro-kernel (runtime/Gemm.h's GemmMicroKernel). */
typedef void (*nnc_aot_gemm_kernel)(int64_t K, const float *A, const float *B, int64_t rsB, float *C, int64_t ldc,
                                    int64_t m, int64_t n, int64_t accumulate);

enum { NNC_AOT_F32 = 0, NNC_AOT_I64 = 1 };
/* ir::ArgRole, in its order. */
enum { NNC_AOT_INPUT = 0, NNC_AOT_LABEL = 1, NNC_AOT_PARAM = 2, NNC_AOT_STATE = 3, NNC_AOT_SCALAR = 4 };
/* Error codes. */
enum {
  NNC_AOT_OK = 0,
  NNC_AOT_EINVAL = 1,  /* a null pointer, a row count out of range, an unknown name */
  NNC_AOT_EIO = 2,     /* a file could not be read or written */
  NNC_AOT_EFORMAT = 3, /* a weights file that is malformed or does not fit the model */
  NNC_AOT_ECPU = 4,    /* the CPU lacks what every compiled variant needs */
  NNC_AOT_ENOMEM = 5,
  NNC_AOT_EINTERNAL = 6
};

/* One buffer of a compiled function: an argument or a result. */
typedef struct {
  const char *name;
  int dtype, role; /* role: arguments only */
  int rank;
  const int64_t *shape;
  int in_place_of; /* results: the argument written over, or -1 */
} nnc_aot_buffer;

/* One compiled function at one batch size. */
typedef struct {
  const char *name; /* "predict", "evaluate" or "train_step" */
  int64_t batch;
  int64_t arena_bytes;
  int nargs;
  const nnc_aot_buffer *args;
  int nresults;
  const nnc_aot_buffer *results;
  const nnc_aot_entry *entries; /* one per variant */
} nnc_aot_function;

/* One CPU variant of the code and its GEMM micro-kernels. */
typedef struct {
  const char *name;
  int (*supported)(void); /* does this CPU run it? */
  int gemm_rows, gemm_cols;
  int nkernels;
  const nnc_aot_gemm_kernel *kernels;
  const int *kernel_rows, *kernel_cols, *kernel_in_place;
} nnc_aot_variant;

/* The preprocessing of raw features, as the train block says: each f32
 * input is multiplied by each scale factor in turn, then standardized
 * (x - mean) / stddev with the weights' data.mean and data.stddev (min_max
 * stores its minimum and range there), features counted across the f32
 * inputs in order, as nnc's data pipeline does. */
typedef struct {
  int nscales;
  const double *scales;
  int standardize;
} nnc_aot_preprocess;

/* A model: its functions, variants (best first), weights and preprocessing. */
typedef struct {
  const char *model;
  int nfunctions;
  const nnc_aot_function *functions;
  int nvariants;
  const nnc_aot_variant *variants;
  const unsigned char *weights; /* a safetensors image: every parameter and state tensor */
  const int64_t *weights_size;
  nnc_aot_preprocess preprocess;
  uint64_t seed; /* dropout's random stream */
} nnc_aot_model;

typedef struct nnc_aot_state nnc_aot_state; /* weights and optimizer state */
typedef struct nnc_aot_ctx nnc_aot_ctx;     /* one thread's workspace */

/* Opens a model: its weights from `path` (a safetensors file) or, when path
 * is null, those built in; picks the best variant this CPU runs. */
int nnc_aot_open(const nnc_aot_model *model, const char *path, nnc_aot_state **out);
void nnc_aot_close(nnc_aot_state *state);
int nnc_aot_ctx_create(nnc_aot_state *state, nnc_aot_ctx **out);
void nnc_aot_ctx_destroy(nnc_aot_ctx *ctx);

/* predict: outputs[j] receives result j for `rows` rows (any number >= 1,
 * run in batches of the compiled size). */
int nnc_aot_predict(nnc_aot_ctx *ctx, int64_t rows, const void *const *inputs, void *const *outputs);
/* evaluate: the mean loss over `rows` rows (any number >= 1). */
int nnc_aot_evaluate(nnc_aot_ctx *ctx, int64_t rows, const void *const *inputs, const void *label, float *loss);
/* train_step: one optimizer step on exactly the compiled batch of rows at
 * learning rate `lr`; *loss (if not null) gets the batch's loss. */
int nnc_aot_train_step(nnc_aot_ctx *ctx, int64_t rows, const void *const *inputs, const void *label, float lr,
                       float *loss);

int nnc_aot_save(nnc_aot_state *state, const char *path);
int nnc_aot_load(nnc_aot_state *state, const char *path);
int nnc_aot_tensor_count(const nnc_aot_state *state);
const char *nnc_aot_tensor_name(const nnc_aot_state *state, int i);
int64_t nnc_aot_tensor_size(const nnc_aot_state *state, const char *name);
int nnc_aot_get(nnc_aot_state *state, const char *name, float *out, int64_t count);
int nnc_aot_set(nnc_aot_state *state, const char *name, const float *in, int64_t count);
/* Runs compiled code on `threads` threads from now on (0: one per core, the
 * default); not while other calls run. */
int nnc_aot_set_threads(int threads);
/* The message of the calling thread's last failure ("" if none). */
const char *nnc_aot_last_error(void);
/* Which variant the state runs ("native", "avx512", ...). */
const char *nnc_aot_variant_name(const nnc_aot_state *state);

#ifdef __cplusplus
}
#endif

#endif
