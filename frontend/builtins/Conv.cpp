// Convolution and pooling: the lowerings of these builtins into IR.
// Each is an Elaborator member named in the table in frontend/Builtins.cpp.
#include "frontend/Elaborator.h"

#include <algorithm>

namespace nnc::frontend {

std::optional<std::vector<int64_t>> Elaborator::windowArg(const ArgMap &args, const std::string &name,
                                                          const std::string &callee, size_t rank,
                                                          std::optional<int64_t> dflt, int64_t lo) {
  auto it = args.find(name);
  if (it == args.end()) {
    NNC_ASSERT(dflt) << "required window argument " << name;
    return std::vector<int64_t>(rank, *dflt);
  }
  const Val &v = it->second.first;
  auto okInt = [&](const Val &x) {
    return x.kind == Val::Number && x.isInt && x.num >= double(lo) && x.num <= 1048576;
  };
  std::vector<int64_t> out;
  if (okInt(v))
    out.assign(rank, int64_t(v.num));
  else if (v.kind == Val::List && v.list.size() == rank && std::all_of(v.list.begin(), v.list.end(), okInt))
    for (const Val &x : v.list)
      out.push_back(int64_t(x.num));
  if (out.empty()) {
    std::string what = rank == 1 ? "an integer" : "an integer or a list of " + std::to_string(rank) + " integers";
    d_.error(it->second.second->loc, callee + ": '" + name + "' must be " + what + " in [" + std::to_string(lo) +
                                         ", 1048576], got " + ast::toSource(*it->second.second));
    return std::nullopt;
  }
  return out;
}

std::optional<std::vector<int64_t>> Elaborator::paddingArg(const ArgMap &args, const std::string &callee, size_t rank,
                                                           const std::vector<int64_t> &kernel,
                                                           const std::vector<int64_t> &dil,
                                                           const std::vector<int64_t> &stride, bool allowSame) {
  auto it = args.find("padding");
  std::vector<int64_t> before(rank, 0), after(rank, 0);
  if (it != args.end() && it->second.first.kind == Val::String) {
    const std::string &mode = it->second.first.str;
    if (mode == "same" && allowSame) {
      if (std::any_of(stride.begin(), stride.end(), [](int64_t s) { return s != 1; })) {
        d_.error(it->second.second->loc, callee + ": padding \"same\" needs stride 1");
        return std::nullopt;
      }
      for (size_t i = 0; i < rank; ++i) {
        int64_t total = dil[i] * (kernel[i] - 1);
        before[i] = total / 2;
        after[i] = total - before[i];
      }
    } else if (mode != "valid") {
      d_.error(it->second.second->loc, callee + ": 'padding' must be an integer, a list of integers" +
                                           std::string(allowSame ? ", \"same\"" : "") + " or \"valid\"");
      return std::nullopt;
    }
  } else {
    auto p = windowArg(args, "padding", callee, rank, 0, 0);
    if (!p)
      return std::nullopt;
    before = after = *p;
  }
  // Stored as the IR's [top, left, bottom, right]; 1-D convolutions use
  // the width axis only.
  if (rank == 1)
    return std::vector<int64_t>{0, before[0], 0, after[0]};
  return std::vector<int64_t>{before[0], before[1], after[0], after[1]};
}

Val Elaborator::conv(const ast::Expr &e, const ArgMap &args) {
  bool is1d = e.name == "conv1d";
  size_t rank = is1d ? 1 : 2;
  Val xv = requireF32(args, "x", e);
  auto channels = intArg(args, "channels", e.name.c_str());
  auto kernel = windowArg(args, "kernel", e.name, rank, std::nullopt);
  auto stride = windowArg(args, "stride", e.name, rank, 1);
  auto dil = windowArg(args, "dilation", e.name, rank, 1);
  auto groups = args.count("groups") ? intArg(args, "groups", e.name.c_str()) : std::optional<int64_t>(1);
  auto bias = boolArg(args, "bias", e.name.c_str(), true);
  if (!xv.ok() || !channels || !kernel || !stride || !dil || !groups || !bias)
    return Val::error();
  auto pad = paddingArg(args, e.name, rank, *kernel, *dil, *stride, true);
  if (!pad)
    return Val::error();
  const ir::TensorType &xt = xv.v->type;
  size_t want = is1d ? 3 : 4;
  bool shapeOk = xt.rank() == want;
  for (size_t i = 1; shapeOk && i < want; ++i)
    shapeOk = xt.shape[i].isStatic();
  if (!shapeOk) {
    d_.error(e.loc, e.name + " expects " + (is1d ? "[N, C, L]" : "[N, C, H, W]") +
                        " with static sizes after N, but its input has type " + xt.str());
    noteOperands({xv});
    if (xt.rank() == 2 && !is1d)
      d_.note(e.loc, "reshape flat images first, e.g. reshape(x, [N, 1, 28, 28])");
    return Val::error();
  }
  int64_t c = xt.shape[1].size, g = *groups;
  if (c % g || *channels % g) {
    d_.error(e.loc, e.name + ": " + std::to_string(c) + " input and " + std::to_string(*channels) +
                        " output channels must both be divisible by groups = " + std::to_string(g));
    noteOperands({xv});
    return Val::error();
  }
  std::vector<int64_t> k4 = is1d ? std::vector<int64_t>{1, (*kernel)[0]} : *kernel;
  std::vector<int64_t> s4 = is1d ? std::vector<int64_t>{1, (*stride)[0]} : *stride;
  std::vector<int64_t> d4 = is1d ? std::vector<int64_t>{1, (*dil)[0]} : *dil;
  std::vector<int64_t> wshape = {*channels, c / g};
  wshape.insert(wshape.end(), kernel->begin(), kernel->end());
  ir::Shape ws;
  for (int64_t d : wshape)
    ws.push_back(ir::Dim(d));
  if (!ir::staticElements(ws)) {
    d_.error(e.loc, e.name + ": weights " + ir::shapeStr(ws) + " would have more than 2^40 elements");
    return Val::error();
  }
  std::string inst = instanceName(e);
  int64_t fanIn = (c / g) * k4[0] * k4[1];
  ir::Value *w = param(inst, "w", wshape, ParamInfo::He, fanIn, (*channels / g) * k4[0] * k4[1], false, e.loc);
  if (!w)
    return Val::error();
  b_->setLoc(e.loc);
  ir::Value *x = xv.v;
  if (is1d) {
    x = b_->reshape(x, {xt.shape[0], ir::Dim(c), ir::Dim(1), xt.shape[2]});
    w = b_->reshape(w, {ir::Dim(*channels), ir::Dim(c / g), ir::Dim(1), ir::Dim(k4[1])});
  }
  ir::Value *y = build(ir::OpKind::Conv2D, {x, w}, {{"stride", s4}, {"dilation", d4}, {"pad", *pad}, {"groups", g}},
                       e.loc, e.name, {xv});
  if (!y)
    return Val::error();
  if (*bias) {
    ir::Value *bv = param(inst, "b", {*channels}, ParamInfo::Zeros, fanIn, *channels, true, e.loc);
    if (!bv)
      return Val::error();
    y = b_->add(y, b_->reshape(bv, {ir::Dim(*channels), ir::Dim(1), ir::Dim(1)}));
  }
  if (is1d) {
    const ir::Shape &ys = y->type.shape;
    y = b_->reshape(y, {ys[0], ys[1], ys[3]});
  }
  return tensorVal(y);
}

Val Elaborator::pool(const ast::Expr &e, const ArgMap &args) {
  Val xv = requireF32(args, "x", e);
  auto kernel = windowArg(args, "kernel", e.name, 2, std::nullopt);
  if (!xv.ok() || !kernel)
    return Val::error();
  auto stride = args.count("stride") ? windowArg(args, "stride", e.name, 2, 1) : kernel;
  if (!stride)
    return Val::error();
  auto pad = paddingArg(args, e.name, 2, *kernel, {1, 1}, *stride, false);
  if (!pad)
    return Val::error();
  ir::OpKind k = e.name == "max_pool2d" ? ir::OpKind::MaxPool2D : ir::OpKind::AvgPool2D;
  ir::Value *y = build(k, {xv.v}, {{"kernel", *kernel}, {"stride", *stride}, {"pad", *pad}}, e.loc, e.name, {xv});
  return y ? tensorVal(y) : Val::error();
}

Val Elaborator::globalAvgPool(const ast::Expr &e, const ArgMap &args) {
  Val x = requireF32(args, "x", e);
  if (!x.ok())
    return x;
  if (x.v->type.rank() != 4) {
    d_.error(e.loc, "global_avg_pool expects a batch of images [N, C, H, W], got " + x.v->type.str());
    noteOperands({x});
    return Val::error();
  }
  b_->setLoc(e.loc);
  return tensorVal(b_->reduce(ir::OpKind::ReduceMean, x.v, {2, 3}, false));
}

} // namespace nnc::frontend
