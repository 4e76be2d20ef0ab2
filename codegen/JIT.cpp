// ORC LLJIT, the O3 pipeline for the host CPU, and textual LLVM/assembly.
#include "codegen/JIT.h"

#include "codegen/GemmKernel.h"
#include "codegen/LowerToLLVM.h"
#include "codegen/MemoryPlan.h"
#include "runtime/Gemm.h"

#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/Linker/Linker.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>

extern "C" void nnc_rt_parallel_for(void (*body)(void *, int64_t, int64_t), void *ctx, int64_t n, int64_t grain);
extern "C" void nnc_rt_profile_mark(double *table, int64_t index);

namespace nnc::codegen {

namespace {
std::string errorText(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}

void initLLVM() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}
/// Runs the O3 pipeline for `tm` on `m` (loop unrolling off: full unrolling
/// of constant-trip loops tripled compile time and, with vectorized bodies
/// already interleaved, did not make steps faster).
void optimizeModule(llvm::Module &m, llvm::TargetMachine &tm, bool unroll = false) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PipelineTuningOptions pto;
  pto.LoopVectorization = true;
  pto.SLPVectorization = true;
  pto.LoopUnrolling = unroll;
  llvm::PassBuilder pb(&tm, pto);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3);
  mpm.run(m, mam);
}

/// Sets the host CPU and its features, and the flags compiled code runs under.
void setHostAttributes(llvm::Module &m, llvm::TargetMachine &tm) {
  m.setDataLayout(tm.createDataLayout());
  m.setTargetTriple(tm.getTargetTriple().str());
  std::string cpu = tm.getTargetCPU().str(), features = tm.getTargetFeatureString().str();
  for (llvm::Function &fn : m) {
    if (fn.isDeclaration())
      continue;
    fn.addFnAttr("target-cpu", cpu);
    fn.addFnAttr("target-features", features);
    fn.addFnAttr(llvm::Attribute::NoUnwind);
    // Compiled code runs with flush-to-zero (see the runtime): say so.
    fn.addFnAttr("denormal-fp-math", "preserve-sign,preserve-sign");
  }
}

/// Compiles the GEMM micro-kernel for the host once per process, in a JIT of
/// its own that lives until exit, and installs it in the runtime.
void installGemmKernel(llvm::orc::JITTargetMachineBuilder jtmb, llvm::TargetMachine &tm) {
  static std::once_flag once;
  static llvm::orc::LLJIT *kernels = nullptr; // reachable until exit, never torn down
  (void)kernels;
  std::call_once(once, [&] {
    auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create();
    if (!jit)
      throw std::runtime_error("cannot start the JIT: " + errorText(jit.takeError()));
    GemmTile tile = gemmTileFor(tm.getTargetFeatureString().str());
    auto ctx = std::make_unique<llvm::LLVMContext>();
    auto m = buildGemmMicroKernel(*ctx, tile, "nnc_sgemm_kernel");
    setHostAttributes(*m, tm);
    optimizeModule(*m, tm, /*unroll=*/true);
    if (auto err = (*jit)->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx))))
      throw std::runtime_error("cannot compile the GEMM kernel: " + errorText(std::move(err)));
    auto sym = (*jit)->lookup("nnc_sgemm_kernel");
    if (!sym)
      throw std::runtime_error("cannot compile the GEMM kernel: " + errorText(sym.takeError()));
    runtime::setGemmMicroKernel(reinterpret_cast<runtime::GemmMicroKernel>(sym->getAddress()), tile.mr, tile.nr);
    kernels = jit->release();
  });
}
} // namespace

struct JIT::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  std::unique_ptr<llvm::TargetMachine> tm;
  std::atomic<int> counter{0};

  /// Builds the LLVM module for `f`, optimized for the host if asked.
  std::unique_ptr<llvm::Module> build(const ir::Function &f, const ir::Bindings &bindings, const MemoryPlan &plan,
                                      llvm::LLVMContext &ctx, const std::string &symbol, bool optimize,
                                      double *profile = nullptr) {
    auto m = lowerToLLVM(f, bindings, plan, ctx, symbol, profile);
    setHostAttributes(*m, *tm);
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

static std::vector<BufferSpec> argSpecs(const ir::Function &f, const ir::Bindings &b) {
  std::vector<BufferSpec> r;
  for (size_t i = 0; i < f.args.size(); ++i)
    r.push_back({f.args[i]->name, f.args[i]->type.dtype, ir::concreteShape(f.args[i]->type.shape, b), f.argRoles[i]});
  return r;
}

CompiledFunction JIT::compile(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts) {
  auto start = std::chrono::steady_clock::now();
  MemoryPlan plan = planMemory(f, bindings);
  std::string symbol = "nnc_" + f.name + "_" + std::to_string(impl_->counter++);
  for (char &c : symbol)
    if (c == '.')
      c = '_';
  auto ctx = std::make_unique<llvm::LLVMContext>();
  std::shared_ptr<std::vector<double>> profile;
  if (opts.profile)
    profile = std::make_shared<std::vector<double>>(f.ops.size() + 1, 0.0);
  auto m = impl_->build(f, bindings, plan, *ctx, symbol, opts.optimize, profile ? profile->data() : nullptr);
  if (auto err = impl_->jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(m), std::move(ctx))))
    throw std::runtime_error("JIT compilation failed: " + errorText(std::move(err)));
  auto sym = impl_->jit->lookup(symbol);
  if (!sym)
    throw std::runtime_error("JIT lookup failed: " + errorText(sym.takeError()));

  CompiledFunction cf;
  cf.name = f.name;
  cf.entry = reinterpret_cast<EntryFn>(sym->getAddress());
  cf.arenaBytes = plan.arenaBytes;
  cf.unplannedBytes = plan.unplannedBytes;
  cf.profile = std::move(profile);
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
  if (!m.getFunction("nnc_rt_sgemm"))
    return;
  auto k = buildGemmMicroKernel(m.getContext(), gemmTileFor(tm.getTargetFeatureString().str()), "nnc_sgemm_kernel");
  setHostAttributes(*k, tm);
  if (optimize)
    optimizeModule(*k, tm, /*unroll=*/true);
  if (llvm::Linker::linkModules(m, std::move(k)))
    throw std::runtime_error("cannot link the GEMM micro-kernel");
}

std::string JIT::emitLLVM(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts) {
  MemoryPlan plan = planMemory(f, bindings);
  llvm::LLVMContext ctx;
  auto m = impl_->build(f, bindings, plan, ctx, "nnc_" + f.name, opts.optimize);
  linkGemmKernel(*m, *impl_->tm, opts.optimize);
  std::string s;
  llvm::raw_string_ostream os(s);
  m->print(os, nullptr);
  return os.str();
}

std::string JIT::emitAssembly(const ir::Function &f, const ir::Bindings &bindings, const CodegenOptions &opts) {
  MemoryPlan plan = planMemory(f, bindings);
  llvm::LLVMContext ctx;
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
