// Subcommands of the `dln` CLI. Each `add_*` registers its options on the app and returns the
// subcommand with the function that runs it once parsed (exit code; dln::Error -> exit 2).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <utility>

namespace dln::cli {

using Command = std::pair<CLI::App*, std::function<int()>>;

// `dln demo`: depth 1, 2, 3 on a synthetic rank-5 completion problem; prints a table.
int demo(bool quiet);

// `dln complete RATINGS --out DIR` (src/cli/complete.cpp, docs/complete.md).
void add_complete(CLI::App& app, std::vector<Command>& commands);
// `dln experiment NAME` (src/cli/experiment.cpp). Without libtorch linked in, fig1-nonlinear
// re-executes `argv` as the dln-torch binary beside this one (the same CLI with libtorch), so
// that every other command starts without loading libtorch.
void add_experiment(CLI::App& app, std::vector<Command>& commands, char** argv);
// `dln baseline nuclear-norm | soft-impute | als` (src/cli/baseline.cpp, docs/baselines.md).
void add_baseline(CLI::App& app, std::vector<Command>& commands);

}  // namespace dln::cli
