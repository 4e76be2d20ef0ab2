// Frontend API tests: parameter naming and sharing, train-block reading,
// "did you mean" ranking.
#include "frontend/ASTBuilder.h"
#include "frontend/Sema.h"

#include <gtest/gtest.h>

#include <sstream>

using namespace nnc;

namespace {

struct Compiled {
  std::unique_ptr<SourceFile> file;
  std::unique_ptr<ast::Program> program;
  std::optional<frontend::LoweredModel> model;
  std::optional<frontend::TrainConfig> config;
  std::string diagnostics;
};

Compiled compile(const std::string &text) {
  Compiled c;
  c.file = std::make_unique<SourceFile>(SourceFile{"t.nn", text});
  std::ostringstream os;
  DiagnosticEngine d(&os);
  c.program = frontend::parseProgram(*c.file, d);
  if (c.program && frontend::checkProgram(*c.program, d) && !c.program->models.empty()) {
    c.model = frontend::lowerModel(*c.program, c.program->models.front(), d);
    if (c.model)
      c.config = frontend::readTrainConfig(*c.program, *c.model, "/base", d);
  }
  c.diagnostics = os.str();
  return c;
}

std::vector<std::string> paramNames(const frontend::LoweredModel &m) {
  std::vector<std::string> r;
  for (auto &p : m.params)
    r.push_back(p.name);
  return r;
}

TEST(Frontend, ParameterNamesFollowBindingsLayersAndInstances) {
  Compiled c = compile(R"(
layer Block(x, units = 4) {
  h = dense(x, units) |> relu
  return dense(h, units)
}
model M {
  input a : f32[N, 8]
  input b : f32[N, 8]
  label y : i64[N]
  ea = Block(a) as enc
  eb = Block(b) as enc
  h = dense(ea + eb, 6) |> relu |> dense(3)
  loss = cross_entropy(h, y)
}
)");
  ASSERT_TRUE(c.model) << c.diagnostics;
  EXPECT_EQ(paramNames(*c.model),
            (std::vector<std::string>{"enc.h.w", "enc.h.b", "enc.out.w", "enc.out.b", "h.w", "h.b", "h_2.w", "h_2.b"}));
  EXPECT_TRUE(c.model->classification);
  EXPECT_EQ(c.model->numClasses, 3);
  // Two calls, one set of weights: the forward function uses enc.h.w twice.
  int uses = 0;
  const ir::Function &f = *c.model->module->get("forward");
  for (auto &op : f.ops)
    for (auto *v : op->operands)
      uses += v == f.arg("enc.h.w");
  EXPECT_EQ(uses, 2);
}

TEST(Frontend, TrainBlockSettingsAndDefaults) {
  Compiled c = compile(R"(
model M { input x : f32[N, 4]  label y : i64[N]  loss = cross_entropy(dense(x, 2), y) }
train M {
  data = csv("d.csv", label = first) |> standardize |> batch(16)
  optimizer = sgd(lr = 0.5, momentum = 0.9, nesterov = true)
  split = 0.25
  epochs = 3
  early_stop(monitor = val_accuracy, patience = 2)
}
)");
  ASSERT_TRUE(c.config) << c.diagnostics;
  const frontend::TrainConfig &t = *c.config;
  EXPECT_EQ(t.data.path, "/base/d.csv");
  ASSERT_EQ(t.data.label.size(), 1u);
  EXPECT_EQ(t.data.label[0].index, 0);
  ASSERT_EQ(t.transforms.size(), 1u);
  EXPECT_EQ(t.transforms[0].kind, frontend::Transform::Standardize);
  EXPECT_FALSE(t.shuffle); // no shuffle step in the pipeline
  EXPECT_EQ(t.batch, 16);
  EXPECT_DOUBLE_EQ(t.lr, 0.5);
  EXPECT_DOUBLE_EQ(t.optimizer.momentum, 0.9);
  EXPECT_TRUE(t.optimizer.nesterov);
  EXPECT_EQ(t.epochs, 3);
  EXPECT_TRUE(t.earlyStop);
  EXPECT_EQ(t.monitor, "val_accuracy");
  EXPECT_EQ(t.patience, 2);
}

TEST(Frontend, SeveralErrorsInOneRun) {
  Compiled c = compile(R"(
model M {
  input x : f32[N, 4]
  h = dense(x, 3) |> rleu
  loss = mean(hh)
}
)");
  EXPECT_FALSE(c.model);
  EXPECT_NE(c.diagnostics.find("t.nn:4:22: error: unknown function 'rleu'; did you mean 'relu'?"), std::string::npos)
      << c.diagnostics;
  EXPECT_NE(c.diagnostics.find("t.nn:5:15: error: unknown name 'hh'; did you mean 'h'?"), std::string::npos)
      << c.diagnostics;
}

TEST(Diagnostics, ClosestMatch) {
  EXPECT_EQ(closestMatch("rleu", {"relu", "exp", "log"}), "relu");
  EXPECT_EQ(closestMatch("logits", {"logit", "loss"}), "logit");
  EXPECT_EQ(closestMatch("zzzzzz", {"relu", "exp"}), "");
  EXPECT_EQ(editDistance("kitten", "sitting"), 3u);
}

} // namespace
