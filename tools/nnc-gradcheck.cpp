// nnc-gradcheck: checks symbolic gradients against finite differences.
// For each function in an IR file, differentiates its first result (an f32
// scalar) with respect to its Param arguments, JIT-compiles the function and
// its gradient with random inputs, and compares every gradient entry (or a
// sample of them) with a central difference. Prints one line per parameter
// and PASS or FAIL; exits 1 on a mismatch.
//
// --second-order checks second derivatives the same way: it differentiates
// each function once, forms the scalar s = sum over parameters p of
// <dL/dp, v_p> for random directions v_p (extra inputs), and checks the
// gradient of s (Hessian-vector products, the symbolic gradient of a
// symbolic gradient) against finite differences of s.
#include "codegen/JIT.h"
#include "ir/Builder.h"
#include "ir/Parser.h"
#include "ir/transforms/Passes.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <set>
#include <unordered_map>
#include <sstream>

using namespace nnc;

namespace {

struct Buffers {
  std::vector<std::vector<float>> f32;
  std::vector<std::vector<int64_t>> i64;
  std::vector<void *> ptrs;
};

double run(const codegen::CompiledFunction &cf, std::vector<std::vector<float>> &args,
           std::vector<std::vector<int64_t>> &iargs, std::vector<std::vector<float>> *gradsOut) {
  std::vector<void *> ptrs;
  for (size_t i = 0; i < cf.args.size(); ++i)
    ptrs.push_back(cf.args[i].dtype == ir::DType::F32 ? static_cast<void *>(args[i].data())
                                                      : static_cast<void *>(iargs[i].data()));
  std::vector<std::vector<float>> results(cf.results.size());
  std::vector<std::vector<int64_t>> iresults(cf.results.size());
  for (size_t j = 0; j < cf.results.size(); ++j) {
    size_t n = size_t(ir::numElements(cf.results[j].shape));
    if (cf.results[j].dtype == ir::DType::F32) {
      results[j].resize(std::max<size_t>(n, 1));
      ptrs.push_back(results[j].data());
    } else {
      iresults[j].resize(std::max<size_t>(n, 1));
      ptrs.push_back(iresults[j].data());
    }
  }
  std::vector<float> arena(size_t(cf.arenaBytes / 4 + 64));
  // 64-byte alignment for the arena.
  char *base = reinterpret_cast<char *>(arena.data());
  char *aligned = reinterpret_cast<char *>((reinterpret_cast<uintptr_t>(base) + 63) & ~uintptr_t(63));
  cf.entry(ptrs.data(), aligned);
  if (gradsOut)
    *gradsOut = results;
  return results[0][0];
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"nnc-gradcheck: compare symbolic gradients with finite differences"};
  std::string input;
  std::vector<std::string> binds;
  double lo = -1, hi = 1, eps = 1e-2, atol = 1e-3, rtol = 2e-2;
  int64_t intMax = 3, samples = 40;
  uint64_t seed = 1;
  bool secondOrder = false;
  app.add_option("INPUT", input, "IR file")->required();
  app.add_option("--bind", binds, "Symbol sizes, e.g. N=4 (default 3)");
  app.add_option("--low", lo, "Smallest random input value");
  app.add_option("--high", hi, "Largest random input value");
  app.add_option("--int-max", intMax, "i64 inputs are drawn from [0, int-max)");
  app.add_option("--eps", eps, "Finite-difference step");
  app.add_option("--atol", atol, "Absolute tolerance");
  app.add_option("--rtol", rtol, "Relative tolerance");
  app.add_option("--samples", samples, "Entries checked per parameter (at most)");
  app.add_option("--seed", seed, "Random seed");
  app.add_flag("--second-order", secondOrder,
               "Check second derivatives: the gradient of <dL/dp, v> for random directions v");
  CLI11_PARSE(app, argc, argv);

  SourceFile file;
  file.name = input;
  std::ifstream in(input);
  if (!in) {
    std::cerr << "nnc-gradcheck: error: cannot open '" << input << "'\n";
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  file.text = ss.str();
  DiagnosticEngine diags(&std::cerr);
  auto m = ir::parseModule(file, diags);
  if (!m)
    return 1;
  ir::Bindings bindings;
  for (auto &b : binds) {
    size_t eq = b.find('=');
    if (eq == std::string::npos) {
      std::cerr << "nnc-gradcheck: error: --bind expects NAME=SIZE\n";
      return 2;
    }
    bindings[b.substr(0, eq)] = std::stoll(b.substr(eq + 1));
  }
  size_t nfun = m->functions.size();
  for (size_t fi = 0; fi < nfun; ++fi)
    for (ir::Value *a : m->functions[fi]->args)
      for (auto &d : a->type.shape)
        if (!d.isStatic() && !bindings.count(d.sym))
          bindings[d.sym] = 3;

  codegen::JIT jit;
  std::mt19937_64 rng(seed);
  bool ok = true;
  // Scan bodies are checked through the functions that loop over them.
  std::set<const ir::Function *> bodies;
  for (size_t fi = 0; fi < nfun; ++fi)
    for (auto &op : m->functions[fi]->ops)
      if (op->body)
        bodies.insert(op->body);
  for (size_t fi = 0; fi < nfun; ++fi) {
    ir::Function *checked = m->functions[fi].get();
    if (bodies.count(checked))
      continue;
    if (checked->results.empty() || checked->results[0]->type.rank() != 0) {
      std::cerr << "nnc-gradcheck: error: the first result of @" << checked->name << " must be a scalar\n";
      return 1;
    }
    if (secondOrder) {
      // @<f>.hvp(args..., dir.<p>...) = sum_p <grad.<p>, dir.<p>>
      ir::Function *g1 = ir::differentiate(*m, *checked, checked->resultNames[0], checked->name + ".g1");
      ir::simplify(*g1);
      ir::Function *h = m->addFunction(checked->name + ".hvp");
      std::unordered_map<const ir::Value *, ir::Value *> map;
      for (size_t i = 0; i < g1->args.size(); ++i)
        map[g1->args[i]] = h->addArg(g1->args[i]->name, g1->args[i]->type, g1->argRoles[i]);
      std::vector<std::pair<std::string, ir::Value *>> dirs;
      for (size_t i = 0; i < g1->args.size(); ++i)
        if (g1->argRoles[i] == ir::ArgRole::Param && g1->args[i]->type.dtype == ir::DType::F32)
          dirs.push_back({g1->args[i]->name, h->addArg("dir." + g1->args[i]->name, g1->args[i]->type,
                                                       ir::ArgRole::Input)});
      map = h->cloneBody(*g1, map);
      ir::Builder b(*h);
      ir::Value *sum = nullptr;
      for (auto &[name, dir] : dirs) {
        ir::Value *t = b.mul(map.at(g1->result("grad." + name)), dir);
        std::vector<int64_t> axes;
        for (int64_t a = 0; a < int64_t(t->type.rank()); ++a)
          axes.push_back(a);
        if (!axes.empty())
          t = b.reduce(ir::OpKind::ReduceSum, t, axes, false);
        sum = sum ? b.add(sum, t) : t;
      }
      if (!sum)
        sum = b.constant(0.0);
      h->addResult("hvp", sum);
      ir::simplify(*h);
      checked = h;
    }
    ir::Function &f = *checked;
    ir::Function *g = ir::differentiate(*m, f, f.resultNames[0], f.name + ".grad");
    ir::simplify(*g);
    codegen::CompiledFunction cf = jit.compile(f, bindings), cg = jit.compile(*g, bindings);
    std::vector<std::vector<float>> args(f.args.size());
    std::vector<std::vector<int64_t>> iargs(f.args.size());
    std::uniform_real_distribution<double> ud(lo, hi);
    std::uniform_int_distribution<int64_t> id(0, std::max<int64_t>(0, intMax - 1));
    for (size_t i = 0; i < f.args.size(); ++i) {
      size_t n = size_t(ir::numElements(cf.args[i].shape));
      if (cf.args[i].dtype == ir::DType::F32) {
        args[i].resize(std::max<size_t>(n, 1));
        for (auto &x : args[i])
          x = float(ud(rng));
      } else {
        iargs[i].resize(std::max<size_t>(n, 1));
        for (auto &x : iargs[i])
          x = id(rng);
      }
    }
    std::vector<std::vector<float>> grads;
    run(cg, args, iargs, &grads);
    std::cout << fmt::format("gradcheck @{}\n", f.name);
    for (size_t i = 0; i < f.args.size(); ++i) {
      if (f.argRoles[i] != ir::ArgRole::Param || f.args[i]->type.dtype != ir::DType::F32)
        continue;
      size_t gi = 0;
      for (; gi < g->resultNames.size(); ++gi)
        if (g->resultNames[gi] == "grad." + f.args[i]->name)
          break;
      const std::vector<float> &ad = grads[gi];
      size_t n = args[i].size();
      std::vector<size_t> idx(n);
      for (size_t k = 0; k < n; ++k)
        idx[k] = k;
      std::shuffle(idx.begin(), idx.end(), rng);
      idx.resize(std::min<size_t>(n, size_t(samples)));
      double maxAbs = 0, maxRel = 0;
      bool argOk = true;
      for (size_t k : idx) {
        float saved = args[i][k];
        args[i][k] = float(saved + eps);
        double up = run(cf, args, iargs, nullptr);
        args[i][k] = float(saved - eps);
        double down = run(cf, args, iargs, nullptr);
        args[i][k] = saved;
        double fd = (up - down) / (2 * eps);
        double err = std::fabs(fd - double(ad[k]));
        maxAbs = std::max(maxAbs, err);
        maxRel = std::max(maxRel, err / std::max(1e-6, std::fabs(fd)));
        if (!(err <= atol + rtol * std::fabs(fd))) {
          if (argOk)
            std::cout << fmt::format("  mismatch at %{}[{}]: finite difference {:.6g}, symbolic {:.6g}\n",
                                     f.args[i]->name, k, fd, ad[k]);
          argOk = false;
        }
      }
      std::cout << fmt::format("  %{}: {} checked, max abs err {:.2e}, max rel err {:.2e}: {}\n", f.args[i]->name,
                               idx.size(), maxAbs, maxRel, argOk ? "ok" : "MISMATCH");
      ok &= argOk;
    }
  }
  std::cout << (ok ? "PASS" : "FAIL") << "\n";
  return ok ? 0 : 1;
}
