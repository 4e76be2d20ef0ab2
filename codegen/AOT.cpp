// Ahead-of-time output; see AOT.h.
//
// Each function is lowered and optimized exactly as the JIT does it, once
// per CPU variant, in a module of its own whose functions carry that
// variant's target-cpu and target-features; the GEMM micro-kernels of the
// variant's tile join them under prefixed names. All modules are then linked
// into one and emitted as one position-independent object: LLVM compiles each
// function for its own attributes, so one object holds every variant.
#include "codegen/AOT.h"

#include "codegen/GemmKernel.h"
#include "codegen/LowerToLLVM.h"
#include "codegen/MemoryPlan.h"
#include "codegen/Target.h"

#include <llvm/ADT/StringMap.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/GlobalVariable.h>
#include <llvm/IR/Module.h>
#include <llvm/Linker/Linker.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/SubtargetFeature.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/X86TargetParser.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

namespace nnc::codegen {

namespace {

/// The features nnc's code generation looks at (the GEMM tile, the vector
/// width); a named CPU's are spelled out so that every variant is described
/// by its feature string the same way.
const char *const kVectorFeatures[] = {"sse4.2", "avx",      "avx2",     "fma",      "f16c",
                                       "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"};

std::unique_ptr<llvm::TargetMachine> targetMachine(const std::string &cpu, const std::string &features) {
  std::string triple = llvm::sys::getProcessTriple(), err;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, err);
  if (!target)
    throw std::runtime_error("LLVM cannot target " + triple + ": " + err);
  llvm::TargetOptions to;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, cpu, features, to, llvm::Reloc::PIC_, llvm::None, llvm::CodeGenOpt::Aggressive));
  if (!tm)
    throw std::runtime_error("cannot create a target machine for CPU '" + cpu + "'");
  return tm;
}

AotVariant hostVariant() {
  llvm::StringMap<bool> has;
  llvm::SubtargetFeatures sf;
  if (llvm::sys::getHostCPUFeatures(has))
    for (const auto &kv : has)
      sf.AddFeature(kv.first(), kv.second);
  return {"native", llvm::sys::getHostCPUName().str(), sf.getString(), 0, 0, {}};
}

/// A CPU by LLVM's name, with the vector features it implies spelled out.
AotVariant namedVariant(const std::string &cpu) {
  checkCpu(cpu);
  auto tm = targetMachine(cpu, "");
  const llvm::MCSubtargetInfo *sti = tm->getMCSubtargetInfo();
  std::string features;
  for (const char *f : kVectorFeatures)
    if (sti->checkFeatures(std::string("+") + f))
      features += (features.empty() ? "+" : ",+") + std::string(f);
  return {cpu, cpu, features, 0, 0, {}};
}

/// The variants of --cpu portable, best first: x86-64 levels 4, 3 and 1.
std::vector<AotVariant> portableVariants() {
  return {{"avx512", "x86-64-v4", "+avx512f,+avx512bw,+avx512dq,+avx512vl,+avx512cd,+avx2,+fma,+avx,+f16c", 0, 0, {}},
          {"avx2", "x86-64-v3", "+avx2,+fma,+avx,+f16c", 0, 0, {}},
          {"sse2", "x86-64", "", 0, 0, {}}};
}

/// Links `from` into `into`; internal symbols that clash are renamed.
void link(llvm::Module &into, std::unique_ptr<llvm::Module> from) {
  if (llvm::Linker::linkModules(into, std::move(from)))
    throw std::runtime_error("cannot link the compiled functions into one object");
}

} // namespace

std::vector<std::string> knownCpus() {
  llvm::SmallVector<llvm::StringRef, 64> names;
  llvm::X86::fillValidCPUArchList(names, /*Only64Bit=*/true);
  return std::vector<std::string>(names.begin(), names.end());
}

void checkCpu(const std::string &cpu) {
  if (cpu == "native" || cpu == "portable")
    return;
  std::vector<std::string> known = knownCpus();
  if (std::find(known.begin(), known.end(), cpu) != known.end())
    return;
  std::string list;
  for (const std::string &c : known)
    list += (list.empty() ? "" : ", ") + c;
  throw std::runtime_error("unknown CPU '" + cpu + "' (native, portable, or one of LLVM's x86-64 CPUs: " + list + ")");
}

AotObject compileAhead(const std::vector<AotFunction> &fns, const AotOptions &opts) {
  initLLVM();
  AotObject out;
  if (opts.cpu == "native")
    out.variants.push_back(hostVariant());
  else if (opts.cpu == "portable")
    out.variants = portableVariants();
  else
    out.variants.push_back(namedVariant(opts.cpu));

  Context ctx;
  auto all = std::make_unique<llvm::Module>(opts.prefix, ctx);
  // The object is emitted by the last (most widely runnable) variant's target
  // machine; every function carries its own variant's CPU and features.
  std::unique_ptr<llvm::TargetMachine> baseTm;
  for (size_t v = 0; v < out.variants.size(); ++v) {
    AotVariant &var = out.variants[v];
    auto tm = targetMachine(var.cpu, var.features);
    for (size_t i = 0; i < fns.size(); ++i) {
      const AotFunction &af = fns[i];
      MemoryPlan plan = planMemory(*af.f, af.bindings, af.inPlaceUpdates);
      if (v == 0) {
        AotEntry e;
        e.symbol = af.symbol;
        e.arenaBytes = plan.arenaBytes;
        e.resultArg = plan.resultArg;
        for (size_t a = 0; a < af.f->args.size(); ++a)
          e.args.push_back({af.f->args[a]->name, af.f->args[a]->type.dtype,
                            ir::concreteShape(af.f->args[a]->type.shape, af.bindings), af.f->argRoles[a]});
        for (size_t j = 0; j < af.f->results.size(); ++j)
          e.results.push_back({af.f->resultNames[j], af.f->results[j]->type.dtype,
                               ir::concreteShape(af.f->results[j]->type.shape, af.bindings)});
        out.entries.push_back(std::move(e));
      }
      auto m = lowerToLLVM(*af.f, af.bindings, plan, ctx, af.symbol + "_" + var.name);
      setTargetAttributes(*m, *tm);
      optimizeModule(*m, *tm);
      link(*all, std::move(m));
    }
    GemmTile tile = gemmTileFor(var.features);
    var.gemmRows = tile.mr;
    var.gemmCols = tile.nr;
    auto kernels = buildGemmKernels(ctx, tile);
    for (const GemmKernelSpec &spec : gemmKernelSpecs(tile)) {
      std::string symbol = opts.prefix + "_" + var.name + "_" + spec.name.substr(std::string("nnc_").size());
      kernels->getFunction(spec.name)->setName(symbol);
      var.gemmKernels.push_back({symbol, spec.rows, spec.cols, spec.inPlace});
    }
    setTargetAttributes(*kernels, *tm);
    optimizeModule(*kernels, *tm, /*unroll=*/true);
    link(*all, std::move(kernels));
    baseTm = std::move(tm);
  }

  // The data blob, aligned for in-place tensor views.
  auto *bytes = llvm::ConstantDataArray::getRaw(opts.data, opts.data.size(), llvm::Type::getInt8Ty(ctx));
  auto *blob = new llvm::GlobalVariable(*all, bytes->getType(), true, llvm::GlobalValue::ExternalLinkage, bytes,
                                        opts.prefix + "_data");
  blob->setAlignment(llvm::Align(64));
  new llvm::GlobalVariable(*all, llvm::Type::getInt64Ty(ctx), true, llvm::GlobalValue::ExternalLinkage,
                           llvm::ConstantInt::get(llvm::Type::getInt64Ty(ctx), opts.data.size()),
                           opts.prefix + "_data_size");
  // The baseline variant's layout and triple stand for the whole module.
  all->setDataLayout(baseTm->createDataLayout());
  all->setTargetTriple(baseTm->getTargetTriple().str());
  out.object = emitObjectFile(*all, *baseTm);
  return out;
}

} // namespace nnc::codegen
