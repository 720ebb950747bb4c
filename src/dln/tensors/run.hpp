// A tensor run from a Config (problem.kind = tensor_completion | tensor_sensing), and its run
// directory (docs/tensors.md): the same loop, callbacks, checkpoints and resume as matrix runs.
#pragma once

#include <optional>
#include <string>

#include "dln/config/config.hpp"
#include "dln/tensors/cp_als.hpp"
#include "dln/tensors/problem.hpp"

namespace dln::tensors {

struct TensorRunResult {
  Config config;
  TensorNetworkSpec spec;
  TensorProblem problem;
  Factors init, factors;
  Summary summary;
  double flops_per_step = 0;
  int step_threads = 1;           // 2: CP completion steps split between two threads (run.threads)
  std::optional<Vec> end_to_end;  // the learned tensor, dense, when <= kDenseEntries
  std::optional<RankEstimate> cp_rank;  // of end_to_end (record.rank_tol > 0)
};

// "U" (CP: U1..UN) or "H" (hierarchical: H1..HK in parameter_shapes order).
const char* parameter_prefix(const TensorNetworkSpec& spec);

// Builds the problem and network and trains. With a run directory, config.toml, tree.json,
// init/ and data/ are written first, and discrete optimizers checkpoint every
// run.checkpoint_every iterations; `resume` continues from dir/checkpoint/.
TensorRunResult run_tensor(const Config& config, const std::vector<Callback*>& callbacks = {},
                           const std::string& dir = "", bool resume = false);
// The same on a problem the caller built (e.g. observations from Python arrays): its kind and
// shape must be the config's.
TensorRunResult run_tensor(const Config& config, TensorProblem problem,
                           const std::vector<Callback*>& callbacks = {},
                           const std::string& dir = "", bool resume = false);

// config.toml, summary.json, history.csv, component_norms.csv, tree.json, init/, factors/,
// data/, end_to_end.npy (at most 10^6 entries). Every file atomically; summary.json last.
void write_tensor_run_directory(const std::string& dir, const TensorRunResult& result);
std::string tensor_summary_json(const TensorRunResult& result);
std::string tensor_history_csv(const TensorRunResult& result);

}  // namespace dln::tensors
