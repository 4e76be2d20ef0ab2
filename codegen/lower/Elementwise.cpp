// Elementwise ops and fused loops over strided operands.
#include "codegen/Emitter.h"

namespace nnc::codegen {

Emitter::Access Emitter::denseAccess(const ir::Value *v) {
  Access a;
  a.v = v;
  a.strides = stridesOf(shapeOf(v));
  return a;
}

Emitter::Access Emitter::readAccess(const ir::Value *v) {
  if (plan_.storage.at(v).kind != Storage::View)
    return denseAccess(v);
  const ir::Op &slice = *v->def;
  Access a = denseAccess(plan_.storage.at(v).aliasOf);
  a.offset = slice.getInt("start") * a.strides[size_t(slice.getInt("axis"))];
  return a;
}

Emitter::Access Emitter::broadcastAccess(const ir::Value *v, const std::vector<int64_t> &outShape) {
  Access a;
  a.v = v;
  if (plan_.storage.at(v).kind == Storage::View) {
    // A slice read in place: v's dims walk its source's, from the offset.
    Access view = readAccess(v);
    std::vector<int64_t> shape = shapeOf(v);
    size_t lead = outShape.size() - shape.size();
    a = view;
    a.strides.assign(outShape.size(), 0);
    for (size_t i = 0; i < shape.size(); ++i)
      a.strides[lead + i] = shape[i] == 1 && outShape[lead + i] != 1 ? 0 : view.strides[i];
    return a;
  }
  const Storage &s = plan_.resolve(v);
  if (s.kind == Storage::Immediate) {
    a.immediate = true;
    a.imm = s.immediate;
    a.strides.assign(outShape.size(), 0);
    return a;
  }
  std::vector<int64_t> shape = shapeOf(v), st = stridesOf(shape);
  size_t lead = outShape.size() - shape.size();
  a.strides.assign(outShape.size(), 0);
  for (size_t i = 0; i < shape.size(); ++i)
    a.strides[lead + i] = shape[i] == 1 && outShape[lead + i] != 1 ? 0 : st[i];
  return a;
}

void Emitter::strided(const std::string &what, const ir::Value *out, std::vector<int64_t> shape,
                      std::vector<Access> ins, const std::function<LV *(const std::vector<LV *> &)> &fn,
                      int64_t costPerElem) {
  Access o;
  o.v = out;
  o.strides = stridesOf(shape);
  strided(what, o, std::move(shape), std::move(ins), fn, costPerElem);
}

void Emitter::strided(const std::string &what, Access outAccess, std::vector<int64_t> shape, std::vector<Access> ins,
                      const std::function<LV *(const std::vector<LV *> &)> &fn, int64_t costPerElem) {
  strided(
      what, std::vector<Access>{std::move(outAccess)}, std::move(shape), std::move(ins),
      [&](const std::vector<LV *> &v) { return std::vector<LV *>{fn(v)}; }, costPerElem);
}

void Emitter::strided(const std::string &what, std::vector<Access> outs, std::vector<int64_t> shape,
                      std::vector<Access> ins, const std::function<std::vector<LV *>(const std::vector<LV *> &)> &fn,
                      int64_t costPerElem) {
  // Collapse dims d, d+1 when every access walks them as one.
  auto walksAsOne = [&](const Access &a, int d) { return a.strides[d] == a.strides[d + 1] * shape[d + 1]; };
  for (int d = int(shape.size()) - 2; d >= 0; --d) {
    bool ok = true;
    for (auto *list : {&outs, &ins})
      for (auto &a : *list)
        ok &= walksAsOne(a, d);
    if (!ok)
      continue;
    shape[d] *= shape[d + 1];
    shape.erase(shape.begin() + d + 1);
    for (auto *list : {&outs, &ins})
      for (auto &a : *list) {
        a.strides[d] = a.strides[d + 1];
        a.strides.erase(a.strides.begin() + d + 1);
      }
  }
  if (shape.empty()) {
    shape = {1};
    for (auto *list : {&outs, &ins})
      for (auto &a : *list)
        a.strides = {0};
  }
  int64_t total = 1;
  for (int64_t d : shape)
    total *= d;
  kernel(what, shape[0], total * costPerElem, [&](LV *ctx, LV *begin, LV *end) {
    std::vector<LV *> outPtrs, inPtrs;
    for (auto &a : outs)
      outPtrs.push_back(basePtr(a.v, ctx));
    for (auto &a : ins)
      inPtrs.push_back(a.immediate ? nullptr : basePtr(a.v, ctx));
    std::vector<LV *> idx(shape.size());
    auto offsetOf = [&](const Access &a) {
      LV *off = b_.getInt64(a.offset);
      for (size_t j = 0; j < idx.size(); ++j)
        if (a.strides[j])
          off = b_.CreateAdd(off, b_.CreateMul(idx[j], b_.getInt64(a.strides[j])));
      return off;
    };
    std::function<void(size_t)> nest = [&](size_t d) {
      auto body = [&](LV *i) {
        idx[d] = i;
        if (d + 1 < shape.size())
          return nest(d + 1);
        std::vector<LV *> vals;
        for (size_t k = 0; k < ins.size(); ++k) {
          if (ins[k].immediate) {
            vals.push_back(ins[k].v->type.dtype == ir::DType::F32 ? cf(ins[k].imm) : b_.getInt64(int64_t(ins[k].imm)));
            continue;
          }
          llvm::Type *ety = elemTy(ins[k].v);
          vals.push_back(b_.CreateLoad(ety, b_.CreateInBoundsGEP(ety, inPtrs[k], offsetOf(ins[k]))));
        }
        std::vector<LV *> results = fn(vals);
        for (size_t k = 0; k < outs.size(); ++k)
          b_.CreateStore(results[k], b_.CreateInBoundsGEP(elemTy(outs[k].v), outPtrs[k], offsetOf(outs[k])));
      };
      if (d == 0)
        loop(begin, end, body, "i0");
      else
        loop(shape[d], body, ("i" + std::to_string(d)).c_str());
    };
    nest(0);
  });
}

void Emitter::lowerFused(const Step &ops) {
  std::vector<int64_t> shape = shapeOf(ops.back()->result);
  std::unordered_map<const ir::Value *, bool> madeHere;
  for (const ir::Op *op : ops)
    madeHere[op->result] = true;
  // Input k of the loop; a value read plainly by several ops is loaded once.
  std::vector<Access> ins;
  std::map<const ir::Value *, size_t> plainInput;
  std::vector<std::vector<size_t>> inputOf(ops.size());
  std::vector<Access> outs;
  int64_t cost = 0;
  std::string what = ops.size() == 1 ? "" : "fused";
  for (size_t m = 0; m < ops.size(); ++m) {
    const ir::Op &op = *ops[m];
    if (m < 3)
      what += std::string(what.empty() ? "" : ".") + ir::opName(op.kind);
    for (size_t k = 0; k < op.operands.size(); ++k) {
      const ir::Value *v = op.operands[k];
      if (madeHere.count(v)) {
        inputOf[m].push_back(SIZE_MAX);
        continue;
      }
      Access a = broadcastAccess(v, shape);
      if (op.kind == ir::OpKind::Transpose) {
        // Output dim i reads input dim perm[i].
        std::vector<int64_t> perm = op.getInts("perm");
        std::vector<int64_t> inStrides = stridesOf(shapeOf(v));
        if (!a.immediate)
          for (size_t i = 0; i < perm.size(); ++i)
            a.strides[i] = inStrides[perm[i]];
      } else if (plainInput.count(v)) {
        inputOf[m].push_back(plainInput[v]);
        continue;
      } else {
        plainInput[v] = ins.size();
      }
      inputOf[m].push_back(ins.size());
      ins.push_back(a);
    }
    if (plan_.storage.at(op.result).kind != Storage::Fused) {
      Access o;
      o.v = op.result;
      o.strides = stridesOf(shape);
      outs.push_back(o);
    }
    bool transcendental = op.kind == ir::OpKind::Exp || op.kind == ir::OpKind::Log || op.kind == ir::OpKind::Tanh ||
                          op.kind == ir::OpKind::Erf || op.kind == ir::OpKind::Sigmoid;
    cost += transcendental ? 20 : 1;
  }
  strided(
      what, outs, shape, ins,
      [&](const std::vector<LV *> &loaded) {
        std::unordered_map<const ir::Value *, LV *> value;
        std::vector<LV *> stored;
        for (size_t m = 0; m < ops.size(); ++m) {
          const ir::Op &op = *ops[m];
          std::vector<LV *> args;
          for (size_t k = 0; k < op.operands.size(); ++k)
            args.push_back(inputOf[m][k] == SIZE_MAX ? value.at(op.operands[k]) : loaded[inputOf[m][k]]);
          LV *r = scalarOp(op.kind, args);
          value[op.result] = r;
          if (plan_.storage.at(op.result).kind != Storage::Fused)
            stored.push_back(r);
        }
        return stored;
      },
      cost);
}

void Emitter::lowerConstFill(const ir::Op &op) {
  double v = constantValue(op, bind_);
  strided("fill", op.result, shapeOf(op.result), {}, [&](const std::vector<LV *> &) { return cf(v); });
}

} // namespace nnc::codegen
