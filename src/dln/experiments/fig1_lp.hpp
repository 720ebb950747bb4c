// Internals of `dln experiment fig1-lp` (Figure 1 left, Claim 1), shared by the runs
// (fig1_lp.cpp) and the tables and report (fig1_lp_report.cpp).
#pragma once

#include <string>
#include <vector>

#include "dln/acceleration/claim1.hpp"
#include "dln/experiments/common.hpp"
#include "dln/optimizers/optimizer.hpp"

namespace dln::experiments::fig1lp {

// One compared method: the network (depth 1 = the linear model) and its optimizer.
struct Method {
  std::string name;
  int depth = 1;
  Index width = 0;  // hidden width (depth >= 2); e2e: the network whose init it starts from
  OptimizerKind kind = OptimizerKind::kGd;
  bool adaptive = false;  // the rate search starts at an absolute rate, not a multiple of eta_0
};
const std::vector<Method>& known_methods();
const Method& method_named(const std::string& name);  // throws naming experiment.methods

// One regression task: data, its exact optimum and the origin's stable rate.
struct Instance {
  std::string dataset, source;
  int p = 4;
  Mat x, y;  // d_0 x m, d_n x m
  double l_star = 0, certificate = 0, l0 = 0, eta0 = 0;
  int newton_iterations = 0;
};
Instance make_instance(const std::string& dataset, int p, const Params& params);

// One training run at one rate.
struct RunOutcome {
  acceleration::RatePoint point;
  std::string termination;
  double seconds = 0;
  std::vector<long> iteration;
  std::vector<double> loss;
};
Factors initial_factors(const Method& m, const Instance& in, const Params& params);
// init: the initial factors (default: initial_factors()).
RunOutcome run_method(const Method& m, const Instance& in, double rate, const Params& params,
                      long iterations, long record_every, const Factors* init = nullptr);

struct SearchResult {
  std::size_t instance = 0, method = 0;
  acceleration::RateSearch search;
  std::vector<RunOutcome> runs;  // same order as search.points
  const RunOutcome* best() const {
    return search.best < 0 ? nullptr : &runs[static_cast<std::size_t>(search.best)];
  }
};
const SearchResult& find_result(const std::vector<SearchResult>& results, std::size_t instance,
                                std::size_t method);

// Claim 1's update (method) and the network `net` (depth n) from balanced factors of the update's
// initial matrix, at one rate: Theorem 1's setting, where the two should agree.
struct Tracking {
  std::size_t instance = 0, method = 0, net = 0;
  double rate = 0;
  RunOutcome run;      // the network
  RunOutcome e2e_run;  // the update
};

// results.csv (every run) and trajectories.csv (each method's best run and the tracking runs).
void write_tables(const Options& options, const std::vector<Instance>& instances,
                  const std::vector<Method>& methods, const std::vector<SearchResult>& results,
                  const std::vector<Tracking>& tracking, const Params& params);
// data/<dataset>_X.npy, _Y.npy (as trained), init/<dataset>_<e2e method>/W1.npy and
// configs/<dataset>_p<p>_<method>.toml: each method's best-rate run as a `dln train` config.
void write_replay_configs(const Options& options, const std::vector<Instance>& instances,
                          const std::vector<Method>& methods,
                          const std::vector<SearchResult>& results, const Params& params);
// report.md's body; fills the claims.
std::string report_body(const std::vector<Instance>& instances, const std::vector<Method>& methods,
                        const std::vector<SearchResult>& results,
                        const std::vector<Tracking>& tracking, const Params& params,
                        std::vector<Claim>& claims);

}  // namespace dln::experiments::fig1lp
