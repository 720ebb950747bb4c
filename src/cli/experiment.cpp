// `dln experiment NAME`: reproduce a figure or result of the notes (src/dln/experiments).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdio>

#include "cli/commands.hpp"
#include "dln/experiments/experiments.hpp"
#ifdef DLN_WITH_TORCH
#include "dln/experiments/fig1_nonlinear.hpp"
#endif

namespace dln::cli {

void add_experiment(CLI::App& app, std::vector<Command>& commands) {
#ifdef DLN_WITH_TORCH
  experiments::register_torch_experiments();
#endif
  const std::string names = fmt::format("{}", fmt::join(experiments::names(), " | "));
  auto* sub = app.add_subcommand("experiment", "Reproduce a result of the notes: " + names);
  struct State {
    std::string name;
    experiments::Options options;
    bool print_config = false;
  };
  auto s = std::make_shared<State>();
  sub->add_option("name", s->name, names)->required();
  sub->add_flag("--quick", s->options.quick, "Small sizes: under 2 minutes, claim still shown");
  sub->add_option("--seeds", s->options.seeds, "Independent repetitions (default: the config's)");
  sub->add_option("--out", s->options.out, "Output directory (default: experiment-NAME)");
  sub->add_option("--config", s->options.config_path,
                  "An edited copy of experiments/NAME.toml (see --print-config)");
  sub->add_option("--workers", s->options.workers, "Runs in parallel (default: one per core)");
  sub->add_flag(
      "--no-plot", [s](std::int64_t) { s->options.plot = false; }, "Skip the matplotlib figure");
  sub->add_flag("--quiet,-q", s->options.quiet, "No progress lines");
  sub->add_flag("--print-config", s->print_config, "Print the built-in config and exit");
  commands.emplace_back(sub, [s] {
    if (s->print_config) {
      std::fputs(experiments::default_config(s->name).c_str(), stdout);
      return 0;
    }
    return experiments::run_experiment(s->name, s->options);
  });
}

}  // namespace dln::cli
