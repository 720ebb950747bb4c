// Helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "dln/core/types.hpp"

namespace dln::testing {

// Expects `f` to throw dln::Error whose message is exactly `message`.
inline void expect_error(const std::function<void()>& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "expected dln::Error: " << message;
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

}  // namespace dln::testing
