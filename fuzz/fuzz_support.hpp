// Shared by the libFuzzer targets (docs/reliability.md). A target is a few lines:
//
//   #include "fuzz_support.hpp"
//   DLN_FUZZ_TARGET(data, size) {
//     dln::fuzz::only_errors([&] { parse(dln::fuzz::text(data, size)); });
//   }
//
// dln::Error is the expected answer to bad input; any other exception escapes and libFuzzer
// reports it as a crash, as it does sanitizer reports, leaks and allocations over -rss_limit_mb.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "dln/core/types.hpp"

#define DLN_FUZZ_TARGET(data, size) \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)

namespace dln::fuzz {

inline std::string_view text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Runs f; a dln::Error (one line naming the field or file:line) is a correct refusal. An empty
// message or one spanning lines is a bug.
template <class F>
void only_errors(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    const std::string_view m = e.what();
    if (m.empty() || m.find('\n') != std::string_view::npos) {
      std::fprintf(stderr, "error message is not one line: '%s'\n", e.what());
      std::abort();
    }
  }
}

// Readers take paths: the input written to this process's scratch file (in /dev/shm when it
// exists, so it stays in memory).
inline const std::string& scratch_file(std::string_view bytes, const char* suffix) {
  static std::string path = [&] {
    const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/dln_fuzz_" + std::to_string(getpid()) + suffix;
  }();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
  return path;
}

// Fails the run when a property of a successful parse does not hold.
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace dln::fuzz
