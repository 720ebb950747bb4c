// Closed forms and witnesses of dln/diagnostics/theory against brute force, hand-computed numbers
// and gradient flow (lecture notes: Def. 3, Example 1, Exercises 3 and 5, Theorems 2 and 3,
// Remark 2, Lemma 2, Propositions 1 and 3).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <string>

#include "dln/core/rng.hpp"
#include "dln/diagnostics/theory.hpp"
#include "dln/init/initializers.hpp"
#include "dln/model/network.hpp"

namespace dln {
namespace {

double smin(const Mat& m) { return Eigen::JacobiSVD<Mat>(m).singularValues().minCoeff(); }

Mat random_orthogonal(Rng& rng, Index d) {
  Eigen::HouseholderQR<Mat> qr(rng.gaussian(d, d, 1.0));
  return qr.householderQ() * Mat::Identity(d, d);
}

// d x k matrix with orthonormal columns and the given singular values.
Mat with_singular_values(Rng& rng, Index rows, Index cols, const Vec& s) {
  const Index k = s.size();
  return random_orthogonal(rng, rows).leftCols(k) * s.asDiagonal() *
         random_orthogonal(rng, cols).leftCols(k).transpose();
}

Mat rotation2(double angle) {
  Mat r(2, 2);
  r << std::cos(angle), -std::sin(angle), std::sin(angle), std::cos(angle);
  return r;
}

// Cayley transform (I - tK/2)^{-1} (I + tK/2) of a skew K: orthogonal and analytic in t.
Mat cayley(const Mat& k, double t) {
  const Mat id = Mat::Identity(k.rows(), k.cols());
  return (id - 0.5 * t * k).partialPivLu().solve(id + 0.5 * t * k);
}

Mat random_skew(Rng& rng, Index d) {
  const Mat g = rng.gaussian(d, d, 1.0);
  return g - g.transpose();
}

// Sign of x, with 0 for |x| <= tol.
std::string sci(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", x);
  return buf;
}

int sign_of(double x, double tol = 0.0) { return x > tol ? 1 : (x < -tol ? -1 : 0); }

// X (d0 x m) with X X^T / m = I exactly up to rounding.
Mat whitened_instances(Rng& rng, Index d0, Index m) {
  Eigen::HouseholderQR<Mat> qr(rng.gaussian(m, d0, 1.0));
  const Mat q = qr.householderQ() * Mat::Identity(m, d0);
  return std::sqrt(static_cast<double>(m)) * q.transpose();
}

// One classical Runge-Kutta step of gradient flow (Eq. 2) on the factors.
void rk4_step(Objective& obj, Factors& w, double h) {
  const std::size_t n = w.size();
  Factors g1 = obj.make_like(), g2 = obj.make_like(), g3 = obj.make_like(), g4 = obj.make_like();
  Factors tmp = w;
  obj.evaluate_with_gradient(w, g1);
  for (std::size_t j = 0; j < n; ++j) tmp[j] = w[j] - 0.5 * h * g1[j];
  obj.evaluate_with_gradient(tmp, g2);
  for (std::size_t j = 0; j < n; ++j) tmp[j] = w[j] - 0.5 * h * g2[j];
  obj.evaluate_with_gradient(tmp, g3);
  for (std::size_t j = 0; j < n; ++j) tmp[j] = w[j] - h * g3[j];
  obj.evaluate_with_gradient(tmp, g4);
  for (std::size_t j = 0; j < n; ++j) w[j] -= h / 6.0 * (g1[j] + 2.0 * g2[j] + 2.0 * g3[j] + g4[j]);
}

// ---- Exercise 3 / Definition 3 / Example 1 --------------------------------------------------

// The closed form max(0, sigma_min(W) - delta) is attained by closest_with_sigma_min (to 1e-12)
// and no W' with sigma_min(W') <= delta comes closer: random W' and local perturbations of the
// minimizer, pushed back onto the constraint set.
TEST(Exercise3, ClosedFormIsAttainedAndNeverBeaten) {
  Rng rng(11);
  const std::pair<Index, Index> shapes[] = {{3, 5}, {5, 3}, {4, 4}, {1, 4}};
  double worst_attain = 0.0, closest = 1e300;  // closest: min over W' of ||W' - W|| - bound
  for (const auto& [rows, cols] : shapes) {
    const Mat w = rng.gaussian(rows, cols, 1.0);
    const double s = smin(w);
    for (const double frac : {0.0, 0.1, 0.5, 0.99, 1.0, 2.0}) {
      const double delta = frac * s;
      const double bound = distance_to_rank_deficient(w, delta);
      EXPECT_DOUBLE_EQ(bound, std::max(0.0, s - delta));
      const Mat best = closest_with_sigma_min(w, delta);
      EXPECT_LE(smin(best), delta + 1e-12);
      worst_attain = std::max(worst_attain, std::abs((best - w).norm() - bound));
      for (int trial = 0; trial < 300; ++trial) {
        Mat cand;
        if (trial % 2 == 0) {
          // Around the minimizer, projected back onto {sigma_min <= delta}.
          const double scale = std::pow(10.0, -1.0 - trial % 5);
          cand = closest_with_sigma_min(best + rng.gaussian(rows, cols, scale), delta);
        } else {
          Vec sv = (rng.gaussian(std::min(rows, cols), 1, 1.0).cwiseAbs() * 2.0).col(0);
          sv[0] = delta * rng.uniform();
          cand = with_singular_values(rng, rows, cols, sv);
        }
        ASSERT_LE(smin(cand), delta + 1e-12);
        closest = std::min(closest, (cand - w).norm() - bound);
      }
    }
  }
  EXPECT_LE(worst_attain, 1e-12);
  EXPECT_GE(closest, -1e-12);  // no candidate closer than the bound (beyond rounding)
  EXPECT_LE(closest, 1e-6);    // and the local search gets within 1e-6 of it
  RecordProperty("attain_error", sci(worst_attain));
  RecordProperty("closest_excess", sci(closest));
}

// Example 1 on an actual whitened regression loss: l(W) = 1/2 ||W - Lambda_yx||_F^2 + const, and
// W has deficiency margin delta (Definition 3, checked against the minimizer of l over
// {sigma_min <= delta}, Exercise 3 applied to Lambda_yx) exactly for delta below the closed form.
TEST(DeficiencyMargin, MatchesDefinition3OnWhitenedRegression) {
  Rng rng(12);
  const Index d0 = 3, dn = 2, m = 40;
  const Mat x = whitened_instances(rng, d0, m);
  const Mat y = rng.gaussian(dn, m, 1.0);
  EXPECT_TRUE(is_whitened(x, 1e-12));
  EXPECT_FALSE(is_whitened(rng.gaussian(d0, m, 1.0), 1e-3));
  const Mat lambda = whitened_target(x, y);
  EXPECT_LE((lambda - y * x.transpose() / static_cast<double>(m)).norm(), 1e-15);
  const SquareRegressionLoss loss(x, y);
  const double l_star = loss.value(lambda);
  const Mat w = lambda + 0.3 * smin(lambda) * rng.gaussian(dn, d0, 1.0).normalized();
  EXPECT_NEAR(loss.value(w) - l_star, 0.5 * (w - lambda).squaredNorm(), 1e-13);
  const double margin = deficiency_margin_whitened(w, lambda);
  EXPECT_NEAR(margin, smin(lambda) - 0.3 * smin(lambda), 1e-13);
  // Best competitor with sigma_min <= delta: argmin of l over that set.
  auto competitor = [&](double delta) { return loss.value(closest_with_sigma_min(lambda, delta)); };
  EXPECT_LT(loss.value(w), competitor(margin * (1 - 1e-6)));
  EXPECT_GT(loss.value(w), competitor(margin * (1 + 1e-6)));
  // Random competitors near the best one never beat W below the margin.
  const Mat best = closest_with_sigma_min(lambda, 0.99 * margin);
  for (int trial = 0; trial < 500; ++trial) {
    const Mat cand = closest_with_sigma_min(best + rng.gaussian(dn, d0, 1e-2), 0.99 * margin);
    ASSERT_LT(loss.value(w), loss.value(cand));
  }
  // No margin when W is farther from Lambda than sigma_min(Lambda).
  EXPECT_LE(
      deficiency_margin_whitened(lambda + 1.01 * smin(lambda) * Mat::Identity(dn, d0), lambda),
      0.0);
  // d_n = 1: sigma_min(Lambda) = ||Lambda||_F (Example 1's remark).
  const Mat row = rng.gaussian(1, 4, 1.0);
  EXPECT_NEAR(deficiency_margin_whitened(0.5 * row, row), 0.5 * row.norm(), 1e-14);
}

// ---- Theorem 2 / Remark 2 -------------------------------------------------------------------

TEST(Theorem2, HandComputedBounds) {
  // n = 3, delta = 1/4: delta^{4/3} = 2^{-8/3}; ln(10 / 0.01) = ln 1000; alpha = 1/2.
  EXPECT_NEAR(theorem2_time_bound(10.0, 0.01, 0.5, 0.25, 3),
              std::log(1000.0) * std::pow(2.0, 8.0 / 3.0), 1e-12);
  EXPECT_NEAR(theorem2_time_bound(10.0, 0.01, 0.5, 0.25, 3), 43.861512, 1e-6);
  // n = 1: no delta dependence, ln(e^2) / (2 * 2) = 0.5.
  EXPECT_NEAR(theorem2_time_bound(std::exp(2.0), 1.0, 2.0, 0.1, 1), 0.5, 1e-15);
  // n = 2, delta = 0.5: delta^1 -> ln(100) / (2 * 1 * 0.5).
  EXPECT_NEAR(theorem2_time_bound(1.0, 0.01, 1.0, 0.5, 2), std::log(100.0), 1e-14);
  EXPECT_EQ(theorem2_time_bound(0.5, 1.0, 1.0, 0.5, 2), 0.0);
  EXPECT_THROW(theorem2_time_bound(1.0, 0.1, 0.0, 0.5, 2), Error);
}

// Theorem 2 on gradient flow: whitened square loss (alpha = 1), balanced start (Assumption 1)
// with deficiency margin delta; at t = the bound, phi - phi* <= epsilon.
TEST(Theorem2, BoundHoldsAlongGradientFlow) {
  Rng rng(21);
  const Index d0 = 3, dn = 2, m = 30;
  const Mat x = whitened_instances(rng, d0, m);
  const Mat lambda = with_singular_values(rng, dn, d0, Vec::LinSpaced(2, 1.5, 1.0));
  // Y with Y X^T / m = Lambda: Y = Lambda X (X X^T / m = I).
  const SquareRegressionLoss loss(x, lambda * x);
  ASSERT_LE((whitened_target(x, lambda * x) - lambda).norm(), 1e-12);
  const Mat w0 = lambda + 0.5 * rng.gaussian(dn, d0, 1.0).normalized();
  const double delta = 0.9 * deficiency_margin_whitened(w0, lambda);  // 0.45
  const double phi_star = loss.value(lambda);
  for (const std::vector<Index>& dims : {std::vector<Index>{d0, 4, dn}, {d0, 4, 4, dn}}) {
    const int n = static_cast<int>(dims.size()) - 1;
    Objective obj(dims, loss);
    Factors w = balanced_factors(dims, w0);
    const double gap0 = obj.evaluate(w) - phi_star;
    const double eps = 1e-6 * gap0;
    const double t_bound = theorem2_time_bound(gap0, eps, 1.0, delta, n);
    const int steps = static_cast<int>(std::ceil(t_bound / 0.01));
    const double h = t_bound / steps;
    double min_margin = 1e9;
    for (int s = 0; s < steps; ++s) {
      rk4_step(obj, w, h);
      min_margin = std::min(min_margin, deficiency_margin_whitened(end_to_end(w), lambda));
    }
    const double gap = obj.evaluate(w) - phi_star;
    EXPECT_LE(gap, eps) << "depth " << n << " t=" << t_bound;
    EXPECT_GT(min_margin, delta);  // the margin is kept (l is non-increasing)
    RecordProperty("depth" + std::to_string(n) + "_gap_over_eps", sci(gap / eps));
  }
}

// Remark 2 for ||Lambda||_F = 5, delta = 1, n = 2 and n = 3, by hand.
TEST(Remark2, HandComputedThresholds) {
  Mat lambda = Mat::Zero(2, 2);
  lambda(0, 0) = 3;
  lambda(1, 1) = 4;
  const Remark2Thresholds r2 = remark2_thresholds(lambda, 1.0, 2);
  EXPECT_NEAR(r2.max_unbalancedness, 1.0 / 10240.0, 1e-18);  // 1 / (256 * 8 * 5^1)
  EXPECT_NEAR(r2.max_step, 1.0 / 30720000.0, 1e-20);         // 1 / (6144 * 8 * 5^4)
  EXPECT_NEAR(r2.iterations(2.0, 1e-3, 1e-8), std::log(2000.0) * 1e8, 1e-4);  // delta^1 = 1
  // n = 3, delta = 0.5: 0.25 / (256 * 27 * 5^{4/3}), 0.5^{10/3} / (6144 * 27 * 5^{14/3}).
  const Remark2Thresholds r3 = remark2_thresholds(lambda, 0.5, 3);
  EXPECT_NEAR(r3.max_unbalancedness / (0.25 / (6912.0 * std::pow(5.0, 4.0 / 3.0))), 1.0, 1e-14);
  EXPECT_NEAR(r3.max_step / (std::pow(0.5, 10.0 / 3.0) / (165888.0 * std::pow(5.0, 14.0 / 3.0))),
              1.0, 1e-14);
  EXPECT_NEAR(r3.max_unbalancedness, 4.23035e-6, 1e-11);
  EXPECT_NEAR(r3.max_step, 3.27259e-10, 1e-15);
  // iterations = ln(phi0/eps) / (eta delta^{4/3}).
  EXPECT_NEAR(
      r3.iterations(1.0, 0.01, 1e-3) / (std::log(100.0) / (1e-3 * std::pow(0.5, 4.0 / 3.0))), 1.0,
      1e-14);
  EXPECT_EQ(r3.iterations(0.01, 0.1, 1e-3), 0.0);
}

// ---- Definition 4 / Lemma 2: the tracker ----------------------------------------------------

// W(t) = Q1(t) diag(1 - t, t) Q2(t)^T, rotations of angles t and 2t: the singular values cross
// at t = 1/2 (sampled exactly). The tracked signed values follow (1 - t, t) by identity.
TEST(AnalyticSvdTracker, FollowsACrossingByIdentity) {
  AnalyticSvdTracker tr;
  const int steps = 1000;
  double sigma_err = 0.0, vec_err = 0.0, vec_err_at_crossing = 0.0;
  Vec su(2), sv(2);  // constant signs of u_r, v_r against the analytic columns (fixed at t = 0)
  for (int k = 0; k <= steps; ++k) {
    const double t = k / static_cast<double>(steps);
    const Mat q1 = rotation2(t), q2 = rotation2(2 * t);
    const Vec s = (Vec(2) << 1 - t, t).finished();
    tr.update(t, q1 * s.asDiagonal() * q2.transpose());
    for (Index r = 0; r < 2 && k == 0; ++r) {
      su[r] = tr.u().col(r).dot(q1.col(r)) > 0 ? 1.0 : -1.0;
      sv[r] = tr.v().col(r).dot(q2.col(r)) > 0 ? 1.0 : -1.0;
    }
    for (Index r = 0; r < 2; ++r) {
      sigma_err = std::max(sigma_err, std::abs(tr.sigma()[r] - su[r] * sv[r] * s[r]));
      const double e = std::max((tr.u().col(r) - su[r] * q1.col(r)).norm(),
                                (tr.v().col(r) - sv[r] * q2.col(r)).norm());
      if (k == steps / 2)
        vec_err_at_crossing = std::max(vec_err_at_crossing, e);
      else
        vec_err = std::max(vec_err, e);
    }
  }
  EXPECT_EQ(su[0] * sv[0], 1.0);  // sigma_1(0) = 1 > 0; sigma_2(0) = 0 has either sign frame
  EXPECT_LE(sigma_err, 1e-9);
  EXPECT_LE(vec_err, 1e-9);
  // At the crossing itself the vectors are not determined by W(1/2) = Q1 Q2^T / 2; the tracker
  // picks the basis closest to the previous sample (off by O(dt)).
  EXPECT_LE(vec_err_at_crossing, 5e-3);
  EXPECT_EQ(tr.ambiguous_matches(), 0);
  ASSERT_EQ(tr.sigma_history().size(), static_cast<std::size_t>(steps + 1));
  EXPECT_EQ(tr.times().back(), 1.0);
  // The first component keeps decreasing through the crossing (not swapped) down to 0 at t = 1.
  EXPECT_NEAR(tr.sigma_history()[steps / 2 - 1][0] - tr.sigma_history()[steps / 2 + 1][0], 2e-3,
              1e-12);
  EXPECT_NEAR(tr.sigma_history()[steps][0], 0.0, 1e-12);
  RecordProperty("sigma_error", sci(sigma_err));
  RecordProperty("vector_error", sci(vec_err));
  RecordProperty("vector_error_at_crossing", sci(vec_err_at_crossing));
}

// W(t) = Q1(t) diag(1, 1/2 - t) Q2(t)^T: the second signed value goes through zero and turns
// negative; det W changes sign exactly where it does (Lemma 2's sign relation
// sign det W = sign(prod sigma_r) det U det V with det U det V constant along the tracking).
TEST(AnalyticSvdTracker, SignedValueThroughZeroAndDeterminantSign) {
  AnalyticSvdTracker tr;
  const int steps = 1000;
  double err = 0.0;
  double frame = 0.0;  // det U det V, fixed by continuity
  int det_changes = 0, sigma_changes = 0, prev_det = 0, prev_sig = 0;
  for (int k = 0; k <= steps; ++k) {
    const double t = k / static_cast<double>(steps);
    const Mat q1 = rotation2(t), q2 = rotation2(-3 * t);
    const Mat w = q1 * Vec((Vec(2) << 1.0, 0.5 - t).finished()).asDiagonal() * q2.transpose();
    tr.update(t, w);
    if (k == 0) frame = tr.u().determinant() * tr.v().determinant();
    EXPECT_NEAR(tr.u().determinant() * tr.v().determinant(), frame, 1e-12);
    // The component starting at 1/2 (index 1 at t = 0) is 1/2 - t up to the frame's sign choice.
    const double s1 = tr.sigma()[1];
    err =
        std::max({err, std::abs(tr.sigma()[0] - 1.0), std::abs(std::abs(s1) - std::abs(0.5 - t))});
    const int det = determinant_sign(w);
    const int sig = sign_of(s1, 1e-12);
    if (k == steps / 2) {
      EXPECT_EQ(det, 0);  // exactly singular at t = 1/2
      EXPECT_EQ(sig, 0);
    } else {
      EXPECT_NE(sig, 0);
      EXPECT_EQ(det, sign_of(frame) * sign_of(tr.sigma().prod()));
    }
    if (k > 0 && det != prev_det && det != 0 && prev_det != 0) ++det_changes;
    if (k > 0 && sig != prev_sig && sig != 0 && prev_sig != 0) ++sigma_changes;
    if (det != 0) prev_det = det;
    if (sig != 0) prev_sig = sig;
  }
  EXPECT_LT(tr.sigma().coeff(1) * tr.sigma_history()[0][1], 0.0);  // went negative
  EXPECT_LE(err, 1e-9);
  EXPECT_EQ(det_changes, 1);
  EXPECT_EQ(sigma_changes, 1);
  EXPECT_EQ(tr.ambiguous_matches(), 0);
}

// Rectangular W(t) = A(t) diag(s(t)) B(t)^T with Cayley rotations and s = (1 - t, 0.3 - t,
// t + 0.05) (descending at t = 0, so tracked index = analytic index): |s| crossings at t = 0.125,
// 0.475 and 0.65 (the last between values of opposite sign), zero crossings at 0.3 and 1, all
// sampled exactly. Both orientations (5x3 and 3x5).
TEST(AnalyticSvdTracker, RectangularCrossingsAndZeroCrossings) {
  for (const bool tall : {true, false}) {
    Rng rng(31);
    const Index big = 5, k = 3;
    const Mat ka = 0.7 * random_skew(rng, big), kb = 0.7 * random_skew(rng, k);
    AnalyticSvdTracker tr;
    const int steps = 1000;
    double sigma_err = 0.0, vec_err = 0.0;
    Vec su(k), sv(k);  // constant signs against the analytic columns, fixed at t = 0
    for (int step = 0; step <= steps; ++step) {
      const double t = step / static_cast<double>(steps);
      const Mat a = cayley(ka, t).leftCols(k), b = cayley(kb, t);
      const Vec s = (Vec(3) << 1 - t, 0.3 - t, t + 0.05).finished();
      const Mat w = a * s.asDiagonal() * b.transpose();
      tr.update(t, tall ? w : Mat(w.transpose()));
      const Mat& uu = tall ? tr.u() : tr.v();  // tracked columns of A
      const Mat& vv = tall ? tr.v() : tr.u();  // tracked columns of B
      for (Index r = 0; r < k && step == 0; ++r) {
        su[r] = uu.col(r).dot(a.col(r)) > 0 ? 1.0 : -1.0;
        sv[r] = vv.col(r).dot(b.col(r)) > 0 ? 1.0 : -1.0;
      }
      // Samples where some |s| values coincide or vanish (vectors not determined by W alone).
      bool degenerate = false;
      for (Index r = 0; r < k; ++r) {
        degenerate |= std::abs(s[r]) < 1e-9;
        for (Index q = r + 1; q < k; ++q)
          degenerate |= std::abs(std::abs(s[r]) - std::abs(s[q])) < 1e-9;
      }
      for (Index r = 0; r < k; ++r) {
        sigma_err = std::max(sigma_err, std::abs(tr.sigma()[r] - su[r] * sv[r] * s[r]));
        if (degenerate) continue;
        vec_err = std::max(vec_err, (uu.col(r) - su[r] * a.col(r)).norm());
        vec_err = std::max(vec_err, (vv.col(r) - sv[r] * b.col(r)).norm());
      }
    }
    EXPECT_LE(sigma_err, 1e-9) << (tall ? "tall" : "wide");
    EXPECT_LE(vec_err, 1e-9) << (tall ? "tall" : "wide");
    EXPECT_EQ(tr.ambiguous_matches(), 0);
    // The second value changed sign continuously (0.3 -> -0.7).
    EXPECT_LT(tr.sigma_history().front()[1] * tr.sigma_history().back()[1], 0.0);
    RecordProperty(std::string(tall ? "tall" : "wide") + "_sigma_error", sci(sigma_err));
    RecordProperty(std::string(tall ? "tall" : "wide") + "_vector_error", sci(vec_err));
  }
}

// 30x20 curve with s_r(t) = a_r + b_r t, random slopes: dozens of |s| crossings (not sampled
// exactly) and several zero crossings; every tracked value stays on its own branch.
TEST(AnalyticSvdTracker, ManyCrossingsOnALargerCurve) {
  Rng rng(7);
  const Index rows = 30, cols = 20, k = 20;
  const Mat ka = 0.3 * random_skew(rng, rows), kb = 0.3 * random_skew(rng, cols);
  Vec a0(k), b0(k);
  for (Index r = 0; r < k; ++r) {
    a0[r] = 2.0 - 0.09 * static_cast<double>(r);  // descending: tracked index = branch index
    b0[r] = 2 * rng.normal();
  }
  int crossings = 0, zero_crossings = 0;
  for (Index r = 0; r < k; ++r) {
    zero_crossings += (a0[r] > 0) != (a0[r] + b0[r] > 0);
    for (Index q = r + 1; q < k; ++q)
      crossings += (std::abs(a0[r]) > std::abs(a0[q])) !=
                   (std::abs(a0[r] + b0[r]) > std::abs(a0[q] + b0[q]));
  }
  AnalyticSvdTracker tr;
  double err = 0;
  Vec sgn(k);
  for (int step = 0; step <= 1000; ++step) {
    const double t = step / 1000.0;
    const Vec s = a0 + t * b0;
    tr.update(t, cayley(ka, t).leftCols(k) * s.asDiagonal() * cayley(kb, t).transpose());
    if (step == 0)
      for (Index r = 0; r < k; ++r) sgn[r] = tr.sigma()[r] * s[r] > 0 ? 1.0 : -1.0;
    for (Index r = 0; r < k; ++r) err = std::max(err, std::abs(tr.sigma()[r] - sgn[r] * s[r]));
  }
  EXPECT_GE(crossings, 20);  // net crossings of |s| between t = 0 and 1 (a lower bound)
  EXPECT_GE(zero_crossings, 3);
  EXPECT_LE(err, 1e-9);
  EXPECT_EQ(tr.ambiguous_matches(), 0);
  RecordProperty("sigma_error", sci(err));
  RecordProperty("crossings", std::to_string(crossings));
}

// An 8x8 Hadamard rotation between two updates moves every component; all overlaps are
// 1/sqrt(8) < 0.5, so each match is counted as ambiguous. Bad inputs throw.
TEST(AnalyticSvdTracker, CountsAmbiguousMatchesAndRejectsBadInput) {
  Mat h(1, 1);
  h(0, 0) = 1.0;
  for (int i = 0; i < 3; ++i) {
    Mat hh(2 * h.rows(), 2 * h.cols());
    hh << h, h, h, -h;
    h = hh;
  }
  h /= std::sqrt(8.0);
  const Mat d = Vec::LinSpaced(8, 8.0, 1.0).asDiagonal();
  AnalyticSvdTracker tr;
  tr.update(0.0, d);
  tr.update(1.0, h * d * h.transpose());
  EXPECT_EQ(tr.ambiguous_matches(), 8);
  EXPECT_THROW(tr.update(1.0, d), Error);                // time must increase
  EXPECT_THROW(tr.update(2.0, Mat::Ones(8, 7)), Error);  // shape must stay
}

TEST(DeterminantSign, BasicCasesAndThreshold) {
  EXPECT_EQ(determinant_sign(Mat::Identity(3, 3)), 1);
  Mat p = Mat::Identity(3, 3);
  p.row(0).swap(p.row(2));
  EXPECT_EQ(determinant_sign(p), -1);
  EXPECT_EQ(determinant_sign(-Mat::Identity(3, 3)), -1);
  EXPECT_EQ(determinant_sign(1e-300 * Mat::Identity(4, 4)), 1);  // relative threshold
  Mat near = Mat::Identity(2, 2);
  near(1, 1) = 1e-17;  // below 2 * eps relative to the largest pivot
  EXPECT_EQ(determinant_sign(near), 0);
  near(1, 1) = -1e-14;
  EXPECT_EQ(determinant_sign(near), -1);
  EXPECT_EQ(determinant_sign(Mat::Ones(3, 3)), 0);
  EXPECT_EQ(determinant_sign(Mat::Zero(2, 2)), 0);
  EXPECT_THROW(determinant_sign(Mat::Ones(2, 3)), Error);
  Rng rng(41);
  for (int trial = 0; trial < 50; ++trial) {
    const Mat m = rng.gaussian(5, 5, 1.0);
    EXPECT_EQ(determinant_sign(m), sign_of(m.determinant()));
  }
}

// ---- Theorem 3 ------------------------------------------------------------------------------

// Depth 1 (n = 1): Theorem 3 reduces to d sigma_r/dt = u_r^T (dW/dt) v_r (its proof, Eq. 11
// simplified), so with grad = -dW/dt the rates are the derivatives of the analytic values.
TEST(Theorem3, RatesEqualAnalyticDerivativesOnASyntheticCurve) {
  Rng rng(51);
  const Index rows = 4, cols = 3, k = 3;
  const Mat ka = random_skew(rng, rows), kb = random_skew(rng, cols);
  auto s_of = [](double t) { return Vec((Vec(3) << 2 - t * t, 1 + t, 0.4 - t).finished()); };
  auto ds_of = [](double t) { return Vec((Vec(3) << -2 * t, 1.0, -1.0).finished()); };
  auto w_of = [&](double t) {
    return Mat(cayley(ka, t).leftCols(k) * s_of(t).asDiagonal() * cayley(kb, t).transpose());
  };
  AnalyticSvdTracker tr;
  double err = 0.0, err_degenerate = 0.0;
  const double fd = 1e-3;
  Vec sgn(k);  // tracked sigma_r = sgn_r s_r, sgn_r fixed by continuity (read at t = 0)
  for (int step = 0; step <= 800; ++step) {
    const double t = step * 1e-3;
    tr.update(t, w_of(t));
    if (step == 0)
      for (Index r = 0; r < k; ++r) sgn[r] = tr.sigma()[r] * s_of(0)[r] > 0 ? 1.0 : -1.0;
    // dW/dt by fourth-order central differences.
    const Mat wdot =
        (8 * (w_of(t + fd) - w_of(t - fd)) - (w_of(t + 2 * fd) - w_of(t - 2 * fd))) / (12 * fd);
    const Vec rates = theorem3_rates(-wdot, tr.u(), tr.v(), tr.sigma(), 1);
    const Vec ds = ds_of(t);
    // At t = 0.4 (s_3 = 0, sampled) u_3, v_3 are not determined by W; the tracker's O(dt)
    // choice costs O(dt^2) in the rate.
    const bool degenerate = s_of(t).cwiseAbs().minCoeff() < 1e-9;
    for (Index r = 0; r < k; ++r) {
      double& worst = degenerate ? err_degenerate : err;
      worst = std::max(worst, std::abs(rates[r] - sgn[r] * ds[r]));
    }
  }
  EXPECT_LE(err, 1e-8);
  EXPECT_LE(err_degenerate, 1e-5);
  RecordProperty("rate_error", sci(err));
  RecordProperty("rate_error_at_zero", sci(err_degenerate));
}

// Gradient flow on phi from a balanced start (Assumption 1): finite differences of the tracked
// signed singular values of W_{n:1} match Theorem 3; for square W_{n:1} the determinant sign and
// every sigma_r's sign stay fixed (Lemma 2).
TEST(Theorem3, RatesMatchGradientFlow) {
  Rng rng(61);
  for (const std::vector<Index>& dims :
       {std::vector<Index>{3, 4, 3}, {4, 5, 5, 3}, {3, 4, 4, 3}, {2, 3, 3, 3, 4}}) {
    const int n = static_cast<int>(dims.size()) - 1;
    const Index d0 = dims.front(), dn = dims.back(), m = 20;
    const SquareRegressionLoss loss(rng.gaussian(d0, m, 1.0), rng.gaussian(dn, m, 1.0));
    Objective obj(dims, loss);
    Factors w = balanced_factors(dims, rng.gaussian(dn, d0, 0.4));
    AnalyticSvdTracker tr;
    const double h = 1e-3;
    const int steps = 800;
    std::vector<Vec> rates;
    const int det0 = d0 == dn ? determinant_sign(end_to_end(w)) : 0;
    for (int s = 0; s <= steps; ++s) {
      const Mat e2e = end_to_end(w);
      Mat g;
      loss.value_and_gradient(e2e, g);
      tr.update(s * h, e2e);
      rates.push_back(theorem3_rates(g, tr.u(), tr.v(), tr.sigma(), n));
      if (d0 == dn) {
        ASSERT_EQ(determinant_sign(e2e), det0);
        for (Index r = 0; r < tr.sigma().size(); ++r)
          ASSERT_GT(tr.sigma()[r] * tr.sigma_history()[0][r], 0.0);
      }
      rk4_step(obj, w, h);
    }
    double err = 0.0, scale = 0.0;
    const auto& hist = tr.sigma_history();
    for (int s = 2; s + 2 <= steps; ++s) {  // fourth-order central differences
      const Vec fd = (8 * (hist[s + 1] - hist[s - 1]) - (hist[s + 2] - hist[s - 2])) / (12 * h);
      err = std::max(err, (fd - rates[s]).cwiseAbs().maxCoeff());
      scale = std::max(scale, rates[s].cwiseAbs().maxCoeff());
    }
    EXPECT_LE(err, 1e-6 * std::max(1.0, scale)) << "depth " << n;
    EXPECT_EQ(tr.ambiguous_matches(), 0);
    RecordProperty("depth" + std::to_string(n) + "_rate_error", sci(err));
  }
}

// ---- Exercise 5 -----------------------------------------------------------------------------

// Integrating Theorem 3 (n = 2) with <-grad l, u_r v_r^T> held at c_r reproduces
// sigma_r(t) = eps exp(2 c_r t), and ratios grow as exp(2 (c_r - c_r') t).
TEST(Exercise5, ClosedFormSolvesTheorem3WithFixedAlignment) {
  Rng rng(71);
  const Index d = 4;
  const Mat u = random_orthogonal(rng, d), v = random_orthogonal(rng, d);
  const Vec c = (Vec(4) << 1.5, 0.7, -0.4, 0.1).finished();
  const Mat grad = -(u * c.asDiagonal() * v.transpose());  // <-grad, u_r v_r^T> = c_r
  for (const double eps : {1e-3, -1e-3}) {
    Vec sigma = Vec::Constant(d, eps);
    const double h = 1e-3;
    double err = 0.0;
    for (int s = 1; s <= 2000; ++s) {
      const Vec k1 = theorem3_rates(grad, u, v, sigma, 2);
      const Vec k2 = theorem3_rates(grad, u, v, sigma + 0.5 * h * k1, 2);
      const Vec k3 = theorem3_rates(grad, u, v, sigma + 0.5 * h * k2, 2);
      const Vec k4 = theorem3_rates(grad, u, v, sigma + h * k3, 2);
      sigma += h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4);
      for (Index r = 0; r < d; ++r) {
        const double exact = exercise5_sigma(eps, c[r], s * h);
        err = std::max(err, std::abs(sigma[r] - exact) / std::abs(exact));
      }
    }
    EXPECT_LE(err, 1e-10) << "eps " << eps;
  }
  for (const double t : {0.0, 0.5, 2.0}) {
    EXPECT_NEAR(exercise5_sigma(0.01, 1.5, t) / exercise5_sigma(0.01, 0.7, t),
                exercise5_ratio(1.5, 0.7, t), 1e-13 * exercise5_ratio(1.5, 0.7, t));
    // Exponential in t: ratio(2t) = ratio(t)^2.
    EXPECT_NEAR(exercise5_ratio(1.5, 0.7, 2 * t), std::pow(exercise5_ratio(1.5, 0.7, t), 2),
                1e-12 * exercise5_ratio(1.5, 0.7, 2 * t));
  }
  EXPECT_EQ(exercise5_sigma(0.0, 3.0, 1.0), 0.0);
}

// ---- Propositions 1 and 3 -------------------------------------------------------------------

// Proposition 3's construction for n = 3: phi below phi(0) at factors whose norm shrinks like
// eps^{1/3} (exactly sqrt(1 + (n-1) min(d_0, d_n)) ||W||^{1/n}), for d_0 >= d_n and d_0 < d_n.
TEST(Proposition3, DescentWitnessArbitrarilyCloseToTheOrigin) {
  Rng rng(81);
  for (const std::vector<Index>& dims : {std::vector<Index>{4, 5, 6, 3}, {2, 3, 2, 4}}) {
    const Index d0 = dims.front(), dn = dims.back();
    const double k = static_cast<double>(std::min(d0, dn));
    const SquareRegressionLoss loss(rng.gaussian(d0, 10, 1.0), rng.gaussian(dn, 10, 1.0));
    double prev_norm = 1e300;
    for (double eps = 1e-1; eps > 1e-9; eps *= 0.1) {
      const SaddleWitness sw = origin_descent_witness(loss, dims, eps);
      EXPECT_LT(sw.phi_witness, sw.phi_origin) << "eps " << eps;
      EXPECT_LT(sw.w_norm, eps);
      EXPECT_NEAR(end_to_end(sw.factors).norm(), sw.w_norm, 1e-12 * sw.w_norm);
      EXPECT_NEAR(sw.witness_norm, std::sqrt(1.0 + 2.0 * k) * std::cbrt(sw.w_norm),
                  1e-12 * sw.witness_norm);
      EXPECT_LT(sw.witness_norm, std::sqrt(1.0 + 2.0 * k) * std::cbrt(eps));
      EXPECT_LT(sw.witness_norm, prev_norm);
      prev_norm = sw.witness_norm;
    }
    EXPECT_LT(prev_norm, 0.01);
  }
  // The origin is stationary with zero Hessian for n = 3 (non-strict saddle), while for n = 2 the
  // curvature along (D_1, D_2) is 2 <grad l(0), D_2 D_1> (strict saddle).
  const SquareRegressionLoss loss(rng.gaussian(3, 10, 1.0), rng.gaussian(2, 10, 1.0));
  Mat g0;
  const double l0 = loss.value_and_gradient(Mat::Zero(2, 3), g0);
  for (const std::vector<Index>& dims : {std::vector<Index>{3, 4, 2}, {3, 4, 4, 2}}) {
    Objective obj(dims, loss);
    Factors zero = obj.make_like(), grads = obj.make_like();
    obj.evaluate_with_gradient(zero, grads);
    for (const auto& gj : grads) EXPECT_EQ(gj.norm(), 0.0);
    Factors d = obj.make_like();
    for (auto& dj : d) dj = rng.gaussian(dj.rows(), dj.cols(), 1.0);
    const double t = 1e-3;
    Factors plus = d, minus = d;
    for (std::size_t j = 0; j < d.size(); ++j) {
      plus[j] *= t;
      minus[j] *= -t;
    }
    const double curvature = (obj.evaluate(plus) + obj.evaluate(minus) - 2 * l0) / (t * t);
    if (dims.size() == 3) {
      EXPECT_NEAR(curvature, 2 * (g0.cwiseProduct(d[1] * d[0])).sum(), 1e-5);
    } else {
      EXPECT_LE(std::abs(curvature), 1e-8);
    }
  }
  // Bottleneck narrower than min(d_0, d_n): the construction does not apply.
  EXPECT_THROW(origin_descent_witness(loss, {3, 1, 2}, 0.1), Error);
}

// Proposition 1: A and B = A with (W_1, W_2) negated share the product, their midpoint has product
// 0, so phi((A+B)/2) = l(0) > (phi(A) + phi(B))/2.
TEST(Proposition1, NonConvexityWitness) {
  Rng rng(91);
  const SquareRegressionLoss loss(rng.gaussian(3, 10, 1.0), rng.gaussian(2, 10, 1.0));
  for (const std::vector<Index>& dims : {std::vector<Index>{3, 2}, {3, 4, 2}, {3, 3, 5, 2}}) {
    NonconvexWitness nw;
    const bool found = phi_nonconvex_witness(loss, dims, 0.1, &nw);
    if (dims.size() == 2) {
      EXPECT_FALSE(found);  // depth 1: phi = l is convex
      continue;
    }
    EXPECT_TRUE(found);
    EXPECT_EQ(nw.phi_a, nw.phi_b);
    EXPECT_EQ(nw.phi_mid, loss.value(Mat::Zero(2, 3)));
    EXPECT_GT(nw.phi_mid - 0.5 * (nw.phi_a + nw.phi_b), 0.0);
  }
  // l minimized at the origin (Y = 0): grad l(0) = 0 and no witness is produced.
  const SquareRegressionLoss flat(rng.gaussian(3, 10, 1.0), Mat::Zero(2, 10));
  EXPECT_FALSE(phi_nonconvex_witness(flat, {3, 4, 2}, 0.1));
  EXPECT_THROW(origin_descent_witness(flat, {3, 4, 4, 2}, 0.1), Error);
}

}  // namespace
}  // namespace dln
