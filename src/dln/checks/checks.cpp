#include "dln/checks/checks.hpp"

#include <fmt/format.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "dln/core/rng.hpp"
#include "dln/diagnostics/metrics.hpp"
#include "dln/diagnostics/theory.hpp"
#include "dln/dynamics/end_to_end.hpp"
#include "dln/init/initializers.hpp"
#include "dln/optimizers/train.hpp"

namespace dln {

namespace {

// l(W) = -<C, W>: a constant gradient -C (used by Exercise 5).
class LinearLoss final : public Loss {
 public:
  explicit LinearLoss(Mat c) : c_(std::move(c)) {}
  std::string name() const override { return "linear"; }
  Index rows() const override { return c_.rows(); }
  Index cols() const override { return c_.cols(); }
  double value(const Mat& w) const override { return -(c_.cwiseProduct(w)).sum(); }
  double value_and_gradient(const Mat& w, Mat& g) const override {
    g = -c_;
    return value(w);
  }

 private:
  Mat c_;
};

// Captures the end-to-end matrix (and factors) at every record of a run.
struct Capture final : Callback {
  std::vector<double> t, loss;
  std::vector<Mat> e2e;
  bool on_record(const HistoryRow& row, const Factors& w) override {
    t.push_back(row.time);
    loss.push_back(row.loss);
    e2e.push_back(end_to_end(w));
    return true;
  }
};

CheckResult make(std::string result, std::string compared, double error, double tol,
                 std::string detail = "", bool at_least = false) {
  CheckResult r;
  r.result = std::move(result);
  r.compared = std::move(compared);
  r.error = error;
  r.tolerance = tol;
  r.at_least = at_least;
  r.pass = std::isfinite(error) && (at_least ? error >= tol : error <= tol);
  r.detail = std::move(detail);
  return r;
}

SquareRegressionLoss regression(Rng& rng, Index d_out, Index d_in, Index m) {
  const Mat x = rng.gaussian(d_in, m, 1.0);
  const Mat y = rng.gaussian(d_out, d_in, 1.0) * x + rng.gaussian(d_out, m, 0.3);
  return SquareRegressionLoss(x, y);
}

// Example 1 with whitened instances: X X^T / m = I, Y = Lambda X, so l(W) = 1/2 ||W - Lambda||^2.
SquareRegressionLoss whitened_regression(Rng& rng, const Mat& lambda, Index m) {
  const Mat g = rng.gaussian(m, lambda.cols(), 1.0);
  Eigen::HouseholderQR<Mat> qr(g);
  const Mat q = qr.householderQ() * Mat::Identity(m, lambda.cols());
  const Mat x = std::sqrt(static_cast<double>(m)) * q.transpose();
  return SquareRegressionLoss(x, lambda * x);
}

// Example 1 with an init of known deficiency margin: W(0) = Lambda + a perturbation of norm
// sigma_min(Lambda) / 2, so delta = sigma_min(Lambda) / 2 (Def. 3).
struct MarginInstance {
  Mat lambda;
  SquareRegressionLoss loss;
  Mat w0;
  double delta;
};
MarginInstance margin_instance(Rng& rng, Index rows, Index cols, Index m) {
  Mat lambda = rng.gaussian(rows, cols, 1.0);
  SquareRegressionLoss loss = whitened_regression(rng, lambda, m);
  const double smin = singular_values(lambda).minCoeff();
  const Mat dir = rng.gaussian(rows, cols, 1.0);
  Mat w0 = lambda + 0.5 * smin * dir / dir.norm();
  const double delta = deficiency_margin_whitened(w0, lambda);
  return {std::move(lambda), std::move(loss), std::move(w0), delta};
}

FlowOptions flow_options(double time, double rtol, double dt = 0) {
  FlowOptions f;
  f.time = time;
  f.record_dt = dt;
  f.ode.rtol = rtol;
  f.ode.atol = rtol * 1e-3;
  return f;
}

Summary factor_flow(const Loss& loss, Factors& w, const FlowOptions& f,
                    const std::vector<Callback*>& cbs = {}) {
  Objective obj(dims_of(w), loss);
  RecordOptions rec;
  rec.singular_values = 0;
  return train_gradient_flow(obj, w, f, StopOptions{}, rec, nullptr, cbs);
}

Summary e2e_flow(const Loss& loss, Mat& w, int depth, const FlowOptions& f,
                 const std::vector<Callback*>& cbs = {}) {
  RecordOptions rec;
  rec.singular_values = 0;
  return train_end_to_end_flow(loss, w, depth, f, StopOptions{}, rec, nullptr, cbs);
}

std::vector<Mat> unbalancedness_matrices(const Factors& w) {
  std::vector<Mat> d;
  for (std::size_t j = 0; j + 1 < w.size(); ++j)
    d.push_back(w[j + 1].transpose() * w[j + 1] - w[j] * w[j].transpose());
  return d;
}

double rel(const Mat& a, const Mat& b) { return (a - b).norm() / std::max(b.norm(), 1e-300); }

// ---- the checks ----

CheckResult lemma1(Rng& rng) {
  SquareRegressionLoss loss = regression(rng, 3, 4, 20);
  Factors w{rng.gaussian(5, 4, 0.5), rng.gaussian(6, 5, 0.5), rng.gaussian(3, 6, 0.5)};
  const auto d0 = unbalancedness_matrices(w);
  const Summary s = factor_flow(loss, w, flow_options(2.0, 1e-11));
  const auto d1 = unbalancedness_matrices(w);
  double worst = 0;
  for (std::size_t j = 0; j < d0.size(); ++j) worst = std::max(worst, rel(d1[j], d0[j]));
  return make("Lemma 1 / Proposition 2",
              "max_j ||D_j(T) - D_j(0)||_F / ||D_j(0)||_F, D_j = W_{j+1}^T W_{j+1} - W_j W_j^T, "
              "gradient flow T = 2, rtol 1e-11",
              worst, 1e-7,
              fmt::format("unbalancedness {:.6g} -> {:.6g}; loss {:.4g} -> {:.4g}; {} gradient "
                          "evaluations",
                          unbalancedness(Factors(w)), unbalancedness(w), s.history.front().loss,
                          s.history.back().loss, s.rhs_evals));
}

CheckResult theorem1(Rng& rng) {
  double worst = 0;
  std::string detail;
  for (int n = 2; n <= 4; ++n) {
    SquareRegressionLoss loss = regression(rng, 3, 4, 20);
    std::vector<Index> dims{4};
    for (int j = 1; j < n; ++j) dims.push_back(5 + j);
    dims.push_back(3);
    Factors w = balanced_factors(dims, rng.gaussian(3, 4, 0.6));
    Mat e = end_to_end(w);
    factor_flow(loss, w, flow_options(1.5, 1e-11));
    e2e_flow(loss, e, n, flow_options(1.5, 1e-11));
    const double err = rel(end_to_end(w), e);
    worst = std::max(worst, err);
    detail += fmt::format("n={}: {:.2e}; ", n, err);
  }
  return make("Theorem 1",
              "||W_{n:1}(T) from factor gradient flow - W(T) from Eq. 3|| / ||W(T)||, balanced "
              "init, n = 2..4, T = 1.5",
              worst, 1e-7, detail);
}

CheckResult corollary1(Rng& rng) {
  double worst = 0;
  for (int n = 1; n <= 4; ++n) {
    for (int deficient = 0; deficient < 2; ++deficient) {
      Mat w = rng.gaussian(3, 4, 1.0);
      if (deficient) w = w.col(0) * rng.gaussian(1, 4, 1.0);  // rank one: zero singular values
      const Mat g = rng.gaussian(3, 4, 1.0);
      const Mat q = materialize_preconditioner(w, n);
      const Eigen::Map<const Vec> vg(g.data(), g.size());
      const Mat free = apply_preconditioner(w, g, n);
      const Vec qg = q * vg;
      worst = std::max(worst, (qg - Eigen::Map<const Vec>(free.data(), free.size())).norm() /
                                  std::max(qg.norm(), 1e-300));
      const PreconditionerSpectrum spec = preconditioner_spectrum(w, n);
      // Q O = O Lambda for the closed-form eigenpairs.
      const Mat resid = q * spec.eigenvectors - spec.eigenvectors * spec.eigenvalues.asDiagonal();
      worst = std::max(worst, resid.norm() / std::max(q.norm(), 1e-300));
    }
  }
  return make("Corollary 1",
              "materialized P(W) vs matrix-free P(W) vec(G), and P(W) O - O Lambda for the "
              "closed-form eigenpairs (n = 1..4, full and rank-one W)",
              worst, 1e-12);
}

std::vector<CheckResult> remark1(Rng& rng) {
  SquareRegressionLoss loss = regression(rng, 3, 3, 12);
  // A well-conditioned center (singular values 2 .. 1) and a loop of radius sigma_min / 2 in the
  // plane where the field rotates most, so W stays full rank along the loop.
  const Mat qu = Eigen::HouseholderQR<Mat>(rng.gaussian(3, 3, 1.0)).householderQ();
  const Mat qv = Eigen::HouseholderQR<Mat>(rng.gaussian(3, 3, 1.0)).householderQ();
  const Mat c = qu * Vec::LinSpaced(3, 2.0, 1.0).asDiagonal() * qv.transpose();
  const Mat d1 = rng.gaussian(3, 3, 1.0), d2 = rng.gaussian(3, 3, 1.0);
  const LoopIntegral one = loop_integral(loss, 1, c, d1 / d1.norm(), d2 / d2.norm(), 0.5, 256);
  double smallest = 1e300;
  std::string detail;
  for (int n = 2; n <= 3; ++n) {
    const CurlPlane plane = max_curl_plane(loss, n, c);
    const LoopIntegral li = loop_integral(loss, n, c, plane.dir1, plane.dir2, 0.5, 256);
    smallest = std::min(smallest, std::abs(li.value) / li.scale);
    detail += fmt::format("n={}: integral {:.4g} (scale {:.4g}); ", n, li.value, li.scale);
  }
  return {make("Remark 1 (n = 1)",
               "|closed-loop line integral of P(W) grad l| / its Cauchy-Schwarz scale: a gradient "
               "field for n = 1",
               std::abs(one.value) / one.scale, 1e-12),
          make("Remark 1 (n >= 2)",
               "the same ratio for n = 2, 3 on the plane of largest curl: clearly non-zero, so "
               "Eq. 3 is no gradient field",
               smallest, 1e-3, detail, true)};
}

CheckResult theorem2(Rng& rng) {
  const int n = 3;
  const auto [lambda, loss, w0, delta] = margin_instance(rng, 2, 3, 12);
  const double phi_star = loss.value(lambda), phi0 = loss.value(w0);
  const double eps = 1e-6 * (phi0 - phi_star);
  const double bound = theorem2_time_bound(phi0 - phi_star, eps, 1.0, delta, n);
  Mat w = w0;
  Capture cap;
  std::vector<Callback*> cbs{&cap};
  e2e_flow(loss, w, n, flow_options(bound, 1e-10, bound / 4000), cbs);
  double t_hit = std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < cap.t.size(); ++k)
    if (cap.loss[k] - phi_star <= eps) {
      t_hit = cap.t[k];
      break;
    }
  return make("Theorem 2",
              "observed time to phi - phi* <= eps over the bound ln((phi0 - phi*)/eps) / "
              "(2 alpha delta^{2(n-1)/n}) (whitened square loss, alpha = 1, n = 3)",
              t_hit / bound, 1.0,
              fmt::format("delta = {:.4g}, bound {:.4g}, observed {:.4g}", delta, bound, t_hit));
}

CheckResult lemma2(Rng& rng) {
  // Square completion-free case: square regression with d_0 = d_n = 3, balanced init, n = 3.
  SquareRegressionLoss loss = regression(rng, 3, 3, 15);
  int changes = 0;
  double min_abs = 1e300;
  for (int sign = -1; sign <= 1; sign += 2) {
    Mat a = rng.gaussian(3, 3, 0.3);
    if (determinant_sign(a) != sign) a.row(0) *= -1.0;
    Factors w = balanced_factors({3, 4, 5, 3}, a);
    Capture cap;
    std::vector<Callback*> cbs{&cap};
    factor_flow(loss, w, flow_options(3.0, 1e-10, 0.01), cbs);
    for (const auto& e : cap.e2e) {
      if (determinant_sign(e) != sign) ++changes;
      min_abs = std::min(min_abs, std::abs(e.determinant()));
    }
  }
  return make(
      "Lemma 2",
      "records (every 0.01 over T = 3, det > 0 and det < 0 starts) where sign det W_{n:1}(t) "
      "differs from its initial sign",
      changes, 0, fmt::format("min |det| along the trajectories {:.3g}", min_abs));
}

CheckResult exercise1(Rng& rng) {
  double worst = 0;
  SquareRegressionLoss loss = regression(rng, 1, 5, 20);
  for (int n = 1; n <= 4; ++n) {
    const Mat w = rng.gaussian(1, 5, 1.0);
    Mat g;
    loss.value_and_gradient(w, g);
    // d_n = 1: dW/dt = -||w||^{2(n-1)/n} (g + (n-1) <g, w/||w||> w/||w||).
    const double nw = w.norm();
    const Mat what = w / nw;
    const Mat closed = -std::pow(nw, 2.0 * (n - 1) / n) *
                       (g + static_cast<double>(n - 1) * (g.cwiseProduct(what)).sum() * what);
    worst = std::max(worst, rel(end_to_end_velocity(w, loss, n), closed));
  }
  return make(
      "Exercise 1",
      "Eq. 3 for d_n = 1 vs its closed form -||w||^{2-2/n} (g + (n-1) <g, w^> w^), n = 1..4", worst,
      1e-12);
}

CheckResult exercise2(Rng& rng) {
  SquareRegressionLoss loss = regression(rng, 3, 3, 15);
  const Mat w0 = rng.gaussian(3, 3, 0.5);
  const Index sz = w0.size();
  OdeOptions o;
  o.rtol = 1e-11;
  o.atol = 1e-14;
  Mat w = w0, ws = w0 * w0.transpose(), tmp(3, 3);
  OdeIntegrator factor(
      sz,
      [&](double, const double* y, double* yd) {
        std::copy(y, y + sz, tmp.data());
        const Mat g = symmetric_factor_gradient(tmp, loss);
        for (Index i = 0; i < sz; ++i) yd[i] = -g.data()[i];
      },
      o, 0.0, w.data());
  OdeIntegrator sym(
      sz,
      [&](double, const double* y, double* yd) {
        std::copy(y, y + sz, tmp.data());
        const Mat v = symmetric_end_to_end_velocity(tmp, loss);
        std::copy(v.data(), v.data() + sz, yd);
      },
      o, 0.0, ws.data());
  factor.advance(1.0, w.data());
  sym.advance(1.0, ws.data());
  return make("Exercise 2",
              "W(T) W(T)^T from gradient flow on phi_s(W) = l(W W^T) vs W_s(T) from the derived "
              "self-contained dynamics, T = 1",
              rel(w * w.transpose(), ws), 1e-8);
}

CheckResult exercise5(Rng& rng) {
  // l(W) = -<C, W> with C = U diag(c) V^T: <-grad l, u_r v_r^T> = c_r stays fixed, so for n = 2
  // sigma_r(t) = eps exp(2 c_r t).
  const Index d = 3;
  Mat uq = Eigen::HouseholderQR<Mat>(rng.gaussian(d, d, 1.0)).householderQ();
  Mat vq = Eigen::HouseholderQR<Mat>(rng.gaussian(d, d, 1.0)).householderQ();
  Vec c(d);
  c << 1.0, 0.6, 0.25;
  LinearLoss loss(uq * c.asDiagonal() * vq.transpose());
  const double eps = 1e-3, t_end = 2.0;
  Mat w = eps * uq * vq.transpose();
  Factors f = balanced_factors({d, d, d}, w);
  factor_flow(loss, f, flow_options(t_end, 1e-11));
  const Vec s = singular_values(end_to_end(f));
  double worst = 0;
  for (Index r = 0; r < d; ++r)
    worst = std::max(worst, std::abs(s[r] - exercise5_sigma(eps, c[r], t_end)) /
                                exercise5_sigma(eps, c[r], t_end));
  return make("Exercise 5",
              "singular values after gradient flow (n = 2, fixed <-grad l, u_r v_r^T> = c_r) vs "
              "eps exp(2 c_r t); gaps grow like exp(2 (c_r - c_r') t)",
              worst, 1e-7,
              fmt::format("sigma(T) = ({:.4g}, {:.4g}, {:.4g}); ratio sigma_1/sigma_3 = {:.4g} "
                          "= exp(2 (c_1 - c_3) T) = {:.4g}",
                          s[0], s[1], s[2], s[0] / s[2], exercise5_ratio(c[0], c[2], t_end)));
}

std::vector<CheckResult> propositions1and3(Rng& rng) {
  SquareRegressionLoss loss = regression(rng, 3, 4, 20);
  const std::vector<Index> dims{4, 5, 6, 3};
  NonconvexWitness nc;
  const bool nonconvex = phi_nonconvex_witness(loss, dims, 0.5, &nc);
  // Proposition 3 (n = 3): gradient and Hessian of phi vanish at the origin, yet points of
  // norm ~ sqrt(n) eps^{1/n} have phi < phi(0) for every eps.
  Objective obj(dims, loss);
  Factors zero = obj.make_like(), g = obj.make_like();
  obj.evaluate_with_gradient(zero, g);
  double grad0 = 0;
  for (const auto& m : g) grad0 = std::max(grad0, m.norm());
  double worst_gap = -1e300, norm_small = 0;
  for (double eps : {1e-2, 1e-4, 1e-6}) {
    const SaddleWitness sw = origin_descent_witness(loss, dims, eps);
    worst_gap = std::max(worst_gap, sw.phi_witness - sw.phi_origin);
    norm_small = sw.witness_norm;
  }
  return {make("Proposition 1",
               "phi((A+B)/2) - (phi(A)+phi(B))/2 for factor tuples A, B with the same product: "
               "> 0 means phi is non-convex",
               nonconvex ? nc.phi_mid - 0.5 * (nc.phi_a + nc.phi_b) : 0.0, 1e-12,
               fmt::format("phi(A) = {:.6g}, phi(B) = {:.6g}, phi(mid) = {:.6g}", nc.phi_a,
                           nc.phi_b, nc.phi_mid),
               true),
          make("Proposition 3",
               "max over eps in {1e-2, 1e-4, 1e-6} of phi(witness) - phi(0), witnesses of norm "
               "-> 0 (n = 3): < 0 means the origin (gradient 0) is no local minimum",
               worst_gap, 0.0,
               fmt::format("||grad phi(0)|| = {:.1e}; witness norm at eps = 1e-6: {:.3g}", grad0,
                           norm_small))};
}

CheckResult theorem3(Rng& rng) {
  const int n = 3;
  SquareRegressionLoss loss = regression(rng, 3, 3, 15);
  Mat w = rng.gaussian(3, 3, 0.2);
  Capture cap;
  std::vector<Callback*> cbs{&cap};
  const double dt = 1e-3;
  e2e_flow(loss, w, n, flow_options(1.0, 1e-12, dt), cbs);
  AnalyticSvdTracker tracker;
  std::vector<Vec> rates;
  for (std::size_t k = 0; k < cap.t.size(); ++k) {
    tracker.update(cap.t[k], cap.e2e[k]);
    Mat g;
    loss.value_and_gradient(cap.e2e[k], g);
    rates.push_back(theorem3_rates(g, tracker.u(), tracker.v(), tracker.sigma(), n));
  }
  const auto& hist = tracker.sigma_history();
  double worst = 0;
  for (std::size_t k = 2; k + 2 < hist.size(); ++k) {
    // Fourth-order central difference on the uniform record grid.
    const Vec fd = (hist[k - 2] - 8 * hist[k - 1] + 8 * hist[k + 1] - hist[k + 2]) / (12 * dt);
    worst = std::max(worst, (fd - rates[k]).norm() / std::max(rates[k].norm(), 1e-12));
  }
  return make(
      "Theorem 3",
      "4th-order central differences of tracked signed singular values (analytic SVD, Def. 4) vs "
      "(sigma_r^2)^{1-1/n} n <-grad l, u_r v_r^T>, n = 3, dt = 1e-3",
      worst, 1e-6, fmt::format("ambiguous matches: {}", tracker.ambiguous_matches()));
}

CheckResult exercise3(Rng& rng) {
  const Mat w = rng.gaussian(3, 4, 1.0);
  double worst = 0;
  for (double delta : {0.0, 0.3, 0.9, 5.0}) {
    const Mat closest = closest_with_sigma_min(w, delta);
    const double dist = distance_to_rank_deficient(w, delta);
    worst = std::max(worst, std::abs((closest - w).norm() - dist));
    worst = std::max(worst, std::max(0.0, singular_values(closest).minCoeff() - delta));
  }
  return make("Exercise 3 / Example 1",
              "min{||W' - W|| : sigma_min(W') <= delta} = max(0, sigma_min(W) - delta): "
              "the witness W' attains it and has sigma_min <= delta",
              worst, 1e-12);
}

CheckResult remark2(Rng& rng) {
  // Remark 2's rate eta delta^{2(n-1)/n} is scale-free, (delta / ||Lambda||_F)^4 / 49152 at the
  // largest step for n = 2. A 1x2 target (sigma_min = ||Lambda||_F) with W(0) off it by
  // 0.05 ||Lambda||_F orthogonally gives ~1.7e-5 per step and GD's slowest rate, 2 eta sigma ~ 2.1x
  // the bound's. Run until the bound is e^-3: GD at 0.45 of the step breaks it there.
  const int n = 2;
  const Mat lambda = rng.gaussian(1, 2, 1.0);
  const SquareRegressionLoss loss = whitened_regression(rng, lambda, 8);
  Mat perp(1, 2);
  perp << -lambda(0, 1), lambda(0, 0);
  const Mat w0 = lambda + 0.05 * perp;
  const double delta = deficiency_margin_whitened(w0, lambda);
  const Remark2Thresholds th = remark2_thresholds(lambda, delta, n);
  Factors w = balanced_factors({2, 2, 1}, w0);
  Objective obj({2, 2, 1}, loss);
  OptimizerOptions o;
  o.lr = th.max_step;
  auto gd = Optimizer::create(o, w);
  Factors g = obj.make_like();
  const double phi_star = loss.value(lambda);
  const double phi0 = obj.evaluate_with_gradient(w, g) - phi_star;
  const double rate = th.max_step * std::pow(delta, 2.0 * (n - 1) / n);
  const long steps = static_cast<long>(std::ceil(3.0 / rate));
  double worst = 0, phi = phi0;
  for (long t = 1; t <= steps; ++t) {
    gd->step(w, g);
    phi = obj.evaluate_with_gradient(w, g) - phi_star;
    worst = std::max(worst, phi / (phi0 * std::exp(-rate * static_cast<double>(t))));
  }
  return make(
      "Remark 2",
      "max_t (phi(t) - phi*) / ((phi(0) - phi*) exp(-eta delta^{2(n-1)/n} t)) for GD with "
      "the Remark's step size and a balanced init until the bound is e^-3 (n = 2, 1x2 Lambda)",
      worst, 1.0,
      fmt::format("delta = {:.3g}, eta = {:.3g}, {} steps, phi - phi* {:.3g} -> {:.3g} "
                  "(bound {:.3g}), unbalancedness bound {:.3g}",
                  delta, th.max_step, steps, phi0, phi, phi0 * std::exp(-3.0),
                  th.max_unbalancedness));
}

}  // namespace

CheckResult proposition5(double time_n2, double time_n3) {
  // Eq. 15: observed (1,2) = 1, (2,1) = 1, (2,2) = 0 (0-based (0,1), (1,0), (1,1)).
  CompletionLoss loss(2, 2, {0, 1, 1}, {1, 0, 1}, {1.0, 1.0, 0.0});
  double worst = -1e300;
  int sign_changes = 0, unjudged = 0;
  std::string detail;
  // For n = 2, det W decays exponentially (Lemma 2's n = 2 solution) and falls below what a
  // double-precision integration resolves near t ~ 140; T = 60 keeps det >= 1e-7. For n = 3 the
  // decay is algebraic and the flow runs to loss ~ 1e-4.
  for (const auto& [n, t_end] : {std::pair{2, time_n2}, std::pair{3, time_n3}}) {
    Mat w(2, 2);
    w << 0.2, 0.05, -0.04, 0.15;  // det > 0
    Capture cap;
    std::vector<Callback*> cbs{&cap};
    e2e_flow(loss, w, n, flow_options(t_end, 1e-12, t_end / 400), cbs);
    int judged = 0;
    for (std::size_t k = 0; k < cap.t.size(); ++k) {
      if (determinant_sign(cap.e2e[k]) != 1) ++sign_changes;
      const double l = cap.loss[k];
      if (l >= 1.0 / 6.0) continue;
      ++judged;
      // |w_11| >= 1/sqrt(6 l) - 2 (proof of Proposition 5).
      worst = std::max(worst, (1.0 / std::sqrt(6 * l) - 2) - std::abs(cap.e2e[k](0, 0)));
    }
    if (judged == 0) ++unjudged;  // the bound says nothing at loss >= 1/6
    detail += fmt::format(
        "n={}: {} records with loss < 1/6, loss {:.3g} -> {:.3g}, |w11| {:.3g} -> {:.3g}, nuclear "
        "norm "
        "{:.3g} -> {:.3g}; ",
        n, judged, cap.loss.front(), cap.loss.back(), std::abs(cap.e2e.front()(0, 0)),
        std::abs(cap.e2e.back()(0, 0)), singular_values(cap.e2e.front()).sum(),
        singular_values(cap.e2e.back()).sum());
  }
  detail += fmt::format("det sign changes: {}", sign_changes);
  if (unjudged > 0) detail += fmt::format("; {} trajectories never reach loss < 1/6", unjudged);
  return make("Proposition 5",
              "max over the trajectory of (1/sqrt(6 l) - 2) - |w_11| on Eq. 15 with det > 0 "
              "throughout (n = 2, 3): <= 0, so |w_11| -> infinity as l -> 0",
              sign_changes > 0 || unjudged > 0 ? std::numeric_limits<double>::infinity() : worst,
              0.0, detail);
}

std::vector<CheckResult> run_checks(std::uint64_t seed, const std::string& only) {
  std::vector<CheckResult> out;
  std::vector<std::pair<std::string, std::function<std::vector<CheckResult>(Rng&)>>> all = {
      {"Lemma 1", [](Rng& r) { return std::vector{lemma1(r)}; }},
      {"Theorem 1", [](Rng& r) { return std::vector{theorem1(r)}; }},
      {"Corollary 1", [](Rng& r) { return std::vector{corollary1(r)}; }},
      {"Remark 1", [](Rng& r) { return remark1(r); }},
      {"Proposition 1 / 3", [](Rng& r) { return propositions1and3(r); }},
      {"Exercise 3", [](Rng& r) { return std::vector{exercise3(r)}; }},
      {"Remark 2", [](Rng& r) { return std::vector{remark2(r)}; }},
      {"Theorem 3", [](Rng& r) { return std::vector{theorem3(r)}; }},
      {"Theorem 2", [](Rng& r) { return std::vector{theorem2(r)}; }},
      {"Lemma 2", [](Rng& r) { return std::vector{lemma2(r)}; }},
      {"Proposition 5", [](Rng&) { return std::vector{proposition5()}; }},
      {"Exercise 1", [](Rng& r) { return std::vector{exercise1(r)}; }},
      {"Exercise 2", [](Rng& r) { return std::vector{exercise2(r)}; }},
      {"Exercise 5", [](Rng& r) { return std::vector{exercise5(r)}; }},
  };
  std::uint64_t k = 0;
  for (auto& [name, fn] : all) {
    ++k;
    if (!only.empty() && name.rfind(only, 0) != 0) continue;
    Rng rng(seed * 1000003ULL + k);  // each check its own stream: filtering changes nothing
    for (auto& r : fn(rng)) out.push_back(std::move(r));
  }
  return out;
}

std::string checks_table(const std::vector<CheckResult>& results) {
  std::string s = fmt::format("{:<26} {:>11} {:>3} {:>9}  {:<4}  {}\n", "result", "measured", "",
                              "tolerance", "", "what is compared");
  for (const auto& r : results) {
    s += fmt::format("{:<26} {:>11.3e} {:>3} {:>9.1e}  {:<4}  {}\n", r.result, r.error,
                     r.at_least ? ">=" : "<=", r.tolerance, r.pass ? "pass" : "FAIL", r.compared);
    if (!r.detail.empty()) s += fmt::format("{:<26} {}\n", "", r.detail);
  }
  return s;
}

std::string checks_json(const std::vector<CheckResult>& results) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : results)
    j.push_back({{"result", r.result},
                 {"compared", r.compared},
                 {"measured", r.error},
                 {"tolerance", r.tolerance},
                 {"relation", r.at_least ? ">=" : "<="},
                 {"pass", r.pass},
                 {"detail", r.detail}});
  return j.dump(2) + "\n";
}

}  // namespace dln
