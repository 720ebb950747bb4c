// Shared by the Section 5 experiments (tensor-rank, tensor-completion, htf-dynamics): tensor runs
// into out/runs/<tag>/ and when each of the top components rises.
#pragma once

#include <string>
#include <vector>

#include "dln/experiments/common.hpp"
#include "dln/tensors/run.hpp"

namespace dln::experiments {

// A tensor config of one BLAS thread, group-RMSprop and no CP-rank estimate (set what differs).
Config tensor_base_config();

// tensor-rank / tensor-completion: a CP completion run from the keys shape, rank, norm,
// reduction, components, lr, alpha, eps, loss_tol, max_iters, record_every, rank_tol, max_rank
// (problem seed `seed`, network seed 1000 + seed).
Config cp_completion_config(const Params& p, long observations, double init_std, long seed);

// Runs a tensor config into out/runs/<tag>/ (the full run directory).
tensors::TensorRunResult run_tensor_into(const Config& config, const std::string& out,
                                         const std::string& tag);

// When the `count` components of largest final norm rise: for each, the first iteration its norm
// reaches 10%, 50% and 90% of its final value (linear interpolation between records), ordered by
// the 50% time. Components are followed by identity (HistoryRow::component_ids) over the top
// record.components of node `node` (index among the nodes of level >= 1; the root is last);
// below the recorded top they count as not risen.
struct Rises {
  std::vector<double> id, final_norm, t10, t50, t90;
  double spread = 0;   // t50 of the last over t50 of the first
  int separated = 0;   // consecutive pairs whose 10-90% transitions do not overlap
  int increasing = 0;  // consecutive pairs with t50 strictly increasing (always count - 1)
};
// "3021, 8145, 10189" (steps, rounded).
std::string steps_list(const std::vector<double>& steps);

Rises component_rises(const std::vector<HistoryRow>& history, int node, int per_node, int count);
// The same for a matrix run's top singular values (by index).
Rises singular_value_rises(const std::vector<HistoryRow>& history, int count);

}  // namespace dln::experiments
