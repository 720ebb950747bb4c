// `dln experiment NAME --config FILE`: a user's edited copy of experiments/NAME.toml, checked
// against the built-in one's keys and types, with and without --quick. The first byte picks the
// experiment. Property: the resolved parameters parse back to the same text.
#include "dln/experiments/common.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  if (size < 1) return 0;
  static const auto names = dln::experiments::names();
  dln::experiments::Options o;
  o.quick = (data[0] & 0x80) != 0;
  o.config_path = dln::fuzz::scratch_file(dln::fuzz::text(data + 1, size - 1), ".toml");
  const std::string& name = names[data[0] % names.size()];
  dln::fuzz::only_errors([&] {
    const dln::experiments::Params p(name, o);
    const std::string resolved = p.resolved_toml();
    const std::string& again_path = dln::fuzz::scratch_file(resolved, ".toml");
    dln::experiments::Options a;
    a.config_path = again_path;
    dln::fuzz::require(dln::experiments::Params(name, a).resolved_toml() == resolved,
                       "resolved_toml round trip");
  });
  return 0;
}
