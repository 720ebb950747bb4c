// Helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
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

// A folder for this test process's files: <temp>/<name>_<pid>, created once.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::filesystem::path d =
      std::filesystem::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d;
}

// The dln binary ($DLN_BIN) run with `args`, stdout discarded: its exit code and stderr.
struct CliResult {
  int code;
  std::string err;
};
inline CliResult run_dln(const std::string& args, const std::filesystem::path& scratch) {
  const char* bin = std::getenv("DLN_BIN");
  EXPECT_NE(bin, nullptr) << "DLN_BIN must point at the dln binary";
  const std::filesystem::path err = scratch / "stderr.txt";
  const std::string cmd =
      std::string(bin ? bin : "dln") + " " + args + " >/dev/null 2>" + err.string();
  const int status = std::system(cmd.c_str());
  std::ifstream in(err);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1,
          std::string((std::istreambuf_iterator<char>(in)), {})};
}

}  // namespace dln::testing
