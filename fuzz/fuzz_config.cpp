// The TOML config with --set overrides, through the full validation (docs/config.md). Input: the
// TOML text, then optionally a NUL byte and one override `section.key=value` per line.
// Property: a config that parses and fits resolves to TOML that parses back to the same config.
#include "dln/config/config.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  const std::string_view in = dln::fuzz::text(data, size);
  const std::size_t nul = in.find('\0');
  const std::string toml(in.substr(0, nul));
  std::vector<std::string> sets;
  if (nul != std::string_view::npos) {
    std::string_view rest = in.substr(nul + 1);
    while (!rest.empty() && sets.size() < 8) {
      const std::size_t nl = rest.find('\n');
      sets.emplace_back(rest.substr(0, nl));
      rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    }
  }
  dln::fuzz::only_errors([&] {
    const dln::Config c = dln::parse_config(toml, "fuzz.toml", sets);
    // As dln train does: the memory guard before anything the config sizes is allocated (here
    // at most 1 GiB, so the fuzzer's own memory limit is never the one that answers).
    dln::memory::require(c.memory_estimate(), 1 << 30, "run.max_memory");
    const std::string resolved = c.to_toml();
    const dln::Config again = dln::parse_config(resolved, "resolved.toml");
    dln::fuzz::require(again.to_toml() == resolved, "to_toml round trip");
  });
  return 0;
}
