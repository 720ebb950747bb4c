#include "dln/init/initializers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"

namespace dln {

InitKind parse_init(const std::string& s) {
  if (s == "gaussian") return InitKind::kGaussian;
  if (s == "balanced") return InitKind::kBalanced;
  if (s == "identity") return InitKind::kIdentity;
  if (s == "orthogonal") return InitKind::kOrthogonal;
  if (s == "file") return InitKind::kFile;
  throw Error(
      "network.init: expected one of gaussian, balanced, identity, orthogonal, file; got \"" + s +
      "\"");
}

std::string to_string(InitKind k) {
  switch (k) {
    case InitKind::kGaussian:
      return "gaussian";
    case InitKind::kBalanced:
      return "balanced";
    case InitKind::kIdentity:
      return "identity";
    case InitKind::kOrthogonal:
      return "orthogonal";
    case InitKind::kFile:
      return "file";
  }
  return "?";
}

Factors balanced_factors(const std::vector<Index>& dims, const Mat& target) {
  validate_dims(dims);
  const int n = static_cast<int>(dims.size()) - 1;
  if (target.rows() != dims.back() || target.cols() != dims.front())
    throw Error("balanced init: target shape does not match d_n x d_0");
  if (n == 1) return {target};
  Index k = std::min(dims.front(), dims.back());
  for (int j = 1; j < n; ++j) k = std::min(k, dims[static_cast<std::size_t>(j)]);
  Eigen::BDCSVD<Mat> svd(target, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vec s = svd.singularValues().head(k).array().pow(1.0 / n).matrix();
  Factors w;
  for (int j = 1; j <= n; ++j) w.emplace_back(Mat::Zero(dims[j], dims[j - 1]));
  w[0].topRows(k) = s.asDiagonal() * svd.matrixV().leftCols(k).transpose();
  for (int j = 2; j < n; ++j) w[j - 1].topLeftCorner(k, k) = s.asDiagonal();
  w[n - 1].leftCols(k) = svd.matrixU().leftCols(k) * s.asDiagonal();
  return w;
}

namespace {

Mat rectangular_identity(Index rows, Index cols, double scale) {
  return scale * Mat::Identity(rows, cols);
}

Mat semi_orthogonal(Rng& rng, Index rows, Index cols, double scale) {
  // QR of a Gaussian matrix, signs fixed so Q is Haar-distributed.
  const bool tall = rows >= cols;
  const Mat g = rng.gaussian(tall ? rows : cols, tall ? cols : rows, 1.0);
  Eigen::HouseholderQR<Mat> qr(g);
  Mat q = qr.householderQ() * Mat::Identity(g.rows(), g.cols());
  const Mat r = qr.matrixQR();
  for (Index i = 0; i < q.cols(); ++i)
    if (r(i, i) < 0) q.col(i) *= -1.0;
  return scale * (tall ? q : Mat(q.transpose()));
}

}  // namespace

Factors initialize(const std::vector<Index>& dims, const InitOptions& o) {
  validate_dims(dims);
  const int n = static_cast<int>(dims.size()) - 1;
  if (!(std::isfinite(o.scale)) || o.scale < 0)
    throw Error("network.init_scale: must be finite and >= 0");
  Rng rng(o.seed);
  Factors w;
  switch (o.kind) {
    case InitKind::kGaussian:
      for (int j = 1; j <= n; ++j) w.push_back(rng.gaussian(dims[j], dims[j - 1], o.scale));
      return w;
    case InitKind::kIdentity:
      for (int j = 1; j <= n; ++j) w.push_back(rectangular_identity(dims[j], dims[j - 1], o.scale));
      return w;
    case InitKind::kOrthogonal:
      for (int j = 1; j <= n; ++j) w.push_back(semi_orthogonal(rng, dims[j], dims[j - 1], o.scale));
      return w;
    case InitKind::kBalanced:
      return balanced_factors(dims, rng.gaussian(dims.back(), dims.front(), o.scale));
    case InitKind::kFile: {
      if (o.path.empty()) throw Error("network.init_path: required when network.init = \"file\"");
      for (int j = 1; j <= n; ++j) {
        const std::string p = (std::filesystem::path(o.path) / fmt::format("W{}.npy", j)).string();
        Mat m = io::read_npy_matrix(p);
        if (m.rows() != dims[j] || m.cols() != dims[j - 1])
          throw Error(fmt::format("{}: shape {}x{} does not match W{} = d_{} x d_{} = {}x{}", p,
                                  m.rows(), m.cols(), j, j, j - 1, dims[j], dims[j - 1]));
        w.push_back(std::move(m));
      }
      return w;
    }
  }
  return w;
}

}  // namespace dln
