// End-to-end dynamics (Section 2): Theorem 1, Corollary 1, Remark 1, Theorem 2's lambda_min
// bound, Claim 1's discrete step and Exercise 2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>
#include <utility>
#include <vector>

#include "dln/core/rng.hpp"
#include "dln/dynamics/end_to_end.hpp"
#include "dln/init/initializers.hpp"
#include "dln/model/network.hpp"

namespace dln {
namespace {

// Non-square both ways, and square.
const std::vector<std::pair<Index, Index>> kShapes{
    {3, 5}, {5, 3}, {4, 4}, {1, 6}, {6, 1}};  // vectors: Claim 1 fast path

Vec vec(const Mat& m) { return Eigen::Map<const Vec>(m.data(), m.size()); }

double rel(const Mat& a, const Mat& b) { return (a - b).norm() / std::max(b.norm(), 1e-300); }

SquareRegressionLoss regression(Rng& rng, Index dn, Index d0, Index m) {
  return SquareRegressionLoss(rng.gaussian(d0, m, 1.0), rng.gaussian(dn, m, 1.0));
}

SensingLoss sensing(Rng& rng, Index dn, Index d0, Index m) {
  return SensingLoss(dn, d0, rng.gaussian(m, dn * d0, 1.0), rng.gaussian(m, 1, 1.0));
}

// Test matrices: full rank, rank deficient (product through a rank-2 bottleneck) and one with an
// exactly zero row.
std::vector<Mat> test_matrices(Rng& rng, Index rows, Index cols) {
  std::vector<Mat> out{rng.gaussian(rows, cols, 1.0),
                       rng.gaussian(rows, 2, 1.0) * rng.gaussian(2, cols, 1.0),
                       rng.gaussian(rows, cols, 1.0)};
  if (rows > 1) out[2].row(rows - 1).setZero();  // a 1 x d W keeps its only row
  return out;
}

// Independent reference for [M]^beta, M PSD: symmetric eigensolver, eigenvalues below
// 1e-12 lambda_max (rounding of the zero ones) set to 0, beta = 0 giving I.
Mat psd_power_ref(const Mat& m, double beta) {
  if (beta == 0.0) return Mat::Identity(m.rows(), m.cols());
  Eigen::SelfAdjointEigenSolver<Mat> es(m);
  Vec l = es.eigenvalues();
  const double cut = 1e-12 * l.cwiseAbs().maxCoeff();
  for (Index i = 0; i < l.size(); ++i) l(i) = l(i) > cut ? std::pow(l(i), beta) : 0.0;
  return es.eigenvectors() * l.asDiagonal() * es.eigenvectors().transpose();
}

// Eq. 3 term by term: sum_j [W W^T]^{(j-1)/n} G [W^T W]^{(n-j)/n}.
Mat eq3_reference(const Mat& w, const Mat& g, int n) {
  Mat out = Mat::Zero(w.rows(), w.cols());
  for (int j = 1; j <= n; ++j)
    out += psd_power_ref(w * w.transpose(), static_cast<double>(j - 1) / n) * g *
           psd_power_ref(w.transpose() * w, static_cast<double>(n - j) / n);
  return out;
}

// (a) Corollary 1: Q vec(G) = vec(U (Lambda o U^T G V) V^T); full-rank, rank-deficient and
// zero-row W, non-square both ways, depth 1..4.
TEST(EndToEnd, MaterializedPreconditionerMatchesMatrixFree) {
  Rng rng(11);
  double worst = 0, worst_ref = 0;
  for (const auto& [rows, cols] : kShapes) {
    for (const Mat& w : test_matrices(rng, rows, cols)) {
      const Mat g = rng.gaussian(rows, cols, 1.0);
      for (int n = 1; n <= 4; ++n) {
        const Mat q = materialize_preconditioner(w, n);
        ASSERT_EQ(q.rows(), rows * cols);
        EXPECT_LT(rel(q, q.transpose()), 1e-14);
        const Mat pg = apply_preconditioner(w, g, n);
        const double err = (q * vec(g) - vec(pg)).norm() / vec(pg).norm();
        EXPECT_LT(err, 1e-12) << rows << "x" << cols << " n=" << n;
        worst = std::max(worst, err);
        // Independent route: Gram matrices' eigendecompositions, summed as in Eq. 3.
        const double err_ref = rel(pg, eq3_reference(w, g, n));
        EXPECT_LT(err_ref, 1e-10) << rows << "x" << cols << " n=" << n;
        worst_ref = std::max(worst_ref, err_ref);
      }
    }
  }
  std::printf("Q vec(G) vs matrix-free: %.2e; matrix-free vs Eq. 3 reference: %.2e\n", worst,
              worst_ref);
}

TEST(EndToEnd, ZeroMatrixIsStationaryForDepthTwoAndMore) {
  Rng rng(3);
  const Mat g = rng.gaussian(3, 4, 1.0);
  EXPECT_TRUE(apply_preconditioner(Mat::Zero(3, 4), g, 1) == g);
  for (int n = 2; n <= 4; ++n)
    EXPECT_EQ(apply_preconditioner(Mat::Zero(3, 4), g, n).norm(), 0.0);  // Lambda = 0
}

// (b) Corollary 1's eigen-characterization against Eigen's symmetric eigensolver on Q.
TEST(EndToEnd, ClosedFormSpectrumMatchesEigensolver) {
  Rng rng(12);
  double worst_val = 0, worst_vec = 0;
  for (const auto& [rows, cols] : kShapes) {
    for (const Mat& w : test_matrices(rng, rows, cols)) {
      for (int n = 1; n <= 4; ++n) {
        const Mat q = materialize_preconditioner(w, n);
        const PreconditionerSpectrum spec = preconditioner_spectrum(w, n);
        const Index k = rows * cols;
        ASSERT_EQ(spec.eigenvalues.size(), k);
        // Orthonormal eigenvectors vec(u_r v_r'^T).
        EXPECT_LT((spec.eigenvectors.transpose() * spec.eigenvectors - Mat::Identity(k, k)).norm(),
                  1e-13);
        Eigen::SelfAdjointEigenSolver<Mat> es(q, Eigen::EigenvaluesOnly);
        Vec closed = spec.eigenvalues;
        std::sort(closed.begin(), closed.end());
        const double top = closed.maxCoeff();
        const double err_val = (es.eigenvalues() - closed).cwiseAbs().maxCoeff() / top;
        EXPECT_LT(err_val, 1e-10) << rows << "x" << cols << " n=" << n;
        // Q o_k = lambda_k o_k for every closed-form pair.
        const double err_vec =
            (q * spec.eigenvectors - spec.eigenvectors * spec.eigenvalues.asDiagonal()).norm() /
            q.norm();
        EXPECT_LT(err_vec, 1e-12) << rows << "x" << cols << " n=" << n;
        worst_val = std::max(worst_val, err_val);
        worst_vec = std::max(worst_vec, err_vec);
      }
    }
  }
  std::printf("eigenvalues (sorted, / lambda_max): %.2e; ||Q O - O Lambda|| / ||Q||: %.2e\n",
              worst_val, worst_vec);
}

TEST(EndToEnd, EigenvalueFormulaAndExponentConventions) {
  // Lambda(r, r') = sum_j sigma_r^{2(n-j)/n} sigma_r'^{2(j-1)/n}, with 0^0 = 1.
  Vec sn(3), s0(2);
  sn << 4.0, 1.0, 0.0;
  s0 << 9.0, 0.0;
  const Mat l = preconditioner_eigenvalues(sn, s0, 2);  // sigma_r + sigma_r' for n = 2
  Mat expect(3, 2);
  expect << 13.0, 4.0, 10.0, 1.0, 9.0, 0.0;
  EXPECT_LT((l - expect).norm(), 1e-14);
  const Mat l3 = preconditioner_eigenvalues(sn, s0, 3);
  // (r, r') = (0, 0): 4^{4/3} + 4^{2/3} 9^{2/3} + 9^{4/3}; (2, 1): both zero -> 0.
  EXPECT_NEAR(l3(0, 0),
              std::pow(4.0, 4.0 / 3) + std::pow(4.0, 2.0 / 3) * std::pow(9.0, 2.0 / 3) +
                  std::pow(9.0, 4.0 / 3),
              1e-12);
  EXPECT_EQ(l3(2, 1), 0.0);
  EXPECT_NEAR(l3(2, 0), std::pow(9.0, 4.0 / 3), 1e-12);  // only j = n survives
  EXPECT_TRUE((preconditioner_eigenvalues(sn, s0, 1).array() == 1.0).all());
}

// Product rule (Eq. 4): sum_j W_{n:j+1} (-d phi / d W_j) W_{j-1:1}.
Mat product_rule_velocity(const Factors& w, const Loss& loss) {
  const auto dims = dims_of(w);
  const int n = static_cast<int>(w.size());
  Objective obj(dims, loss);
  Factors g = obj.make_like();
  obj.evaluate_with_gradient(w, g);
  Mat v = Mat::Zero(dims.back(), dims.front());
  for (int j = 1; j <= n; ++j) {
    Mat left = Mat::Identity(dims.back(), dims.back());  // W_{n:j+1}
    for (int i = n; i > j; --i) left = left * w[i - 1];
    Mat right = Mat::Identity(dims.front(), dims.front());  // W_{j-1:1}
    for (int i = 1; i < j; ++i) right = w[i - 1] * right;
    v -= left * g[j - 1] * right;
  }
  return v;
}

// (c) Theorem 1: with balanced factors the factor-level velocity equals Eq. 3 at W_{n:1};
// with unbalanced (Gaussian) factors it does not.
TEST(EndToEnd, TheoremOneMatchesFactorVelocityWhenBalanced) {
  Rng rng(13);
  const std::vector<std::vector<Index>> all_dims{{5, 3},          {5, 6, 3}, {5, 7, 6, 3},
                                                 {5, 8, 7, 6, 3}, {3, 6, 5}, {4, 6, 5, 4}};
  double worst_balanced = 0, best_unbalanced = 1e300;
  for (const auto& dims : all_dims) {
    const int n = static_cast<int>(dims.size()) - 1;
    const Index d0 = dims.front(), dn = dims.back();
    for (int kind = 0; kind < 2; ++kind) {
      const SquareRegressionLoss reg = regression(rng, dn, d0, 9);
      const SensingLoss sen = sensing(rng, dn, d0, 2 * dn * d0);
      const Loss& loss = kind == 0 ? static_cast<const Loss&>(reg) : sen;
      const Factors balanced = balanced_factors(dims, rng.gaussian(dn, d0, 1.0));
      const double err = rel(end_to_end_velocity(end_to_end(balanced), loss, n),
                             product_rule_velocity(balanced, loss));
      EXPECT_LT(err, 1e-10) << "n=" << n << " " << loss.name();
      worst_balanced = std::max(worst_balanced, err);
      if (n == 1) continue;
      Factors gaussian;
      for (int j = 1; j <= n; ++j) gaussian.push_back(rng.gaussian(dims[j], dims[j - 1], 0.7));
      const double off = rel(end_to_end_velocity(end_to_end(gaussian), loss, n),
                             product_rule_velocity(gaussian, loss));
      EXPECT_GT(off, 1e-3) << "n=" << n << " " << loss.name();
      best_unbalanced = std::min(best_unbalanced, off);
    }
  }
  std::printf("balanced: worst rel. error %.2e; unbalanced: smallest rel. error %.2e\n",
              worst_balanced, best_unbalanced);
}

// (d) Depth 1: P(W) = I.
TEST(EndToEnd, DepthOneIsPlainGradient) {
  Rng rng(14);
  for (const Mat& w : test_matrices(rng, 3, 5)) {
    const Mat g = rng.gaussian(3, 5, 1.0);
    EXPECT_LE((apply_preconditioner(w, g, 1) - g).norm(), 1e-14 * g.norm());
    EXPECT_LE((end_to_end_discrete_step(w, g, 1, 0.3) - (w - 0.3 * g)).norm(), 1e-14 * w.norm());
    EXPECT_LT((materialize_preconditioner(w, 1) - Mat::Identity(15, 15)).norm(), 1e-14);
  }
  const SquareRegressionLoss loss = regression(rng, 3, 5, 8);
  const Mat w = rng.gaussian(3, 5, 1.0);
  Mat g;
  loss.value_and_gradient(w, g);
  EXPECT_LE((end_to_end_velocity(w, loss, 1) + g).norm(), 1e-14 * g.norm());
}

// Claim 1: W - zeta P(W) grad equals the vectorized update, and is a descent step (P is PSD).
TEST(EndToEnd, DiscreteStepIsPreconditionedDescent) {
  Rng rng(15);
  const SquareRegressionLoss loss = regression(rng, 3, 4, 10);
  const Mat w = rng.gaussian(3, 4, 1.0);
  Mat g;
  const double l0 = loss.value_and_gradient(w, g);
  for (int n = 2; n <= 4; ++n) {
    const Mat step = end_to_end_discrete_step(w, g, n, 1e-3);
    const Vec expect = vec(w) - 1e-3 * materialize_preconditioner(w, n) * vec(g);
    EXPECT_LT((vec(step) - expect).norm() / expect.norm(), 1e-14);
    EXPECT_LT(loss.value(step), l0);
  }
}

// Gaussian singular vectors, singular values evenly spaced from 2 down to 1.
Mat conditioned(Rng& rng, Index rows, Index cols) {
  Eigen::JacobiSVD<Mat> svd(rng.gaussian(rows, cols, 1.0),
                            Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vec s = Vec::LinSpaced(svd.singularValues().size(), 2.0, 1.0);
  return svd.matrixU() * s.asDiagonal() * svd.matrixV().transpose();
}

// (e) Remark 1: the loop integral of g = P(W) grad l vanishes for n = 1 (gradient field) and
// not for n = 2..4 (no f with grad f = g exists). Random planes give |I| / scale anywhere in
// 1e-5..1e-2 (the curl projected on a random plane), so the n >= 2 loops use the plane of
// largest curl, where Stokes' theorem also fixes the small-loop value pi rho^2 curl.
TEST(EndToEnd, RemarkOneLoopIntegral) {
  Rng rng(16);
  double worst_one = 0, worst_curl_one = 0, least_ratio = 1e300, worst_stokes = 0;
  for (const auto& [rows, cols] : std::vector<std::pair<Index, Index>>{{3, 3}, {2, 4}, {4, 2}}) {
    for (int trial = 0; trial < 4; ++trial) {
      const SquareRegressionLoss loss = regression(rng, rows, cols, 12);
      const Mat c = conditioned(rng, rows, cols);
      const Mat d1 = rng.gaussian(rows, cols, 1.0), d2 = rng.gaussian(rows, cols, 1.0);
      const LoopIntegral one = loop_integral(loss, 1, c, d1, d2, 0.8, 128);
      EXPECT_LT(std::abs(one.value) / one.scale, 1e-10);
      worst_one = std::max(worst_one, std::abs(one.value) / one.scale);
      const CurlPlane flat = max_curl_plane(loss, 1, c);  // Hessian: symmetric Jacobian
      EXPECT_LT(flat.curl / flat.jacobian_norm, 1e-8);
      worst_curl_one = std::max(worst_curl_one, flat.curl / flat.jacobian_norm);
      // Spectral norm of the offset <= rho < sigma_min(c) = 1: W stays full rank on the loop, so
      // g is analytic there and the trapezoid rule converges spectrally.
      const double rho = 0.5;
      for (int n = 2; n <= 4; ++n) {
        const CurlPlane p = max_curl_plane(loss, n, c);
        EXPECT_LT(std::abs((p.dir1.cwiseProduct(p.dir2)).sum()), 1e-12);
        const LoopIntegral li = loop_integral(loss, n, c, p.dir1, p.dir2, rho, 128);
        const double ratio = std::abs(li.value) / li.scale;
        EXPECT_GT(ratio, 1e-3) << rows << "x" << cols << " n=" << n;
        least_ratio = std::min(least_ratio, ratio);
        // Converged quadrature: doubling the nodes changes the value by far less than itself.
        const LoopIntegral fine = loop_integral(loss, n, c, p.dir1, p.dir2, rho, 256);
        EXPECT_LT(std::abs(fine.value - li.value), 1e-9 * std::abs(li.value)) << "n=" << n;
        // Stokes: a small loop encloses pi rho^2 curl.
        const double small = 1e-2;
        const double stokes = std::numbers::pi * small * small * p.curl;
        const double err =
            std::abs(loop_integral(loss, n, c, p.dir1, p.dir2, small, 64).value - stokes) / stokes;
        EXPECT_LT(err, 1e-3) << rows << "x" << cols << " n=" << n;
        worst_stokes = std::max(worst_stokes, err);
      }
    }
  }
  std::printf(
      "n=1: |I|/scale <= %.2e, curl/||J|| <= %.2e; n=2..4 curl plane: |I|/scale >= %.2e, "
      "Stokes rel. error <= %.2e\n",
      worst_one, worst_curl_one, least_ratio, worst_stokes);
}

// PSD power M^p by a symmetric eigendecomposition (M^0 = I, 0^p = 0): independent of the SVD
// that apply_preconditioner uses.
Mat psd_power(const Mat& m, double p) {
  if (p == 0) return Mat::Identity(m.rows(), m.cols());
  Eigen::SelfAdjointEigenSolver<Mat> es(m);
  Vec e = es.eigenvalues();
  const double cut = 1e-12 * std::max(e.maxCoeff(), 0.0);
  for (Index k = 0; k < e.size(); ++k) e(k) = e(k) > cut ? std::pow(e(k), p) : 0.0;
  return es.eigenvectors() * e.asDiagonal() * es.eigenvectors().transpose();
}

// Remark 1's loop integral against (a) g(W) = sum_j [W W^T]^{(j-1)/n} G [W^T W]^{(n-j)/n} from
// eigendecompositions, integrated by composite Simpson in theta, on random planes for
// n = 1..4; (b) Green's theorem on a 1x2 W with l = 1/2 ||W - Lambda||^2, where
// g = r^a (G + (n-1) <G, v> v), v = W / r, a = 2(n-1)/n, has the closed-form curl
// (n-1)(n-2)/n r^{a-2} (l2 x - l1 y): zero for n = 1, 2, not for n >= 3.
TEST(EndToEnd, LoopIntegralMatchesIndependentComputations) {
  Rng rng(31);
  for (const auto& [rows, cols] : std::vector<std::pair<Index, Index>>{{3, 3}, {2, 4}, {4, 2}}) {
    const SquareRegressionLoss loss = regression(rng, rows, cols, 12);
    const Mat c = conditioned(rng, rows, cols);  // sigma in [1, 2]; offsets <= 0.5 sqrt(2) < 1
    Mat d1 = rng.gaussian(rows, cols, 1.0), d2 = rng.gaussian(rows, cols, 1.0);
    d1 /= d1.norm();
    d2 /= d2.norm();
    const double rho = 0.5;
    for (int n = 1; n <= 4; ++n) {
      auto integrand = [&](double theta) {
        const Mat w = c + rho * (std::cos(theta) * d1 + std::sin(theta) * d2);
        const Mat dw = rho * (std::cos(theta) * d2 - std::sin(theta) * d1);
        Mat grad;
        loss.value_and_gradient(w, grad);
        Mat g = Mat::Zero(rows, cols);
        for (int j = 1; j <= n; ++j)
          g += psd_power(w * w.transpose(), double(j - 1) / n) * grad *
               psd_power(w.transpose() * w, double(n - j) / n);
        return g.cwiseProduct(dw).sum();
      };
      const int intervals = 400;  // even
      const double h = 2 * std::numbers::pi / intervals;
      double simpson = integrand(0) + integrand(2 * std::numbers::pi);
      for (int k = 1; k < intervals; ++k) simpson += (k % 2 ? 4 : 2) * integrand(k * h);
      simpson *= h / 3;
      const LoopIntegral li = loop_integral(loss, n, c, d1, d2, rho, 128);
      EXPECT_LT(std::abs(li.value - simpson), 1e-10 * li.scale)
          << rows << "x" << cols << " n=" << n << ": " << li.value << " vs " << simpson;
    }
  }
  // (b) 1x2: X = sqrt(2) I, Y = Lambda X gives 1/(2m) ||W X - Y||^2 = 1/2 ||W - Lambda||^2.
  const double l1 = 0.7, l2 = -0.4;
  const Mat x = std::sqrt(2.0) * Mat::Identity(2, 2);
  const SquareRegressionLoss loss(x, (Mat(1, 2) << l1, l2).finished() * x);
  const Mat center = (Mat(1, 2) << 1.0, 0.5).finished();
  const Mat e1 = (Mat(1, 2) << 1.0, 0.0).finished(), e2 = (Mat(1, 2) << 0.0, 1.0).finished();
  const double rho = 0.6;  // the disk stays clear of W = 0
  for (int n = 1; n <= 4; ++n) {
    const double a = 2.0 * (n - 1) / n, kappa = (n - 1.0) * (n - 2.0) / n;
    // Disk integral of the curl: Simpson in the radius (200 intervals), trapezoid in the angle.
    const int ns = 200, na = 64;
    double green = 0;
    for (int i = 0; i <= ns; ++i) {
      const double s = rho * i / ns;
      double ring = 0;
      for (int k = 0; k < na; ++k) {
        const double psi = 2 * std::numbers::pi * k / na;
        const double px = 1.0 + s * std::cos(psi), py = 0.5 + s * std::sin(psi);
        ring += kappa * std::pow(std::hypot(px, py), a - 2) * (l2 * px - l1 * py);
      }
      green += (i == 0 || i == ns ? 1 : i % 2 ? 4 : 2) * s * ring * (2 * std::numbers::pi / na);
    }
    green *= rho / ns / 3;
    const LoopIntegral li = loop_integral(loss, n, center, e1, e2, rho, 128);
    if (n <= 2) {
      EXPECT_LT(std::abs(li.value), 1e-13 * li.scale) << "n=" << n;
    } else {
      EXPECT_GT(std::abs(green), 1e-2 * li.scale) << "n=" << n;
      EXPECT_LT(std::abs(li.value - green), 1e-9 * std::abs(green))
          << "n=" << n << ": " << li.value << " vs " << green;
    }
  }
}

// (f) Exercise 2: gradient of phi_s(W) = l(W W^T) and the self-contained W_s dynamics.
TEST(EndToEnd, ExerciseTwoSymmetricNetwork) {
  Rng rng(17);
  const Index d = 4;
  const SquareRegressionLoss loss = regression(rng, d, d, 10);
  const Mat w0 = rng.gaussian(d, d, 0.6);
  // Gradient vs central differences of phi_s.
  const Mat g = symmetric_factor_gradient(w0, loss);
  const double h = 1e-6;
  Mat fd(d, d);
  for (Index k = 0; k < w0.size(); ++k) {
    Mat wp = w0, wm = w0;
    wp.data()[k] += h;
    wm.data()[k] -= h;
    fd.data()[k] = (loss.value(wp * wp.transpose()) - loss.value(wm * wm.transpose())) / (2 * h);
  }
  const double grad_err = rel(fd, g);
  EXPECT_LT(grad_err, 1e-7);
  // W(+-tau) along W' = -grad phi_s (RK4, 4 substeps), then central difference of W W^T.
  auto flow = [&](double tau) {
    Mat w = w0;
    const double dt = tau / 4;
    for (int s = 0; s < 4; ++s) {
      const Mat k1 = -symmetric_factor_gradient(w, loss);
      const Mat k2 = -symmetric_factor_gradient(w + 0.5 * dt * k1, loss);
      const Mat k3 = -symmetric_factor_gradient(w + 0.5 * dt * k2, loss);
      const Mat k4 = -symmetric_factor_gradient(w + dt * k3, loss);
      w += dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4);
    }
    return Mat(w * w.transpose());
  };
  const double tau = 1e-5;
  const Mat fd_ws = (flow(tau) - flow(-tau)) / (2 * tau);
  const double vel_err = rel(symmetric_end_to_end_velocity(w0 * w0.transpose(), loss), fd_ws);
  EXPECT_LT(vel_err, 1e-6);
  // Self-contained: W and W Q (Q orthogonal) share W_s and, by the product rule, W_s'.
  const Mat q = Eigen::HouseholderQR<Mat>(rng.gaussian(d, d, 1.0)).householderQ();
  const Mat w1 = w0 * q;
  const Mat v1 = -symmetric_factor_gradient(w1, loss);
  const double rot_err = rel(v1 * w1.transpose() + w1 * v1.transpose(),
                             symmetric_end_to_end_velocity(w0 * w0.transpose(), loss));
  EXPECT_LT(rot_err, 1e-12);
  std::printf("grad phi_s vs FD: %.2e; dW_s/dt vs FD along the flow: %.2e; W Q: %.2e\n", grad_err,
              vel_err, rot_err);
}

// (g) Theorem 2's proof: lambda_min(P(W)) >= sigma_min(W)^{2(n-1)/n}; by Corollary 1 equality
// holds for non-square W (the (r, r') pairs with sigma_r' = 0 leave only j = 1), and
// lambda_min = n sigma_min^{2(n-1)/n} for square W.
TEST(EndToEnd, LambdaMinBoundsTheoremTwo) {
  Rng rng(18);
  double worst_gap = 0;
  for (const auto& [rows, cols] : kShapes) {
    for (int trial = 0; trial < 5; ++trial) {
      const Mat w = rng.gaussian(rows, cols, 1.0);
      const double smin = Eigen::JacobiSVD<Mat>(w).singularValues().minCoeff();
      for (int n = 1; n <= 4; ++n) {
        Eigen::SelfAdjointEigenSolver<Mat> es(materialize_preconditioner(w, n),
                                              Eigen::EigenvaluesOnly);
        const double lmin = es.eigenvalues().minCoeff();
        const double bound = std::pow(smin, 2.0 * (n - 1) / n);
        EXPECT_GE(lmin, bound * (1 - 1e-10)) << "n=" << n;
        const double expect = rows == cols ? n * bound : bound;
        EXPECT_NEAR(lmin, expect, 1e-10 * es.eigenvalues().maxCoeff()) << "n=" << n;
        worst_gap = std::max(worst_gap, std::abs(lmin - expect) / es.eigenvalues().maxCoeff());
      }
    }
  }
  std::printf("lambda_min vs closed form (/ lambda_max): %.2e\n", worst_gap);
}

TEST(EndToEnd, RejectsBadArguments) {
  Rng rng(19);
  const Mat w = rng.gaussian(3, 4, 1.0);
  EXPECT_THROW(apply_preconditioner(w, w, 0), Error);
  EXPECT_THROW(apply_preconditioner(w, Mat(Mat::Zero(4, 3)), 2), Error);
  EXPECT_THROW(materialize_preconditioner(Mat::Zero(65, 65), 2), Error);
  EXPECT_THROW(preconditioner_spectrum(Mat::Zero(65, 65), 2), Error);
  const SquareRegressionLoss loss = regression(rng, 3, 3, 5);
  EXPECT_THROW(end_to_end_velocity(w, loss, 2), Error);
  EXPECT_THROW(symmetric_factor_gradient(w, loss), Error);
  EXPECT_THROW(loop_integral(loss, 2, Mat::Zero(3, 3), Mat::Zero(3, 3), Mat::Zero(3, 3), 1.0, 2),
               Error);
}

}  // namespace
}  // namespace dln
