#include "dln/experiments/experiments.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <map>

#include "dln/experiments/common.hpp"

namespace dln::experiments {

bool Options::IsValid(std::string* error) const {
  if (seeds < 0) return *error = fmt::format("--seeds: must be >= 1, got {}", seeds), false;
  if (workers < 1) return *error = fmt::format("--workers: must be >= 1, got {}", workers), false;
  return true;
}

std::vector<std::string> names() {
  return {"fig1-lp",     "fig1-nonlinear",    "fig2",        "fig3", "prop5", "compression",
          "tensor-rank", "tensor-completion", "htf-dynamics"};
}

namespace {
std::map<std::string, ExperimentEntry>& registry() {
  static std::map<std::string, ExperimentEntry> r;
  return r;
}

void check_name(const std::string& name) {
  for (const auto& n : names())
    if (n == name) return;
  throw Error(fmt::format("experiment: unknown name '{}' (expected one of {})", name,
                          fmt::join(names(), ", ")));
}
}  // namespace

void register_experiment(const std::string& name, ExperimentEntry entry) {
  check_name(name);
  registry()[name] = entry;
}

std::string default_config(const std::string& name) {
  check_name(name);
  return embedded_text(fmt::format("experiments/{}.toml", name));
}

int run_experiment(const std::string& name, const Options& options) {
  check_name(name);
  std::string error;
  if (!options.IsValid(&error)) throw Error(error);
  Options o = options;
  if (o.out.empty()) o.out = "experiment-" + name;
  if (name == "fig1-nonlinear") {
    const auto it = registry().find(name);
    if (it == registry().end())
      throw Error(
          "experiment fig1-nonlinear: this dln was built without libtorch (configure "
          "with -DDLN_WITH_TORCH=ON, as `make build` does)");
    return it->second(o);
  }
  if (name == "fig1-lp") return fig1_lp(o);
  if (name == "fig2") return fig2(o);
  if (name == "fig3") return fig3(o);
  if (name == "prop5") return prop5(o);
  if (name == "tensor-rank") return tensor_rank(o);
  if (name == "tensor-completion") return tensor_completion(o);
  if (name == "htf-dynamics") return htf_dynamics(o);
  return compression(o);
}

}  // namespace dln::experiments
