// A whole run from a Config, and the run directory that lets anyone replay it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "dln/config/config.hpp"

namespace dln {

struct RunResult {
  Config config;
  Problem problem;
  Factors init;     // W_1(0)..W_n(0)
  Factors factors;  // final factors
  Mat end_to_end;   // W_{n:1} of the final factors
  Summary summary;
  double gemm_flops_per_step = 0;
  int step_threads = 1;  // 2 when the last measurement chose the split step (Objective)
};

// Builds the problem and the network from the config and trains (BLAS threads = config.threads).
// With a run directory, config.toml, init/ and data/ are written before training, and discrete
// optimizers write dir/checkpoint/ every run.checkpoint_every iterations; `resume` continues
// from that checkpoint (bit-identical to an uninterrupted run).
RunResult run(const Config& config, const std::vector<Callback*>& callbacks = {},
              const std::string& dir = "", bool resume = false);

// dir/checkpoint/ (state.json, W*.npy, B*.npy), written atomically by swapping directories.
void write_checkpoint(const std::string& dir, const Checkpoint& c);
Checkpoint read_checkpoint(const std::string& dir);
// A checkpoint is outside input (a file may be edited or truncated): before resuming, its factors
// must have the shapes of `w`, its optimizer state the counts and shapes of `buffers`/`scalars`
// (what a fresh optimizer's state() gives), every value finite, and its iteration in
// [0, max_iters]. Throws Error "<where>: ..." naming what differs.
void check_checkpoint(const Checkpoint& c, const Factors& w, const Factors& buffers,
                      std::size_t scalars, long max_iters, const std::string& where);

// Writes the run directory (docs/run-directory.md): config.toml, summary.json, history.csv,
// singular_values.csv, end_to_end.npy, init/W*.npy, factors/W*.npy, data/*. Every file atomically.
void write_run_directory(const std::string& dir, const RunResult& result);

// summary.json as text.
std::string summary_json(const RunResult& result);
// The fields every summary.json has: version, termination, message, iterations, final_loss,
// wall_seconds, record_seconds, seconds_per_step.
nlohmann::json summary_fields(const Summary& summary);

// Peak resident set size of this process in bytes.
long peak_rss_bytes();

}  // namespace dln
