// The global minimum l* of Claim 1's l_p regression loss l(W) = 1/m sum_i ||W x_i - y_i||_p^p
// (p even, convex), to near machine precision: Newton's method with a backtracking line search,
// one output row at a time (the loss separates over the rows of W), started from least squares.
#pragma once

#include <string>

#include "dln/core/types.hpp"

namespace dln::acceleration {

struct LpOptimumOptions {
  double grad_tol = 1e-13;  // stop once ||grad l(W)||_F <= grad_tol * max(1, l(W))
  int max_iters = 500;      // Newton steps per output row
  bool IsValid(std::string* error) const;
};

struct LpOptimum {
  Mat w;                   // the minimizer W* (d_n x d_0)
  double loss = 0;         // l* = l(W*)
  double grad_norm = 0;    // the certificate: ||grad l(W*)||_F (0 at the exact minimum)
  int iterations = 0;      // Newton steps, summed over the output rows
  bool converged = false;  // grad_norm met grad_tol (else: no line-search progress was possible)
};

// x is d_0 x m, y is d_n x m, p even >= 2. Throws Error on shapes, p, or non-finite data.
LpOptimum lp_regression_optimum(const Mat& x, const Mat& y, int p,
                                const LpOptimumOptions& options = {});

}  // namespace dln::acceleration
