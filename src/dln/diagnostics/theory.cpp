#include "dln/diagnostics/theory.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <tuple>

namespace dln {

namespace {

double sigma_min(const Mat& m) {
  if (m.size() == 0) throw Error("sigma_min: empty matrix");
  return Eigen::BDCSVD<Mat>(m).singularValues().minCoeff();
}

void require_positive(double x, const char* what) {
  if (!(x > 0) || !std::isfinite(x)) throw Error(fmt::format("{}: must be > 0, got {}", what, x));
}

void require_depth(int depth) {
  if (depth < 1) throw Error(fmt::format("depth: must be >= 1, got {}", depth));
}

// delta^{2(n-1)/n}, the factor lambda_min(P) >= sigma_min^{2(n-1)/n} of Theorem 2's proof.
double preconditioner_floor(double delta, int depth) {
  const double n = depth;
  return std::pow(delta, 2.0 * (n - 1.0) / n);
}

// Closest matrix with orthonormal columns to `a` (orthogonal Procrustes / polar factor).
Mat polar(const Mat& a) {
  Eigen::BDCSVD<Mat> svd(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
  return svd.matrixU() * svd.matrixV().transpose();
}

}  // namespace

// ---- Definition 3 / Example 1 / Exercise 3 --------------------------------------------------

Mat whitened_target(const Mat& x, const Mat& y) {
  if (x.cols() != y.cols() || x.cols() == 0)
    throw Error(fmt::format("whitened_target: X has {} examples, Y has {}", x.cols(), y.cols()));
  return y * x.transpose() / static_cast<double>(x.cols());
}

bool is_whitened(const Mat& x, double tol) {
  if (x.cols() == 0) return false;
  const Mat cov = x * x.transpose() / static_cast<double>(x.cols());
  return (cov - Mat::Identity(x.rows(), x.rows())).cwiseAbs().maxCoeff() <= tol;
}

double deficiency_margin_whitened(const Mat& w, const Mat& lambda_yx) {
  if (w.rows() != lambda_yx.rows() || w.cols() != lambda_yx.cols())
    throw Error(fmt::format("deficiency_margin_whitened: W is {}x{}, Lambda_yx is {}x{}", w.rows(),
                            w.cols(), lambda_yx.rows(), lambda_yx.cols()));
  return sigma_min(lambda_yx) - (w - lambda_yx).norm();
}

double distance_to_rank_deficient(const Mat& w, double delta) {
  if (!(delta >= 0)) throw Error(fmt::format("delta: must be >= 0, got {}", delta));
  return std::max(0.0, sigma_min(w) - delta);
}

Mat closest_with_sigma_min(const Mat& w, double delta) {
  if (!(delta >= 0)) throw Error(fmt::format("delta: must be >= 0, got {}", delta));
  if (w.size() == 0) throw Error("closest_with_sigma_min: empty matrix");
  Eigen::BDCSVD<Mat> svd(w, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Index last = svd.singularValues().size() - 1;  // descending: the smallest
  const double s = svd.singularValues()[last];
  if (s <= delta) return w;
  return w - (s - delta) * svd.matrixU().col(last) * svd.matrixV().col(last).transpose();
}

// ---- Theorem 2 / Remark 2 -------------------------------------------------------------------

double theorem2_time_bound(double phi0_minus_phistar, double epsilon, double alpha, double delta,
                           int depth) {
  require_positive(epsilon, "epsilon");
  require_positive(alpha, "alpha");
  require_positive(delta, "delta");
  require_depth(depth);
  if (phi0_minus_phistar <= epsilon) return 0.0;
  return std::log(phi0_minus_phistar / epsilon) /
         (2.0 * alpha * preconditioner_floor(delta, depth));
}

double Remark2Thresholds::iterations(double phi0, double epsilon, double eta) const {
  require_positive(epsilon, "epsilon");
  require_positive(eta, "eta");
  if (phi0 <= epsilon) return 0.0;
  return std::log(phi0 / epsilon) / (eta * preconditioner_floor(delta, depth));
}

Remark2Thresholds remark2_thresholds(const Mat& lambda_yx, double delta, int depth) {
  require_positive(delta, "delta");
  require_depth(depth);
  const double norm = lambda_yx.norm();
  require_positive(norm, "||Lambda_yx||_F");
  const double n = depth, n3 = n * n * n;
  Remark2Thresholds r;
  r.delta = delta;
  r.depth = depth;
  r.max_unbalancedness = delta * delta / (256.0 * n3 * std::pow(norm, 2.0 * (n - 1.0) / n));
  r.max_step =
      std::pow(delta, (4.0 * n - 2.0) / n) / (6144.0 * n3 * std::pow(norm, (6.0 * n - 4.0) / n));
  return r;
}

// ---- Definition 4 / Theorem 3 / Lemma 2 -----------------------------------------------------

AnalyticSvdTracker::AnalyticSvdTracker(double cluster_rtol, double ambiguity_threshold)
    : cluster_rtol_(cluster_rtol), ambiguity_threshold_(ambiguity_threshold) {}

void AnalyticSvdTracker::update(double t, const Mat& w) {
  if (w.size() == 0) throw Error("AnalyticSvdTracker: empty matrix");
  if (!times_.empty()) {
    if (!(t > times_.back()))
      throw Error(fmt::format("AnalyticSvdTracker: time {} does not follow {}", t, times_.back()));
    if (w.rows() != u_.rows() || w.cols() != v_.rows())
      throw Error(fmt::format("AnalyticSvdTracker: W is {}x{}, tracking {}x{}", w.rows(), w.cols(),
                              u_.rows(), v_.rows()));
  }
  Eigen::BDCSVD<Mat> svd(w, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vec& s = svd.singularValues();  // descending
  const Mat& un = svd.matrixU();
  const Mat& vn = svd.matrixV();
  const Index k = s.size();
  times_.push_back(t);
  if (sigma_history_.empty()) {
    u_ = un;
    v_ = vn;
    sigma_ = s;
    sigma_history_.push_back(sigma_);
    return;
  }

  // 1. Clusters of (nearly) equal singular values; the zero cluster comes last.
  const double tol = cluster_rtol_ * s[0];
  std::vector<std::vector<Index>> clusters;
  std::vector<Index> zero;
  for (Index i = 0; i < k; ++i) {
    if (s[i] <= tol)
      zero.push_back(i);
    else if (!clusters.empty() && s[clusters.back().back()] - s[i] <= tol)
      clusters.back().push_back(i);
    else
      clusters.push_back({i});
  }
  const Index nonzero = k - static_cast<Index>(zero.size());  // indices 0..nonzero-1
  const Mat u_nz = un.leftCols(nonzero), v_nz = vn.leftCols(nonzero);
  // Previous vectors projected on the complement of the new nonzero components.
  const Mat u_perp = u_ - u_nz * (u_nz.transpose() * u_);
  const Mat v_perp = v_ - v_nz * (v_nz.transpose() * v_);
  const bool has_zero = !zero.empty();
  if (has_zero) clusters.push_back(zero);
  const std::size_t nc = clusters.size();

  // 2. Greedy matching by overlap, largest first.
  std::vector<std::tuple<double, std::size_t, Index>> pairs;
  for (std::size_t c = 0; c < nc; ++c) {
    const bool is_zero = has_zero && c + 1 == nc;
    for (Index b = 0; b < k; ++b) {
      double score;
      if (is_zero) {
        score = 0.5 * (u_perp.col(b).norm() + v_perp.col(b).norm());
      } else {
        double su = 0, sv = 0;
        for (Index i : clusters[c]) {
          su += std::pow(un.col(i).dot(u_.col(b)), 2);
          sv += std::pow(vn.col(i).dot(v_.col(b)), 2);
        }
        score = 0.5 * (std::sqrt(su) + std::sqrt(sv));
      }
      pairs.emplace_back(score, c, b);
    }
  }
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return std::get<0>(a) > std::get<0>(b); });
  std::vector<std::vector<Index>> matched(nc);
  std::vector<bool> taken(static_cast<std::size_t>(k), false);
  for (const auto& [score, c, b] : pairs) {
    if (taken[b] || matched[c].size() == clusters[c].size()) continue;
    taken[b] = true;
    matched[c].push_back(b);
    if (score < ambiguity_threshold_) ++ambiguous_;
  }

  // 3. Basis inside each cluster closest to the matched previous vectors.
  Mat u_new(u_.rows(), k), v_new(v_.rows(), k);
  for (std::size_t c = 0; c < nc; ++c) {
    const auto& idx = clusters[c];
    const auto& prev = matched[c];
    const Index p = static_cast<Index>(idx.size());
    Mat uc(u_.rows(), p), vc(v_.rows(), p);
    if (has_zero && c + 1 == nc) {
      Mat up(u_.rows(), p), vp(v_.rows(), p);
      for (Index j = 0; j < p; ++j) {
        up.col(j) = u_perp.col(prev[j]);
        vp.col(j) = v_perp.col(prev[j]);
      }
      uc = polar(up);
      vc = polar(vp);
    } else {
      Mat ub(u_.rows(), p), vb(v_.rows(), p);
      for (Index j = 0; j < p; ++j) {
        uc.col(j) = un.col(idx[j]);
        vc.col(j) = vn.col(idx[j]);
        ub.col(j) = u_.col(prev[j]);
        vb.col(j) = (sigma_[prev[j]] < 0 ? -1.0 : 1.0) * v_.col(prev[j]);
      }
      if (p > 1) {
        const Mat r = polar(uc.transpose() * ub + vc.transpose() * vb);
        uc = uc * r;
        vc = vc * r;
      }
    }
    for (Index j = 0; j < p; ++j) {
      u_new.col(prev[j]) = uc.col(j);
      v_new.col(prev[j]) = vc.col(j);
    }
  }

  // 4. Signs: u continuous, then v continuous, sigma carries the sign.
  for (Index b = 0; b < k; ++b) {
    if (u_new.col(b).dot(u_.col(b)) < 0) {
      u_new.col(b) *= -1.0;
      v_new.col(b) *= -1.0;
    }
    if (v_new.col(b).dot(v_.col(b)) < 0) v_new.col(b) *= -1.0;
    sigma_[b] = u_new.col(b).dot(w * v_new.col(b));
  }
  u_ = std::move(u_new);
  v_ = std::move(v_new);
  sigma_history_.push_back(sigma_);
}

Vec theorem3_rates(const Mat& grad_l, const Mat& u, const Mat& v, const Vec& sigma, int depth) {
  require_depth(depth);
  const Index k = sigma.size();
  if (u.cols() < k || v.cols() < k || u.rows() != grad_l.rows() || v.rows() != grad_l.cols())
    throw Error(fmt::format("theorem3_rates: grad is {}x{}, u {}x{}, v {}x{}, {} values",
                            grad_l.rows(), grad_l.cols(), u.rows(), u.cols(), v.rows(), v.cols(),
                            k));
  const double n = depth;
  Vec rates(k);
  for (Index r = 0; r < k; ++r) {
    const double align = -u.col(r).dot(grad_l * v.col(r));  // <-grad l, u_r v_r^T>
    rates[r] = std::pow(sigma[r] * sigma[r], 1.0 - 1.0 / n) * n * align;
  }
  return rates;
}

int determinant_sign(const Mat& w) {
  if (w.rows() != w.cols() || w.size() == 0)
    throw Error(fmt::format("determinant_sign: W is {}x{}, not square", w.rows(), w.cols()));
  Eigen::FullPivLU<Mat> lu(w);
  const double max_pivot = lu.maxPivot();
  const Vec pivots = lu.matrixLU().diagonal();
  const double threshold =
      static_cast<double>(w.rows()) * std::numeric_limits<double>::epsilon() * max_pivot;
  if (!(max_pivot > 0) || pivots.cwiseAbs().minCoeff() <= threshold) return 0;
  int sign = static_cast<int>(lu.permutationP().determinant() * lu.permutationQ().determinant());
  for (Index i = 0; i < pivots.size(); ++i)
    if (pivots[i] < 0) sign = -sign;
  return sign;
}

// ---- Exercise 5 -----------------------------------------------------------------------------

double exercise5_sigma(double eps, double c, double t) {
  if (eps > 0) return eps * std::exp(2.0 * c * t);
  if (eps < 0) return eps * std::exp(-2.0 * c * t);
  return 0.0;
}

double exercise5_ratio(double c_r, double c_rp, double t) {
  return std::exp(2.0 * (c_r - c_rp) * t);
}

// ---- Propositions 1 and 3 -------------------------------------------------------------------

namespace {

// W = -s grad l(0) / ||grad l(0)||_F, s = eps/2 halved until l(W) < l(0); nullopt when
// grad l(0) = 0 or no decrease is found in 100 halvings.
std::optional<Mat> descent_from_origin(const Loss& loss, double eps, double& l0) {
  const Mat zero = Mat::Zero(loss.rows(), loss.cols());
  Mat g;
  l0 = loss.value_and_gradient(zero, g);
  const double gn = g.norm();
  if (!(gn > 0)) return std::nullopt;
  double s = 0.5 * eps;
  for (int it = 0; it < 100; ++it, s *= 0.5) {
    Mat w = -(s / gn) * g;
    if (loss.value(w) < l0) return w;
  }
  return std::nullopt;
}

void check_witness_dims(const Loss& loss, const std::vector<Index>& dims) {
  validate_dims(dims);
  if (dims.front() != loss.cols() || dims.back() != loss.rows())
    throw Error(fmt::format("network: end-to-end shape {}x{} does not match the problem's {}x{}",
                            dims.back(), dims.front(), loss.rows(), loss.cols()));
  const Index k = std::min(dims.front(), dims.back());
  for (std::size_t j = 1; j + 1 < dims.size(); ++j)
    if (dims[j] < k)
      throw Error(fmt::format(
          "origin_descent_witness: hidden width d_{} = {} < min(d_0, d_n) = {} (the proof of "
          "Proposition 3 embeds an identity of that size)",
          j, dims[j], k));
}

// The factorization in the proof of Proposition 3 (both d_0 >= d_n and d_0 < d_n).
Factors proposition3_factors(const Mat& w, const std::vector<Index>& dims) {
  const int n = static_cast<int>(dims.size()) - 1;
  const Index d0 = dims.front(), dn = dims.back();
  Factors f;
  for (int j = 1; j <= n; ++j) f.emplace_back(Mat::Zero(dims[j], dims[j - 1]));
  if (n == 1) {
    f[0] = w;
    return f;
  }
  const double wn = w.norm();
  const double outer = std::pow(wn, -1.0 + 1.0 / n), inner = std::pow(wn, 1.0 / n);
  if (d0 >= dn) {
    f[0].topRows(dn) = outer * w;
    for (int j = 2; j <= n; ++j) f[j - 1].topLeftCorner(dn, dn) = inner * Mat::Identity(dn, dn);
  } else {
    f[n - 1].leftCols(d0) = outer * w;
    for (int j = 1; j < n; ++j) f[j - 1].topLeftCorner(d0, d0) = inner * Mat::Identity(d0, d0);
  }
  return f;
}

double factors_norm(const Factors& f) {
  double sq = 0;
  for (const auto& m : f) sq += m.squaredNorm();
  return std::sqrt(sq);
}

}  // namespace

SaddleWitness origin_descent_witness(const Loss& loss, const std::vector<Index>& dims, double eps) {
  require_positive(eps, "eps");
  check_witness_dims(loss, dims);
  double l0 = 0;
  const auto w = descent_from_origin(loss, eps, l0);
  if (!w)
    throw Error(
        "origin_descent_witness: no descent from the origin along -grad l(0) (grad l(0) = 0?)");
  SaddleWitness out;
  out.factors = proposition3_factors(*w, dims);
  out.phi_origin = l0;
  out.phi_witness = loss.value(end_to_end(out.factors));
  out.witness_norm = factors_norm(out.factors);
  out.w_norm = w->norm();
  return out;
}

bool phi_nonconvex_witness(const Loss& loss, const std::vector<Index>& dims, double eps,
                           NonconvexWitness* out) {
  require_positive(eps, "eps");
  check_witness_dims(loss, dims);
  if (dims.size() < 3) return false;  // depth 1: phi = l, which may well be convex
  double l0 = 0;
  const auto w = descent_from_origin(loss, eps, l0);
  if (!w) return false;
  NonconvexWitness nw;
  nw.a = proposition3_factors(*w, dims);
  nw.b = nw.a;
  nw.b[0] *= -1.0;
  nw.b[1] *= -1.0;
  Factors mid = nw.a;
  for (std::size_t j = 0; j < mid.size(); ++j) mid[j] = 0.5 * (nw.a[j] + nw.b[j]);
  nw.phi_a = loss.value(end_to_end(nw.a));
  nw.phi_b = loss.value(end_to_end(nw.b));
  nw.phi_mid = loss.value(end_to_end(mid));
  const bool found = nw.phi_mid > 0.5 * (nw.phi_a + nw.phi_b);
  if (out) *out = std::move(nw);
  return found;
}

}  // namespace dln
