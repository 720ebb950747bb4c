#include "dln/acceleration/lp_optimum.hpp"

#include <fmt/format.h>

#include <Eigen/Cholesky>
#include <Eigen/QR>
#include <cmath>
#include <limits>

#include "dln/losses/loss.hpp"

namespace dln::acceleration {

bool LpOptimumOptions::IsValid(std::string* error) const {
  if (!(grad_tol >= 0) || !std::isfinite(grad_tol))
    return *error = fmt::format("grad_tol: must be finite and >= 0, got {}", grad_tol), false;
  if (max_iters < 1)
    return *error = fmt::format("max_iters: must be >= 1, got {}", max_iters), false;
  return true;
}

namespace {

// f(w) = 1/m sum_i (w . x_i - y_i)^p for one output row w (a column vector here).
double row_loss(const Mat& x, const Vec& y, const Vec& w, int p, Vec& r) {
  r.noalias() = x.transpose() * w;
  r -= y;
  double total = 0;
  for (Index i = 0; i < r.size(); ++i) total += int_pow(r(i), p);
  return total / static_cast<double>(r.size());
}

}  // namespace

LpOptimum lp_regression_optimum(const Mat& x, const Mat& y, int p,
                                const LpOptimumOptions& options) {
  std::string error;
  if (!options.IsValid(&error)) throw Error("lp optimum: " + error);
  if (p < 2 || p % 2 != 0)
    throw Error(fmt::format("problem.p: must be an even integer >= 2, got {}", p));
  if (x.cols() != y.cols() || x.cols() == 0)
    throw Error(
        fmt::format("lp optimum: X is {}x{} and Y {}x{}: need the same number (> 0) of samples",
                    x.rows(), x.cols(), y.rows(), y.cols()));
  if (!x.allFinite() || !y.allFinite()) throw Error("lp optimum: non-finite X or Y");
  const Index d0 = x.rows(), m = x.cols();
  const double inv_m = 1.0 / static_cast<double>(m);
  LpOptimum out;
  out.w.setZero(y.rows(), d0);
  // Least squares start (the p = 2 optimum): min ||X^T w - y||, rank-revealing QR.
  const Eigen::ColPivHouseholderQR<Mat> qr(x.transpose());
  Vec r(m), r_try(m), g(d0), weights(m);
  Mat h(d0, d0);
  double grad_sq = 0;
  bool all_converged = true;
  for (Index k = 0; k < y.rows(); ++k) {
    const Vec yk = y.row(k).transpose();
    Vec w = qr.solve(yk);
    double f = row_loss(x, yk, w, p, r);
    bool converged = false;
    for (int it = 0;; ++it) {
      // grad = p/m sum r^{p-1} x_i; Hessian = p(p-1)/m sum r^{p-2} x_i x_i^T.
      for (Index i = 0; i < m; ++i) weights(i) = int_pow(r(i), p - 2);
      g.noalias() = x * (r.cwiseProduct(weights) * (p * inv_m));
      const double gnorm = g.norm();
      if (gnorm <= options.grad_tol * std::max(1.0, f)) {
        converged = true;
        break;
      }
      if (it == options.max_iters) break;
      ++out.iterations;
      h.noalias() = x * (weights.asDiagonal() * x.transpose());
      h *= p * (p - 1) * inv_m;
      // Newton direction; a (near-)singular Hessian (zero residuals) gets a tiny ridge.
      Eigen::LDLT<Mat> ldlt(h);
      Vec dir = -ldlt.solve(g);
      if (ldlt.info() != Eigen::Success || !dir.allFinite() || dir.dot(g) >= 0) {
        const double ridge = 1e-12 * std::max(h.diagonal().maxCoeff(), 1e-300);
        dir = -(h + ridge * Mat::Identity(d0, d0)).ldlt().solve(g);
        if (!dir.allFinite() || dir.dot(g) >= 0) dir = -g;
      }
      // Backtracking (Armijo) line search from the full Newton step.
      double t = 1.0;
      const double slope = g.dot(dir);
      double f_try = 0;
      Vec w_try = w;
      bool moved = false;
      for (int ls = 0; ls < 60; ++ls, t *= 0.5) {
        w_try = w + t * dir;
        f_try = row_loss(x, yk, w_try, p, r_try);
        if (f_try <= f + 1e-4 * t * slope) {
          moved = true;
          break;
        }
      }
      if (!moved || f_try >= f) {
        // Near W* the decrease (~ g^2 / H) drops below the rounding of l itself: take the full
        // Newton step when it shrinks the gradient (the certificate), else stop.
        w_try = w + dir;
        f_try = row_loss(x, yk, w_try, p, r_try);
        for (Index i = 0; i < m; ++i) weights(i) = int_pow(r_try(i), p - 2);
        const double g_try = (x * (r_try.cwiseProduct(weights) * (p * inv_m))).norm();
        if (!(g_try < 0.5 * gnorm) || !(f_try <= f * (1 + 1e-14))) break;
      }
      w.swap(w_try);
      r.swap(r_try);
      f = f_try;
    }
    if (!converged) all_converged = false;
    out.w.row(k) = w.transpose();
    for (Index i = 0; i < m; ++i) weights(i) = int_pow(r(i), p - 2);
    g.noalias() = x * (r.cwiseProduct(weights) * (p * inv_m));
    grad_sq += g.squaredNorm();
  }
  // l* as the training loss computes it (same summation order), so l - l* is exact at W*.
  out.loss = LpRegressionLoss(x, y, p).value(out.w);
  out.grad_norm = std::sqrt(grad_sq);
  out.converged = all_converged;
  return out;
}

}  // namespace dln::acceleration
