// A low-rank matrix in SVD form, the output of the SoftImpute and ALS baselines
// (docs/baselines.md), and the observation checks both share.
#pragma once

#include <string>
#include <vector>

#include "dln/core/types.hpp"

namespace dln {

// X = U diag(d) V^T, U rows x k, V cols x k. Both baselines return it in SVD form: U and V have
// orthonormal columns and d is nonnegative and descending, so ||X||_* = d.sum() and
// ||X||_F = d.norm(). k = 0 is the zero matrix (u is rows x 0, v is cols x 0).
struct LowRank {
  Mat u;
  Vec d;
  Mat v;

  Index rows() const { return u.rows(); }
  Index cols() const { return v.rows(); }
  Index rank() const { return d.size(); }
  double at(Index r, Index c) const;  // X(r, c); no range check
  // X at the entries (r[i], c[i]); throws dln::Error for unequal lengths or out-of-range entries.
  Vec at(const std::vector<Index>& r, const std::vector<Index>& c) const;
  Mat dense() const;            // rows x cols
  double nuclear_norm() const;  // sum_j |d_j| (= ||X||_* in SVD form)
  double frobenius_norm() const;

  static LowRank zero(Index rows, Index cols);
  // The SVD form of A B^T (A rows x k, B cols x k): thin QR of A and B, then an SVD of the k x k
  // product of their R factors. Components with d_j <= 1e-14 d_0 are dropped.
  static LowRank from_factors(const Mat& a, const Mat& b);
};

// ||X - Y||_F from the factors alone (O((rows + cols) k^2)); the shapes must agree.
double frobenius_distance(const LowRank& x, const LowRank& y);

namespace detail {

// The observed entries of a rows x cols matrix, validated, sorted by (row, col).
struct Observed {
  Index rows = 0, cols = 0;
  std::vector<Index> row, col;  // sorted by row, then column
  std::vector<double> value;
  std::vector<Index>
      row_start;              // size rows + 1: entries of row i are [row_start[i], row_start[i+1])
  std::vector<Index> by_col;  // entry ids sorted by column, then row
  std::vector<Index> col_start;  // size cols + 1, into by_col
  Index size() const { return static_cast<Index>(value.size()); }
};

// Checks and sorts the observations. `who` prefixes the messages, e.g.
//   "soft_impute: shape must be positive, got 0x5"
//   "soft_impute: r, c and b must have the same length, got 3, 3 and 2"
//   "soft_impute: entry (7, 2) out of range for 5x5"
//   "soft_impute: value at (1, 2) is not finite"
//   "soft_impute: duplicate entry (1, 2)"
//   "soft_impute: no observations"
Observed make_observed(const char* who, Index rows, Index cols, const std::vector<Index>& r,
                       const std::vector<Index>& c, const std::vector<double>& b);

// sqrt(mean_i (X(r_i, c_i) - b_i)^2) over the observations.
double observed_rmse(const Observed& obs, const LowRank& x);

// ||A1 B1^T - A2 B2^T||_F, accurate to rounding relative to ||A1 B1^T|| + ||A2 B2^T|| (thin QRs
// of [A1 A2] and [B1 -B2]; no product is formed).
double factored_distance(const Mat& a1, const Mat& b1, const Mat& a2, const Mat& b2);

}  // namespace detail

}  // namespace dln
