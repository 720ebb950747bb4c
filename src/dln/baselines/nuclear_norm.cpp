// Minimum nuclear norm (notes Section 4.1, Eq. 10) by ADMM with a certified duality gap.
//
// Why ADMM: min ||X||_* s.t. X in C (C = the equality or box constraint set) splits into two
// pieces whose proximal maps are exact and cheap: the prox of ||.||_* is singular value
// thresholding (SVT, one symmetric eigenproblem of a Gram matrix, see SvdWork::threshold), and
// the projection onto C is entrywise for completion, and two products with A plus a precomputed
// Cholesky solve for sensing. An interior-point solver on the standard SDP lifting
// [[W1, X], [X^T, W2]] >= 0 needs an m x m Schur complement per Newton step (m = 5000 at the
// published 100 x 100 setup); ADMM needs one 100 x 100 SVT per iteration. Over-relaxation
// (alpha = 1.8) and an adaptive penalty rho (below) speed it up.
//
// Why the stopping rule is a certificate: ADMM residuals only say the iterates stopped moving.
// Every few iterations we build feasible points and dual feasible points, and stop when the best
// of each agree to rel_gap. The dual of
//   min ||X||_*  s.t.  |<A_i, X> - b_i| <= tol
// is  max <b, y> - tol ||y||_1  s.t.  ||sum_i y_i A_i||_2 <= 1  (tol = 0: equality), because for
// any feasible X, ||X||_* >= <sum y_i A_i, X> = <y, A(X)> >= <b, y> - tol ||y||_1. Any y gives a
// bound once divided by ||sum y_i A_i||_2 (the objective is positively homogeneous), so the
// candidates need not be exact: the bound is always computed from scratch.
//
// Completion also polishes both sides on the tangent space T = {U A + B V^T} of the rank-k SVT
// iterate X = U S V^T (Candes & Recht 2009, Section 4: at an optimum, Y = sum y_i A_i with
// P_T(Y) = U V^T and ||P_T^perp(Y)||_2 <= 1 certifies X):
// - dual: the ADMM multipliers y (y = -rho u) converge slowly, entry by entry; the nearest
//   y' = y + P_Omega(H), H in T, with P_T(Y') = U V^T exactly (conjugate gradients on T: the
//   least-squares certificate) is far better. On the 5000-observation box problem after 1000
//   iterations, its bound is 1e-6 below the optimum where the multipliers' bound is 2e-5 below.
// - primal: X violates the box slightly, and P_C(X) pays for the violations in full; a
//   Gauss-Newton step X + H, H in T, fitting the violated entries to their bounds, leaves second
//   order violations, clipped at the end (P_C(X + H) is feasible).
// Both are candidates at every check (backed off while they do not improve the certificate); the
// certificate takes the best feasible point and the best bound seen.
//
// Measured (100 x 100 rank 5, ||W*||_F = 100, published setup, seeds 1-3; one core, OpenBLAS
// SkylakeX kernel): the 5000-observation box problem (tol 1e-3) certifies rel_gap 1e-6 in
// 550-730 iterations, 0.2-0.25 s (ADMM with the multipliers' bound and dgesdd: 3750-4740
// iterations, 3-3.7 s), and rel_gap 1e-7 in 1270-2260 iterations, 0.4-0.7 s (before: 6550-7580,
// 5-5.9 s). Its optimum has rank 6 with sigma_6 = 7e-4 against sigma_1 = 58 and ~1000 of the
// 5000 box constraints active, and a dual certificate with sigma_7 ~ 0.98: ill-conditioned for
// any first-order method. Equality problems in the recovery regime (3500+ observations, and 3000
// for seeds 1 and 3) take 50-90 iterations, < 0.05 s. At 2500-3000 observations the solution has
// 15-26 non-negligible singular values, about as many tangent directions as observations, and the
// polish helps little: 1000-1900 iterations, 0.3-1 s. Of 400 random small instances (2-25 x 2-25,
// rank up to half the short side, completion and sensing, equality and box tol 1e-3 to 5e-2,
// rel_gap 1e-7, 20000 iterations), one sensing instance does not certify (gap 2.7e-6,
// "max_iters"), as without the polish; completion takes 20% fewer iterations in total, with one
// instance 3x slower (630 to 1810 iterations).
#include "dln/baselines/nuclear_norm.hpp"

#include <fmt/format.h>
#include <lapacke.h>

#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "dln/baselines/svd_work.hpp"
#include "dln/core/blas.hpp"

namespace dln {

bool NuclearNormOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) {
    if (error) *error = m;
    return false;
  };
  if (!std::isfinite(tol) || tol < 0) return fail("nuclear_norm.tol: must be finite and >= 0");
  if (!(rel_gap > 0 && rel_gap < 1)) return fail("nuclear_norm.rel_gap: must be in (0, 1)");
  if (max_iters < 1) return fail("nuclear_norm.max_iters: must be >= 1");
  if (!std::isfinite(rho) || rho < 0)
    return fail("nuclear_norm.rho: must be finite and >= 0 (0: automatic)");
  return true;
}

namespace {

using Clock = std::chrono::steady_clock;
using nuclear_detail::lapack_size;
using nuclear_detail::SvdWork;

constexpr long kCheckEvery = 10;        // iterations between certificates (and rho updates)
constexpr double kAlpha = 1.8;          // over-relaxation (Boyd et al. 2011, Section 3.4.3)
constexpr double kBalanceMu = 10.0;     // rho changes when one part of the gap is 10x the other
constexpr double kBalanceTau = 2.0;     // ... by this factor
constexpr double kRhoRange = 1e3;       // rho stays within [rho0 / 1e3, rho0 * 1e3]
constexpr int kPolishCg = 20;           // conjugate gradient steps per tangent-space polish
constexpr double kPolishCgTol = 1e-10;  // ... or until the residual drops by this factor
constexpr long kPolishMaxSkip = 16;     // a polish that stops paying waits up to 16 checks
// The tangent space T = {U A + B V^T} of the rank-k matrix U S V^T (U, V orthonormal: the SVT
// factors), with conjugate gradients for P_T(M o H) = R over H in T, M a 0/1 mask and R in T
// (P_T M P_T is symmetric positive semidefinite on T).
class Tangent {
 public:
  Mat h;  // the solution of the last solve()

  // out = P_T(w) = U U^T w + (I - U U^T) w V V^T.
  void project(const SvdWork& f, const Mat& w, Mat& out) {
    const Index k = f.rank;
    const auto uk = f.uk.leftCols(k);
    const auto vk = f.vk.leftCols(k);
    ut_w.resize(f.uk.cols(), w.cols());
    w_v.resize(w.rows(), f.vk.cols());
    small.resize(f.uk.cols(), f.vk.cols());
    ut_w.topRows(k).noalias() = uk.transpose() * w;
    w_v.leftCols(k).noalias() = w * vk;
    small.topLeftCorner(k, k).noalias() = ut_w.topRows(k) * vk;
    w_v.leftCols(k).noalias() -= uk * small.topLeftCorner(k, k);
    out.resize(w.rows(), w.cols());
    out.noalias() = uk * ut_w.topRows(k);
    out.noalias() += w_v.leftCols(k) * vk.transpose();
  }

  // h ~ the minimum-norm solution of P_T(mask o h) = rhs (CG from h = 0).
  void solve(const SvdWork& f, const Mat& mask, const Mat& rhs) {
    h.setZero(rhs.rows(), rhs.cols());
    r = rhs;
    p = rhs;
    double rr = r.squaredNorm();
    const double stop = kPolishCgTol * kPolishCgTol * rr;
    for (int it = 0; it < kPolishCg && rr > stop; ++it) {
      masked = mask.cwiseProduct(p);
      project(f, masked, ap);
      const double pap = p.cwiseProduct(ap).sum();
      if (!(pap > 0)) break;
      const double step = rr / pap;
      h += step * p;
      r -= step * ap;
      const double rr_next = r.squaredNorm();
      p = r + (rr_next / rr) * p;
      rr = rr_next;
    }
  }

 private:
  Mat r, p, ap, masked, ut_w, w_v, small;
};

// A polish that stops improving the certificate is tried less often: after a miss it waits 1,
// 2, 4, ... up to kPolishMaxSkip checks; a hit makes it run at every check again.
struct Backoff {
  long wait = 0, skip = 0;
  bool due() {
    if (wait == 0) return true;
    --wait;
    return false;
  }
  void record(bool hit) {
    skip = hit ? 0 : std::min(kPolishMaxSkip, std::max(1L, 2 * skip));
    wait = skip;
  }
};

double relative_gap(double upper, double lower) {
  return upper > 0 ? std::max(0.0, (upper - lower) / upper) : 0.0;
}

// The ADMM bookkeeping shared by completion and sensing: the penalty and the best certificate.
struct Progress {
  double rho = 1.0;
  double best_bound = 0.0;  // the largest certified lower bound seen (y = 0 certifies 0)
  Vec best_dual;            // its multipliers, already scaled to be dual feasible
  Mat best_dual_matrix;
  double best_upper = std::numeric_limits<double>::infinity();  // the best feasible point seen
  Mat best_x;

  // Offers multipliers y with W = sum y_i A_i, ||W||_2 <= norm2, and dual objective `value` =
  // <b, y> - tol ||y||_1. The objective is positively homogeneous, so the best feasible multiple
  // is y / norm2 when value > 0. True if the bound improved.
  bool offer(const Vec& y, const Mat& w, double norm2, double value) {
    if (!(value > 0 && norm2 > 0 && std::isfinite(value) && std::isfinite(norm2))) return false;
    const double bound = value / norm2;
    if (bound <= best_bound) return false;
    best_bound = bound;
    best_dual = y / norm2;
    best_dual_matrix = w / norm2;
    return true;
  }

  // Offers a feasible point x with ||x||_* = value. True if it is the best so far.
  bool offer_primal(const Mat& x, double value) {
    if (!(value < best_upper)) return false;
    best_upper = value;
    best_x = x;
    return true;
  }

  bool converged(double rel_gap) const { return relative_gap(best_upper, best_bound) <= rel_gap; }

  // Gap balancing, in the spirit of residual balancing (Boyd et al. 2011, Section 3.4.1) but on
  // the quantity we stop on: the certified gap splits into (upper - ||X||_*) + (||X||_* - bound),
  // X the thresholded iterate, upper the nuclear norm of the current ADMM feasible point. A
  // dominant first part means X is far from feasible: raise rho (tighter coupling X = Z); a
  // dominant second part means X is nearly feasible but its value is far from the bound: lower
  // rho (larger steps for the multipliers).
  // Absolute values, since an infeasible X may have ||X||_* outside [bound, upper]. rho stays
  // within a factor 1e3 of its start (unbounded drift overflows the scaled duals, ~1/rho).
  // Measured against residual balancing (primal vs dual residual) and hybrids: 3x fewer
  // iterations on the 100 x 100 box problems, and the fewest failures on 400 random small
  // completion and sensing instances. With the polished (least-squares) bound the upper part
  // dominates the box problems sooner, so rho rises sooner: 6x fewer iterations at 5000
  // observations than with the ADMM multipliers alone. (The polished primal is not used here:
  // balancing on it lowers rho and slows the box problems 2x.) The polished bound often lies
  // above ||X||_*, which only an infeasible X can reach: with below_bound_is_primal (completion)
  // the whole gap then counts as primal. Measured on 400 random small completion instances:
  // 20% fewer iterations (geometric mean), where the absolute value left rho stuck 10x too low
  // on a few; for sensing (no polish) it made 2 more instances fail, so it keeps the original.
  // Returns the factor the scaled duals must be multiplied by (old rho / new rho).
  double balance(double upper, double x_nuclear, bool below_bound_is_primal) {
    const double primal = std::abs(upper - x_nuclear);
    const double dual =
        below_bound_is_primal && x_nuclear < best_bound ? 0.0 : std::abs(x_nuclear - best_bound);
    if (primal > kBalanceMu * dual && rho * kBalanceTau <= rho_max) {
      rho *= kBalanceTau;
      return 1.0 / kBalanceTau;
    }
    if (dual > kBalanceMu * primal && rho / kBalanceTau >= rho_min) {
      rho /= kBalanceTau;
      return kBalanceTau;
    }
    return 1.0;
  }
  void start(double rho0) {
    rho = rho0;
    rho_min = rho0 / kRhoRange;
    rho_max = rho0 * kRhoRange;
  }
  double rho_min = 0.0, rho_max = 0.0;
};

// The threshold 1/rho starts at a tenth of the data's top singular value; balancing adapts it.
double auto_rho(double spectral_of_data) {
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

// Moves the best certificate into out (x, nuclear_norm, dual, bound, gap); the caller has set
// max_violation from p.best_x.
void finish(NuclearNormResult& out, Progress& p, Index constraints, Index rows, Index cols,
            long iters, bool converged, Clock::time_point t0) {
  out.iterations = iters;
  out.termination = converged ? "converged" : "max_iters";
  out.nuclear_norm = p.best_upper;
  out.x = std::move(p.best_x);
  // A bound above the primal value can only be rounding (weak duality): clamp it.
  out.dual_bound = std::min(p.best_bound, out.nuclear_norm);
  out.rel_gap = relative_gap(out.nuclear_norm, out.dual_bound);
  out.dual = p.best_dual.size() ? p.best_dual : Vec::Zero(constraints);
  out.dual_matrix = p.best_dual_matrix.size() ? p.best_dual_matrix : Mat::Zero(rows, cols);
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

// Completion: over-relaxed ADMM on min ||X||_* + I_C(Z) s.t. X = Z with scaled dual U (Boyd et
// al. 2011, Sections 3.1.1 and 3.4.3):
//   X <- SVT_{1/rho}(Z - U),  X' = alpha X + (1 - alpha) Z,  Z <- P_C(X' + U),  U <- U + X' - Z.
// P_C fixes (equality) or clips (box) the observed entries and keeps the rest, so U lives on the
// observed entries and Z is feasible at every iteration. The multipliers are y = -rho U. At each
// check Z and the polished point P_C(X + H) compete for the primal side, y and its
// least-squares correction for the dual side (see the top of the file).
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

  std::vector<Index> lin(b.size());  // column-major offsets of the observed entries
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
    if (seen[lin[i]])
      throw Error(fmt::format("min_nuclear_norm_completion: duplicate entry ({}, {})", r[i], c[i]));
    seen[lin[i]] = 1;
    zero_feasible = zero_feasible && std::abs(b[i]) <= tol;
  }
  if (zero_feasible) return zero_solution(rows, cols, m, t0);

  SvdWork svd;
  Tangent tangent;
  Progress p;
  Mat z = Mat::Zero(rows, cols), x(rows, cols), a(rows, cols), w(rows, cols);
  for (Index i = 0; i < m; ++i) z(lin[i]) = std::clamp(0.0, b[i] - tol, b[i] + tol);  // P_C(0)
  p.start(options.rho > 0 ? options.rho : auto_rho(svd.spectral(z)));
  Vec u = Vec::Zero(m), y(m), y2(m);
  // Polish workspaces: the observed-entry mask, the violated-entry mask, right-hand sides.
  Mat observed = Mat::Zero(rows, cols), violated(rows, cols), rhs(rows, cols), xf(rows, cols);
  for (Index i = 0; i < m; ++i) observed(lin[i]) = 1.0;
  Backoff dual_polish, primal_polish;

  NuclearNormResult out;
  long iter = 0;
  bool converged = false;
  while (iter < options.max_iters && !converged) {
    ++iter;
    a = z;
    for (Index i = 0; i < m; ++i) a(lin[i]) -= u[i];
    svd.threshold(a, 1.0 / p.rho, x);
    z = kAlpha * x + (1.0 - kAlpha) * z;  // X'; off the observed entries U = 0, so Z = X'
    for (Index i = 0; i < m; ++i) {
      const double v = z(lin[i]) + u[i];
      const double zi = std::clamp(v, b[i] - tol, b[i] + tol);
      z(lin[i]) = zi;
      u[i] = v - zi;
    }

    if (iter % kCheckEvery == 0 || iter == options.max_iters) {
      w.setZero();
      double value = 0.0;
      for (Index i = 0; i < m; ++i) {
        y[i] = -p.rho * u[i];
        w(lin[i]) = y[i];
        value += b[i] * y[i] - tol * std::abs(y[i]);
      }
      p.offer(y, w, svd.spectral(w), value);
      const Index k = svd.rank;
      // Least-squares certificate y + P_Omega(H), H in T, with P_T(sum y_i A_i) = U V^T. It
      // needs m >= dim T = k (rows + cols - k) to exist.
      if (k > 0 && k * (rows + cols - k) <= m && dual_polish.due()) {
        rhs.noalias() = svd.uk.leftCols(k) * svd.vk.leftCols(k).transpose();
        tangent.project(svd, w, xf);
        rhs -= xf;
        tangent.solve(svd, observed, rhs);
        w.setZero();
        value = 0.0;
        for (Index i = 0; i < m; ++i) {
          y2[i] = y[i] + tangent.h(lin[i]);
          w(lin[i]) = y2[i];
          value += b[i] * y2[i] - tol * std::abs(y2[i]);
        }
        dual_polish.record(p.offer(y2, w, svd.spectral(w), value));
      }
      const double upper = svd.nuclear(z);
      p.offer_primal(z, upper);
      // Gauss-Newton step X + H, H in T, onto the violated bounds, then P_C.
      if (k > 0 && primal_polish.due()) {
        violated.setZero();
        xf.setZero();
        for (Index i = 0; i < m; ++i) {
          const double v = x(lin[i]), t = std::clamp(v, b[i] - tol, b[i] + tol);
          if (t != v) {
            violated(lin[i]) = 1.0;
            xf(lin[i]) = t - v;
          }
        }
        tangent.project(svd, xf, rhs);
        tangent.solve(svd, violated, rhs);
        xf = x + tangent.h;
        for (Index i = 0; i < m; ++i) xf(lin[i]) = std::clamp(xf(lin[i]), b[i] - tol, b[i] + tol);
        primal_polish.record(p.offer_primal(xf, svd.nuclear(xf)));
      }
      converged = p.converged(options.rel_gap);
      if (!converged) u *= p.balance(upper, svd.x_nuclear, true);
    }
  }
  // The loop ends at a check, so p.best_x is the point whose nuclear norm was certified.
  out.max_violation = 0.0;
  for (Index i = 0; i < m; ++i)
    out.max_violation = std::max(out.max_violation, std::abs(p.best_x(lin[i]) - b[i]) - tol);
  finish(out, p, m, rows, cols, iter, converged, t0);
  return out;
}

// Sensing: the projection onto {X : |A x - b| <= tol} has no closed form when tol > 0, so the
// measurements get their own variable s (x = vec X):
//   min ||X||_* + I_B(s)  s.t.  X = Z,  s = A z     (B = [b - tol, b + tol], a point if tol = 0),
// an over-relaxed two-block ADMM with blocks (X, s) and Z. The Z-update solves
// (I + A^T A) z = v + A^T t by Woodbury with a Cholesky factor of I + A A^T computed once. Rows of
// A are scaled to unit norm first (b and tol with them), which leaves the problem unchanged and
// balances the two constraints. The feasible point for the certificate is
// x - A^T (A A^T)^{-1} (A x - t) with t = clip(A x, B): it meets A x = t exactly, which needs
// A A^T invertible (independent A_i). The multipliers are y = rho u_s (u_s the scaled dual of
// s = A z), W = A^T y.
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
  const Vec row_norm = a.rowwise().norm();
  if ((row_norm.array() == 0).any())
    throw Error("min_nuclear_norm_sensing: a measurement matrix A_i is zero");
  const double tol = options.tol;
  if ((b.array().abs() <= tol).all()) return zero_solution(rows, cols, m, t0);  // also m = 0

  const Vec dinv = row_norm.cwiseInverse();
  const Vec bh = b.cwiseProduct(dinv);
  const Vec lo = bh - tol * dinv, hi = bh + tol * dinv;

  // G = D^-1 A A^T D^-1 (unit diagonal); factors of G (feasible point) and I + G (Z-update).
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
  auto apply_at = [&](const Vec& v, Mat& out_mat) {  // mat(A^T D^-1 v)
    out_mat.resize(rows, cols);
    Eigen::Map<Vec>(out_mat.data(), n).noalias() = a.transpose() * v.cwiseProduct(dinv);
  };

  SvdWork svd;
  Progress p;
  Mat x(rows, cols), z = Mat::Zero(rows, cols), uz = Mat::Zero(rows, cols), v(rows, cols),
                     w(rows, cols), xf(rows, cols), corr(rows, cols);
  Vec s(m), az = Vec::Zero(m), us = Vec::Zero(m), t(m), y(m);
  apply_at(bh, w);
  p.start(options.rho > 0 ? options.rho : auto_rho(svd.spectral(w)));

  NuclearNormResult out;
  long iter = 0;
  bool converged = false;
  while (iter < options.max_iters && !converged) {
    ++iter;
    v = z - uz;
    svd.threshold(v, 1.0 / p.rho, x);
    s = (az - us).cwiseMax(lo).cwiseMin(hi);
    // Over-relaxed Z-update: v = X' + U_z, t = s' + u_s, A z = (I + G)^-1 (A v + G t),
    // z = v + A^T (t - A z); then U_z = v - Z, u_s = t - A z.
    v = kAlpha * x + (1.0 - kAlpha) * z + uz;
    t = kAlpha * s + (1.0 - kAlpha) * az + us;
    az = chol_reg.solve(apply_a(v) + g * t);
    apply_at(t - az, z);
    z += v;
    uz = v - z;
    us = t - az;

    if (iter % kCheckEvery == 0 || iter == options.max_iters) {
      y = p.rho * us;
      apply_at(y, w);
      const double value = bh.dot(y) - tol * dinv.dot(y.cwiseAbs());
      p.offer(y.cwiseProduct(dinv), w, svd.spectral(w), value);  // y in the units of A, b
      const Vec ax = apply_a(x);
      apply_at(chol_g.solve(ax - ax.cwiseMax(lo).cwiseMin(hi)), corr);
      xf = x - corr;
      const double upper = svd.nuclear(xf);
      p.offer_primal(xf, upper);
      converged = p.converged(options.rel_gap);
      if (!converged) {
        const double f = p.balance(upper, svd.x_nuclear, false);
        uz *= f;
        us *= f;
      }
    }
  }
  const Vec res = a * Eigen::Map<const Vec>(p.best_x.data(), n) - b;
  out.max_violation = std::max(0.0, (res.array().abs() - tol).maxCoeff());
  finish(out, p, m, rows, cols, iter, converged, t0);
  return out;
}

}  // namespace dln
