// The LowRank value type U diag(d) V^T and the observation checks shared by SoftImpute and ALS
// (low_rank.hpp).
#include "dln/baselines/low_rank.hpp"

#include <fmt/format.h>

#include <Eigen/QR>
#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <numeric>

#include "dln/core/blas.hpp"

namespace dln {

// ---------------------------------------------------------------------------------------------
// LowRank

double LowRank::at(Index r, Index c) const {
  double s = 0.0;
  for (Index j = 0; j < d.size(); ++j) s += u(r, j) * d[j] * v(c, j);
  return s;
}

Vec LowRank::at(const std::vector<Index>& r, const std::vector<Index>& c) const {
  if (r.size() != c.size())
    throw Error(fmt::format("LowRank::at: r and c must have the same length, got {} and {}",
                            r.size(), c.size()));
  Vec out(static_cast<Index>(r.size()));
  for (std::size_t i = 0; i < r.size(); ++i) {
    if (r[i] < 0 || r[i] >= rows() || c[i] < 0 || c[i] >= cols())
      throw Error(fmt::format("LowRank::at: entry ({}, {}) out of range for {}x{}", r[i], c[i],
                              rows(), cols()));
    out[static_cast<Index>(i)] = at(r[i], c[i]);
  }
  return out;
}

Mat LowRank::dense() const {
  Mat out(rows(), cols());
  if (rank() == 0) {
    out.setZero();
    return out;
  }
  const Mat ud = u * d.asDiagonal();
  blas::gemm(ud, false, v, true, out);
  return out;
}

double LowRank::nuclear_norm() const { return d.cwiseAbs().sum(); }
double LowRank::frobenius_norm() const { return d.norm(); }

LowRank LowRank::zero(Index rows, Index cols) {
  LowRank x;
  x.u.resize(rows, 0);
  x.d.resize(0);
  x.v.resize(cols, 0);
  return x;
}

namespace {

// The R factor (min(m, k) x k, upper trapezoidal) of a thin QR of a (m x k).
Mat r_factor(const Mat& a) {
  const Eigen::HouseholderQR<Mat> qr(a);
  const Index kk = std::min(a.rows(), a.cols());
  return qr.matrixQR().topRows(kk).triangularView<Eigen::Upper>();
}

}  // namespace

LowRank LowRank::from_factors(const Mat& a, const Mat& b) {
  if (a.cols() != b.cols())
    throw Error(
        fmt::format("LowRank::from_factors: A and B must have the same number of columns, "
                    "got {} and {}",
                    a.cols(), b.cols()));
  const Index m = a.rows(), n = b.rows(), k = a.cols();
  if (k == 0 || m == 0 || n == 0) return zero(m, n);
  const Eigen::HouseholderQR<Mat> qa(a), qb(b);
  const Index ka = std::min(m, k), kb = std::min(n, k);
  const Mat ra = qa.matrixQR().topRows(ka).triangularView<Eigen::Upper>();
  const Mat rb = qb.matrixQR().topRows(kb).triangularView<Eigen::Upper>();
  const Mat core = ra * rb.transpose();  // ka x kb
  const Eigen::JacobiSVD<Mat> svd(core, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vec& s = svd.singularValues();
  Index keep = 0;
  while (keep < s.size() && s[keep] > 0 && s[keep] > 1e-14 * s[0]) ++keep;
  if (keep == 0) return zero(m, n);
  LowRank x;
  x.u = (qa.householderQ() * Mat::Identity(m, ka)) * svd.matrixU().leftCols(keep);
  x.v = (qb.householderQ() * Mat::Identity(n, kb)) * svd.matrixV().leftCols(keep);
  x.d = s.head(keep);
  return x;
}

namespace detail {

// ||A1 B1^T - A2 B2^T||_F without forming either product: thin QRs of [A1 A2] and [B1 -B2] give
// the difference as Q_a (R_a R_b^T) Q_b^T. Unlike ||X||^2 + ||Y||^2 - 2 <X, Y>, which loses half
// the digits when X ~ Y, this is accurate to rounding relative to ||X|| + ||Y||.
double factored_distance(const Mat& a1, const Mat& b1, const Mat& a2, const Mat& b2) {
  const Index k1 = a1.cols(), k2 = a2.cols();
  if (k1 + k2 == 0) return 0.0;
  Mat a(a1.rows(), k1 + k2), b(b1.rows(), k1 + k2);
  a << a1, a2;
  b << b1, -b2;
  return (r_factor(a) * r_factor(b).transpose()).norm();
}

}  // namespace detail

double frobenius_distance(const LowRank& x, const LowRank& y) {
  if (x.rows() != y.rows() || x.cols() != y.cols())
    throw Error(fmt::format("frobenius_distance: shapes differ, {}x{} and {}x{}", x.rows(),
                            x.cols(), y.rows(), y.cols()));
  return detail::factored_distance(x.u * x.d.asDiagonal(), x.v, y.u * y.d.asDiagonal(), y.v);
}

// ---------------------------------------------------------------------------------------------
// Observations

namespace detail {

Observed make_observed(const char* who, Index rows, Index cols, const std::vector<Index>& r,
                       const std::vector<Index>& c, const std::vector<double>& b) {
  if (rows < 1 || cols < 1)
    throw Error(fmt::format("{}: shape must be positive, got {}x{}", who, rows, cols));
  if (r.size() != b.size() || c.size() != b.size())
    throw Error(fmt::format("{}: r, c and b must have the same length, got {}, {} and {}", who,
                            r.size(), c.size(), b.size()));
  if (b.empty()) throw Error(fmt::format("{}: no observations", who));
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (r[i] < 0 || r[i] >= rows || c[i] < 0 || c[i] >= cols)
      throw Error(
          fmt::format("{}: entry ({}, {}) out of range for {}x{}", who, r[i], c[i], rows, cols));
    if (!std::isfinite(b[i]))
      throw Error(fmt::format("{}: value at ({}, {}) is not finite", who, r[i], c[i]));
  }
  const std::size_t n = b.size();
  std::vector<Index> order(n);
  std::iota(order.begin(), order.end(), Index{0});
  auto key = [&](Index i) { return r[i] * cols + c[i]; };
  std::sort(order.begin(), order.end(), [&](Index x, Index y) { return key(x) < key(y); });

  Observed o;
  o.rows = rows;
  o.cols = cols;
  o.row.resize(n);
  o.col.resize(n);
  o.value.resize(n);
  for (std::size_t e = 0; e < n; ++e) {
    const Index i = order[e];
    if (e > 0 && key(i) == key(order[e - 1]))
      throw Error(fmt::format("{}: duplicate entry ({}, {})", who, r[i], c[i]));
    o.row[e] = r[i];
    o.col[e] = c[i];
    o.value[e] = b[i];
  }
  o.row_start.assign(rows + 1, 0);
  o.col_start.assign(cols + 1, 0);
  for (std::size_t e = 0; e < n; ++e) {
    ++o.row_start[o.row[e] + 1];
    ++o.col_start[o.col[e] + 1];
  }
  for (Index i = 0; i < rows; ++i) o.row_start[i + 1] += o.row_start[i];
  for (Index j = 0; j < cols; ++j) o.col_start[j + 1] += o.col_start[j];
  o.by_col.resize(n);
  std::vector<Index> next(o.col_start.begin(), o.col_start.end() - 1);
  for (std::size_t e = 0; e < n; ++e) o.by_col[next[o.col[e]]++] = static_cast<Index>(e);
  return o;
}

double observed_rmse(const Observed& obs, const LowRank& x) {
  double s = 0.0;
  for (Index e = 0; e < obs.size(); ++e) {
    const double diff = x.at(obs.row[e], obs.col[e]) - obs.value[e];
    s += diff * diff;
  }
  return std::sqrt(s / static_cast<double>(obs.size()));
}

}  // namespace detail

}  // namespace dln
