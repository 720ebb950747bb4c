// SoftImpute (see soft_impute.hpp for the algorithm and why).
#include "dln/baselines/soft_impute.hpp"

#include <fmt/format.h>
#include <lapacke.h>

#include <Eigen/QR>
#include <Eigen/SVD>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <numeric>

#include "dln/core/blas.hpp"
#include "dln/core/rng.hpp"

namespace dln {

// ---------------------------------------------------------------------------------------------
// SoftImpute

bool SoftImputeOptions::IsValid(std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (!std::isfinite(lambda) || lambda < 0)
    return fail(fmt::format("soft_impute.lambda: must be finite and >= 0, got {}", lambda));
  if (!std::isfinite(tol) || tol < 0)
    return fail(fmt::format("soft_impute.tol: must be finite and >= 0, got {}", tol));
  if (max_iters < 1)
    return fail(fmt::format("soft_impute.max_iters: must be >= 1, got {}", max_iters));
  if (max_rank < 0)
    return fail(fmt::format("soft_impute.max_rank: must be >= 0 (0: no cap), got {}", max_rank));
  if (method != "auto" && method != "dense" && method != "low_rank")
    return fail(fmt::format(
        "soft_impute.method: must be \"auto\", \"dense\" or \"low_rank\", got \"{}\"", method));
  if (dense_max_entries < 0)
    return fail(
        fmt::format("soft_impute.dense_max_entries: must be >= 0, got {}", dense_max_entries));
  if (oversample < 1)
    return fail(fmt::format("soft_impute.oversample: must be >= 1, got {}", oversample));
  return true;
}

bool SoftImputePathOptions::IsValid(std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (lambdas.empty()) {
    if (points < 1)
      return fail(fmt::format("soft_impute.path.points: must be >= 1, got {}", points));
    if (!(min_ratio > 0 && min_ratio <= 1))
      return fail(fmt::format("soft_impute.path.min_ratio: must be in (0, 1], got {}", min_ratio));
  }
  for (std::size_t i = 0; i < lambdas.size(); ++i) {
    if (!std::isfinite(lambdas[i]) || lambdas[i] < 0)
      return fail(fmt::format("soft_impute.path.lambdas[{}]: must be finite and >= 0, got {}", i,
                              lambdas[i]));
    if (i > 0 && !(lambdas[i] < lambdas[i - 1]))
      return fail(
          fmt::format("soft_impute.path.lambdas[{}]: must be strictly decreasing, got {} after {}",
                      i, lambdas[i], lambdas[i - 1]));
  }
  return true;
}

namespace {

using Clock = std::chrono::steady_clock;
using detail::Observed;

lapack_int lapack_size(Index n) { return static_cast<lapack_int>(n); }

// Thin SVD a = u diag(s) vt by dgesdd (dgesvd if it does not converge); a is overwritten.
void thin_svd(Mat& a, Mat& u, Vec& s, Mat& vt) {
  const Index m = a.rows(), n = a.cols(), k = std::min(m, n);
  u.resize(m, k);
  vt.resize(k, n);
  s.resize(k);
  const Mat copy = a;
  lapack_int info =
      LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'S', lapack_size(m), lapack_size(n), a.data(),
                     lapack_size(m), s.data(), u.data(), lapack_size(m), vt.data(), lapack_size(k));
  if (info != 0) {
    a = copy;
    Vec superb(k);
    info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'S', 'S', lapack_size(m), lapack_size(n), a.data(),
                          lapack_size(m), s.data(), u.data(), lapack_size(m), vt.data(),
                          lapack_size(k), superb.data());
  }
  if (info != 0) throw Error("soft_impute: SVD did not converge");
}

// Orthonormal basis (p x m, as rows) of the columns of y^T, y given as yt (p x m): Householder QR.
void orthonormal_rows(const Mat& yt, Mat& qt) {
  const Index p = yt.rows(), m = yt.cols();
  const Eigen::HouseholderQR<Mat> qr(yt.transpose());
  qt = (qr.householderQ() * Mat::Identity(m, p)).transpose();
}

// The observed-entry sparse matrix S (values s_e at (row_e, col_e)) times a block, with blocks
// stored transposed (one vector per row of the p x n / p x m matrices) so every access is a
// contiguous column:  yt = (S V)^T from vt = V^T,  wt = (S^T Q)^T from qt = Q^T.
void sparse_times(const Observed& o, const Vec& s, const Mat& vt, Mat& yt) {
  const Index p = vt.rows();
  yt.setZero(p, o.rows);
  for (Index i = 0; i < o.rows; ++i) {
    double* y = yt.col(i).data();
    for (Index e = o.row_start[i]; e < o.row_start[i + 1]; ++e) {
      const double se = s[e];
      const double* v = vt.col(o.col[e]).data();
      for (Index j = 0; j < p; ++j) y[j] += se * v[j];
    }
  }
}

void sparse_t_times(const Observed& o, const Vec& s, const Mat& qt, Mat& wt) {
  const Index p = qt.rows();
  wt.setZero(p, o.cols);
  for (Index c = 0; c < o.cols; ++c) {
    double* w = wt.col(c).data();
    for (Index t = o.col_start[c]; t < o.col_start[c + 1]; ++t) {
      const Index e = o.by_col[t];
      const double se = s[e];
      const double* q = qt.col(o.row[e]).data();
      for (Index j = 0; j < p; ++j) w[j] += se * q[j];
    }
  }
}

// s_e = b_e - X(row_e, col_e) for X = at^T bt (at k x m, bt k x n).
void residual(const Observed& o, const Mat& at, const Mat& bt, Vec& s) {
  s.resize(o.size());
  const Index k = at.rows();
  for (Index e = 0; e < o.size(); ++e) {
    const double* a = at.col(o.row[e]).data();
    const double* b = bt.col(o.col[e]).data();
    double x = 0.0;
    for (Index j = 0; j < k; ++j) x += a[j] * b[j];
    s[e] = o.value[e] - x;
  }
}

// The largest singular value of a linear operator (rows x cols), by block subspace iteration with
// Rayleigh-Ritz; apply(vt, yt) computes (A V)^T from V^T, apply_t(qt, wt) computes (A^T Q)^T.
// Stops when the estimate (a lower bound that increases to ||A||_2) changes by <= rel_tol.
double top_singular_value(Index rows, Index cols,
                          const std::function<void(const Mat&, Mat&)>& apply,
                          const std::function<void(const Mat&, Mat&)>& apply_t, double rel_tol,
                          long max_iters, std::uint64_t seed) {
  const Index p = std::min<Index>({rows, cols, 6});
  Rng rng(seed);
  Mat vt = rng.gaussian(p, cols, 1.0), yt, qt, wt, u, rt;
  Vec s;
  double prev = -1.0;
  for (long it = 0; it < max_iters; ++it) {
    apply(vt, yt);
    orthonormal_rows(yt, qt);
    apply_t(qt, wt);
    thin_svd(wt, u, s, rt);
    if (s[0] == 0.0) return 0.0;
    if (std::abs(s[0] - prev) <= rel_tol * s[0]) return s[0];
    prev = s[0];
    vt = rt;
  }
  return prev;
}

std::string choose_method(const Observed& o, const SoftImputeOptions& options) {
  if (options.method != "auto") return options.method;
  return o.rows * o.cols <= options.dense_max_entries ? "dense" : "low_rank";
}

Index rank_cap(const Observed& o, const SoftImputeOptions& options) {
  const Index full = std::min(o.rows, o.cols);
  return options.max_rank > 0 ? std::min(options.max_rank, full) : full;
}

void finish(const Observed& o, SoftImputeResult& out, Clock::time_point t0) {
  out.nuclear_norm = out.x.nuclear_norm();
  out.train_rmse = detail::observed_rmse(o, out.x);
  out.objective = 0.5 * out.train_rmse * out.train_rmse * static_cast<double>(o.size()) +
                  out.lambda * out.nuclear_norm;
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

// X(r_e, c_e) for X = at^T bt (at k x m, bt k x n), into xo.
void observed_values(const Observed& o, const Mat& at, const Mat& bt, Vec& xo) {
  xo.resize(o.size());
  const Index k = at.rows();
  for (Index e = 0; e < o.size(); ++e) {
    const double* a = at.col(o.row[e]).data();
    const double* b = bt.col(o.col[e]).data();
    double x = 0.0;
    for (Index j = 0; j < k; ++j) x += a[j] * b[j];
    xo[e] = x;
  }
}

// 1/2 sum (x_e - b_e)^2 for the observed values xo of X.
double half_sq_error(const Observed& o, const Vec& xo) {
  return 0.5 * (xo - Eigen::Map<const Vec>(o.value.data(), o.size())).squaredNorm();
}

// FISTA momentum with function-value restart (O'Donoghue and Candes 2015): beta for the next
// extrapolation Y = X_k + beta (X_k - X_{k-1}); the momentum restarts (beta = 0) whenever the
// objective went up.
struct Momentum {
  bool enabled;
  double t = 1.0;
  double next_beta(double f_new, double f_old) {
    if (!enabled || f_new > f_old) {
      t = 1.0;
      return 0.0;
    }
    const double t_next = 0.5 * (1.0 + std::sqrt(1.0 + 4.0 * t * t));
    const double beta = (t - 1.0) / t_next;
    t = t_next;
    return beta;
  }
};

// Exact SoftImpute: Z formed densely, full SVD per iteration.
SoftImputeResult solve_dense(const Observed& o, const SoftImputeOptions& options, double lambda,
                             const LowRank* warm) {
  const auto t0 = Clock::now();
  const Index m = o.rows, n = o.cols, cap = rank_cap(o, options);
  Mat x = warm ? warm->dense() : Mat::Zero(m, n);
  Mat x_prev = x, z(m, n), x_new(m, n), u, vt;
  Vec s;
  std::vector<Index> lin(o.size());
  for (Index e = 0; e < o.size(); ++e) lin[e] = o.row[e] + o.col[e] * m;
  auto objective = [&](const Mat& xm, double nuclear) {
    double f = 0.0;
    for (Index e = 0; e < o.size(); ++e) f += 0.5 * std::pow(xm(lin[e]) - o.value[e], 2);
    return f + lambda * nuclear;
  };
  double f = objective(x, warm ? warm->nuclear_norm() : 0.0), beta = 0.0;
  Momentum momentum{options.accelerate};

  SoftImputeResult out;
  out.lambda = lambda;
  out.method = "dense";
  out.termination = "max_iters";
  Index kept = 0, above = 0;
  for (long it = 1; it <= options.max_iters; ++it) {
    z = x + beta * (x - x_prev);  // Y; then Z = P_Omega(B) + P_Omega^perp(Y)
    for (Index e = 0; e < o.size(); ++e) z(lin[e]) = o.value[e];
    thin_svd(z, u, s, vt);
    above = 0;
    while (above < s.size() && s[above] > lambda) ++above;
    kept = std::min(above, cap);
    for (Index j = 0; j < kept; ++j) u.col(j) *= s[j] - lambda;
    if (kept > 0)
      x_new.noalias() = u.leftCols(kept) * vt.topRows(kept);
    else
      x_new.setZero();
    const double xnorm = x.norm();
    const double change = (x_new - x).norm();
    out.rel_change = xnorm > 0 ? change / xnorm : (change > 0 ? INFINITY : 0.0);
    const double f_new = objective(x_new, (s.head(kept).array() - lambda).sum());
    beta = momentum.next_beta(f_new, f);
    f = f_new;
    x_prev.swap(x);
    x.swap(x_new);
    out.iterations = it;
    if (change <= options.tol * std::max(xnorm, 1e-300)) {
      out.termination = "converged";
      break;
    }
  }
  out.x.d = (s.head(kept).array() - lambda).matrix();
  out.x.u = u.leftCols(kept);
  for (Index j = 0; j < kept; ++j) out.x.u.col(j) /= out.x.d[j];  // undo the scaling above
  out.x.v = vt.topRows(kept).transpose();
  out.rank_capped = above > cap;
  finish(o, out, t0);
  return out;
}

// Scalable SoftImpute: Z = S + Y never formed; warm-started subspace iteration (see header).
SoftImputeResult solve_low_rank(const Observed& o, const SoftImputeOptions& options, double lambda,
                                const LowRank* warm) {
  const auto t0 = Clock::now();
  const Index m = o.rows, n = o.cols, full = std::min(m, n), cap = rank_cap(o, options);
  Rng rng(options.seed);

  // X_k = at^T bt, at = D U^T (k x m), bt = V^T (k x n); X_{k-1} = at_p^T bt_p.
  // vb: the block of right vectors (p x n).
  Mat at, bt, vb;
  double xnorm = 0.0;
  if (warm && warm->rank() > 0) {
    const Index k0 = std::min(warm->rank(), cap);
    at = (warm->u.leftCols(k0) * warm->d.head(k0).asDiagonal()).transpose();
    bt = warm->v.leftCols(k0).transpose();
    xnorm = warm->d.head(k0).norm();
  } else {
    at.resize(0, m);
    bt.resize(0, n);
  }
  {
    const Index p = std::min(full, std::max<Index>(at.rows(), 1) + options.oversample);
    vb.resize(p, n);
    vb.topRows(bt.rows()) = bt;
    vb.bottomRows(p - bt.rows()) = rng.gaussian(p - bt.rows(), n, 1.0 / std::sqrt(double(n)));
  }
  Mat at_p = at, bt_p = bt;
  Vec xo, xo_p, xo_new, s, sigma;
  observed_values(o, at, bt, xo);
  xo_p = xo;
  const Eigen::Map<const Vec> b(o.value.data(), o.size());
  double f = half_sq_error(o, xo) + lambda * (warm ? warm->d.head(at.rows()).sum() : 0.0);
  double beta = 0.0;
  Momentum momentum{options.accelerate};

  Mat ay, by, yt, qt, wt, pm, rt, c, at_new, bt_new, ptqt;
  SoftImputeResult out;
  out.lambda = lambda;
  out.method = "low_rank";
  out.termination = "max_iters";
  Index above = 0;
  for (long it = 1; it <= options.max_iters; ++it) {
    const Index p = vb.rows();
    // Y = X_k + beta (X_k - X_{k-1}) = ay^T by, and S = P_Omega(B - Y).
    if (beta != 0.0) {
      ay.resize(at.rows() + at_p.rows(), m);
      ay << (1.0 + beta) * at, -beta * at_p;
      by.resize(bt.rows() + bt_p.rows(), n);
      by << bt, bt_p;
      s = b - (1.0 + beta) * xo + beta * xo_p;
    } else {
      ay = at;
      by = bt;
      s = b - xo;
    }
    const Index k = ay.rows();
    // Z V = S V + Y V: yt = (S V)^T + (by vb^T)^T ay.
    sparse_times(o, s, vb, yt);
    if (k > 0) {
      c.resize(k, p);
      blas::gemm(by, false, vb, true, c);
      blas::gemm(c, true, ay, false, yt, 1.0, 1.0);
    }
    orthonormal_rows(yt, qt);
    // W = Z^T Q = S^T Q + Y^T Q: wt = (S^T Q)^T + (ay qt^T)^T by.
    sparse_t_times(o, s, qt, wt);
    if (k > 0) {
      c.resize(k, p);
      blas::gemm(ay, false, qt, true, c);
      blas::gemm(c, true, by, false, wt, 1.0, 1.0);
    }
    // wt = P diag(sigma) R^T, so Q^T Z = W^T = P sigma R^T and Z ~ (Q P) sigma R^T.
    thin_svd(wt, pm, sigma, rt);
    above = 0;
    while (above < sigma.size() && sigma[above] > lambda) ++above;
    const Index kept = std::min(above, cap);
    ptqt.resize(p, m);
    blas::gemm(pm, true, qt, false, ptqt);  // rows: left singular vectors (Q P)^T
    at_new = ptqt.topRows(kept);
    for (Index j = 0; j < kept; ++j) at_new.row(j) *= sigma[j] - lambda;
    bt_new = rt.topRows(kept);

    const double change = detail::factored_distance(at.transpose(), bt.transpose(),
                                                    at_new.transpose(), bt_new.transpose());
    const double new_norm = (sigma.head(kept).array() - lambda).matrix().norm();
    observed_values(o, at_new, bt_new, xo_new);
    const double f_new =
        half_sq_error(o, xo_new) + lambda * (sigma.head(kept).array() - lambda).sum();
    beta = momentum.next_beta(f_new, f);
    f = f_new;
    out.rel_change = xnorm > 0 ? change / xnorm : (change > 0 ? INFINITY : 0.0);
    out.iterations = it;
    const bool converged = change <= options.tol * std::max(xnorm, 1e-300);
    at_p.swap(at);
    at.swap(at_new);
    bt_p.swap(bt);
    bt.swap(bt_new);
    xo_p.swap(xo);
    xo.swap(xo_new);
    xnorm = new_norm;
    if (converged) {
      out.termination = "converged";
      break;
    }

    // Next block: the current right vectors, resized to (kept rank) + oversample; doubled when
    // every computed singular value exceeds lambda (the block may miss some).
    Index target = std::min(above, cap) + options.oversample;
    if (above == p) target = std::max(target, std::min(2 * p, cap + options.oversample));
    target = std::min(full, target);
    if (target <= p) {
      vb = rt.topRows(target);
    } else {
      vb.resize(target, n);
      vb.topRows(p) = rt;
      vb.bottomRows(target - p) = rng.gaussian(target - p, n, 1.0 / std::sqrt(double(n)));
    }
  }
  // at = D U^T with orthonormal U: the SVD form directly.
  const Index k = at.rows();
  out.x.d.resize(k);
  out.x.u.resize(m, k);
  for (Index j = 0; j < k; ++j) {
    out.x.d[j] = at.row(j).norm();
    out.x.u.col(j) = at.row(j).transpose() / out.x.d[j];
  }
  out.x.v = bt.transpose();
  out.rank_capped = above > cap;
  finish(o, out, t0);
  return out;
}

SoftImputeResult solve(const Observed& o, const SoftImputeOptions& options, double lambda,
                       const LowRank* warm) {
  if (warm && (warm->rows() != o.rows || warm->cols() != o.cols))
    throw Error(fmt::format("soft_impute: warm start is {}x{}, expected {}x{}", warm->rows(),
                            warm->cols(), o.rows, o.cols));
  if (warm && (warm->d.size() != warm->u.cols() || warm->d.size() != warm->v.cols() ||
               !warm->u.allFinite() || !warm->d.allFinite() || !warm->v.allFinite()))
    throw Error("soft_impute: warm start has inconsistent or non-finite factors");
  return choose_method(o, options) == "dense" ? solve_dense(o, options, lambda, warm)
                                              : solve_low_rank(o, options, lambda, warm);
}

double lambda_max_of(const Observed& o) {
  Vec s = Eigen::Map<const Vec>(o.value.data(), o.size());
  auto apply = [&](const Mat& vt, Mat& yt) { sparse_times(o, s, vt, yt); };
  auto apply_t = [&](const Mat& qt, Mat& wt) { sparse_t_times(o, s, qt, wt); };
  return top_singular_value(o.rows, o.cols, apply, apply_t, 1e-12, 5000, 12345);
}

std::vector<double> path_lambdas(const Observed& o, const SoftImputePathOptions& path) {
  if (!path.lambdas.empty()) return path.lambdas;
  const double top = lambda_max_of(o);
  std::vector<double> out(path.points);
  for (Index i = 0; i < path.points; ++i)
    out[i] = path.points == 1 ? top * path.min_ratio
                              : top * std::pow(path.min_ratio, double(i) / double(path.points - 1));
  return out;
}

void validate(const SoftImputeOptions& options) {
  std::string err;
  if (!options.IsValid(&err)) throw Error(err);
}
void validate(const SoftImputePathOptions& path) {
  std::string err;
  if (!path.IsValid(&err)) throw Error(err);
}

}  // namespace

SoftImputeResult soft_impute(Index rows, Index cols, const std::vector<Index>& r,
                             const std::vector<Index>& c, const std::vector<double>& b,
                             const SoftImputeOptions& options, const LowRank* warm_start) {
  validate(options);
  const Observed o = detail::make_observed("soft_impute", rows, cols, r, c, b);
  if (warm_start || !options.continuation) return solve(o, options, options.lambda, warm_start);
  const auto t0 = Clock::now();
  const double lmax = lambda_max_of(o), floor = lmax * 1e-6;
  SoftImputeOptions mid = options;
  mid.tol = std::max(options.tol, 1e-4);
  SoftImputeResult prev;
  long iters = 0;
  bool have = false;
  for (double l = 0.5 * lmax; l > options.lambda && l > floor; l *= 0.5) {
    prev = solve(o, mid, l, have ? &prev.x : nullptr);
    iters += prev.iterations;
    have = true;
  }
  SoftImputeResult out = solve(o, options, options.lambda, have ? &prev.x : nullptr);
  out.iterations += iters;
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

std::vector<SoftImputeResult> soft_impute_path(Index rows, Index cols, const std::vector<Index>& r,
                                               const std::vector<Index>& c,
                                               const std::vector<double>& b,
                                               const SoftImputeOptions& options,
                                               const SoftImputePathOptions& path) {
  SoftImputeOptions opts = options;
  opts.lambda = 0.0;  // ignored on a path
  validate(opts);
  validate(path);
  const Observed o = detail::make_observed("soft_impute", rows, cols, r, c, b);
  std::vector<SoftImputeResult> out;
  for (double lambda : path_lambdas(o, path))
    out.push_back(solve(o, opts, lambda, out.empty() ? nullptr : &out.back().x));
  return out;
}

std::vector<double> soft_impute_lambdas(Index rows, Index cols, const std::vector<Index>& r,
                                        const std::vector<Index>& c, const std::vector<double>& b,
                                        const SoftImputePathOptions& path) {
  validate(path);
  return path_lambdas(detail::make_observed("soft_impute", rows, cols, r, c, b), path);
}

double soft_impute_lambda_max(Index rows, Index cols, const std::vector<Index>& r,
                              const std::vector<Index>& c, const std::vector<double>& b) {
  return lambda_max_of(detail::make_observed("soft_impute", rows, cols, r, c, b));
}

SoftImputeOptimality soft_impute_optimality(Index rows, Index cols, const std::vector<Index>& r,
                                            const std::vector<Index>& c,
                                            const std::vector<double>& b, double lambda,
                                            const LowRank& x) {
  if (!std::isfinite(lambda) || lambda <= 0)
    throw Error(
        fmt::format("soft_impute_optimality: lambda must be finite and > 0, got {}", lambda));
  const Observed o = detail::make_observed("soft_impute", rows, cols, r, c, b);
  if (x.rows() != rows || x.cols() != cols)
    throw Error(fmt::format("soft_impute_optimality: X is {}x{}, expected {}x{}", x.rows(),
                            x.cols(), rows, cols));
  const Mat at = (x.u * x.d.asDiagonal()).transpose(), bt = x.v.transpose();
  Vec s;
  residual(o, at, bt, s);  // G = P_Omega(B - X)
  SoftImputeOptimality out;
  Mat gv, gtu;
  const Mat ut = x.u.transpose();
  sparse_times(o, s, bt, gv);     // (G V)^T
  sparse_t_times(o, s, ut, gtu);  // (G^T U)^T
  out.stationarity = std::max((gv - lambda * ut).norm(), (gtu - lambda * bt).norm()) / lambda;
  // G_perp = (I - U U^T) G (I - V V^T), applied blockwise.
  auto project = [](const Mat& basis_t, Mat& blk) {  // blk (p x n): rows minus their projection
    if (basis_t.rows() == 0) return;
    const Mat coef = blk * basis_t.transpose();
    blk.noalias() -= coef * basis_t;
  };
  auto apply = [&](const Mat& vt, Mat& yt) {
    Mat v = vt;
    project(bt, v);
    sparse_times(o, s, v, yt);
    project(ut, yt);
  };
  auto apply_t = [&](const Mat& qt, Mat& wt) {
    Mat q = qt;
    project(ut, q);
    sparse_t_times(o, s, q, wt);
    project(bt, wt);
  };
  out.spectral_ratio = top_singular_value(rows, cols, apply, apply_t, 1e-9, 3000, 777) / lambda;
  return out;
}

}  // namespace dln
