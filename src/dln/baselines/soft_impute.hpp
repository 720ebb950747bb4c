// SoftImpute (Mazumder, Hastie, Tibshirani 2010, "Spectral regularization algorithms for
// learning large incomplete matrices", Algorithm 1): the nuclear-norm regularized completion
//   min_X  1/2 sum_{(r,c,b) observed} (X(r, c) - b)^2 + lambda ||X||_*
// (the Lagrangian form of the minimum nuclear norm baseline, notes Section 4.1 Eq. 10; lambda ->
// 0+ approaches its equality-constrained solution), solved by the SoftImpute fixed-point
// iteration, i.e. proximal gradient with step 1:
//   Z_k = P_Omega(B) + P_Omega^perp(X_k) = P_Omega(B - X_k) + X_k,   X_{k+1} = S_lambda(Z_k),
// S_lambda(Z) = U max(Sigma - lambda, 0) V^T (singular value soft-thresholding). The objective
// decreases monotonically and X_k converges to a minimizer.
//
// Two ways to compute S_lambda(Z_k):
//  * "dense": Z_k formed explicitly and a full SVD (LAPACK dgesdd) per iteration; exact, for small
//    matrices (O(rows cols min(rows, cols)) per iteration).
//  * "low_rank": the "sparse + low rank" structure. Z_k = S + X_k with S = P_Omega(B - X_k) sparse
//    (|Omega| entries) and X_k = U D V^T of rank k, so Z_k times a block of p vectors costs
//    O(|Omega| p + (rows + cols) k p) and Z_k is never formed. Its top p singular triplets come
//    from one step of block subspace iteration warm-started at the previous iterate's right
//    singular vectors, followed by Rayleigh-Ritz (Y = Z V, Q = qr(Y), SVD of Z^T Q). As X_k
//    converges Z_k stops moving, so the warm-started subspace converges with it: at a fixed point
//    the computed triplets are exact and X is exactly the SoftImpute fixed point, provided the
//    block holds every singular value above lambda. The block size is adapted to keep
//    (kept rank) + oversample columns: if every computed singular value exceeds lambda the block
//    grows. Why this and not softImpute-ALS (Hastie et al. 2015): both cost
//    O(|Omega| p + (rows + cols) p^2) per iteration, but here every iteration is (at
//    convergence, exactly) the SoftImpute step, so the two methods share one fixed point and one
//    stopping rule and the scalable path can be tested against the dense one entry by entry.
//    max_rank caps the rank of X (then the result is only the best point of rank <= max_rank the
//    iteration finds, flagged by rank_capped).
//
// Stopping rule (both methods): ||X_{k+1} - X_k||_F <= tol * max(||X_k||_F, 1e-300), the
// relative change of X (Mazumder et al. use its square with tol^2), or max_iters.
// Acceleration: by default the step is taken from the FISTA extrapolation
// Y = X_k + beta_k (X_k - X_{k-1}) instead of X_k (Z_k = P_Omega(B - Y) + Y; Y has rank <= 2k, so
// still sparse + low rank), with the momentum reset whenever the objective increases. Plain
// SoftImpute contracts at a rate ~ 1 - (fraction observed) per iteration on the relevant
// directions; momentum needs far fewer (measured, 2000 x 3000 with 2.5% observed, cold solve at
// lambda 5: 660 iterations / 105 s plain, 219 / 7.8 s with momentum and continuation).
//
// Optimality (KKT) of a solution X = U D V^T: G = P_Omega(B - X) satisfies G V = lambda U,
// G^T U = lambda V and ||G||_2 <= lambda; soft_impute_optimality() measures both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dln/baselines/low_rank.hpp"
#include "dln/core/types.hpp"

namespace dln {

struct SoftImputeOptions {
  double lambda = 0.0;          // the regularization (>= 0); soft_impute_path() ignores it
  double tol = 1e-5;            // relative change of X between iterations (stopping rule above)
  long max_iters = 10000;       // SoftImpute iterations (per lambda on a path)
  Index max_rank = 0;           // cap on rank(X); 0: none (min(rows, cols))
  std::string method = "auto";  // "auto", "dense" or "low_rank" (see above)
  // "auto": "dense" when rows * cols <= dense_max_entries, else "low_rank".
  Index dense_max_entries = 40000;
  Index oversample = 8;    // low_rank: block columns beyond the kept rank (>= 1)
  std::uint64_t seed = 1;  // low_rank: random start of the subspace (a warm start replaces it)
  // FISTA momentum (Beck and Teboulle 2009) with function-value restart (O'Donoghue and Candes
  // 2015): same fixed point, several times fewer iterations when few entries are observed.
  bool accelerate = true;
  // soft_impute() without a warm start and lambda < lambda_max / 2: first solve (to tolerance
  // max(tol, 1e-4)) at lambda_max / 2, / 4, ... down to lambda, each warm-starting the next.
  // Starting at X = 0 far below lambda_max, the first iterates have the rank of the noise bulk of
  // P_Omega(B) (hundreds on large problems); continuation keeps every iterate near the solution's
  // rank. iterations and seconds include the continuation steps.
  bool continuation = true;
  bool IsValid(std::string* error) const;
};

struct SoftImputeResult {
  LowRank x;                  // the solution in SVD form (d = thresholded singular values)
  double lambda = 0.0;        // the lambda it solves for
  long iterations = 0;        // SoftImpute iterations run
  double seconds = 0.0;       // wall time
  std::string termination;    // "converged" (relative change <= tol) or "max_iters"
  std::string method;         // "dense" or "low_rank" (what "auto" chose)
  double rel_change = 0.0;    // last ||X_{k+1} - X_k||_F / ||X_k||_F
  double train_rmse = 0.0;    // sqrt(mean (X(r, c) - b)^2) over the observations
  double nuclear_norm = 0.0;  // ||X||_*
  double objective = 0.0;     // 1/2 sum (X(r, c) - b)^2 + lambda ||X||_*
  bool rank_capped = false;   // the rank reached max_rank (the result may not be optimal)
};

// One lambda. warm_start (optional) is the starting X, e.g. the solution at a larger lambda; it
// must be rows x cols. Throws dln::Error on bad options or data (messages name the field:
// "soft_impute.lambda: must be finite and >= 0, got -1").
SoftImputeResult soft_impute(Index rows, Index cols, const std::vector<Index>& r,
                             const std::vector<Index>& c, const std::vector<double>& b,
                             const SoftImputeOptions& options, const LowRank* warm_start = nullptr);

struct SoftImputePathOptions {
  // Explicit lambdas (finite, >= 0, strictly decreasing); empty: `points` values geometric from
  // lambda_max down to min_ratio * lambda_max, lambda_i = lambda_max * min_ratio^(i / (points-1))
  // (points = 1: min_ratio * lambda_max alone). lambda_max = ||P_Omega(B)||_2 is the smallest
  // lambda whose solution is X = 0.
  std::vector<double> lambdas;
  Index points = 10;        // >= 1
  double min_ratio = 1e-2;  // in (0, 1]
  bool IsValid(std::string* error) const;
};

// The lambda path: solves for each lambda in decreasing order, each warm-started from the
// previous solution. options.lambda is ignored. Returns one result per lambda, in path order.
std::vector<SoftImputeResult> soft_impute_path(Index rows, Index cols, const std::vector<Index>& r,
                                               const std::vector<Index>& c,
                                               const std::vector<double>& b,
                                               const SoftImputeOptions& options,
                                               const SoftImputePathOptions& path);

// The lambdas soft_impute_path() uses for these options and data.
std::vector<double> soft_impute_lambdas(Index rows, Index cols, const std::vector<Index>& r,
                                        const std::vector<Index>& c, const std::vector<double>& b,
                                        const SoftImputePathOptions& path);

// lambda_max = ||P_Omega(B)||_2 (block subspace iteration on the sparse P_Omega(B)).
double soft_impute_lambda_max(Index rows, Index cols, const std::vector<Index>& r,
                              const std::vector<Index>& c, const std::vector<double>& b);

// How far X = U D V^T is from the SoftImpute optimum at lambda (> 0), G = P_Omega(B - X):
struct SoftImputeOptimality {
  double stationarity = 0.0;    // max(||G V - lambda U||_F, ||G^T U - lambda V||_F) / lambda
  double spectral_ratio = 0.0;  // ||G_perp||_2 / lambda, G_perp = (I - UU^T) G (I - VV^T); <= 1
};
SoftImputeOptimality soft_impute_optimality(Index rows, Index cols, const std::vector<Index>& r,
                                            const std::vector<Index>& c,
                                            const std::vector<double>& b, double lambda,
                                            const LowRank& x);

}  // namespace dln
