// Minimum nuclear norm (notes Section 4.1, Eq. 10) by ADMM with a certified duality gap.
//
// Why ADMM: the problem min ||X||_* s.t. X in C (C = the equality or box constraint set) splits
// into two pieces whose proximal maps are exact and cheap: the prox of ||.||_* is singular value
// thresholding (one SVD, dgesdd), and the projection onto C is entrywise for completion and one
// pair of products with A plus a precomputed Cholesky solve for sensing. An interior-point SDP
// solver on the standard lifting [[W1, X], [X^T, W2]] >= 0 needs O((rows + cols)^2)-sized Newton
// systems (~10^8 entries at 100 x 100 with 5000 constraints); ADMM needs one 100 x 100 SVD per
// iteration and converges linearly in practice, with residual balancing (Boyd et al. 2011,
// Section 3.4.1) to adapt the penalty rho.
//
// Why the stopping rule is a certificate: ADMM residuals only say the iterates stopped moving.
// Instead, every few iterations we build a feasible point (the projection onto C) and a dual
// feasible point, and stop when their objective values agree to rel_gap. The dual of
//   min ||X||_*  s.t.  |<A_i, X> - b_i| <= tol
// is  max <b, y> - tol ||y||_1  s.t.  ||sum_i y_i A_i||_2 <= 1  (tol = 0: equality), because for
// any feasible X, ||X||_* >= <sum y_i A_i, X> = <y, A(X)> >= <b, y> - tol ||y||_1. The ADMM
// multiplier of the constraint gives y (W = sum y_i A_i is a subgradient of ||.||_* at the
// limit); dividing by ||W||_2 makes it feasible, so <b, y> - tol ||y||_1 is a certified lower
// bound.
#include "dln/baselines/nuclear_norm.hpp"

#include <fmt/format.h>
#include <lapacke.h>

#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "dln/core/blas.hpp"

namespace dln {

bool NuclearNormOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) { return (error && (*error = m, true)), false; };
  if (!std::isfinite(tol) || tol < 0) return fail("nuclear_norm.tol: must be finite and >= 0");
  if (!(rel_gap > 0 && rel_gap < 1)) return fail("nuclear_norm.rel_gap: must be in (0, 1)");
  if (max_iters < 1) return fail("nuclear_norm.max_iters: must be >= 1");
  if (!std::isfinite(rho) || rho < 0)
    return fail("nuclear_norm.rho: must be finite and >= 0 (0: automatic)");
  return true;
}

namespace {

using Clock = std::chrono::steady_clock;

constexpr long kCheckEvery = 10;  // iterations between duality-gap certificates
static double kBalanceMu = getenv("NN_MU") ? atof(getenv("NN_MU")) : 10.0;
static double kAlpha = getenv("NN_ALPHA")
                           ? atof(getenv("NN_ALPHA"))
                           : 1.0;    // residual balancing: act when one residual is 10x the other
constexpr double kBalanceTau = 2.0;  // ... and scale rho by this factor
constexpr long kBalanceEvery = 5;    // iterations between rho updates (lets the duals settle)

lapack_int lapack_size(Index n) { return static_cast<lapack_int>(n); }

// Thin SVD a = U diag(s) V^T by divide and conquer (dgesdd), falling back to QR iteration (dgesvd)
// in the rare case dgesdd does not converge. `work` is overwritten.
struct SvdWork {
  Mat work, u, vt;
  Vec s, superb;

  void thin(const Mat& a) {
    const Index m = a.rows(), n = a.cols(), k = std::min(m, n);
    work = a;
    u.resize(m, k);
    vt.resize(k, n);
    s.resize(k);
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', lapack_size(m), lapack_size(n),
                                     work.data(), lapack_size(m), s.data(), u.data(),
                                     lapack_size(m), vt.data(), lapack_size(k));
    if (info != 0) {
      work = a;
      superb.resize(k);
      info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'S', 'S', lapack_size(m), lapack_size(n), work.data(),
                            lapack_size(m), s.data(), u.data(), lapack_size(m), vt.data(),
                            lapack_size(k), superb.data());
    }
    if (info != 0) throw Error("minimum nuclear norm: SVD did not converge");
  }

  // Singular values only, in s (descending).
  void values(const Mat& a) {
    const Index m = a.rows(), n = a.cols(), k = std::min(m, n);
    work = a;
    s.resize(k);
    double dummy = 0.0;
    lapack_int info = LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', lapack_size(m), lapack_size(n),
                                     work.data(), lapack_size(m), s.data(), &dummy, 1, &dummy, 1);
    if (info != 0) {
      work = a;
      superb.resize(k);
      info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'N', 'N', lapack_size(m), lapack_size(n), work.data(),
                            lapack_size(m), s.data(), &dummy, 1, &dummy, 1, superb.data());
    }
    if (info != 0) throw Error("minimum nuclear norm: SVD did not converge");
  }

  double nuclear(const Mat& a) {
    values(a);
    return s.sum();
  }
  double spectral(const Mat& a) {
    values(a);
    return s.size() ? s[0] : 0.0;
  }

  // x = U max(S - tau, 0) V^T: singular value thresholding, the prox of tau ||.||_*.
  void threshold(const Mat& a, double tau, Mat& x) {
    thin(a);
    Index r = 0;
    while (r < s.size() && s[r] > tau) ++r;
    if (r == 0) {
      x.setZero(a.rows(), a.cols());
      return;
    }
    for (Index j = 0; j < r; ++j) u.col(j) *= s[j] - tau;
    x.noalias() = u.leftCols(r) * vt.topRows(r);
  }
};

// The ADMM bookkeeping shared by completion and sensing: residual balancing and the best
// certificate so far.
struct Progress {
  double rho = 1.0;
  double best_bound = 0.0;  // the largest certified lower bound seen
  Vec best_dual;            // its multipliers (already scaled to be dual feasible)
  Mat best_dual_matrix;

  // Returns the factor the scaled duals must be multiplied by (old rho / new rho).
  double balance(long iter, double eps_pri, double eps_dual) {
    if (iter % kBalanceEvery != 0) return 1.0;
    if (eps_pri > kBalanceMu * eps_dual) {
      rho *= kBalanceTau;
      return 1.0 / kBalanceTau;
    }
    if (eps_dual > kBalanceMu * eps_pri) {
      rho /= kBalanceTau;
      return kBalanceTau;
    }
    return 1.0;
  }

  // Offers the dual point y (multipliers), W = sum y_i A_i, ||W||_2 = norm2, with dual objective
  // value `value` = <b, y> - tol ||y||_1 before scaling. The objective is positively homogeneous,
  // so the best feasible multiple is y / ||W||_2 when value > 0 (and y = 0 otherwise).
  void offer(const Vec& y, const Mat& w, double norm2, double value) {
    if (!(value > 0 && norm2 > 0 && std::isfinite(value) && std::isfinite(norm2))) return;
    const double bound = value / norm2;
    if (bound <= best_bound) return;
    best_bound = bound;
    best_dual = y / norm2;
    best_dual_matrix = w / norm2;
  }
};

double relative_gap(double upper, double lower) {
  if (upper <= 0) return 0.0;
  return (upper - lower) / upper;
}

double auto_rho(double spectral_of_data) {
  // The threshold 1/rho starts at a fraction of the data's top singular value; residual balancing
  // corrects it within a few dozen iterations.
  return spectral_of_data > 0 ? 10.0 / spectral_of_data : 1.0;
}

NuclearNormResult zero_solution(Index rows, Index cols, Index constraints, Clock::time_point t0) {
  // Every |b_i| <= tol: X = 0 is feasible, hence optimal (dual bound 0 from y = 0).
  NuclearNormResult out;
  out.x = Mat::Zero(rows, cols);
  out.nuclear_norm = 0.0;
  out.max_violation = 0.0;
  out.iterations = 0;
  out.termination = "converged";
  out.dual_bound = 0.0;
  out.rel_gap = 0.0;
  out.dual = Vec::Zero(constraints);
  out.dual_matrix = Mat::Zero(rows, cols);
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

void finish(NuclearNormResult& out, const Progress& p, long iters, bool converged,
            Clock::time_point t0) {
  out.iterations = iters;
  out.termination = converged ? "converged" : "max_iters";
  out.dual_bound = p.best_bound;
  out.rel_gap = relative_gap(out.nuclear_norm, p.best_bound);
  out.dual = p.best_dual;
  out.dual_matrix = p.best_dual_matrix;
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

// Completion: ADMM on min ||X||_* + I_C(Z) s.t. X = Z, scaled dual U (Boyd et al. 2011, 3.1.1):
//   X <- SVT_{1/rho}(Z - U),  Z <- P_C(X + U),  U <- U + X - Z.
// P_C fixes (equality) or clips (box) the observed entries and keeps the rest, so U lives on the
// observed entries only and Z is feasible at every iteration: Z is the returned solution.
// The multipliers are y = -rho U on the observed entries.
NuclearNormResult min_nuclear_norm_completion(Index rows, Index cols, const std::vector<Index>& r,
                                              const std::vector<Index>& c,
                                              const std::vector<double>& b,
                                              const NuclearNormOptions& options) {
  const auto t0 = Clock::now();
  std::string err;
  if (!options.IsValid(&err)) throw Error(err);
  if (rows < 1 || cols < 1)
    throw Error(
        fmt::format("min_nuclear_norm_completion: shape must be positive, got {}x{}", rows, cols));
  if (r.size() != b.size() || c.size() != b.size())
    throw Error(fmt::format(
        "min_nuclear_norm_completion: r, c and b must have the same length, got {}, {} and {}",
        r.size(), c.size(), b.size()));
  const Index m = static_cast<Index>(b.size());
  const double tol = options.tol;

  std::vector<Index> lin(b.size());
  std::vector<char> seen(static_cast<std::size_t>(rows * cols), 0);
  bool zero_feasible = true;
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (r[i] < 0 || r[i] >= rows || c[i] < 0 || c[i] >= cols)
      throw Error(fmt::format("min_nuclear_norm_completion: entry ({}, {}) out of range for {}x{}",
                              r[i], c[i], rows, cols));
    if (!std::isfinite(b[i]))
      throw Error(
          fmt::format("min_nuclear_norm_completion: value at ({}, {}) is not finite", r[i], c[i]));
    lin[i] = r[i] + c[i] * rows;
    if (seen[lin[i]]) {
      throw Error(fmt::format("min_nuclear_norm_completion: duplicate entry ({}, {})", r[i], c[i]));
    }
    seen[lin[i]] = 1;
    zero_feasible = zero_feasible && std::abs(b[i]) <= tol;
  }
  if (zero_feasible) return zero_solution(rows, cols, m, t0);

  SvdWork svd;
  Progress p;
  // Z starts at P_C(0).
  Mat z = Mat::Zero(rows, cols), z_prev, x(rows, cols), a(rows, cols), w(rows, cols);
  for (Index i = 0; i < m; ++i) z(lin[i]) = std::clamp(0.0, b[i] - tol, b[i] + tol);
  p.rho = options.rho > 0 ? options.rho : auto_rho(svd.spectral(z));
  Vec u = Vec::Zero(m), y(m);

  NuclearNormResult out;
  long iter = 0;
  bool converged = false;
  while (iter < options.max_iters && !converged) {
    ++iter;
    a = z;
    for (Index i = 0; i < m; ++i) a(lin[i]) -= u[i];
    svd.threshold(a, 1.0 / p.rho, x);

    z_prev.swap(z);
    z = kAlpha * x + (1 - kAlpha) * z_prev;
    double r2 = 0.0;
    for (Index i = 0; i < m; ++i) {
      const double v = kAlpha * x(lin[i]) + (1 - kAlpha) * z_prev(lin[i]) + u[i];
      const double zi = std::clamp(v, b[i] - tol, b[i] + tol);
      z(lin[i]) = zi;
      u[i] = v - zi;  // U + X - Z
      r2 += (x(lin[i]) - zi) * (x(lin[i]) - zi);
    }
    const double eps_pri = (x - z).norm() / std::max({x.norm(), z.norm(), 1e-300});
    const double eps_dual = (z - z_prev).norm() / std::max(u.norm(), 1e-300);  // rho cancels
    u *= p.balance(iter, eps_pri, eps_dual);

    if (iter % kCheckEvery == 0 || iter == options.max_iters) {
      w.setZero();
      double value = 0.0;
      for (Index i = 0; i < m; ++i) {
        y[i] = -p.rho * u[i];
        w(lin[i]) = y[i];
        value += b[i] * y[i] - tol * std::abs(y[i]);
      }
      p.offer(y, w, svd.spectral(w), value);
      out.nuclear_norm = svd.nuclear(z);
      converged = relative_gap(out.nuclear_norm, p.best_bound) <= options.rel_gap;
      if (getenv("NN_DEBUG"))
        fprintf(stderr, "%ld rho %.3g pri %.2e dual %.2e gap %.2e\n", iter, p.rho, eps_pri,
                eps_dual, relative_gap(out.nuclear_norm, p.best_bound));
    }
  }
  out.x = std::move(z);
  out.max_violation = 0.0;
  for (Index i = 0; i < m; ++i)
    out.max_violation = std::max(out.max_violation, std::abs(out.x(lin[i]) - b[i]) - tol);
  finish(out, p, iter, converged, t0);
  return out;
}

// Sensing: the projection onto {X : |A x - b| <= tol} has no closed form when tol > 0, so the
// measurements get their own variable s (x = vec X):
//   min ||X||_* + I_B(s)  s.t.  X = Z,  s = A z     (B = [b - tol, b + tol], a point if tol = 0),
// a two-block ADMM with blocks (X, s) and Z. The Z-update solves (I + A^T A) z = v by Woodbury
// with a Cholesky factor of I + A A^T computed once. Rows of A are scaled to unit norm first
// (b and tol per row with them), which leaves the problem unchanged and balances the two
// constraints. The feasible point for the certificate is x - A^T (A A^T)^{-1} (A x - t) with
// t = clip(A x, B): it meets A x = t exactly, so needs A A^T invertible (independent A_i).
// The multipliers are y = rho u2 (u2 the scaled dual of s = A z), and W = A^T y.
NuclearNormResult min_nuclear_norm_sensing(Index rows, Index cols, const Mat& a, const Vec& b,
                                           const NuclearNormOptions& options) {
  const auto t0 = Clock::now();
  std::string err;
  if (!options.IsValid(&err)) throw Error(err);
  if (rows < 1 || cols < 1)
    throw Error(
        fmt::format("min_nuclear_norm_sensing: shape must be positive, got {}x{}", rows, cols));
  const Index n = rows * cols, m = a.rows();
  if (a.cols() != n)
    throw Error(fmt::format("min_nuclear_norm_sensing: A must have rows*cols = {} columns, got {}",
                            n, a.cols()));
  if (b.size() != m)
    throw Error(fmt::format("min_nuclear_norm_sensing: b must have {} entries (rows of A), got {}",
                            m, b.size()));
  if (!a.allFinite() || !b.allFinite())
    throw Error("min_nuclear_norm_sensing: A and b must be finite");
  if (m > n)
    throw Error(fmt::format(
        "min_nuclear_norm_sensing: {} measurements of a {}x{} matrix cannot be independent", m,
        rows, cols));
  const double tol = options.tol;
  if (((b.array().abs() <= tol).all())) return zero_solution(rows, cols, m, t0);

  const Vec row_norm = a.rowwise().norm();
  if ((row_norm.array() == 0).any())
    throw Error("min_nuclear_norm_sensing: a measurement matrix A_i is zero");
  const Vec dinv = row_norm.cwiseInverse();
  const Vec bh = b.cwiseProduct(dinv);
  const Vec lo = bh - tol * dinv, hi = bh + tol * dinv;

  // G = D^-1 A A^T D^-1 (unit diagonal); factors of I + G (Z-update) and G (feasible point).
  Mat g(m, m);
  blas::gemm(a, false, a, true, g);
  g = dinv.asDiagonal() * g * dinv.asDiagonal();
  const Eigen::LLT<Mat> chol_g(g);
  if (chol_g.info() != Eigen::Success || chol_g.rcond() < 1e-12)
    throw Error(
        "min_nuclear_norm_sensing: the measurement matrices are linearly dependent (A A^T is "
        "singular)");
  g.diagonal().array() += 1.0;
  const Eigen::LLT<Mat> chol_reg(g);
  g.diagonal().array() -= 1.0;

  auto apply_a = [&](const Mat& x_mat) -> Vec {  // D^-1 A vec(X)
    return (a * Eigen::Map<const Vec>(x_mat.data(), n)).cwiseProduct(dinv);
  };
  auto apply_at = [&](const Vec& y, Mat& out_mat) {  // mat(A^T D^-1 y)
    out_mat.resize(rows, cols);
    Eigen::Map<Vec>(out_mat.data(), n).noalias() = a.transpose() * y.cwiseProduct(dinv);
  };

  SvdWork svd;
  Progress p;
  Mat x(rows, cols), z = Mat::Zero(rows, cols), z_prev, u1 = Mat::Zero(rows, cols),
                     v_mat(rows, cols), w(rows, cols), xf(rows, cols), corr(rows, cols);
  Vec s(m), az = Vec::Zero(m), az_prev, u2 = Vec::Zero(m), q(m), t(m), y(m);
  apply_at(bh, w);
  p.rho = options.rho > 0 ? options.rho : auto_rho(svd.spectral(w));

  NuclearNormResult out;
  long iter = 0;
  bool converged = false;
  while (iter < options.max_iters && !converged) {
    ++iter;
    svd.threshold(z - u1, 1.0 / p.rho, x);
    s = (az - u2).cwiseMax(lo).cwiseMin(hi);
    // Z-update: v = x + u1 + A^T (s + u2); A z = (I + G)^-1 A v; z = v - A^T A z.
    v_mat = x + u1;
    t = s + u2;
    q = chol_reg.solve(apply_a(v_mat) + g * t);
    z_prev.swap(z);
    az_prev.swap(az);
    apply_at(t - q, z);
    z += v_mat;
    az = q;
    u1 += x - z;
    u2 += s - az;

    const double r_norm = std::sqrt((x - z).squaredNorm() + (s - az).squaredNorm());
    const double scale = std::max({std::sqrt(x.squaredNorm() + s.squaredNorm()),
                                   std::sqrt(z.squaredNorm() + az.squaredNorm()), 1e-300});
    const double s_norm = std::sqrt((z - z_prev).squaredNorm() + (az - az_prev).squaredNorm());
    const double u_norm = std::sqrt(u1.squaredNorm() + u2.squaredNorm());
    const double f = p.balance(iter, r_norm / scale, s_norm / std::max(u_norm, 1e-300));
    u1 *= f;
    u2 *= f;

    if (iter % kCheckEvery == 0 || iter == options.max_iters) {
      y = p.rho * u2;
      apply_at(y, w);
      const double value = bh.dot(y) - tol * dinv.dot(y.cwiseAbs());
      p.offer(y.cwiseProduct(dinv), w, svd.spectral(w), value);  // y in the original units
      const Vec ax = apply_a(x);
      t = ax.cwiseMax(lo).cwiseMin(hi);
      apply_at(chol_g.solve(ax - t), corr);
      xf = x - corr;
      out.nuclear_norm = svd.nuclear(xf);
      converged = relative_gap(out.nuclear_norm, p.best_bound) <= options.rel_gap;
    }
  }
  const Vec res = a * Eigen::Map<const Vec>(xf.data(), n) - b;
  out.max_violation = std::max(0.0, (res.array().abs() - tol).maxCoeff());
  out.x = std::move(xf);
  finish(out, p, iter, converged, t0);
  return out;
}

}  // namespace dln
