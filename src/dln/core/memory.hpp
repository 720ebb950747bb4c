// The memory guard: what a run will allocate, estimated before it allocates, against what the
// machine has (docs/errors.md, "memory").
#pragma once

#include <string>
#include <vector>

namespace dln::memory {

// One block a run will allocate: the input that sets its size, what it is, and its bytes. Bytes
// are doubles so that impossible sizes (1e11 x 3e9) cannot overflow while being estimated.
struct Item {
  std::string field;  // the config key or option whose value sets the size, e.g. network.width
  std::string what;   // e.g. "the factors W_1..W_n, their gradients and the optimizer state"
  double bytes = 0;
};

struct Estimate {
  std::vector<Item> items;
  void add(std::string field, std::string what, double bytes);
  double total() const;
  const Item* largest() const;  // nullptr when empty
};

// Bytes this process can still allocate: the least of MemAvailable (/proc/meminfo), the cgroup's
// memory.max - memory.current, and RLIMIT_AS - what is mapped now. A large value when unknown.
double available_bytes();

// "1.5 GiB", "812 MiB", "3.2e+07 TiB".
std::string format_bytes(double bytes);

// "8GiB", "512 MB", "2G", "1000000": bytes, or throws Error naming `field`.
double parse_bytes(const std::string& text, const std::string& field);

// Throws Error when e.total() exceeds the limit: limit_bytes > 0 (from `limit_field`, e.g.
// run.max_memory), else available_bytes(). The message names the largest item's field, what it
// is and both numbers, in one line.
void require(const Estimate& e, double limit_bytes, const std::string& limit_field);

}  // namespace dln::memory
