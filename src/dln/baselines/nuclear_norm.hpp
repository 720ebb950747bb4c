// Minimum nuclear norm baseline (lecture notes Section 4.1, Eq. 10): the global minimizer of
// lowest nuclear norm among matrices that fit the observations, for matrix completion and matrix
// sensing, with equality constraints or the box constraints |<A_i, X> - b_i| <= tol used by the
// published experiments (docs: experiment-setups.md, "Minimum nuclear norm baseline").
#pragma once

#include <string>
#include <vector>

#include "dln/core/types.hpp"

namespace dln {

struct NuclearNormOptions {
  double tol = 0.0;        // 0: equality <A_i, X> = b_i; > 0: box |<A_i, X> - b_i| <= tol
  double rel_gap = 1e-7;   // stop when (||X||_* - dual_bound) / ||X||_* <= rel_gap (certified)
  long max_iters = 20000;  // ADMM iterations
  double rho = 0.0;        // initial ADMM penalty; 0: automatic (then adapted to balance the gap)
  bool IsValid(std::string* error) const;
};

struct NuclearNormResult {
  Mat x;                    // feasible solution: constraints hold to rounding (see max_violation)
  double nuclear_norm;      // ||x||_*
  double max_violation;     // max_i max(0, |<A_i, x> - b_i| - tol)
  long iterations;          // ADMM iterations run
  double seconds;           // wall time
  std::string termination;  // "converged" (certified gap <= rel_gap) or "max_iters"
  double dual_bound;        // certified lower bound on the optimum (a dual objective value)
  double rel_gap;           // (nuclear_norm - dual_bound) / nuclear_norm (0 when both are 0)
  // The dual point that certifies dual_bound: one multiplier per constraint (completion: in the
  // order of the observations; sensing: per measurement), and dual_matrix = sum_i y_i A_i with
  // ||dual_matrix||_2 <= 1. At an optimum X = U S V^T, U^T dual_matrix V = I (subgradient).
  Vec dual;
  Mat dual_matrix;
};

// min ||X||_* over rows x cols matrices with X(r[i], c[i]) = b[i] (tol = 0) or
// |X(r[i], c[i]) - b[i]| <= tol. Entries must be distinct and in range. Throws dln::Error on bad
// options or data.
NuclearNormResult min_nuclear_norm_completion(Index rows, Index cols, const std::vector<Index>& r,
                                              const std::vector<Index>& c,
                                              const std::vector<double>& b,
                                              const NuclearNormOptions& options);

// min ||X||_* with <A_i, X> = b_i (or within tol), A: m x (rows*cols), row i = vec(A_i)
// column-first. The rows of A must be linearly independent (m <= rows*cols). Throws dln::Error.
NuclearNormResult min_nuclear_norm_sensing(Index rows, Index cols, const Mat& a, const Vec& b,
                                           const NuclearNormOptions& options);

}  // namespace dln
