// `dln experiment NAME`: reproduce a figure or result of the notes (src/dln/experiments).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "cli/commands.hpp"
#include "dln/experiments/experiments.hpp"
#ifdef DLN_WITH_TORCH
#include "dln/experiments/fig1_nonlinear.hpp"
#endif

namespace dln::cli {

namespace {
// Replaces this process with dln-torch (same folder, same arguments) when it exists; returns
// when it does not, and run_experiment then says which build option is missing.
[[maybe_unused]] void exec_torch_cli(char** argv) {
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return;
  const std::string torch_cli = (self.parent_path() / "dln-torch").string();
  if (access(torch_cli.c_str(), X_OK) != 0) return;
  std::fflush(nullptr);
  argv[0] = const_cast<char*>(torch_cli.c_str());
  execv(torch_cli.c_str(), argv);
}
}  // namespace

void add_experiment(CLI::App& app, std::vector<Command>& commands, char** argv) {
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
  commands.emplace_back(sub, [s, argv] {
    if (s->print_config) {
      std::fputs(experiments::default_config(s->name).c_str(), stdout);
      return 0;
    }
#ifndef DLN_WITH_TORCH
    if (s->name == "fig1-nonlinear") exec_torch_cli(argv);
#else
    (void)argv;
#endif
    return experiments::run_experiment(s->name, s->options);
  });
}

}  // namespace dln::cli
