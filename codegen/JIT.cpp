// ORC LLJIT, the O3 pipeline for the host CPU, and textual LLVM/assembly.
#include "codegen/JIT.h"

#include "codegen/GemmKernel.h"
#include "codegen/LowerToLLVM.h"
#include "codegen/MemoryPlan.h"
#include "codegen/Target.h"
#include "ir/Printer.h"
#include "runtime/FileUtil.h"
#include "runtime/Gemm.h"

#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/Linker/Linker.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SHA1.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>

extern "C" void nnc_rt_parallel_for(void (*body)(void *, int64_t, int64_t), void *ctx, int64_t n, int64_t grain);
extern "C" void nnc_rt_profile_mark(double *table, int64_t index);

namespace nnc::codegen {

namespace {
/// The on-disk compile cache's directory: $NNC_CACHE_DIR, else
/// $XDG_CACHE_HOME/nnc, else ~/.cache/nnc; empty (no cache) when NNC_CACHE
/// is 0 or off, or no directory can be named.
std::string cacheDirectory() {
  if (const char *off = getenv("NNC_CACHE"); off && (std::string(off) == "0" || std::string(off) == "off"))
    return "";
  if (const char *d = getenv("NNC_CACHE_DIR"); d && *d)
    return d;
  if (const char *x = getenv("XDG_CACHE_HOME"); x && *x)
    return std::string(x) + "/nnc";
  if (const char *h = getenv("HOME"); h && *h)
    return std::string(h) + "/.cache/nnc";
  return "";
}

/// Which nnc produced a cached object: the size and modification time of the
/// running executable, so a rebuilt nnc never loads code of an older one.
std::string buildIdentity() {
  struct stat st;
  if (stat("/proc/self/exe", &st) != 0)
    return "unknown";
  return std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
         std::to_string(st.st_mtim.tv_nsec);
}

/// mkdir -p; false if it cannot be made.
bool makeDirectories(const std::string &dir) {
  for (size_t i = 1; i <= dir.size(); ++i)
    if (i == dir.size() || dir[i] == '/') {
      std::string part = dir.substr(0, i);
      if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
        return false;
    }
  return true;
}

/// SHA-1 of `text` in hex.
std::string sha1Hex(const std::string &text) {
  llvm::SHA1 sha;
  sha.update(text);
  std::string hex;
  for (uint8_t byte : sha.final())
    hex += "0123456789abcdef"[byte >> 4], hex += "0123456789abcdef"[byte & 15];
  return hex;
}

/// Machine code for `m` as an object file in a buffer the JIT can load.
std::unique_ptr<llvm::MemoryBuffer> emitObject(llvm::Module &m, llvm::TargetMachine &tm) {
  return llvm::MemoryBuffer::getMemBufferCopy(emitObjectFile(m, tm), m.getName());
}

/// The on-disk compile cache: object files named by their key.
class ObjectCache {
public:
  /// A cached object for `key` that defines `symbol`, or null.
  std::unique_ptr<llvm::MemoryBuffer> load(const std::string &key, const std::string &symbol) const {
    if (dir_.empty())
      return nullptr;
    auto buf = llvm::MemoryBuffer::getFile(dir_ + "/" + key + ".o");
    if (!buf)
      return nullptr;
    // A truncated or foreign file is ignored (and replaced after compiling).
    auto obj = llvm::object::ObjectFile::createObjectFile((*buf)->getMemBufferRef());
    if (!obj) {
      llvm::consumeError(obj.takeError());
      return nullptr;
    }
    for (const llvm::object::SymbolRef &sym : (*obj)->symbols()) {
      auto name = sym.getName();
      if (name && *name == symbol)
        return std::move(*buf);
      if (!name)
        llvm::consumeError(name.takeError());
    }
    return nullptr;
  }

  /// Writes `obj` for `key` (atomically); a failure is a warning, once.
  void store(const std::string &key, const llvm::MemoryBuffer &obj) {
    if (dir_.empty())
      return;
    try {
      if (!makeDirectories(dir_))
        throw std::runtime_error("cannot create directory '" + dir_ + "'");
      runtime::writeFileAtomic(dir_ + "/" + key + ".o", obj.getBuffer().str());
    } catch (const std::exception &e) {
      if (!warned_)
        std::cerr << "nnc: warning: compile cache not written: " << e.what() << "\n";
      warned_ = true;
    }
  }

private:
  std::string dir_ = cacheDirectory();
  bool warned_ = false;
};

/// Compiles the GEMM micro-kernel for the host once per process, in a JIT of
/// its own that lives until exit, and installs it in the runtime.
void installGemmKernel(llvm::orc::JITTargetMachineBuilder jtmb, llvm::TargetMachine &tm) {
  static std::once_flag once;
  // Lives until exit: the runtime calls into its code.
  static std::unique_ptr<llvm::orc::LLJIT> kernels;
  std::call_once(once, [&] {
    auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create();
    if (!jit)
      throw std::runtime_error("cannot start the JIT: " + errorText(jit.takeError()));
    GemmTile tile = gemmTileFor(tm.getTargetFeatureString().str());
    NNC_ASSERT(tile.mr <= runtime::kMaxGemmRows) << "GEMM tile of " << tile.mr << " rows";
    std::vector<GemmKernelSpec> specs = gemmKernelSpecs(tile);
    // The kernels come from the compile cache too: compiling them takes
    // longer than most models.
    ObjectCache cache;
    std::string key = sha1Hex("gemm-kernels;" + tm.getTargetTriple().str() + ";" + tm.getTargetCPU().str() + ";" +
                              tm.getTargetFeatureString().str() + ";" + buildIdentity());
    std::unique_ptr<llvm::MemoryBuffer> obj = cache.load(key, specs.front().name);
    if (!obj) {
      Context ctx;
      auto m = buildGemmKernels(ctx, tile);
      setTargetAttributes(*m, tm);
      optimizeModule(*m, tm, /*unroll=*/true);
      obj = emitObject(*m, tm);
      cache.store(key, *obj);
    }
    if (auto err = (*jit)->addObjectFile(std::move(obj)))
      throw std::runtime_error("cannot load the GEMM kernels: " + errorText(std::move(err)));
    runtime::GemmKernels k;
    k.mr = tile.mr;
    k.nr = tile.nr;
    for (const GemmKernelSpec &spec : specs) {
      auto sym = (*jit)->lookup(spec.name);
      if (!sym)
        throw std::runtime_error("cannot compile the GEMM kernels: " + errorText(sym.takeError()));
      auto fn = reinterpret_cast<runtime::GemmMicroKernel>(sym->getAddress());
      if (!spec.inPlace)
        k.packed[spec.rows] = fn;
      if (spec.inPlace || !k.inPlace[spec.rows]) {
        k.inPlace[spec.rows] = fn;
        k.inPlaceCols[spec.rows] = spec.cols;
      }
    }
    runtime::setGemmKernels(k);
    kernels = std::move(*jit);
  });
}
} // namespace

struct JIT::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> tm;
  std::atomic<int> counter{0};
  /// Entry addresses of the functions this JIT has loaded, by cache key.
  std::map<std::string, EntryFn> loaded;
  ObjectCache cache;

  /// The cache key of `f` under `bindings`: a SHA-1 of everything the
  /// generated code depends on.
  std::string cacheKey(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts) {
    std::string text = ir::toString(f);
    for (const auto &op : f.ops)
      if (op->body)
        text += ir::toString(*op->body);
    for (auto &[name, value] : bindings)
      text += name + "=" + std::to_string(value) + ";";
    text += opts.optimize ? "O3;" : "O0;";
    text += opts.inPlaceUpdates ? "inplace;" : "";
    text += tm->getTargetTriple().str() + ";" + tm->getTargetCPU().str() + ";" + tm->getTargetFeatureString().str();
    text += ";" + buildIdentity();
    return sha1Hex(text);
  }

  /// Builds the LLVM module for `f`, optimized for the host if asked.
  std::unique_ptr<llvm::Module> build(const ir::Function &f, const ir::Bindings &bindings, const MemoryPlan &plan,
                                      llvm::LLVMContext &ctx, const std::string &symbol, bool optimize,
                                      double *profile = nullptr) {
    auto m = lowerToLLVM(f, bindings, plan, ctx, symbol, profile);
    setTargetAttributes(*m, *tm);
    if (optimize)
      optimizeModule(*m, *tm);
    return m;
  }
};

JIT::JIT() : impl_(std::make_unique<Impl>()) {
  initLLVM();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb)
    throw std::runtime_error("LLVM cannot target this CPU: " + errorText(jtmb.takeError()));
  jtmb->setCodeGenOptLevel(llvm::CodeGenOpt::Aggressive);
  auto tm = jtmb->createTargetMachine();
  if (!tm)
    throw std::runtime_error("cannot create a target machine: " + errorText(tm.takeError()));
  impl_->tm = std::move(*tm);
  installGemmKernel(*jtmb, *impl_->tm);
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
  if (!jit)
    throw std::runtime_error("cannot start the JIT: " + errorText(jit.takeError()));
  impl_->jit = std::move(*jit);
  auto &jd = impl_->jit->getMainJITDylib();
  llvm::orc::SymbolMap symbols;
  symbols[impl_->jit->mangleAndIntern("nnc_rt_parallel_for")] =
      llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(&nnc_rt_parallel_for), llvm::JITSymbolFlags::Exported);
  symbols[impl_->jit->mangleAndIntern("nnc_rt_sgemm")] =
      llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(&nnc_rt_sgemm), llvm::JITSymbolFlags::Exported);
  symbols[impl_->jit->mangleAndIntern("nnc_rt_sgemm_scaled")] =
      llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(&nnc_rt_sgemm_scaled), llvm::JITSymbolFlags::Exported);
  symbols[impl_->jit->mangleAndIntern("nnc_rt_sgemm_pack_b")] =
      llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(&nnc_rt_sgemm_pack_b), llvm::JITSymbolFlags::Exported);
  symbols[impl_->jit->mangleAndIntern("nnc_rt_profile_mark")] =
      llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(&nnc_rt_profile_mark), llvm::JITSymbolFlags::Exported);
  if (auto err = jd.define(llvm::orc::absoluteSymbols(std::move(symbols))))
    throw std::runtime_error("cannot define runtime symbols: " + errorText(std::move(err)));
  // LLVM may turn loops into memset/memcpy calls: resolve them from libc.
  auto gen =
      llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(impl_->jit->getDataLayout().getGlobalPrefix());
  if (!gen)
    throw std::runtime_error("cannot search the process for symbols: " + errorText(gen.takeError()));
  jd.addGenerator(std::move(*gen));
}

JIT::~JIT() = default;

std::string JIT::targetDescription() const {
  return impl_->tm->getTargetCPU().str() + " (" + impl_->tm->getTargetTriple().str() + ")";
}

HostTarget hostTarget() {
  HostTarget t;
  t.llvmVersion = LLVM_VERSION_STRING;
  t.cpu = llvm::sys::getHostCPUName().str();
  t.triple = llvm::sys::getProcessTriple();
  llvm::StringMap<bool> has;
  if (llvm::sys::getHostCPUFeatures(has))
    for (const char *f : {"sse4.2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl",
                          "avx512vnni", "avx512bf16", "avx512fp16", "amx-tile"})
      if (has.lookup(f))
        t.features.push_back(f);
  return t;
}

static std::vector<BufferSpec> argSpecs(const ir::Function &f, const ir::Bindings &b) {
  std::vector<BufferSpec> r;
  for (size_t i = 0; i < f.args.size(); ++i)
    r.push_back({f.args[i]->name, f.args[i]->type.dtype, ir::concreteShape(f.args[i]->type.shape, b), f.argRoles[i]});
  return r;
}

CompiledFunction JIT::compile(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts) {
  auto start = std::chrono::steady_clock::now();
  MemoryPlan plan = planMemory(f, bindings, opts.inPlaceUpdates);
  // Profiled code embeds the address of its timing table: never cached.
  bool cacheable = !opts.profile;
  std::string key = cacheable ? impl_->cacheKey(f, bindings, opts) : "";
  std::string symbol = "nnc_" + f.name + "_" + (cacheable ? key.substr(0, 16) : std::to_string(impl_->counter++));
  for (char &c : symbol)
    if (c == '.')
      c = '_';
  std::shared_ptr<std::vector<double>> profile;
  ProfileLayout layout;
  if (opts.profile) {
    layout = profileLayout(f);
    profile = std::make_shared<std::vector<double>>(layout.size(), 0.0);
  }
  bool fromCache = false;
  EntryFn entry = nullptr;
  if (auto it = impl_->loaded.find(key); cacheable && it != impl_->loaded.end()) {
    entry = it->second;
    fromCache = true;
  } else {
    std::unique_ptr<llvm::MemoryBuffer> obj = cacheable ? impl_->cache.load(key, symbol) : nullptr;
    fromCache = obj != nullptr;
    if (!obj) {
      Context ctx;
      auto m = impl_->build(f, bindings, plan, ctx, symbol, opts.optimize, profile ? profile->data() : nullptr);
      obj = emitObject(*m, *impl_->tm);
      if (cacheable)
        impl_->cache.store(key, *obj);
    }
    if (auto err = impl_->jit->addObjectFile(std::move(obj)))
      throw std::runtime_error("JIT compilation failed: " + errorText(std::move(err)));
    auto sym = impl_->jit->lookup(symbol);
    if (!sym)
      throw std::runtime_error("JIT lookup failed: " + errorText(sym.takeError()));
    entry = reinterpret_cast<EntryFn>(sym->getAddress());
    if (cacheable)
      impl_->loaded[key] = entry;
  }

  CompiledFunction cf;
  cf.name = f.name;
  cf.entry = entry;
  cf.fromCache = fromCache;
  cf.resultArg = plan.resultArg;
  cf.arenaBytes = plan.arenaBytes;
  cf.unplannedBytes = plan.unplannedBytes;
  cf.profile = std::move(profile);
  if (cf.profile) {
    // Each slot's op as printed (line i + 1 of its function's text holds op i).
    std::map<const ir::Function *, std::vector<std::string>> text;
    std::map<const ir::Function *, std::map<const ir::Op *, size_t>> index;
    for (size_t s = 0; s < layout.size(); ++s) {
      const ir::Function *fn = layout.owner[s];
      if (!text.count(fn)) {
        std::istringstream in(ir::toString(*fn));
        for (std::string line; std::getline(in, line);)
          text[fn].push_back(line);
        for (size_t i = 0; i < fn->ops.size(); ++i)
          index[fn][fn->ops[i].get()] = i;
      }
      const ir::Op *op = layout.ops[s];
      std::string label = op ? text[fn].at(index[fn].at(op) + 1) : "  (copying results)";
      if (fn != &f)
        label = "  in @" + fn->name + ":" + label;
      cf.profileLabels.push_back(label);
      cf.profileLocs.push_back(op ? op->loc : SourceLoc{});
    }
    cf.profileOps.assign(layout.size(), 0);
    for (const auto &[fn, steps] : plan.steps)
      for (const Step &step : steps)
        if (layout.slot.count(step.back()))
          cf.profileOps[layout.slot.at(step.back())] = int(step.size());
  }
  cf.args = argSpecs(f, bindings);
  for (size_t j = 0; j < f.results.size(); ++j)
    cf.results.push_back(
        {f.resultNames[j], f.results[j]->type.dtype, ir::concreteShape(f.results[j]->type.shape, bindings)});
  cf.compileSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return cf;
}

/// Adds the GEMM micro-kernel to `m` if it calls the GEMM, so printed code
/// is the whole program.
static void linkGemmKernel(llvm::Module &m, llvm::TargetMachine &tm, bool optimize) {
  if (!m.getFunction("nnc_rt_sgemm") && !m.getFunction("nnc_rt_sgemm_scaled"))
    return;
  auto k = buildGemmKernels(m.getContext(), gemmTileFor(tm.getTargetFeatureString().str()));
  setTargetAttributes(*k, tm);
  if (optimize)
    optimizeModule(*k, tm, /*unroll=*/true);
  if (llvm::Linker::linkModules(m, std::move(k)))
    throw std::runtime_error("cannot link the GEMM micro-kernel");
}

std::string JIT::emitLLVM(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts) {
  MemoryPlan plan = planMemory(f, bindings, opts.inPlaceUpdates);
  Context ctx;
  auto m = impl_->build(f, bindings, plan, ctx, "nnc_" + f.name, opts.optimize);
  linkGemmKernel(*m, *impl_->tm, opts.optimize);
  std::string s;
  llvm::raw_string_ostream os(s);
  m->print(os, nullptr);
  return os.str();
}

std::string JIT::emitAssembly(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts) {
  MemoryPlan plan = planMemory(f, bindings, opts.inPlaceUpdates);
  Context ctx;
  auto m = impl_->build(f, bindings, plan, ctx, "nnc_" + f.name, opts.optimize);
  linkGemmKernel(*m, *impl_->tm, opts.optimize);
  llvm::SmallString<0> buf;
  llvm::raw_svector_ostream os(buf);
  llvm::legacy::PassManager pm;
  if (impl_->tm->addPassesToEmitFile(pm, os, nullptr, llvm::CGFT_AssemblyFile))
    throw std::runtime_error("this target cannot emit assembly");
  pm.run(*m);
  return std::string(buf.str());
}

} // namespace nnc::codegen
