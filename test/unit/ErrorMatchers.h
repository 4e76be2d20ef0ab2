// EXPECT_ERROR_HAS: expects an expression to throw nnc::runtime::Error whose
// message contains given strings (the runtime's located error messages).
#pragma once

#include "runtime/Tensor.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

namespace nnc::test {

/// Runs `fn`, expects an Error, and returns its message.
template <typename Fn> std::string errorOf(Fn fn) {
  try {
    fn();
  } catch (const runtime::Error &e) {
    return e.what();
  }
  ADD_FAILURE() << "expected nnc::runtime::Error";
  return "";
}

} // namespace nnc::test

/// Expects `expr` to throw an Error whose message contains every one of the
/// following strings.
#define EXPECT_ERROR_HAS(expr, ...)                                                                                    \
  do {                                                                                                                 \
    std::string msg_ = ::nnc::test::errorOf([&] { (void)(expr); });                                                    \
    for (const std::string &part_ : std::initializer_list<std::string>{__VA_ARGS__})                                   \
      EXPECT_NE(msg_.find(part_), std::string::npos) << "message: " << msg_ << "\nmissing: " << part_;                 \
  } while (0)
