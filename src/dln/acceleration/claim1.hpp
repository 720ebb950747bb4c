// Claim 1's quantities (Section 3.2): t_{l,eta}, the first iteration at which l is within
// epsilon of its global minimum (infinite if never), and t_l = min over eta, found by a search
// over a geometric grid of fixed step sizes that picks the rate whose run reaches the lowest loss
// within the iteration budget.
#pragma once

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "dln/optimizers/train.hpp"

namespace dln::acceleration {

constexpr long kNever = -1;  // t = infinity: the run never came within epsilon

// First recorded iteration with loss - l_star <= epsilon, or kNever. Records are what the run
// kept (RecordOptions::every), so the answer is exact up to the recording stride.
long iterations_to_epsilon(const std::vector<long>& iterations, const std::vector<double>& losses,
                           double l_star, double epsilon);
long iterations_to_epsilon(const std::vector<HistoryRow>& history, double l_star, double epsilon);

// One grid point of a rate search: what the run at `rate` reached.
struct RatePoint {
  double rate = 0;
  double final_loss = std::numeric_limits<double>::infinity();  // at the budget (or the stop)
  long iterations = 0;                                          // steps taken
  bool diverged = false;  // NaN/Inf or above the divergence threshold: never the best
};

struct RateSearchOptions {
  double start = 1e-3;  // the first rate tried
  double factor = 2;    // grid: start * factor^k, k integer (> 1)
  int patience = 2;     // stop a direction after this many points in a row worse than the best
  int max_points = 40;  // total runs allowed
  double min_rate = 0, max_rate = std::numeric_limits<double>::infinity();  // grid bounds
  bool IsValid(std::string* error) const;
};

struct RateSearch {
  std::vector<RatePoint> points;  // every run, in the order run
  int best = -1;                  // index into points of the lowest non-diverged final_loss
  bool interior = false;          // the best has a worse (or diverged) point on both sides
  const RatePoint* best_point() const { return best < 0 ? nullptr : &points[best]; }
};

// Walks the grid from `start`, upward while the final loss improves and downward from the
// start likewise, each direction until `patience` points in a row are worse than the best so far
// (a diverged run counts as worse). Loss-at-budget against log rate is unimodal in the cases of
// Claim 1 (too small: slow; too large: unstable), so this visits the grid's best point with far
// fewer runs than the full grid. `run(rate)` trains once and reports.
RateSearch search_best_rate(const std::function<RatePoint(double)>& run,
                            const RateSearchOptions& options);

// Exhaustive: runs every rate of `grid` and picks the lowest non-diverged final loss.
RateSearch best_rate_on_grid(const std::function<RatePoint(double)>& run,
                             const std::vector<double>& grid);

// The grid point start * factor^k closest to `rate` (its k), for matching rates across searches.
long grid_index(double rate, double start, double factor);

}  // namespace dln::acceleration
