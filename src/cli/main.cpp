// dln: a thin CLI over the library (train, demo, gemm-peak).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "dln/checks/checks.hpp"
#include "dln/core/blas.hpp"
#include "dln/core/blas_kernel.hpp"
#include "dln/core/memory.hpp"
#include "dln/io/files.hpp"
#include "dln/run/run_dir.hpp"
#include "dln/tensors/run.hpp"

namespace {

int train_command(const std::string& config_path, const std::vector<std::string>& sets,
                  const std::string& out, const std::string& resume_dir, bool quiet) {
  namespace fs = std::filesystem;
  const bool resume = !resume_dir.empty();
  if (resume && (!config_path.empty() || !out.empty()))
    throw dln::Error("--resume: takes the run directory alone (its config.toml is used)");
  if (!resume && (config_path.empty() || out.empty()))
    throw dln::Error("train: --config and --out are required (or --resume DIR)");
  const std::string dir = resume ? resume_dir : out;
  if (resume && fs::exists(fs::path(dir) / "summary.json"))
    throw dln::Error(dir + ": the run is already complete (summary.json exists)");
  dln::Config config = resume ? dln::load_config((fs::path(dir) / "config.toml").string(), sets)
                              : dln::load_config(config_path, sets);
  // Refused before anything is written (dln::run checks again for library callers).
  dln::memory::require(config.memory_estimate(), config.max_memory, "run.max_memory");
  dln::io::ensure_writable_directory(dir);  // fail before training, not after
  dln::ProgressBar bar(config.stop.max_iters);
  std::vector<dln::Callback*> callbacks;
  if (!quiet && isatty(STDERR_FILENO)) callbacks.push_back(&bar);
  if (config.problem.tensor()) {  // Section 5: CP and hierarchical tensor factorizations
    const auto result = dln::tensors::run_tensor(config, callbacks, dir, resume);
    dln::tensors::write_tensor_run_directory(dir, result);
    if (!quiet) std::printf("%s\n", result.summary.BriefReport().c_str());
    return result.summary.termination == dln::Termination::kDiverged ? 3 : 0;
  }
  dln::RunResult result = dln::run(config, callbacks, dir, resume);
  dln::write_run_directory(dir, result);
  if (!quiet) std::printf("%s\n", result.summary.BriefReport().c_str());
  return result.summary.termination == dln::Termination::kDiverged ? 3 : 0;
}

// One JSON line per kernel: its DGEMM rate and self-test, and why it is (or is not) dln's choice.
int gemm_peak(const dln::blas::KernelChoice& kernel, int size, int threads, int repeats,
              bool all_kernels) {
  namespace blas = dln::blas;
  blas::set_threads(threads);
  auto line = [&](bool selected) {
    nlohmann::json j = {{"size", size},
                        {"threads", threads},
                        {"gflops", blas::measure_dgemm_gflops(size, repeats)},
                        {"corename", blas::corename()},
                        {"selected", selected},
                        {"self_test_error", blas::self_test()},
                        {"cpu_isa", kernel.cpu_isa}};
    if (selected) {
      j["reason"] = kernel.reason;
      j["override"] = kernel.override_env;
      j["openblas_choice"] = kernel.openblas_choice;
      j["cpu_features"] = blas::cpu_features();
    }
    std::printf("%s\n", j.dump().c_str());
  };
  if (all_kernels) {
    for (const auto& name : blas::runnable_kernels()) {
      if (name == kernel.corename || !blas::switch_kernel(name)) continue;
      line(false);
    }
    if (!blas::switch_kernel(kernel.corename))
      throw dln::Error("gemm-peak: could not switch back to " + kernel.corename);
  }
  line(true);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dln: deep linear neural networks - train, diagnose, reproduce"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("dln ") + DLN_VERSION);

  auto* train = app.add_subcommand("train", "Train a deep linear network from a TOML config");
  std::string config_path, out, resume_dir;
  std::vector<std::string> sets;
  bool quiet = false;
  train->add_option("--config", config_path, "TOML config file");
  train->add_option("--set", sets, "Override a key: section.key=value (repeatable)");
  train->add_option("--out", out, "Run directory to write");
  train->add_option("--resume", resume_dir,
                    "Continue a killed run from DIR/checkpoint (run.checkpoint_every > 0)");
  train->add_flag("--quiet,-q", quiet, "No progress bar or report");

  auto* demo = app.add_subcommand("demo", "Depth 1, 2, 3 on a synthetic rank-5 completion problem");
  demo->add_flag("--quiet,-q", quiet, "No progress output");

  auto* check = app.add_subcommand(
      "check", "Verify every result of Sections 2-4.3 of the notes on seeded random instances");
  std::uint64_t check_seed = 1;
  bool check_json = false;
  std::string check_only;
  check->add_option("--seed", check_seed, "Seed of the random instances");
  check->add_flag("--json", check_json, "Machine-readable output");
  check->add_option("--only", check_only, "Run the checks whose name starts with this");

  auto* peak = app.add_subcommand("gemm-peak", "Measure the DGEMM rate of the BLAS dln uses");
  int size = 1000, threads = 2, repeats = 5;
  peak->add_option("--size", size, "Matrix size")->check(CLI::Range(1, 20000));
  peak->add_option("--threads", threads, "BLAS threads")->check(CLI::Range(1, 1024));
  peak->add_option("--repeats", repeats, "Best of this many")->check(CLI::Range(1, 1000));
  bool all_kernels = false;
  peak->add_flag("--all-kernels", all_kernels,
                 "One line per OpenBLAS kernel this CPU can run (each self-tested), then the "
                 "selected one");

  // Subcommands defined in their own files (src/cli/*.cpp) register here.
  std::vector<dln::cli::Command> commands;
  dln::cli::add_baseline(app, commands);
  dln::cli::add_complete(app, commands);
  dln::cli::add_experiment(app, commands, argv);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    const auto& kernel = dln::blas::select_kernel();  // before any BLAS work (docs/blas.md)
    if (*train) return train_command(config_path, sets, out, resume_dir, quiet);
    if (*demo) return dln::cli::demo(quiet);
    if (*check) {
      const auto results = dln::run_checks(check_seed, check_only);
      if (results.empty()) throw dln::Error("--only " + check_only + ": no check has that name");
      std::fputs((check_json ? dln::checks_json(results) : dln::checks_table(results)).c_str(),
                 stdout);
      for (const auto& r : results)
        if (!r.pass) return 1;
      return 0;
    }
    for (auto& [sub, runner] : commands)
      if (*sub) return runner();
    if (*peak) return gemm_peak(kernel, size, threads, repeats, all_kernels);
  } catch (const dln::Error& e) {
    std::fprintf(stderr, "dln: error: %s\n", e.what());
    return 2;
  } catch (const std::bad_alloc&) {  // past the memory guard's estimate (docs/errors.md)
    std::fprintf(stderr,
                 "dln: error: out of memory: the inputs need more memory than this machine "
                 "could allocate (%s available)\n",
                 dln::memory::format_bytes(dln::memory::available_bytes()).c_str());
    return 2;
  } catch (const std::filesystem::filesystem_error& e) {  // a path the OS refuses: bad input
    const dln::Error path(e.path1().string());            // escaped to one line
    std::fprintf(stderr, "dln: error: %s: cannot access (%s)\n", path.what(),
                 e.code().message().c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dln: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}
