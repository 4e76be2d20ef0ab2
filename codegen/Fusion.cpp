// Elementwise loop fusion; see Fusion.h.
//
// Ops are taken in program order. An elementwise op joins the open group of
// its output shape when every operand it takes from that group is read at
// the same index (same shape, not a transpose). Groups are emitted when
// something outside them needs one of their values, so a group can be
// emitted after ops that came between its members: nothing they read or
// write overlaps, since every op writes only its own result and any read of
// a group's value closes the group first. Open groups never read each other
// (that, too, closes the group read), so they can be closed in any order.
#include "codegen/Fusion.h"

#include "ir/ShapeRules.h"

#include <algorithm>
#include <map>
#include <unordered_map>

namespace nnc::codegen {

FusionPlan planFusion(const ir::Function &f, const ir::Bindings &bindings,
                      const std::function<bool(const ir::Op &)> &fusable,
                      const std::function<bool(const ir::Op &)> &emitsNothing,
                      const std::function<const ir::Value *(const ir::Value *)> &root) {
  FusionPlan plan;
  std::vector<Step> groups;                                 // open and closed groups, by id
  std::map<std::vector<int64_t>, size_t> openByShape;       // output shape -> open group id
  std::unordered_map<const ir::Value *, size_t> groupOf;    // value -> group id (open groups only)
  std::unordered_map<const ir::Op *, size_t> stepOfFusedOp; // op -> its step, once emitted

  auto close = [&](size_t g) {
    for (const ir::Op *op : groups[g]) {
      groupOf.erase(op->result);
      stepOfFusedOp[op] = plan.steps.size();
    }
    plan.steps.push_back(std::move(groups[g]));
    for (auto it = openByShape.begin(); it != openByShape.end(); ++it)
      if (it->second == g) {
        openByShape.erase(it);
        break;
      }
  };
  auto shapeOf = [&](const ir::Value *v) { return ir::concreteShape(v->type.shape, bindings); };

  for (const auto &owned : f.ops) {
    const ir::Op &op = *owned;
    if (emitsNothing(op))
      continue;
    std::vector<int64_t> shape = shapeOf(op.result);
    constexpr size_t kNone = SIZE_MAX;
    size_t join = kNone;
    if (fusable(op)) {
      auto it = openByShape.find(shape);
      if (it != openByShape.end())
        join = it->second;
    }
    // Values of other open groups must be in memory before op runs; a value
    // of the group op joins must be read at op's own index.
    for (const ir::Value *v : op.operands) {
      const ir::Value *r = root(v);
      auto g = groupOf.find(r);
      if (g == groupOf.end())
        continue;
      bool sameIndex = v == r && op.kind != ir::OpKind::Transpose && shapeOf(v) == shape;
      if (g->second == join && sameIndex)
        continue;
      if (g->second == join)
        join = kNone;
      close(g->second);
    }
    if (!fusable(op)) {
      plan.steps.push_back({&op});
      continue;
    }
    if (join == kNone) {
      auto it = openByShape.find(shape);
      if (it != openByShape.end())
        close(it->second);
      join = groups.size();
      groups.emplace_back();
      openByShape[shape] = join;
    }
    groups[join].push_back(&op);
    groupOf[op.result] = join;
  }
  // Whatever is still open: in order of creation.
  std::vector<size_t> open;
  for (auto &[shape, g] : openByShape)
    open.push_back(g);
  std::sort(open.begin(), open.end());
  for (size_t g : open)
    close(g);

  // A fused value is internal when every reader is in its step.
  std::unordered_set<const ir::Value *> escapes;
  for (const ir::Value *r : f.results)
    escapes.insert(root(r));
  for (const auto &op : f.ops)
    for (const ir::Value *v : op->operands) {
      auto s = stepOfFusedOp.find(v->def);
      if (v->def && s != stepOfFusedOp.end()) {
        auto mine = stepOfFusedOp.find(op.get());
        if (mine == stepOfFusedOp.end() || mine->second != s->second)
          escapes.insert(v);
      }
    }
  for (auto &[op, step] : stepOfFusedOp)
    if (!escapes.count(op->result))
      plan.internal.insert(op->result);
  return plan;
}

} // namespace nnc::codegen
