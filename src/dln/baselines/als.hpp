// Alternating least squares (ALS) for explicit-rank matrix completion: X = U V^T, U rows x k,
// V cols x k, minimizing
//   f(U, V) = sum_{(r,c,b) observed} (u_r . v_c - b)^2 + lambda (sum_i w_i ||u_i||^2 +
//                                                               sum_j w_j ||v_j||^2)
// with w = 1 (plain ridge) or, weighted_lambda, w_i = number of observations in row i / column j
// ("ALS-WR", Zhou, Wilkinson, Schreiber, Pan 2008). Each sweep solves exactly for every row u_i
// with V fixed, (V_i^T V_i + lambda w_i I) u_i = V_i^T b_i (V_i the rows of V observed in row i;
// a k x k Cholesky per row), then for every v_j with U fixed; f decreases monotonically. A row or
// column without observations gets 0. Stops when |f_prev - f| <= tol * f_prev or after max_iters
// sweeps.
//
// With w = 1, min over U V^T = X of ||U||_F^2 + ||V||_F^2 is 2 ||X||_*, so at a global minimum
// with k >= the rank of the SoftImpute solution, ALS(lambda) solves SoftImpute(lambda)
// (min 1/2 sum (X - b)^2 + lambda ||X||_*); tests/test_baselines.cpp checks this.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dln/baselines/low_rank.hpp"
#include "dln/core/types.hpp"

namespace dln {

struct AlsOptions {
  Index rank = 10;               // k >= 1
  double lambda = 0.1;           // ridge > 0 (finite)
  bool weighted_lambda = false;  // lambda * n_i per row / column (Zhou et al. 2008)
  long max_iters = 200;          // sweeps (one sweep = all rows, then all columns)
  double tol = 1e-7;             // relative objective change to stop (>= 0; 0: run max_iters)
  // V starts with i.i.d. N(0, s^2) entries, s = init_scale, or when init_scale = 0,
  // s = sqrt(rms(b) / sqrt(k)) (so U V^T starts at the data's scale); U is solved first.
  double init_scale = 0.0;
  std::uint64_t seed = 1;
  bool IsValid(std::string* error) const;
};

struct AlsResult {
  LowRank x;                  // U V^T in SVD form (orthonormal factors, descending d)
  long iterations = 0;        // sweeps run
  double seconds = 0.0;       // wall time
  std::string termination;    // "converged" (relative objective change <= tol) or "max_iters"
  double train_rmse = 0.0;    // sqrt(mean (X(r, c) - b)^2) over the observations
  double objective = 0.0;     // f(U, V) above
  double rel_change = 0.0;    // last |f_prev - f| / f_prev
  double nuclear_norm = 0.0;  // ||X||_*
};

// Throws dln::Error on bad options or data ("als.rank: must be >= 1, got 0", out-of-range,
// duplicate or non-finite observations).
AlsResult als(Index rows, Index cols, const std::vector<Index>& r, const std::vector<Index>& c,
              const std::vector<double>& b, const AlsOptions& options);

}  // namespace dln
