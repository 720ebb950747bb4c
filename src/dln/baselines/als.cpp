// ALS for explicit-rank completion (see als.hpp). Factors are stored transposed (k x rows and
// k x cols) so the vectors of one row / column are contiguous; per row, the observed partners are
// gathered into a k x n_i block G and the k x k normal equations G G^T + lambda w I are solved by
// Cholesky, all in buffers allocated once.
#include "dln/baselines/als.hpp"

#include <fmt/format.h>

#include <Eigen/Cholesky>
#include <algorithm>
#include <chrono>
#include <cmath>

#include "dln/core/rng.hpp"

namespace dln {

bool AlsOptions::IsValid(std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (rank < 1) return fail(fmt::format("als.rank: must be >= 1, got {}", rank));
  if (!std::isfinite(lambda) || lambda <= 0)
    return fail(fmt::format("als.lambda: must be finite and > 0, got {}", lambda));
  if (max_iters < 1) return fail(fmt::format("als.max_iters: must be >= 1, got {}", max_iters));
  if (!std::isfinite(tol) || tol < 0)
    return fail(fmt::format("als.tol: must be finite and >= 0, got {}", tol));
  if (!std::isfinite(init_scale) || init_scale < 0)
    return fail(
        fmt::format("als.init_scale: must be finite and >= 0 (0: automatic), got {}", init_scale));
  return true;
}

namespace {

using Clock = std::chrono::steady_clock;
using detail::Observed;

// One half-sweep: for every target vector t (columns of target, k x count) with observed entries
// ids [start[t], start[t+1]) (through `ids` when given), solve
// (G G^T + lambda w_t I) x_t = G b_t, G the partner vectors (columns of partner).
struct HalfSweep {
  Mat g, a;
  Vec rhs, vals;
  Eigen::LLT<Mat> llt;
  HalfSweep(Index k, Index max_degree)
      : g(k, max_degree), a(k, k), rhs(k), vals(max_degree), llt(k) {}

  void run(Mat& target, const Mat& partner, const std::vector<Index>& start,
           const std::vector<Index>* ids, const std::vector<Index>& partner_index,
           const std::vector<double>& value, double lambda, bool weighted) {
    for (Index t = 0; t < target.cols(); ++t) {
      const Index n_t = start[t + 1] - start[t];
      if (n_t == 0) {
        target.col(t).setZero();
        continue;
      }
      for (Index q = 0; q < n_t; ++q) {
        const Index e = ids ? (*ids)[start[t] + q] : start[t] + q;
        g.col(q) = partner.col(partner_index[e]);
        vals[q] = value[e];
      }
      const auto gb = g.leftCols(n_t);
      a.setZero();
      a.selfadjointView<Eigen::Lower>().rankUpdate(gb);
      a.diagonal().array() += lambda * (weighted ? double(n_t) : 1.0);
      rhs.noalias() = gb * vals.head(n_t);
      llt.compute(a);
      if (llt.info() != Eigen::Success)
        throw Error("als: normal equations are not positive definite (non-finite data?)");
      target.col(t) = llt.solve(rhs);
    }
  }
};

}  // namespace

AlsResult als(Index rows, Index cols, const std::vector<Index>& r, const std::vector<Index>& c,
              const std::vector<double>& b, const AlsOptions& options) {
  const auto t0 = Clock::now();
  std::string err;
  if (!options.IsValid(&err)) throw Error(err);
  const Observed o = detail::make_observed("als", rows, cols, r, c, b);
  const Index k = options.rank;
  if (k > std::min(rows, cols))
    throw Error(
        fmt::format("als.rank: must be <= min(rows, cols) = {}, got {}", std::min(rows, cols), k));

  double mean_sq = 0.0;
  for (double v : o.value) mean_sq += v * v;
  mean_sq /= double(o.size());
  const double scale = options.init_scale > 0
                           ? options.init_scale
                           : std::sqrt(std::sqrt(mean_sq) / std::sqrt(double(k)));
  Rng rng(options.seed);
  Mat ut = Mat::Zero(k, rows);
  Mat vt = rng.gaussian(k, cols, scale > 0 ? scale : 1.0);

  Index max_degree = 1;
  for (Index i = 0; i < rows; ++i)
    max_degree = std::max(max_degree, o.row_start[i + 1] - o.row_start[i]);
  for (Index j = 0; j < cols; ++j)
    max_degree = std::max(max_degree, o.col_start[j + 1] - o.col_start[j]);
  HalfSweep sweep(k, max_degree);

  auto objective = [&]() {
    double f = 0.0;
    for (Index e = 0; e < o.size(); ++e) {
      const double d = ut.col(o.row[e]).dot(vt.col(o.col[e])) - o.value[e];
      f += d * d;
    }
    double reg = 0.0;
    for (Index i = 0; i < rows; ++i)
      reg += ut.col(i).squaredNorm() *
             (options.weighted_lambda ? double(o.row_start[i + 1] - o.row_start[i]) : 1.0);
    for (Index j = 0; j < cols; ++j)
      reg += vt.col(j).squaredNorm() *
             (options.weighted_lambda ? double(o.col_start[j + 1] - o.col_start[j]) : 1.0);
    return f + options.lambda * reg;
  };

  AlsResult out;
  out.termination = "max_iters";
  double prev = INFINITY;
  for (long it = 1; it <= options.max_iters; ++it) {
    sweep.run(ut, vt, o.row_start, nullptr, o.col, o.value, options.lambda,
              options.weighted_lambda);
    sweep.run(vt, ut, o.col_start, &o.by_col, o.row, o.value, options.lambda,
              options.weighted_lambda);
    const double f = objective();
    out.iterations = it;
    out.objective = f;
    out.rel_change = std::isfinite(prev) ? std::abs(prev - f) / std::max(prev, 1e-300) : INFINITY;
    if (!std::isfinite(f)) throw Error("als: the objective is not finite (overflow)");
    if (out.rel_change <= options.tol) {
      out.termination = "converged";
      break;
    }
    prev = f;
  }
  out.x = LowRank::from_factors(ut.transpose(), vt.transpose());
  out.train_rmse = detail::observed_rmse(o, out.x);
  out.nuclear_norm = out.x.nuclear_norm();
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

}  // namespace dln
