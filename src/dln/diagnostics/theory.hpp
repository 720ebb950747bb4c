// Closed forms and numeric witnesses for the results of the lecture notes
// (shared/reference/linear-neural-networks-lecture-notes.md): deficiency margin (Def. 3, Example 1,
// Exercise 3), the convergence times of Theorem 2 and Remark 2, analytic-SVD tracking (Def. 4,
// Theorem 3, Lemma 2), Exercise 5, and the witnesses behind Propositions 1 and 3.
#pragma once

#include <vector>

#include "dln/core/types.hpp"
#include "dln/losses/loss.hpp"
#include "dln/model/network.hpp"

namespace dln {

// ---- Definition 3 / Example 1 / Exercise 3 --------------------------------------------------

// Lambda_yx = Y X^T / m (Example 1); x is d_0 x m, y is d_n x m.
Mat whitened_target(const Mat& x, const Mat& y);

// Example 1's whitening assumption Lambda_xx = X X^T / m = I, checked entrywise to `tol`.
bool is_whitened(const Mat& x, double tol);

// Example 1: with whitened instances W has deficiency margin delta iff
// ||W - Lambda_yx||_F < sigma_min(Lambda_yx) - delta. Returns sigma_min(Lambda_yx) -
// ||W - Lambda_yx||_F, the supremum of such delta: the condition is strict, so W has margin delta
// for every 0 < delta < result and not at delta = result; result <= 0 means no margin at all.
double deficiency_margin_whitened(const Mat& w, const Mat& lambda_yx);

// Exercise 3: min{||W' - W||_F : sigma_min(W') <= delta} = max(0, sigma_min(W) - delta), with
// sigma_min the smallest of the min(rows, cols) singular values.
double distance_to_rank_deficient(const Mat& w, double delta);

// A minimizer for Exercise 3: W with its smallest singular value replaced by
// min(delta, sigma_min(W)) (the bound ||W - W'||_F >= ||sigma(W) - sigma(W')||_2 is met with
// equality). Returns W itself when sigma_min(W) <= delta.
Mat closest_with_sigma_min(const Mat& w, double delta);

// ---- Theorem 2 / Remark 2 -------------------------------------------------------------------

// Theorem 2: gradient flow reaches phi(t) - phi* <= epsilon for every
// t >= ln((phi(0) - phi*) / epsilon) / (2 alpha delta^{2(n-1)/n}); 0 if phi0_minus_phistar <= eps.
double theorem2_time_bound(double phi0_minus_phistar, double epsilon, double alpha, double delta,
                           int depth);

// Remark 2 (Arora et al. 2019a, Theorem 1), gradient descent on the whitened square loss
// l(W) = 1/2 ||W - Lambda_yx||_F^2 + const. Reading of the garbled rendering in the notes:
//   unbalancedness <= delta^2 / (256 n^3 ||Lambda_yx||_F^{2(n-1)/n})
//   step size eta <= delta^{(4n-2)/n} / (6144 n^3 ||Lambda_yx||_F^{(6n-4)/n})
//   phi(t) - phi* <= epsilon for t >= ln(phi(0) / epsilon) / (eta delta^{2(n-1)/n}),
// where phi(0) is the excess 1/2 ||W_{n:1}(0) - Lambda_yx||_F^2 (the constant dropped, as in
// Arora et al., whose loss has minimum 0); the "2.6" in the notes is delta^2 with footnote 6.
struct Remark2Thresholds {
  double max_unbalancedness = 0;
  double max_step = 0;
  double delta = 0;
  int depth = 1;
  // Iterations after which the guarantee holds, for a step eta <= max_step (not checked);
  // 0 when phi0 <= epsilon.
  double iterations(double phi0, double epsilon, double eta) const;
};
Remark2Thresholds remark2_thresholds(const Mat& lambda_yx, double delta, int depth);

// ---- Definition 4 / Theorem 3 / Lemma 2 -----------------------------------------------------

// Follows an analytic SVD (Def. 4) of a sampled curve W(t_0), W(t_1), ... by continuity: signed
// sigma_r with unit u_r, v_r such that W = sum_r sigma_r u_r v_r^T, r = 1..min(rows, cols),
// ordered by identity (not size), so sigma_r passes through crossings and through zero.
//
// Each update takes a thin SVD of W(t_k) and:
//  1. groups singular values that differ by <= cluster_rtol * s_max into clusters (their vectors
//     are not determined individually); values <= cluster_rtol * s_max form the zero cluster;
//  2. matches new clusters to previous components greedily by the overlap
//     (|<u_new, u_prev>| + |<v_new, v_prev>|) / 2 (subspace projections for clusters), largest
//     first; a match below ambiguity_threshold counts as ambiguous (step too large);
//  3. inside a cluster of p > 1 picks the basis closest to the matched previous vectors: the
//     common rotation R maximizing tr(R^T (U_c^T U_prev + V_c^T V_prev D)), D = sign(sigma_prev)
//     (orthogonal Procrustes); for the zero cluster u and v are the previous vectors projected on
//     the complement of the other new vectors, then orthonormalized (closest orthonormal set);
//  4. flips (u_r, v_r) so that <u_r, u_prev> > 0, then flips v_r alone if <v_r, v_prev> < 0, and
//     sets sigma_r = u_r^T W v_r, which is negative exactly when v_r had to be flipped.
// Precondition: components move little between updates (small steps along an analytic curve).
class AnalyticSvdTracker {
 public:
  explicit AnalyticSvdTracker(double cluster_rtol = 1e-7, double ambiguity_threshold = 0.5);

  // t must increase and every W must have the first one's shape; throws Error otherwise.
  void update(double t, const Mat& w);

  const Vec& sigma() const { return sigma_; }
  const Mat& u() const { return u_; }  // rows x k, column r = u_r
  const Mat& v() const { return v_; }  // cols x k, column r = v_r
  const std::vector<double>& times() const { return times_; }
  const std::vector<Vec>& sigma_history() const { return sigma_history_; }
  int ambiguous_matches() const { return ambiguous_; }

 private:
  double cluster_rtol_, ambiguity_threshold_;
  Vec sigma_;
  Mat u_, v_;
  std::vector<double> times_;
  std::vector<Vec> sigma_history_;
  int ambiguous_ = 0;
};

// Theorem 3: d sigma_r / dt = (sigma_r^2)^{1-1/n} n <-grad l, u_r v_r^T>, r = 1..min(d_0, d_n),
// with u, v holding u_r, v_r as columns (e.g. from AnalyticSvdTracker) and sigma the signed values.
Vec theorem3_rates(const Mat& grad_l, const Mat& u, const Mat& v, const Vec& sigma, int depth);

// Lemma 2: sign of det W (square) from a full-pivoting LU: 0 when the smallest pivot is
// <= d * machine epsilon * the largest (singular to rounding), else +1 or -1.
int determinant_sign(const Mat& w);

// ---- Exercise 5 -----------------------------------------------------------------------------

// n = 2 and <-grad l, u_r v_r^T> = c: Theorem 3 reads d sigma/dt = (sigma^2)^{1/2} 2 c = 2 c
// |sigma|. sigma never reaches 0 (Lemma 2's argument), so for eps > 0 it is sigma' = 2 c sigma and
// sigma(t) = eps exp(2 c t); for eps < 0, sigma(t) = eps exp(-2 c t) (Lemma 2's n = 2 solution).
double exercise5_sigma(double eps, double c, double t);
// sigma_r(t) / sigma_r'(t) = exp(2 (c_r - c_r') t) for a shared eps > 0: gaps grow exponentially.
double exercise5_ratio(double c_r, double c_rp, double t);

// ---- Propositions 1 and 3 -------------------------------------------------------------------

// Proof of Proposition 3: factors with phi(W_1..W_n) = l(W) < l(0) = phi(0) and ||W||_F < eps.
// W = -s grad l(0) / ||grad l(0)||_F with s = eps/2 halved until l(W) < l(0); then for d_0 >= d_n
// W_1 = ||W||^{-1+1/n} W in its top d_n x d_0 block and W_j = ||W||^{1/n} I_{d_n} top-left
// (j >= 2); for d_0 < d_n, W_n = ||W||^{-1+1/n} W in its left block and W_j = ||W||^{1/n} I_{d_0}
// (j < n). Needs every hidden width >= min(d_0, d_n) and grad l(0) != 0; throws Error otherwise.
struct SaddleWitness {
  double phi_origin = 0;    // phi(0, ..., 0) = l(0)
  double phi_witness = 0;   // phi(factors), evaluated from the product of the factors
  double witness_norm = 0;  // ||(W_1, ..., W_n)||_F = sqrt(1 + (n-1) min(d_0, d_n)) ||W||_F^{1/n}
  double w_norm = 0;        // ||W||_F = ||W_{n:1}||_F < eps
  Factors factors;
};
SaddleWitness origin_descent_witness(const Loss& loss, const std::vector<Index>& dims, double eps);

// Proposition 1: A = the factors of origin_descent_witness, B = A with W_1 and W_2 negated (same
// product, so phi(B) = phi(A) = l(W)); the midpoint has W_1 = W_2 = 0, product 0, and
// phi((A+B)/2) = l(0) > (phi(A) + phi(B))/2. Returns whether the strict inequality was observed
// (false for depth 1, or when no descent witness exists); fills *out when given.
struct NonconvexWitness {
  Factors a, b;
  double phi_a = 0, phi_b = 0, phi_mid = 0;
};
bool phi_nonconvex_witness(const Loss& loss, const std::vector<Index>& dims, double eps,
                           NonconvexWitness* out = nullptr);

}  // namespace dln
