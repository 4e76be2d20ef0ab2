// Telling model statements typed at the REPL's prompt from expressions, and
// splicing them into a model declaration.
#include "tools/ReplStatements.h"
#include "frontend/ASTBuilder.h"

#include <gtest/gtest.h>

using namespace nnc;

TEST(ReplStatements, StatementsAreToldFromExpressions) {
  for (const char *s :
       {"h2 = dense(h, 10)", "a, b = split(h, 2)", "a ,b=x", "output p = softmax(h)", "output model = x",
        "loss = mse(p, t)", "loss extra = l2(weights)", "input z : f32[N, 3]", "label t : f32[N]", "_x1 = 2"})
    EXPECT_TRUE(repl::startsStatement(s)) << s;
  for (const char *s : {"dense(h, units = 10)", "h", "h == 3", "h.w", "mean(h.w)", "softmax(logits)[0]", "a, b",
                        "output", "loss", "input z", "2 = x", "= x", ""})
    EXPECT_FALSE(repl::startsStatement(s)) << s;
}

TEST(ReplStatements, SpliceReplacesTheStatementBindingTheSameName) {
  SourceFile file{"m.nn", "model M {\n  input x : f32[N, 4]\n  h = dense(x, 3)\n  a, b = split(h, 2)\n"
                          "  output p = softmax(h)\n  loss = mean(h)\n}\n"};
  DiagnosticEngine diags;
  auto prog = frontend::parseProgram(file, diags);
  ASSERT_TRUE(prog);
  ast::ModelDecl &m = prog->models.at(0);
  auto stmt = [&](const char *text) {
    static std::vector<std::unique_ptr<SourceFile>> keep;
    keep.push_back(std::make_unique<SourceFile>(SourceFile{"<stdin>", text}));
    auto s = frontend::parseModelStatement(*keep.back(), diags);
    EXPECT_TRUE(s) << text;
    return std::move(*s);
  };
  EXPECT_TRUE(repl::spliceStatement(m, stmt("h = dense(x, 5)")));
  EXPECT_TRUE(repl::spliceStatement(m, stmt("p = h")));              // a binding in place of an output of that name
  EXPECT_TRUE(repl::spliceStatement(m, stmt("b, c = split(h, 2)"))); // shares 'b'
  EXPECT_TRUE(repl::spliceStatement(m, stmt("loss = sum(h)")));
  EXPECT_FALSE(repl::spliceStatement(m, stmt("loss extra = mean(h)")));
  EXPECT_FALSE(repl::spliceStatement(m, stmt("g = relu(h)")));
  std::vector<std::string> names;
  for (const ast::Stmt &s : m.body)
    names.push_back(s.name.empty() ? "<loss>" : s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"x", "h", "b", "p", "<loss>", "extra", "g"}));
  EXPECT_EQ(m.body[1].loc.file->name, "<stdin>");
  EXPECT_EQ(repl::boundNames(m.body[2]), (std::vector<std::string>{"b", "c"}));
  EXPECT_FALSE(diags.hasErrors());
}
