// End-to-end dynamics of a balanced linear neural network (Section 2): the preconditioner P(W)
// of Theorem 1 / Corollary 1, the non-conservative vector field of Remark 1, the symmetric
// two-layer variant of Exercise 2 and the discrete update of Claim 1.
//
// Conventions (W is d_n x d_0, n = depth >= 1):
//   W = U S V^T is a full SVD, U d_n x d_n (columns u_r), V d_0 x d_0 (columns v_r');
//   sigma_r = 0 for r > min(d_0, d_n), and singular values at or below
//   max(d_0, d_n) * eps * sigma_max are set to exactly 0 (numerical rank), so that the
//   fractional powers below do not amplify rounding noise (1e-16^(1/2) = 1e-8).
//   [.]^0 = I even on singular matrices (Theorem 1: beta = 0 yields identity), 0^beta = 0 for
//   beta > 0. vec() is column-first (Corollary 1).
#pragma once

#include "dln/core/types.hpp"
#include "dln/losses/loss.hpp"

namespace dln {

// Full SVD of W with sigma zero-padded to both sides: sigma_n(r) goes with u_r (length d_n),
// sigma_0(r') with v_r' (length d_0). Both are non-increasing.
struct FullSvd {
  Mat u;  // d_n x d_n
  Mat v;  // d_0 x d_0
  Vec sigma_n;
  Vec sigma_0;
};
FullSvd full_svd(const Mat& w);

// Corollary 1: the d_n x d_0 matrix Lambda(r, r') = sum_{j=1}^n sigma_r^{2(n-j)/n}
// sigma_r'^{2(j-1)/n}, the eigenvalue of P(W) on vec(u_r v_r'^T). In Theorem 1 (Eq. 3) the
// factor [W W^T]^{(j-1)/n} multiplies grad l on the left (acting on rows r of U^T G V, i.e.
// sigma_r^{2(j-1)/n}) and [W^T W]^{(n-j)/n} on the right (columns r'); substituting
// j -> n + 1 - j turns that sum into the one above, so both give the same Lambda.
Mat preconditioner_eigenvalues(const Vec& sigma_n, const Vec& sigma_0, int depth);

// Corollary 1, matrix-free: unvec(P(W) vec(G)) = U (Lambda o (U^T G V)) V^T, which equals
// sum_j [W W^T]^{(j-1)/n} G [W^T W]^{(n-j)/n} (Eq. 3). Depth 1 returns g unchanged.
Mat apply_preconditioner(const Mat& w, const Mat& g, int depth);

// Proof of Corollary 1: Q = sum_j [W^T W]^{(n-j)/n} (x) [W W^T]^{(j-1)/n}, a
// (d_0 d_n) x (d_0 d_n) PSD matrix with Q vec(G) = vec(apply_preconditioner(W, G)). The PSD
// powers come from the same (rank-thresholded) SVD. Throws Error when d_0 d_n > 4096.
Mat materialize_preconditioner(const Mat& w, int depth);

// Corollary 1 in closed form, ordered like the columns of O = V (x) U: index k = r + d_n r'
// (r' major) holds eigenvalue Lambda(r, r') (= vec(Lambda)) and eigenvector vec(u_r v_r'^T).
// Throws Error when d_0 d_n > 4096.
struct PreconditionerSpectrum {
  Vec eigenvalues;   // d_0 d_n
  Mat eigenvectors;  // (d_0 d_n) x (d_0 d_n), orthonormal columns
};
PreconditionerSpectrum preconditioner_spectrum(const Mat& w, int depth);

// Theorem 1 (Eq. 3): dW/dt = -P(W) grad l(W) for the end-to-end matrix of a balanced network.
Mat end_to_end_velocity(const Mat& w, const Loss& loss, int depth);

// Remark 1: line integral of g(W) = P(W) grad l(W) (no minus sign) around the circle
// W(theta) = center + radius (cos theta dir1 + sin theta dir2), by the periodic trapezoid rule
// with `points` nodes (spectrally accurate for analytic g). `scale` is the same rule applied to
// ||g(W(theta))||_F ||W'(theta)||_F, so |value| <= scale (Cauchy-Schwarz) and value / scale is
// a dimensionless measure: ~1e-16 for a gradient field (depth 1); for depth >= 2 it depends on
// the plane (1e-5..1e-2 on random planes, >= 7e-3 measured on max_curl_plane's).
struct LoopIntegral {
  double value = 0.0;
  double scale = 0.0;
};
LoopIntegral loop_integral(const Loss& loss, int depth, const Mat& center, const Mat& dir1,
                           const Mat& dir2, double radius, int points);
double line_integral_closed_loop(const Loss& loss, int depth, const Mat& center, const Mat& dir1,
                                 const Mat& dir2, double radius, int points);

// Remark 1 made measurable: the plane through `center` in which g = P(W) grad l rotates most.
// With J the Jacobian of vec(g) at center (central differences, step 1e-5 ||center||_F),
// curl = sigma_max(J - J^T), dir1 = unvec(e1) its top right singular vector and
// dir2 = unvec((J - J^T) e1) / curl (unit Frobenius norm, orthogonal; 0 if curl = 0). By Stokes'
// theorem loop_integral(loss, depth, center, dir1, dir2, rho, .) = pi rho^2 curl + O(rho^4); curl
// is rounding-level relative to jacobian_norm = ||J||_F for a gradient field (depth 1). Throws
// Error when d_0 d_n > 4096.
struct CurlPlane {
  Mat dir1;
  Mat dir2;
  double curl = 0.0;
  double jacobian_norm = 0.0;
};
CurlPlane max_curl_plane(const Loss& loss, int depth, const Mat& center);

// Exercise 2, symmetric network x -> W W^T x (W d x d, loss d x d):
//   grad phi_s(W) = (grad l + grad l^T) W, evaluated at W W^T.
Mat symmetric_factor_gradient(const Mat& w, const Loss& loss);
// Exercise 2: dW_s/dt = -(G_sym W_s + W_s G_sym), G_sym = grad l(W_s) + grad l(W_s)^T; depends on
// W only through W_s = W W^T.
Mat symmetric_end_to_end_velocity(const Mat& ws, const Loss& loss);

// Claim 1: one step of the discretized end-to-end dynamics, vec(W) - zeta P(W) vec(grad).
Mat end_to_end_discrete_step(const Mat& w, const Mat& grad, int depth, double zeta);

}  // namespace dln
