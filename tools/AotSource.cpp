// The C text of a library `nnc compile` writes: the model's header (its
// sizes and entry points) and the glue that describes the compiled
// functions to the runtime (runtime/aot/nnc_aot.h) and defines the entry
// points over it.
#include "tools/AotLibrary.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace nnc::driver {

namespace {

const codegen::AotEntry *entry(const codegen::AotObject &obj, const LibraryApi &api, const std::string &fn,
                               int64_t batch = 0) {
  for (size_t i = 0; i < api.functions.size(); ++i)
    if (api.functions[i].f->name == fn && (batch == 0 || api.functions[i].bindings.empty() ||
                                           api.functions[i].bindings.begin()->second == batch))
      return &obj.entries[i];
  return nullptr;
}

std::string upper(std::string s) {
  for (char &c : s)
    c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

/// A buffer's name as part of a C identifier.
std::string ident(const std::string &name) {
  std::string s;
  for (char c : name)
    s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s;
}

/// A buffer's name as a parameter of a prototype, clear of the others'.
std::string paramName(const std::string &name) {
  std::string s = ident(name);
  for (const char *taken : {"context", "rows", "label", "loss", "lr", "model"})
    if (s == taken)
      return s + "_";
  return s;
}

int64_t perRow(const codegen::BufferSpec &b) {
  int64_t n = 1;
  for (size_t i = 1; i < b.shape.size(); ++i)
    n *= b.shape[i];
  return n;
}

const char *cType(ir::DType t) { return t == ir::DType::F32 ? "float" : "int64_t"; }

std::string typeText(const codegen::BufferSpec &b) {
  std::string s = b.dtype == ir::DType::F32 ? "f32[N" : "i64[N";
  for (size_t i = 1; i < b.shape.size(); ++i)
    s += ", " + std::to_string(b.shape[i]);
  return s + "]";
}

std::vector<const codegen::BufferSpec *> argsWithRole(const codegen::AotEntry &e, ir::ArgRole role) {
  std::vector<const codegen::BufferSpec *> out;
  for (const codegen::BufferSpec &b : e.args)
    if (b.role == role)
      out.push_back(&b);
  return out;
}

std::string variantsText(const codegen::AotObject &obj) {
  std::string s;
  for (const codegen::AotVariant &v : obj.variants)
    s += (s.empty() ? "" : ", ") + (v.name == "native" ? "native (" + v.cpu + ")" : v.name + " (" + v.cpu + ")");
  return s;
}

/// The inputs' parameters of an entry point: ", const float *x, const
/// int64_t *ids" in the header; in the glue, whose own names (c, rows, in,
/// out, ...) a model's could shadow, they are named i0, i1, ...
std::string inputParams(const codegen::AotEntry &e, bool glue = false) {
  std::string s;
  int i = 0;
  for (const codegen::BufferSpec *b : argsWithRole(e, ir::ArgRole::Input))
    s += fmt::format(", const {} *{}", cType(b->dtype), glue ? "i" + std::to_string(i++) : paramName(b->name));
  return s;
}

/// ", const int64_t *label" (the label's pointer parameter), or "" for a
/// function without a label.
std::string labelParam(const codegen::AotEntry &e) {
  auto labels = argsWithRole(e, ir::ArgRole::Label);
  return labels.empty() ? "" : fmt::format(", const {} *label", cType(labels[0]->dtype));
}

/// "{i0, i1}": the glue's array of the inputs.
std::string inputArray(const codegen::AotEntry &e) {
  std::string s;
  for (size_t i = 0; i < argsWithRole(e, ir::ArgRole::Input).size(); ++i)
    s += (s.empty() ? "i" : ", i") + std::to_string(i);
  return "{" + (s.empty() ? std::string("0") : s) + "}";
}

} // namespace

std::vector<std::string> exportedSymbols(const CompiledModel &m, const LibraryApi &api) {
  (void)m;
  std::vector<std::string> names = {"open",    "close", "context_create", "context_destroy", "save",
                                    "load",    "tensor_count", "tensor_name", "tensor_size", "get_tensor",
                                    "set_tensor", "set_threads", "last_error", "variant"};
  for (const char *fn : {"predict", "evaluate", "train_step"})
    for (const codegen::AotFunction &f : api.functions)
      if (f.f->name == fn) {
        names.push_back(fn);
        break;
      }
  for (std::string &n : names)
    n = api.prefix + "_" + n;
  return names;
}

std::string libraryHeader(const CompiledModel &m, const LibraryApi &api, const codegen::AotObject &obj,
                          const LibraryOptions &o, const std::string &source) {
  const std::string &p = api.prefix, &P = api.guard;
  const codegen::AotEntry *pred = entry(obj, api, "predict"), *eval = entry(obj, api, "evaluate", o.batch),
                          *train = entry(obj, api, "train_step");
  const codegen::AotEntry &any = pred ? *pred : *eval;
  std::string h;
  h += fmt::format("/* {}.h: the C interface of lib{}, model {} of {},\n"
                   " * compiled by nnc for {}.\n"
                   " *\n"
                   " * Link with -l{} (the shared library), or with lib{}.a -lstdc++ -lm -lpthread.\n"
                   " * Every function returning int returns 0 on success, or an error code with\n"
                   " * its message in {}_last_error() (per thread); none aborts.\n"
                   " *\n"
                   " * Inputs are raw features, as the training data holds them: the library\n"
                   " * applies the train block's preprocessing itself. Arrays are row-major, one\n"
                   " * row per example. A model (weights and optimizer state) may be shared by\n"
                   " * several threads, each with a context of its own: predictions and\n"
                   " * evaluations run at once; a train step, load or set_tensor waits for them\n"
                   " * and runs alone. */\n",
                   p, p, m.lowered.name, source, variantsText(obj), p, p, p);
  h += fmt::format("#ifndef {0}_H\n#define {0}_H\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n",
                   P);
  h += fmt::format("#define {}_CPU \"{}\"\n", P, variantsText(obj));
  h += fmt::format("/* Rows of a train step, and of the batches predict and evaluate run in. */\n#define {}_BATCH {}\n",
                   P, o.batch);
  if (train)
    h += fmt::format("/* The train block's learning rate ({}). */\n#define {}_LR ((float){:.9g})\n", optimizerText(m.config), P,
                     m.config.lr);
  h += "\n/* Values per row of each input, label and output. */\n";
  for (const codegen::BufferSpec *b : argsWithRole(any, ir::ArgRole::Input))
    h += fmt::format("#define {}_{}_SIZE {} /* input {} : {} */\n", P, upper(ident(b->name)), perRow(*b), b->name,
                     typeText(*b));
  if (eval)
    for (const codegen::BufferSpec *b : argsWithRole(*eval, ir::ArgRole::Label))
      h += fmt::format("#define {}_LABEL_SIZE {} /* label {} : {} */\n", P, perRow(*b), b->name, typeText(*b));
  if (pred)
    for (const codegen::BufferSpec &b : pred->results)
      h += fmt::format("#define {}_{}_SIZE {} /* output {} : {} */\n", P, upper(ident(b.name)), perRow(b), b.name,
                       typeText(b));
  // The model's tensors: those of the train step (parameters and every
  // state), else of the other functions.
  h += "\n/* Elements of each tensor of the model (see " + p + "_get_tensor). */\n";
  std::set<std::string> listed;
  for (const codegen::AotEntry &e : obj.entries)
    for (const codegen::BufferSpec &b : e.args)
      if ((b.role == ir::ArgRole::Param || b.role == ir::ArgRole::State) && listed.insert(b.name).second) {
        int64_t n = 1;
        std::string dims;
        for (int64_t d : b.shape)
          n *= d, dims += (dims.empty() ? "" : ", ") + std::to_string(d);
        h += fmt::format("#define {}_TENSOR_{}_SIZE {} /* {} : {}[{}] */\n", P, upper(ident(b.name)), n, b.name,
                         b.dtype == ir::DType::F32 ? "f32" : "i64", dims);
      }
  int64_t workspace = 0;
  for (const codegen::AotEntry &e : obj.entries)
    workspace += e.arenaBytes;
  h += fmt::format("/* Scratch memory of a context, in bytes, besides its batch buffers. */\n"
                   "#define {}_WORKSPACE_BYTES {}\n\n",
                   P, workspace);
  h += fmt::format("enum {{ {0}_OK = 0, {0}_EINVAL = 1, {0}_EIO = 2, {0}_EFORMAT = 3, {0}_ECPU = 4, {0}_ENOMEM = 5, "
                   "{0}_EINTERNAL = 6 }};\n\n",
                   P);
  h += fmt::format("typedef struct {0}_model {0}_model;     /* weights and optimizer state */\n"
                   "typedef struct {0}_context {0}_context; /* one thread's workspace */\n\n",
                   p);
  h += fmt::format("/* Opens the model with the weights built in (weights_path NULL) or those of a\n"
                   " * safetensors file (nnc train --save, {0}_save). */\n"
                   "int {0}_open({0}_model **model, const char *weights_path);\n"
                   "void {0}_close({0}_model *model);\n"
                   "int {0}_context_create({0}_model *model, {0}_context **context);\n"
                   "void {0}_context_destroy({0}_context *context);\n",
                   p);
  if (pred) {
    std::string outs;
    for (const codegen::BufferSpec &b : pred->results)
      outs += fmt::format(", {} *{}", cType(b.dtype), paramName(b.name));
    h += fmt::format("/* The outputs of `rows` rows (any number). */\n"
                     "int {0}_predict({0}_context *context, int64_t rows{1}{2});\n",
                     p, inputParams(*pred), outs);
  }
  if (eval) {
    std::string label = labelParam(*eval);
    h += fmt::format("/* The mean loss over `rows` rows (any number). */\n"
                     "int {0}_evaluate({0}_context *context, int64_t rows{1}{2}, float *loss);\n",
                     p, inputParams(*eval), label);
  }
  if (train) {
    std::string label = labelParam(*train);
    h += fmt::format("/* One optimizer step ({1}) on exactly {0}_BATCH rows at learning rate lr\n"
                     " * (the train block's: {2:g}); *loss, if not NULL, gets the batch's loss. */\n"
                     "int {3}_train_step({3}_context *context, int64_t rows{4}{5}, float lr, float *loss);\n",
                     P, optimizerText(m.config), m.config.lr, p, inputParams(*train), label);
  }
  h += fmt::format("/* Weights and optimizer state as a safetensors file (nnc eval --load reads it). */\n"
                   "int {0}_save({0}_model *model, const char *path);\n"
                   "int {0}_load({0}_model *model, const char *path);\n"
                   "/* The model's tensors by name: parameters, optimizer and model state. */\n"
                   "int {0}_tensor_count(const {0}_model *model);\n"
                   "const char *{0}_tensor_name(const {0}_model *model, int i);\n"
                   "int64_t {0}_tensor_size(const {0}_model *model, const char *name); /* -1: no such tensor */\n"
                   "int {0}_get_tensor({0}_model *model, const char *name, float *out, int64_t count);\n"
                   "int {0}_set_tensor({0}_model *model, const char *name, const float *in, int64_t count);\n"
                   "/* Run on `threads` threads from now on (0: one per core, the default); call it\n"
                   " * while no other call runs. */\n"
                   "int {0}_set_threads(int threads);\n"
                   "const char *{0}_last_error(void);\n"
                   "/* The CPU variant the model runs (see {1}_CPU). */\n"
                   "const char *{0}_variant(const {0}_model *model);\n",
                   p, P);
  h += fmt::format("\n#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {}_H */\n", P);
  return h;
}

std::string libraryGlue(const CompiledModel &m, const LibraryApi &api, const codegen::AotObject &obj,
                        const std::string &seedText, const std::vector<double> &scales, bool standardize) {
  const std::string &p = api.prefix;
  std::string c = fmt::format("/* Generated by nnc compile: model {} as a library over runtime/aot/nnc_aot.h. */\n"
                              "#include \"nnc_aot.h\"\n#include \"{}.h\"\n\n#define API __attribute__((visibility(\"default\")))\n\n",
                              m.lowered.name, p);
  c += fmt::format("extern const unsigned char {0}_data[];\nextern const int64_t {0}_data_size;\n", p);
  // Variants: their entry points, GEMM kernels and CPU checks.
  for (const codegen::AotVariant &v : obj.variants) {
    for (const codegen::AotEntry &e : obj.entries)
      c += fmt::format("void {}_{}(void **buffers, char *arena);\n", e.symbol, v.name);
    std::string kernels, rows, cols, inPlace;
    for (const codegen::AotGemmKernel &k : v.gemmKernels) {
      c += fmt::format("void {}(int64_t, const float *, const float *, int64_t, float *, int64_t, int64_t, int64_t, "
                       "int64_t);\n",
                       k.symbol);
      kernels += (kernels.empty() ? "" : ", ") + k.symbol;
      rows += (rows.empty() ? "" : ", ") + std::to_string(k.rows);
      cols += (cols.empty() ? "" : ", ") + std::to_string(k.cols);
      inPlace += std::string(inPlace.empty() ? "" : ", ") + (k.inPlace ? "1" : "0");
    }
    c += fmt::format("static const nnc_aot_gemm_kernel {0}_kernels[] = {{{1}}};\n"
                     "static const int {0}_rows[] = {{{2}}}, {0}_cols[] = {{{3}}}, {0}_in_place[] = {{{4}}};\n",
                     v.name, kernels, rows, cols, inPlace);
    // What the variant's code may use, as the CPU reports it.
    std::vector<std::string> need;
    auto has = [&](const char *f) { return v.features.find(std::string("+") + f) != std::string::npos; };
    if (has("avx512f"))
      need = {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx2", "fma"};
    else if (has("avx2"))
      need = {"avx2", "fma"};
    else if (has("avx"))
      need = {"avx"};
    std::string test;
    for (const std::string &f : need)
      test += (test.empty() ? "" : " && ") + fmt::format("__builtin_cpu_supports(\"{}\")", f);
    c += fmt::format("static int {}_supported(void) {{ __builtin_cpu_init(); return {}; }}\n\n", v.name,
                     test.empty() ? "1" : test);
  }
  // Functions: buffers, then the description.
  std::string functions;
  for (size_t i = 0; i < obj.entries.size(); ++i) {
    const codegen::AotEntry &e = obj.entries[i];
    std::string id = "f" + std::to_string(i);
    auto buffers = [&](const std::vector<codegen::BufferSpec> &list, bool results) {
      std::string rows;
      for (size_t j = 0; j < list.size(); ++j) {
        const codegen::BufferSpec &b = list[j];
        std::string shape;
        for (int64_t d : b.shape)
          shape += (shape.empty() ? "" : ", ") + std::to_string(d);
        std::string sid = fmt::format("{}_{}{}", id, results ? "r" : "a", j);
        c += fmt::format("static const int64_t {}_shape[] = {{{}}};\n", sid, shape.empty() ? "1" : shape);
        rows += fmt::format("  {{\"{}\", {}, {}, {}, {}_shape, {}}},\n", b.name, b.dtype == ir::DType::F32 ? 0 : 1,
                            results ? 0 : int(b.role), b.shape.size(), sid, results ? e.resultArg[j] : -1);
      }
      return rows;
    };
    std::string args = buffers(e.args, false), results = buffers(e.results, true);
    c += fmt::format("static const nnc_aot_buffer {0}_args[] = {{\n{1}}};\n"
                     "static const nnc_aot_buffer {0}_results[] = {{\n{2}}};\n",
                     id, args, results);
    std::string entries;
    for (const codegen::AotVariant &v : obj.variants)
      entries += (entries.empty() ? "" : ", ") + e.symbol + "_" + v.name;
    c += fmt::format("static const nnc_aot_entry {}_entries[] = {{{}}};\n\n", id, entries);
    const codegen::AotFunction &af = api.functions[i];
    int64_t batch = af.bindings.empty() ? 1 : af.bindings.begin()->second;
    functions += fmt::format("  {{\"{}\", {}, {}, {}, {}_args, {}, {}_results, {}_entries}},\n", af.f->name, batch,
                             e.arenaBytes, e.args.size(), id, e.results.size(), id, id);
  }
  std::string variants;
  for (const codegen::AotVariant &v : obj.variants)
    variants += fmt::format("  {{\"{0}\", {0}_supported, {1}, {2}, {3}, {0}_kernels, {0}_rows, {0}_cols, "
                            "{0}_in_place}},\n",
                            v.name, v.gemmRows, v.gemmCols, v.gemmKernels.size());
  std::string scaleList;
  for (double s : scales)
    scaleList += (scaleList.empty() ? "" : ", ") + fmt::format("{:.17g}", s);
  c += fmt::format("static const nnc_aot_function functions[] = {{\n{}}};\n"
                   "static const nnc_aot_variant variants[] = {{\n{}}};\n"
                   "static const double scales[] = {{{}}};\n",
                   functions, variants, scaleList.empty() ? "1" : scaleList);
  c += fmt::format("static const nnc_aot_model model = {{\"{}\", {}, functions, {}, variants, {}_data, &{}_data_size, "
                   "{{{}, scales, {}}}, {}ULL}};\n\n",
                   m.lowered.name, obj.entries.size(), obj.variants.size(), p, p, scales.size(), standardize ? 1 : 0,
                   seedText);
  // Entry points.
  c += fmt::format(
      "API int {0}_open({0}_model **m, const char *path) {{ return nnc_aot_open(&model, path, (nnc_aot_state **)m); }}\n"
      "API void {0}_close({0}_model *m) {{ nnc_aot_close((nnc_aot_state *)m); }}\n"
      "API int {0}_context_create({0}_model *m, {0}_context **c) {{ return nnc_aot_ctx_create((nnc_aot_state *)m, (nnc_aot_ctx "
      "**)c); }}\n"
      "API void {0}_context_destroy({0}_context *c) {{ nnc_aot_ctx_destroy((nnc_aot_ctx *)c); }}\n"
      "API int {0}_save({0}_model *m, const char *path) {{ return nnc_aot_save((nnc_aot_state *)m, path); }}\n"
      "API int {0}_load({0}_model *m, const char *path) {{ return nnc_aot_load((nnc_aot_state *)m, path); }}\n"
      "API int {0}_tensor_count(const {0}_model *m) {{ return nnc_aot_tensor_count((const nnc_aot_state *)m); }}\n"
      "API const char *{0}_tensor_name(const {0}_model *m, int i) {{ return nnc_aot_tensor_name((const nnc_aot_state *)m, "
      "i); }}\n"
      "API int64_t {0}_tensor_size(const {0}_model *m, const char *n) {{ return nnc_aot_tensor_size((const nnc_aot_state "
      "*)m, n); }}\n"
      "API int {0}_get_tensor({0}_model *m, const char *n, float *out, int64_t count) {{ return nnc_aot_get((nnc_aot_state "
      "*)m, n, out, count); }}\n"
      "API int {0}_set_tensor({0}_model *m, const char *n, const float *in, int64_t count) {{ return "
      "nnc_aot_set((nnc_aot_state *)m, n, in, count); }}\n"
      "API int {0}_set_threads(int threads) {{ return nnc_aot_set_threads(threads); }}\n"
      "API const char *{0}_last_error(void) {{ return nnc_aot_last_error(); }}\n"
      "API const char *{0}_variant(const {0}_model *m) {{ return nnc_aot_variant_name((const nnc_aot_state *)m); }}\n",
      p);
  if (const codegen::AotEntry *e = entry(obj, api, "predict")) {
    std::string outs, outArray;
    for (size_t j = 0; j < e->results.size(); ++j) {
      outs += fmt::format(", {} *o{}", cType(e->results[j].dtype), j);
      outArray += (outArray.empty() ? "o" : ", o") + std::to_string(j);
    }
    c += fmt::format("API int {0}_predict({0}_context *c, int64_t rows{1}{2}) {{\n"
                     "  const void *in[] = {3};\n  void *out[] = {{{4}}};\n"
                     "  return nnc_aot_predict((nnc_aot_ctx *)c, rows, in, out);\n}}\n",
                     p, inputParams(*e, true), outs, inputArray(*e), outArray);
  }
  for (const char *fn : {"evaluate", "train_step"}) {
    const codegen::AotEntry *e = entry(obj, api, fn);
    if (!e)
      continue;
    std::string label = labelParam(*e);
    std::string labelArg = label.empty() ? "0" : "label";
    if (std::string(fn) == "evaluate")
      c += fmt::format("API int {0}_evaluate({0}_context *c, int64_t rows{1}{2}, float *loss) {{\n"
                       "  const void *in[] = {3};\n"
                       "  return nnc_aot_evaluate((nnc_aot_ctx *)c, rows, in, {4}, loss);\n}}\n",
                       p, inputParams(*e, true), label, inputArray(*e), labelArg);
    else
      c += fmt::format("API int {0}_train_step({0}_context *c, int64_t rows{1}{2}, float lr, float *loss) {{\n"
                       "  const void *in[] = {3};\n"
                       "  return nnc_aot_train_step((nnc_aot_ctx *)c, rows, in, {4}, lr, loss);\n}}\n",
                       p, inputParams(*e, true), label, inputArray(*e), labelArg);
  }
  return c;
}

} // namespace nnc::driver
