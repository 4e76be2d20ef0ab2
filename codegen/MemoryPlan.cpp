// Buffer planning; see MemoryPlan.h.
#include "codegen/MemoryPlan.h"

#include "ir/ShapeRules.h"
#include "runtime/Gemm.h"

#include <algorithm>
#include <map>
#include <unordered_set>

namespace nnc::codegen {

bool readsOperandsElementwise(ir::OpKind k) {
  return hasTrait(k, ir::OpTrait::Elementwise) || k == ir::OpKind::Broadcast || k == ir::OpKind::Transpose ||
         k == ir::OpKind::ModeSelect;
}

double constantValue(const ir::Op &op, const ir::Bindings &bindings) {
  double v = op.getFloat("value");
  for (int64_t d : ir::concreteShape(op.getShape("divisor"), bindings))
    v /= double(d);
  return v;
}

static int64_t bytesOfValue(const ir::Value *v, const ir::Bindings &b) {
  int64_t n = ir::numElements(ir::concreteShape(v->type.shape, b));
  return std::max<int64_t>(64, (n * (v->type.dtype == ir::DType::F32 ? 4 : 8) + 63) / 64 * 64);
}

int64_t scratchBytes(const ir::Op &op, const ir::Bindings &bindings) {
  const ir::Value *x, *y;
  switch (op.kind) {
  case ir::OpKind::Conv2D:
    x = op.operand(0), y = op.result;
    break;
  case ir::OpKind::Conv2DGradInput:
    x = op.result, y = op.operand(0);
    break;
  case ir::OpKind::Conv2DGradWeight:
    x = op.operand(1), y = op.operand(0);
    break;
  default:
    return 0;
  }
  std::vector<int64_t> xs = ir::concreteShape(x->type.shape, bindings), ys = ir::concreteShape(y->type.shape, bindings);
  ir::Window2D w = ir::window2DOf(op);
  return xs[0] * xs[1] * w.kh * w.kw * ys[2] * ys[3] * 4;
}

std::vector<std::pair<const ir::Op *, int64_t>> loopInvariantProducts(const ir::Op &scan,
                                                                      const ir::Bindings &bindings) {
  std::vector<std::pair<const ir::Op *, int64_t>> found;
  const ir::Function &body = *scan.body;
  size_t invariantsFrom = (scan.getString("mode") == "carry" ? 1 : 0) + size_t(scan.getInt("nseq"));
  for (const auto &op : body.ops) {
    if (op->kind != ir::OpKind::MatMul || op->operand(0)->type.rank() != 2 || op->operand(1)->type.rank() != 2)
      continue;
    auto arg = std::find(body.args.begin(), body.args.end(), op->operand(1));
    if (arg == body.args.end() || size_t(arg - body.args.begin()) < invariantsFrom)
      continue;
    std::vector<int64_t> bs = ir::concreteShape(op->operand(1)->type.shape, bindings);
    bool tb = op->getBool("tb");
    int64_t K = tb ? bs[1] : bs[0], N = tb ? bs[0] : bs[1];
    found.push_back({op.get(), (runtime::packedBFloatsBound(K, N) * 4 + 63) / 64 * 64});
  }
  return found;
}

const ir::Value *MemoryPlan::root(const ir::Value *v) const {
  for (;;) {
    const Storage &s = storage.at(v);
    if (s.kind != Storage::Alias && s.kind != Storage::View)
      return v;
    v = s.aliasOf;
  }
}

const Storage &MemoryPlan::resolve(const ir::Value *v) const { return storage.at(root(v)); }

/// The step each op of `steps` is emitted in.
static std::unordered_map<const ir::Op *, size_t> stepIndex(const std::vector<Step> &steps) {
  std::unordered_map<const ir::Op *, size_t> stepOf;
  for (size_t i = 0; i < steps.size(); ++i)
    for (const ir::Op *op : steps[i])
      stepOf[op] = i;
  return stepOf;
}

/// `steps` without the ops in `drop`; steps left empty go.
static std::vector<Step> withoutOps(const std::vector<Step> &steps, const std::unordered_set<const ir::Op *> &drop) {
  std::vector<Step> kept;
  for (const Step &step : steps) {
    Step rest;
    for (const ir::Op *op : step)
      if (!drop.count(op))
        rest.push_back(op);
    if (!rest.empty())
      kept.push_back(rest);
  }
  return kept;
}

/// Result "new.X" of an update written over argument X (a parameter or
/// optimizer state) when it is safe: it is made by an elementwise loop that
/// reads X only at the index it writes, and no later step reads X.
static void planInPlaceUpdates(const ir::Function &f, const ir::Bindings &bindings, const std::vector<Step> &steps,
                               MemoryPlan &plan) {
  std::unordered_map<const ir::Op *, size_t> stepOf = stepIndex(steps);
  std::unordered_map<const ir::Value *, bool> taken;
  for (const ir::Value *r : f.results)
    if (r->def == nullptr)
      taken[r] = true; // an argument returned as it is must keep its bytes
  for (size_t j = 0; j < f.results.size(); ++j) {
    const std::string &name = f.resultNames[j];
    if (name.rfind("new.", 0) != 0)
      continue;
    const ir::Value *arg = f.arg(name.substr(4));
    const ir::Value *r = f.results[j];
    if (!arg || taken[arg] || !r->def || r->type != arg->type || plan.storage.at(r).kind != Storage::Arena ||
        !readsOperandsElementwise(r->def->kind) || !stepOf.count(r->def))
      continue;
    size_t at = stepOf.at(r->def);
    std::vector<int64_t> shape = ir::concreteShape(arg->type.shape, bindings);
    bool safe = true;
    for (size_t i = 0; i < steps.size() && safe; ++i)
      for (const ir::Op *op : steps[i])
        for (const ir::Value *v : op->operands)
          if (plan.root(v) == arg)
            safe &= i < at || (i == at && v == arg && op->kind != ir::OpKind::Transpose &&
                               ir::concreteShape(op->result->type.shape, bindings) == shape);
    // Two results written over one argument, or one value returned twice: no.
    for (size_t k = 0; k < f.results.size(); ++k)
      safe &= k == j || f.results[k] != r;
    if (!safe)
      continue;
    Storage &s = plan.storage[r];
    s.kind = Storage::Arg;
    s.index = int(std::find(f.args.begin(), f.args.end(), arg) - f.args.begin());
    plan.resultArg[j] = s.index;
    taken[arg] = true;
  }
}

/// An SGD update written over its weight, new.W = W - lr * G, where G is a
/// plain matrix product read by nothing else: the product adds (-lr) * G into
/// W itself (MemoryPlan::productUpdates), so neither G's buffer nor the
/// update's loop (its step is dropped) is needed. Every other reader of W
/// must run before the product, which now changes W.
static void planProductUpdates(const ir::Function &f, ir::Users &users,
                               std::unordered_map<const ir::Value *, bool> &isResult, std::vector<Step> &steps,
                               MemoryPlan &plan) {
  std::unordered_map<const ir::Op *, size_t> stepOf = stepIndex(steps);
  std::unordered_set<const ir::Op *> dropped;
  for (size_t j = 0; j < f.results.size(); ++j) {
    if (plan.resultArg[j] < 0)
      continue;
    const ir::Value *w = f.args[size_t(plan.resultArg[j])];
    const ir::Op *sub = f.results[j]->def;
    if (!sub || sub->kind != ir::OpKind::Sub || sub->operand(0) != w || sub->operand(1) == w)
      continue;
    const ir::Op *mul = sub->operand(1)->def;
    if (!mul || mul->kind != ir::OpKind::Mul || users[mul->result].size() != 1 || isResult[mul->result])
      continue;
    const ir::Value *rate = nullptr, *g = nullptr;
    for (size_t k = 0; k < 2; ++k)
      if (mul->operand(k)->type.rank() == 0 && mul->operand(k)->type.dtype == ir::DType::F32) {
        rate = mul->operand(k);
        g = mul->operand(1 - k);
      }
    if (!rate || g == rate || !g->def || g->def->kind != ir::OpKind::MatMul || users[g].size() != 1 || isResult[g] ||
        g->type != w->type || plan.storage.at(g).kind != Storage::Arena)
      continue;
    Storage::Kind rk = plan.storage.at(rate).kind;
    if (rk != Storage::Arg && rk != Storage::Immediate)
      continue;
    const ir::Op *mm = g->def;
    if (mm->operand(0)->type.rank() != 2 || mm->operand(1)->type.rank() != 2 || plan.root(mm->operand(0)) == w ||
        plan.root(mm->operand(1)) == w || !stepOf.count(mm) || !stepOf.count(sub))
      continue;
    // The update's two ops leave their loop (which may compute other
    // updates too); nothing else in it may read them.
    size_t at = stepOf.at(mm), update = stepOf.at(sub);
    if (update <= at || stepOf.at(mul) != update || !users[sub->result].empty())
      continue;
    bool readBefore = true;
    for (const ir::Op *u : users[w])
      if (u != sub && (!stepOf.count(u) || stepOf.at(u) >= at))
        readBefore = false;
    if (!readBefore)
      continue;
    plan.productUpdates[mm] = {w, rate};
    plan.storage[g].kind = Storage::Fused; // never stored
    dropped.insert(mul);
    dropped.insert(sub);
  }
  steps = withoutOps(steps, dropped);
}

MemoryPlan planMemory(const ir::Function &f, const ir::Bindings &bindings, bool inPlaceUpdates) {
  MemoryPlan plan;
  for (size_t i = 0; i < f.args.size(); ++i)
    plan.storage[f.args[i]] = {Storage::Arg, int(i)};

  // Constants read only by elementwise kernels stay immediates.
  std::unordered_map<const ir::Value *, bool> constInMemory;
  for (auto &op : f.ops)
    for (const ir::Value *v : op->operands)
      if (v->def && v->def->kind == ir::OpKind::Const && !readsOperandsElementwise(op->kind))
        constInMemory[v] = true;

  for (auto &op : f.ops) {
    Storage s;
    if (op->kind == ir::OpKind::Reshape) {
      s.kind = Storage::Alias;
      s.aliasOf = op->operand(0);
    } else if (op->kind == ir::OpKind::Const && !constInMemory.count(op->result)) {
      s.kind = Storage::Immediate;
      s.immediate = constantValue(*op, bindings);
    } else {
      s.kind = Storage::Arena;
      s.offset = -1; // assigned below
    }
    plan.storage[op->result] = s;
  }

  // Who reads what, for the matmul patterns below.
  ir::Users users = ir::usersOf(f);
  std::unordered_map<const ir::Value *, bool> isResult;
  for (const ir::Value *r : f.results)
    isResult[r] = true;
  for (auto &op : f.ops) {
    // A matrix broadcast over a stack, read only by matmuls: no copy.
    if (op->kind == ir::OpKind::Broadcast && op->result->type.rank() > 2 && op->operand(0)->type.rank() == 2 &&
        !isResult[op->result]) {
      const ir::Shape &to = op->result->type.shape, &from = op->operand(0)->type.shape;
      bool onlyMatmuls = !users[op->result].empty();
      for (const ir::Op *u : users[op->result])
        onlyMatmuls &= u->kind == ir::OpKind::MatMul;
      if (onlyMatmuls && to[to.size() - 2] == from[0] && to[to.size() - 1] == from[1]) {
        Storage &s = plan.storage[op->result];
        s.kind = Storage::Alias;
        s.aliasOf = op->operand(0);
      }
    }
    // reduce_sum over exactly the stack dimensions of a matmul read by nothing else.
    if (op->kind == ir::OpKind::ReduceSum && op->operand(0)->def && op->operand(0)->def->kind == ir::OpKind::MatMul) {
      const ir::Value *prod = op->operand(0);
      std::vector<int64_t> axes = op->getInts("axes"), stack;
      for (size_t i = 0; i + 2 < prod->type.rank(); ++i)
        stack.push_back(int64_t(i));
      if (!stack.empty() && axes == stack && users[prod].size() == 1 && !isResult[prod]) {
        plan.stackSums[op.get()] = prod->def;
        plan.storage[prod].kind = Storage::Fused;
      }
    }
  }
  auto folded = [&](const ir::Op &op) {
    return plan.storage.at(op.result).kind == Storage::Fused && op.kind == ir::OpKind::MatMul;
  };

  // Elementwise chains become single loops; values inside them need no memory.
  FusionPlan fusion = planFusion(
      f, bindings,
      [&](const ir::Op &op) {
        return readsOperandsElementwise(op.kind) && plan.storage.at(op.result).kind == Storage::Arena;
      },
      [&](const ir::Op &op) {
        Storage::Kind k = plan.storage.at(op.result).kind;
        return k == Storage::Alias || k == Storage::Immediate || folded(op);
      },
      [&](const ir::Value *v) { return plan.root(v); });
  for (const ir::Value *v : fusion.internal)
    plan.storage[v].kind = Storage::Fused;

  // Slices read only by elementwise loops (or by slice, pad and concat,
  // strided copies too) are views: their readers read the sliced value in
  // place at the slice's offset, and the slice is no step.
  // (Not of arguments an update may be written over, whose last reader must
  // be a step of its own.)
  std::unordered_set<const ir::Op *> views;
  for (auto &op : f.ops) {
    const ir::Value *src = op->kind == ir::OpKind::Slice ? op->operand(0) : nullptr;
    if (!src || isResult[op->result] || plan.storage.at(op->result).kind != Storage::Arena || users[op->result].empty())
      continue;
    Storage::Kind from = plan.storage.at(src).kind;
    if (from == Storage::Fused || from == Storage::Immediate || from == Storage::Alias || from == Storage::View ||
        (inPlaceUpdates && from == Storage::Arg))
      continue;
    bool elementwiseReaders = true;
    for (const ir::Op *u : users[op->result]) {
      Storage::Kind k = plan.storage.at(u->result).kind;
      bool copies = u->kind == ir::OpKind::Slice || u->kind == ir::OpKind::Pad || u->kind == ir::OpKind::Concat;
      elementwiseReaders &= (copies || (readsOperandsElementwise(u->kind) && u->kind != ir::OpKind::Transpose)) &&
                            k != Storage::Alias && k != Storage::Immediate;
    }
    if (!elementwiseReaders)
      continue;
    Storage &s = plan.storage[op->result];
    s.kind = Storage::View;
    s.aliasOf = src;
    views.insert(op.get());
  }
  std::vector<Step> steps = withoutOps(fusion.steps, views);

  plan.resultArg.assign(f.results.size(), -1);
  if (inPlaceUpdates) {
    planInPlaceUpdates(f, bindings, steps, plan);
    planProductUpdates(f, users, isResult, steps, plan);
  }

  // Results are written in place by the op that produces them, once.
  std::unordered_map<const ir::Value *, bool> takenByResult;
  for (size_t j = 0; j < f.results.size(); ++j) {
    if (plan.resultArg[j] >= 0)
      continue;
    const ir::Value *r = plan.root(f.results[j]);
    Storage &s = plan.storage[r];
    if (s.kind == Storage::Arena && !takenByResult[r]) {
      s.kind = Storage::Result;
      s.index = int(j);
      takenByResult[r] = true;
    } else {
      plan.copiedResults.push_back(int(j));
    }
  }

  // Liveness over the steps: a value lives from its step to its last use
  // (uses through aliases count); results of the function never die.
  std::unordered_map<const ir::Value *, size_t> lastUse;
  for (size_t i = 0; i < steps.size(); ++i)
    for (const ir::Op *op : steps[i]) {
      auto sum = plan.stackSums.find(op);
      // A folded product's operands are read by the reduction that computes it.
      for (const ir::Value *v : (sum == plan.stackSums.end() ? op : sum->second)->operands) {
        size_t &u = lastUse[plan.root(v)];
        u = std::max(u, i);
      }
    }
  for (const ir::Value *v : f.results)
    lastUse[plan.root(v)] = steps.size();

  // Scan bodies are planned once: their arena sizes the scan's scratch, and
  // their storage is merged into this plan at the end.
  std::unordered_map<const ir::Op *, MemoryPlan> bodyPlans;
  for (auto &op : f.ops)
    if (op->kind == ir::OpKind::Scan) {
      NNC_ASSERT(op->body) << "scan without a body";
      bodyPlans.emplace(op.get(), planMemory(*op->body, bindings, false));
    }

  std::map<int64_t, int64_t> freeList;                    // offset -> size
  std::vector<std::pair<size_t, const ir::Value *>> live; // (last use, value)
  int64_t top = 0;
  // First fit from the free list, else the top of the arena.
  auto allocate = [&](int64_t need) {
    auto fit = std::find_if(freeList.begin(), freeList.end(), [&](auto &slot) { return slot.second >= need; });
    if (fit == freeList.end()) {
      top += need;
      return top - need;
    }
    int64_t at = fit->first, rest = fit->second - need;
    freeList.erase(fit);
    if (rest > 0)
      freeList[at + need] = rest;
    return at;
  };
  std::vector<std::pair<size_t, std::pair<int64_t, int64_t>>> scratchSlots; // (step, (offset, size))
  auto takeScratch = [&](size_t i, const ir::Op &op) {
    // Scratch lives while its op runs: taken after the result (so they never
    // overlap), released before the next step. A scan's holds its body's
    // arena, then (mode sum) one step's result, then the packed copies of
    // its loop-invariant matrices.
    auto body = bodyPlans.find(&op);
    int64_t bytes = body == bodyPlans.end() ? scratchBytes(op, bindings)
                                            : body->second.arenaBytes + bytesOfValue(op.body->results[0], bindings);
    std::vector<std::pair<const ir::Op *, int64_t>> packed;
    if (body != bodyPlans.end())
      packed = loopInvariantProducts(op, bindings);
    int64_t own = (bytes + 63) / 64 * 64, need = own;
    for (auto &[mm, size] : packed)
      need += size;
    if (need) {
      int64_t at = allocate(need);
      plan.scratch[&op] = at;
      scratchSlots.push_back({i, {at, need}});
      int64_t next = at + own;
      for (auto &[mm, size] : packed) {
        plan.packedB[mm] = next;
        next += size;
      }
    }
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    for (auto it = scratchSlots.begin(); it != scratchSlots.end();) {
      if (it->first < i) {
        freeList[it->second.first] = it->second.second;
        it = scratchSlots.erase(it);
      } else {
        ++it;
      }
    }
    // Release slots whose values died before op i.
    for (auto it = live.begin(); it != live.end();) {
      if (it->first < i) {
        const Storage &s = plan.storage[it->second];
        freeList[s.offset] = bytesOfValue(it->second, bindings);
        it = live.erase(it);
      } else {
        ++it;
      }
    }
    // Merge adjacent free slots.
    for (auto it = freeList.begin(); it != freeList.end();) {
      auto next = std::next(it);
      if (next != freeList.end() && it->first + it->second == next->first) {
        it->second += next->second;
        freeList.erase(next);
      } else {
        ++it;
      }
    }
    for (const ir::Op *op : steps[i]) {
      const ir::Value *v = op->result;
      Storage &s = plan.storage[v];
      if (s.kind == Storage::Arena) {
        int64_t need = bytesOfValue(v, bindings);
        plan.unplannedBytes += need;
        s.offset = allocate(need);
        // A value nobody reads dies right away (its slot is free for the next step).
        auto lu = lastUse.find(v);
        live.push_back({lu == lastUse.end() ? i : lu->second, v});
      }
      takeScratch(i, *op);
    }
  }
  plan.steps[&f] = steps;
  plan.arenaBytes = top;

  // Scan bodies run inside their op, in its scratch space: their
  // intermediates at the scratch offset, their arguments as steps of the
  // scan's operands, their result as a step of the scan's result.
  std::unordered_map<const ir::Function *, bool> seen;
  for (auto &op : f.ops) {
    if (op->kind != ir::OpKind::Scan)
      continue;
    const ir::Function &body = *op->body;
    NNC_ASSERT(!seen[&body]) << "scan body @" << body.name << " is used twice in @" << f.name;
    seen[&body] = true;
    int64_t base = plan.scratch.at(op.get());
    const MemoryPlan &bp = bodyPlans.at(op.get());
    bool carry = op->getString("mode") == "carry", sum = op->getString("mode") == "sum";
    size_t nseq = size_t(op->getInt("nseq")), first = carry ? 1 : 0;
    auto stepElems = [&](const ir::Value *outer) {
      std::vector<int64_t> shape = ir::concreteShape(outer->type.shape, bindings);
      return ir::numElements(std::vector<int64_t>(shape.begin() + 1, shape.end()));
    };
    for (auto &[v, st] : bp.storage) {
      Storage s = st;
      if (st.kind == Storage::Arena) {
        s.offset += base;
      } else if (st.kind == Storage::Arg) {
        size_t i = size_t(st.index);
        s = Storage{};
        s.kind = Storage::ScanStep;
        s.scan = op.get();
        if (carry && i == 0) {
          s.aliasOf = op->result;
          s.carryInit = op->operand(0);
          s.stepElems = stepElems(op->result);
        } else if (i < first + nseq) {
          s.aliasOf = op->operand(i);
          s.stepElems = stepElems(op->operand(i));
        } else {
          s.aliasOf = op->operand(i);
          s.whole = true;
        }
      } else if (st.kind == Storage::Result) {
        if (sum) {
          s.kind = Storage::Arena;
          s.offset = base + bp.arenaBytes;
        } else {
          s = Storage{};
          s.kind = Storage::ScanStep;
          s.scan = op.get();
          s.aliasOf = op->result;
          s.stepElems = stepElems(op->result);
        }
      }
      plan.storage[v] = s;
    }
    for (auto &[o, off] : bp.scratch)
      plan.scratch[o] = off + base;
    for (auto &[o, off] : bp.packedB)
      plan.packedB[o] = off + base;
    for (auto &[fn, st] : bp.steps)
      plan.steps[fn] = st;
    for (auto &[r, m] : bp.stackSums)
      plan.stackSums[r] = m;
    const ir::Value *r = body.results[0];
    if (sum || !bp.copiedResults.empty())
      plan.scanCopies[op.get()] = r;
  }
  return plan;
}

} // namespace nnc::codegen
