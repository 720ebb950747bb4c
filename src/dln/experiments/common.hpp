// Shared machinery of `dln experiment`: parameters from experiments/NAME.toml, tidy result
// tables, parallel runs, the report and the matplotlib figure.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dln/baselines/nuclear_norm.hpp"
#include "dln/config/config.hpp"
#include "dln/experiments/experiments.hpp"
#include "dln/run/run_dir.hpp"

namespace dln::experiments {

// The [experiment] table of experiments/NAME.toml (built in, or the user's edited copy given by
// --config), with its [quick] table applied under --quick. A user file may only use keys of the
// built-in file, with the same types (an integer is accepted where a number is expected).
class Params {
 public:
  Params(const std::string& name, const Options& options);
  ~Params();
  Params(const Params&) = delete;
  Params& operator=(const Params&) = delete;

  double real(const char* key) const;
  long integer(const char* key) const;
  bool boolean(const char* key) const;
  std::string string(const char* key) const;
  std::vector<long> integers(const char* key) const;
  std::vector<double> reals(const char* key) const;
  std::vector<std::string> strings(const char* key) const;
  // The parameters used, as a TOML file with one [experiment] table.
  std::string resolved_toml() const;
  const std::string& source() const { return source_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string source_;
};

// A tidy table: fixed columns, one row per method x setting x seed; written as CSV.
class Table {
 public:
  explicit Table(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  void add(std::vector<std::string> cells);  // throws if the cell count differs
  std::string csv() const;
  std::size_t rows() const { return rows_.size(); }

 private:
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;
};
std::string num(double v);  // 17 significant digits: exact round trip

// Runs job(0..n-1) on `workers` threads (each job must be independent); rethrows the first
// exception. BLAS stays single-threaded inside each job. With `cost` (one entry per job), jobs
// start in order of decreasing expected cost, so a grid does not end waiting on one long job.
// Results must be stored by index: the order changes when jobs run, not what they compute.
void parallel_for(int n, int workers, const std::function<void(int)>& job,
                  const std::vector<double>& cost = {});

// The order parallel_for starts jobs in: decreasing cost, ties by index.
std::vector<int> longest_first(const std::vector<double>& cost);

// Expected cost of a training run: model flops per step (products, sparse passes, or the passes
// over the sensing matrices) times its step cap. Only the ranking matters.
double expected_cost(const Config& c);
// Expected cost of a minimum nuclear norm solve: an SVD (~20 r c min(r, c) flops) per ADMM
// iteration, for a typical 1000 iterations; far below any network of the same size.
double expected_nuclear_cost(long rows, long cols);

// Thread-safe progress line on stderr unless quiet.
void progress(const Options& options, const std::string& line);

// One claim of the notes and whether this run supports it.
struct Claim {
  std::string statement;  // the notes' claim, in their words
  bool supported = false;
  std::string evidence;  // the numbers that decide it
};

// Writes report.md: title, what ran (mode, seeds, wall time), the claims with verdicts and
// evidence, a markdown body (tables), and the figure's files.
void write_report(const std::string& out, const std::string& title, const Options& options,
                  const Params& params, const std::vector<Claim>& claims, const std::string& body,
                  double seconds, const std::string& figure_note);

// Copies the built-in plotting script to out/plot.py and runs it with Debian's python3 (or
// $DLN_PYTHON) to draw out/NAME.png and out/NAME.svg from the CSV files. Returns "" on success,
// else why no figure was drawn (the experiment still succeeds).
std::string draw_figure(const std::string& out, const std::string& name, const Options& options);

// Creates the output directory and writes the resolved parameters to out/config.toml.
void write_config(const Options& options, const Params& params);

// The end of every experiment: draws NAME.png / NAME.svg, writes report.md, and (unless quiet)
// prints the verdicts and the files written (`csv_files`, e.g. "results.csv,trajectories.csv").
// Returns the exit code, 0.
int finish(const std::string& name, const std::string& title, const Options& options,
           const Params& params, const std::vector<Claim>& claims, const std::string& body,
           std::chrono::steady_clock::time_point start, const std::string& csv_files);

// The text of a built-in file ("experiments/fig2.toml").
std::string embedded_text(const std::string& path);

// Common config of a deep matrix-factorization run inside an experiment (one BLAS thread).
Config base_config();

// Runs a config into out/runs/<tag>/ (the full run directory) and returns the result.
RunResult run_into(const Config& config, const std::string& out, const std::string& tag,
                   const std::vector<Callback*>& callbacks = {});

// fig2 / compression: the published completion setup. The problem of `observations` entries
// (problem seed `seed`) and, for depth > 0, a network with Gaussian per-layer std
// init_scale^(1/depth) / sqrt(width) (network seed 1000 + seed) and the optimizer keys.
Config completion_config(const Params& p, long observations, long seed, long depth);

// Eq. 10 on a completion problem's observations with the keys nuclear_tol, nuclear_rel_gap;
// the solution is also written to out/runs/<tag>/X.npy.
NuclearNormResult min_nuclear_for(const Problem& problem, const Params& p, const std::string& out,
                                  const std::string& tag);

// Mean of values.
double mean(const std::vector<double>& v);

// Entry point of each experiment.
int fig1_lp(const Options& options);
int fig2(const Options& options);
int fig3(const Options& options);
int prop5(const Options& options);
int compression(const Options& options);
int tensor_rank(const Options& options);
int tensor_completion(const Options& options);
int htf_dynamics(const Options& options);

}  // namespace dln::experiments
