#include "dln/dynamics/end_to_end.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace dln {
namespace {

constexpr Index kMaxMaterialized = 4096;  // d_0 d_n; Q then takes 128 MiB

void check_depth(int depth) {
  if (depth < 1) throw Error(fmt::format("end-to-end dynamics: depth must be >= 1, got {}", depth));
}

void check_same_shape(const Mat& a, const Mat& b, const char* what) {
  if (a.rows() != b.rows() || a.cols() != b.cols())
    throw Error(fmt::format("end-to-end dynamics: {} is {}x{}, expected {}x{}", what, a.rows(),
                            a.cols(), b.rows(), b.cols()));
}

void check_loss_shape(const Mat& w, const Loss& loss) {
  if (w.rows() != loss.rows() || w.cols() != loss.cols())
    throw Error(fmt::format("end-to-end dynamics: W is {}x{} but the {} loss is over {}x{}",
                            w.rows(), w.cols(), loss.name(), loss.rows(), loss.cols()));
}

void check_materializable(const Mat& w) {
  if (w.size() > kMaxMaterialized)
    throw Error(
        fmt::format("end-to-end dynamics: cannot materialize P(W) for {}x{} W (d_0 d_n = {} > {})",
                    w.rows(), w.cols(), w.size(), kMaxMaterialized));
}

// sigma^beta with the conventions of Theorem 1: beta = 0 gives 1 (identity), 0^beta = 0.
double psd_pow(double sigma, double beta) {
  if (beta == 0.0) return 1.0;
  return sigma > 0.0 ? std::pow(sigma, beta) : 0.0;
}

// Exponent 2k/n of sigma, i.e. eigenvalue power k/n of W W^T or W^T W.
double exponent(int k, int n) { return 2.0 * static_cast<double>(k) / static_cast<double>(n); }

// U diag(sigma^{2k/n}) U^T = [W W^T]^{k/n} (or [W^T W]^{k/n} with V); exactly I for k = 0.
Mat gram_power(const Mat& u, const Vec& sigma, int k, int n) {
  if (k == 0) return Mat::Identity(u.rows(), u.rows());
  Vec p(sigma.size());
  for (Index r = 0; r < sigma.size(); ++r) p(r) = psd_pow(sigma(r), exponent(k, n));
  return u * p.asDiagonal() * u.transpose();
}

}  // namespace

FullSvd full_svd(const Mat& w) {
  Eigen::BDCSVD<Mat> svd(w, Eigen::ComputeFullU | Eigen::ComputeFullV);
  const Vec& s = svd.singularValues();
  const double smax = s.size() > 0 ? s(0) : 0.0;
  const double tol = static_cast<double>(std::max(w.rows(), w.cols())) *
                     std::numeric_limits<double>::epsilon() * smax;
  FullSvd out{svd.matrixU(), svd.matrixV(), Vec::Zero(w.rows()), Vec::Zero(w.cols())};
  for (Index r = 0; r < s.size(); ++r) {
    const double sr = s(r) > tol ? s(r) : 0.0;  // numerical rank cut-off
    out.sigma_n(r) = sr;
    out.sigma_0(r) = sr;
  }
  return out;
}

Mat preconditioner_eigenvalues(const Vec& sigma_n, const Vec& sigma_0, int depth) {
  check_depth(depth);
  const int n = depth;
  // Lambda = Pn P0^T with Pn(r, k) = sigma_r^{2(n-1-k)/n}, P0(r', k) = sigma_r'^{2k/n}, k = j - 1.
  Mat pn(sigma_n.size(), n), p0(sigma_0.size(), n);
  for (int k = 0; k < n; ++k) {
    for (Index r = 0; r < sigma_n.size(); ++r)
      pn(r, k) = psd_pow(sigma_n(r), exponent(n - 1 - k, n));
    for (Index r = 0; r < sigma_0.size(); ++r) p0(r, k) = psd_pow(sigma_0(r), exponent(k, n));
  }
  return pn * p0.transpose();
}

Mat apply_preconditioner(const Mat& w, const Mat& g, int depth) {
  check_depth(depth);
  check_same_shape(g, w, "the gradient");
  if (depth == 1) return g;  // Lambda = 1: P(W) = I
  if (w.rows() == 1 || w.cols() == 1) {
    // One output (or input), the case of Claim 1: with s = ||W||_F and unit w_hat = W / s,
    // P(W) G = s^{2 - 2/n} (G + (n - 1) Pr_W(G)), Pr_W projecting onto w_hat (Eq. 3: the j = n
    // term is s^{2(n-1)/n} G, each other term s^{2(n-1)/n} times the projection).
    const double s = w.norm();
    if (s == 0) return Mat::Zero(w.rows(), w.cols());
    const double n = depth;
    const double scale = std::pow(s * s, (n - 1) / n);
    const Mat hat = w / s;
    const Mat along =
        (w.rows() == 1) ? Mat((g * hat.transpose())(0, 0) * hat) : Mat(hat * (hat.transpose() * g));
    return scale * (g + (n - 1) * along);
  }
  const FullSvd svd = full_svd(w);
  const Mat lambda = preconditioner_eigenvalues(svd.sigma_n, svd.sigma_0, depth);
  const Mat gt = svd.u.transpose() * g * svd.v;  // coordinates in the basis u_r v_r'^T
  return svd.u * lambda.cwiseProduct(gt) * svd.v.transpose();
}

Mat materialize_preconditioner(const Mat& w, int depth) {
  check_depth(depth);
  check_materializable(w);
  const Index dn = w.rows(), d0 = w.cols();
  const FullSvd svd = full_svd(w);
  Mat q = Mat::Zero(d0 * dn, d0 * dn);
  for (int k = 0; k < depth; ++k) {                                          // k = j - 1
    const Mat left = gram_power(svd.u, svd.sigma_n, k, depth);               // [W W^T]^{(j-1)/n}
    const Mat right = gram_power(svd.v, svd.sigma_0, depth - 1 - k, depth);  // [W^T W]^{(n-j)/n}
    for (Index b = 0; b < d0; ++b)
      for (Index a = 0; a < d0; ++a) q.block(a * dn, b * dn, dn, dn) += right(a, b) * left;
  }
  return q;
}

PreconditionerSpectrum preconditioner_spectrum(const Mat& w, int depth) {
  check_depth(depth);
  check_materializable(w);
  const Index dn = w.rows(), d0 = w.cols();
  const FullSvd svd = full_svd(w);
  const Mat lambda = preconditioner_eigenvalues(svd.sigma_n, svd.sigma_0, depth);
  PreconditionerSpectrum out{lambda.reshaped(), Mat(d0 * dn, d0 * dn)};
  for (Index rp = 0; rp < d0; ++rp)
    for (Index r = 0; r < dn; ++r)  // vec(u_r v_r'^T) = v_r' (x) u_r
      for (Index ip = 0; ip < d0; ++ip)
        out.eigenvectors.col(r + dn * rp).segment(ip * dn, dn) = svd.v(ip, rp) * svd.u.col(r);
  return out;
}

Mat end_to_end_velocity(const Mat& w, const Loss& loss, int depth) {
  check_depth(depth);
  check_loss_shape(w, loss);
  Mat g;
  loss.value_and_gradient(w, g);
  return -apply_preconditioner(w, g, depth);
}

LoopIntegral loop_integral(const Loss& loss, int depth, const Mat& center, const Mat& dir1,
                           const Mat& dir2, double radius, int points) {
  check_depth(depth);
  check_loss_shape(center, loss);
  check_same_shape(dir1, center, "dir1");
  check_same_shape(dir2, center, "dir2");
  if (points < 3) throw Error("end-to-end dynamics: a loop integral needs at least 3 points");
  LoopIntegral out;
  Mat grad;
  for (int k = 0; k < points; ++k) {
    const double theta = 2.0 * std::numbers::pi * k / points;
    const double c = std::cos(theta), s = std::sin(theta);
    const Mat wt = center + radius * (c * dir1 + s * dir2);
    const Mat dwt = radius * (c * dir2 - s * dir1);  // W'(theta)
    loss.value_and_gradient(wt, grad);
    const Mat g = apply_preconditioner(wt, grad, depth);  // Remark 1's g(W)
    out.value += g.cwiseProduct(dwt).sum();
    out.scale += g.norm() * dwt.norm();
  }
  const double h = 2.0 * std::numbers::pi / points;  // periodic trapezoid rule
  out.value *= h;
  out.scale *= h;
  return out;
}

double line_integral_closed_loop(const Loss& loss, int depth, const Mat& center, const Mat& dir1,
                                 const Mat& dir2, double radius, int points) {
  return loop_integral(loss, depth, center, dir1, dir2, radius, points).value;
}

CurlPlane max_curl_plane(const Loss& loss, int depth, const Mat& center) {
  check_depth(depth);
  check_loss_shape(center, loss);
  check_materializable(center);
  const Index k = center.size();
  const double h = 1e-5 * (center.norm() > 0.0 ? center.norm() : 1.0);
  Mat jac(k, k), grad, w = center;
  for (Index i = 0; i < k; ++i) {
    const double saved = w.data()[i];
    w.data()[i] = saved + h;
    loss.value_and_gradient(w, grad);
    const Mat gp = apply_preconditioner(w, grad, depth);
    w.data()[i] = saved - h;
    loss.value_and_gradient(w, grad);
    const Mat gm = apply_preconditioner(w, grad, depth);
    w.data()[i] = saved;
    jac.col(i) = (gp - gm).reshaped() / (2.0 * h);
  }
  const Mat curl = jac - jac.transpose();
  Eigen::BDCSVD<Mat> svd(curl, Eigen::ComputeThinV);
  CurlPlane out;
  out.curl = svd.singularValues()(0);
  out.jacobian_norm = jac.norm();
  const Vec e1 = svd.matrixV().col(0);
  Vec e2 = curl * e1;  // e1^T (J - J^T) e1 = 0, so e2 is orthogonal to e1
  if (out.curl > 0.0) e2 /= out.curl;
  out.dir1 = e1.reshaped(center.rows(), center.cols());
  out.dir2 = e2.reshaped(center.rows(), center.cols());
  return out;
}

Mat symmetric_factor_gradient(const Mat& w, const Loss& loss) {
  if (w.rows() != w.cols())
    throw Error(fmt::format("symmetric network: W must be square, got {}x{}", w.rows(), w.cols()));
  const Mat ws = w * w.transpose();
  check_loss_shape(ws, loss);
  Mat g;
  loss.value_and_gradient(ws, g);
  // d phi_s = <G, dW W^T + W dW^T> = <(G + G^T) W, dW>.
  return (g + g.transpose()) * w;
}

// Exercise 2. W' = -(G + G^T) W with G = grad l(W W^T), so
//   W_s' = W' W^T + W W'^T = -(G + G^T) W W^T - W W^T (G + G^T)
//        = -(G_sym W_s + W_s G_sym),
// which involves W only through W_s.
Mat symmetric_end_to_end_velocity(const Mat& ws, const Loss& loss) {
  if (ws.rows() != ws.cols())
    throw Error(
        fmt::format("symmetric network: W_s must be square, got {}x{}", ws.rows(), ws.cols()));
  check_loss_shape(ws, loss);
  Mat g;
  loss.value_and_gradient(ws, g);
  const Mat gsym = g + g.transpose();
  return -(gsym * ws + ws * gsym);
}

Mat end_to_end_discrete_step(const Mat& w, const Mat& grad, int depth, double zeta) {
  return w - zeta * apply_preconditioner(w, grad, depth);
}

}  // namespace dln
