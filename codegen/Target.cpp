// LLVM target plumbing shared by the JIT and ahead-of-time output; see Target.h.
#include "codegen/Target.h"

#include <llvm/IR/DiagnosticHandler.h>
#include <llvm/IR/DiagnosticInfo.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace nnc::codegen {

namespace {
struct QuietDiagnostics : llvm::DiagnosticHandler {
  bool handleDiagnostics(const llvm::DiagnosticInfo &di) override {
    static const bool show = [] {
      const char *v = getenv("NNC_LLVM_REMARKS");
      return v && *v && std::string(v) != "0";
    }();
    return di.getSeverity() != llvm::DS_Error && !show;
  }
};
} // namespace

Context::Context() { setDiagnosticHandler(std::make_unique<QuietDiagnostics>()); }

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

void optimizeModule(llvm::Module &m, llvm::TargetMachine &tm, bool unroll) {
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

void setTargetAttributes(llvm::Module &m, llvm::TargetMachine &tm) {
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
    // LLVM vectorizes loops 256 bits wide on AVX-512 CPUs by default (to
    // spare the clock); the GEMM kernels run 512 bits wide anyway, so the
    // elementwise loops between them may as well.
    if (features.find("+avx512f") != std::string::npos)
      fn.addFnAttr("prefer-vector-width", "512");
  }
}

std::string emitObjectFile(llvm::Module &m, llvm::TargetMachine &tm) {
  llvm::SmallVector<char, 0> buf;
  llvm::raw_svector_ostream os(buf);
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, llvm::CGFT_ObjectFile))
    throw std::runtime_error("this target cannot emit object files");
  pm.run(m);
  return std::string(buf.data(), buf.size());
}

} // namespace nnc::codegen
