// A GoogleTest fixture that gives each test a fresh temporary directory and
// helpers to write files into it.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace nnc::test {

class TempDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "nnc-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir); }

  std::string path(const std::string &name) const { return (std::filesystem::path(dir) / name).string(); }

  /// Writes `bytes` to `name` in the directory and returns its path.
  std::string write(const std::string &name, const std::string &bytes) const {
    std::string p = path(name);
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  std::string dir;
};

} // namespace nnc::test
