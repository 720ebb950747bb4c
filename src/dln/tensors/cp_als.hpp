// CP decomposition by alternating least squares: of a dense tensor (the CP-rank estimate of a
// learned tensor), and of observed entries only (the completion baseline at a given rank).
#pragma once

#include <cstdint>

#include "dln/model/network.hpp"
#include "dln/tensors/entries.hpp"

namespace dln::tensors {

struct CpAlsOptions {
  int max_iters = 1000;  // sweeps over the modes per start
  double tol = 1e-12;    // stop when the relative error changes by less than this
  int restarts = 5;      // random starts; the best fit is kept
  double ridge = 1e-10;  // completion: Tikhonov term on each row's normal equations
  std::uint64_t seed = 0;
  bool IsValid(std::string* error) const;
};

struct CpFit {
  Factors factors;       // U_k, d_k x R
  double rel_error = 0;  // ||T - [U_1..U_N]|| / ||T|| (completion: over the observed entries)
  int iterations = 0;    // sweeps of the best start
};

// Best of options.restarts starts at rank R of a dense C-order tensor.
CpFit cp_als(const Shape& shape, const Vec& dense, Index rank, const CpAlsOptions& options = {});
// Masked ALS: each row of U_k solves its least squares over the observed entries in that slice.
CpFit cp_als_completion(const Observations& obs, Index rank, const CpAlsOptions& options = {});

struct RankEstimate {
  Index rank = 0;              // smallest R' with fit error <= tol; max_rank + 1 if none
  std::vector<double> errors;  // best relative error at R' = 1 .. (last tried)
};
// The smallest R' in 1..max_rank whose CP-ALS fit reaches relative error <= tol (0 for a zero
// tensor).
RankEstimate estimate_cp_rank(const Shape& shape, const Vec& dense, double tol, Index max_rank,
                              const CpAlsOptions& options = {});

// CP factors -> dense C-order tensor.
Vec cp_dense(const Shape& shape, const Factors& u);

}  // namespace dln::tensors
