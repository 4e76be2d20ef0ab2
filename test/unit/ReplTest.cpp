// The REPL's input handling without a terminal: when an input is complete,
// what Tab offers, and that a failed input leaves the session unchanged.
#include "tools/Repl.h"

#include <gtest/gtest.h>

#include <sstream>

using nnc::repl::Session;

namespace {

std::string digits() { return std::string(NNC_SOURCE_DIR) + "/examples/digits_mlp.nn"; }

bool has(const std::vector<std::string> &v, const std::string &s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

} // namespace

TEST(ReplTest, CommandsAndExpressionsEndWithTheirLine) {
  EXPECT_TRUE(Session::complete(":train 3"));
  EXPECT_TRUE(Session::complete(":print h.w[0:2")); // a command is one line, even unbalanced
  EXPECT_TRUE(Session::complete("softmax(logits)"));
  EXPECT_FALSE(Session::complete("softmax(logits"));
  EXPECT_TRUE(Session::complete("softmax(logits\n)"));
  EXPECT_TRUE(Session::complete("mean(x) // a comment ("));
}

TEST(ReplTest, DeclarationsEndWithTheBraceClosingTheirBody) {
  EXPECT_FALSE(Session::complete("model M"));
  EXPECT_FALSE(Session::complete("model M {"));
  EXPECT_FALSE(Session::complete("model M {\n  input x : f32[N, 4]"));
  EXPECT_TRUE(Session::complete("model M {\n  input x : f32[N, 4]\n  loss = sum(x)\n}"));
  // Braces in strings and comments do not count.
  EXPECT_FALSE(Session::complete("train M {\n  data = csv(\"a}b.csv\") // }"));
  EXPECT_FALSE(Session::complete("layer f(x) { /* } */"));
  // An unclosed bracket inside the body is the parser's to report.
  EXPECT_TRUE(Session::complete("model M {\n  input x : f32[N, 4\n}"));
}

TEST(ReplTest, CompletesCommandsSettingsAndNames) {
  std::ostringstream out, err;
  Session s(out, err, false);
  auto c = s.completions(":tr");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0], ":train");
  EXPECT_TRUE(has(s.completions(":"), ":restore"));
  EXPECT_EQ(s.completions(":set l"), std::vector<std::string>{"lr"});
  EXPECT_EQ(s.completions(":show me"), std::vector<std::string>{"memory"});
  EXPECT_EQ(s.completions(":help ti"), std::vector<std::string>{"time"});
  EXPECT_EQ(s.completions(":train 3 st"), std::vector<std::string>{"steps"});
  EXPECT_TRUE(has(s.completions("soft"), "softmax"));

  ASSERT_TRUE(s.handle(":load " + digits(), "<test>", 1)) << err.str();
  EXPECT_EQ(s.completions("mean(h."), (std::vector<std::string>{"h.b", "h.w"}));
  EXPECT_TRUE(has(s.completions("mean(lo"), "logits"));
  EXPECT_TRUE(has(s.completions(":print logits."), "logits.w"));
  EXPECT_EQ(s.completions(":model Di"), std::vector<std::string>{"Digits"});
  EXPECT_TRUE(has(s.completions(":emit llvm tr"), "train_step"));
}

TEST(ReplTest, FailedInputsLeaveTheSessionUnchanged) {
  std::ostringstream out, err;
  Session s(out, err, false);
  ASSERT_TRUE(s.handle(":load " + digits(), "<test>", 1)) << err.str();
  ASSERT_TRUE(s.handle("sum(h.w)", "<test>", 2));
  std::string before = out.str().substr(out.str().rfind("sum(h.w)"));
  // A model that does not check, a command with a bad argument, a missing file.
  EXPECT_FALSE(s.handle("model Digits {\n  input x : f32[N, 64]\n  loss = sum(nothing)\n}", "<test>", 3));
  EXPECT_NE(err.str().find("<test>:5:14: error: unknown name 'nothing'"), std::string::npos) << err.str();
  EXPECT_FALSE(s.handle(":set batch 0", "<test>", 7));
  EXPECT_FALSE(s.handle(":restore /nonexistent.safetensors", "<test>", 8));
  EXPECT_FALSE(s.handle(":load /nonexistent.nn", "<test>", 9));
  ASSERT_TRUE(s.handle("sum(h.w)", "<test>", 10));
  EXPECT_EQ(out.str().substr(out.str().rfind("sum(h.w)")), before);
  EXPECT_TRUE(s.handle(":set", "<test>", 11));
  EXPECT_NE(out.str().find("batch    32\n"), std::string::npos) << out.str();
}
