// `dln experiment NAME`: the notes' Figures 2 and 3, Proposition 5 and the compression table of
// Section 4.4, each reproduced by one command into a directory holding results.csv (tidy), the
// data behind the figure, NAME.png / NAME.svg (matplotlib) and report.md (the claim, supported
// or not, with the numbers). Defaults live in experiments/NAME.toml.
#pragma once

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace dln::experiments {

// The machine's hardware threads (at least 1).
inline int cores() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

struct Options {
  bool quick = false;       // [quick] sizes: under 2 minutes on 2 cores, claim still visible
  int seeds = 0;            // independent repetitions; 0: the config's `seeds`
  std::string out;          // output directory; "": experiment-NAME
  std::string config_path;  // edited copy of experiments/NAME.toml; "": the built-in one
  int workers = cores();    // runs in parallel, one BLAS thread each (default: one per core)
  bool plot = true;         // draw NAME.png / NAME.svg with matplotlib
  bool quiet = false;       // no progress lines
  bool IsValid(std::string* error) const;
};

// Names of the experiments, in the notes' order.
std::vector<std::string> names();

// Runs one experiment; returns the process exit code (0 when it ran, whatever the verdict).
// Throws dln::Error on a bad name, option or config.
int run_experiment(const std::string& name, const Options& options);

// Experiments of optional layers (fig1-nonlinear needs libtorch) are entry points registered at
// start-up by what links them (the CLI, the Python module); run_experiment refuses an
// unregistered one with the build option it needs.
using ExperimentEntry = int (*)(const Options&);
void register_experiment(const std::string& name, ExperimentEntry entry);

// The built-in config of an experiment (experiments/NAME.toml), for `--print-config`.
std::string default_config(const std::string& name);

}  // namespace dln::experiments
