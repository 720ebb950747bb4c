#include <cmath>

#include "dln/losses/loss.hpp"

namespace dln {

Reduction parse_reduction(const std::string& s) {
  if (s == "half_mean") return Reduction::kHalfMean;
  if (s == "mean") return Reduction::kMean;
  throw Error("problem.reduction: expected \"half_mean\" or \"mean\", got \"" + s + "\"");
}

std::string to_string(Reduction r) { return r == Reduction::kHalfMean ? "half_mean" : "mean"; }

namespace {
double reduction_coef(Reduction r, Index m) {
  return (r == Reduction::kHalfMean ? 1.0 : 2.0) / static_cast<double>(m);
}
}  // namespace

// ---- completion ----
CompletionLoss::CompletionLoss(Index rows, Index cols, std::vector<Index> r, std::vector<Index> c,
                               std::vector<double> b, Reduction reduction)
    : rows_(rows), cols_(cols), r_(std::move(r)), c_(std::move(c)), b_(std::move(b)) {
  if (r_.size() != b_.size() || c_.size() != b_.size())
    throw Error("completion loss: row, col and value arrays differ in length");
  if (b_.empty()) throw Error("problem.observations: no observations");
  for (double v : b_)
    if (!std::isfinite(v)) throw Error("completion loss: non-finite observed value");
  for (std::size_t i = 0; i < b_.size(); ++i)
    if (r_[i] < 0 || r_[i] >= rows_ || c_[i] < 0 || c_[i] >= cols_)
      throw Error("completion loss: observation index out of range");
  coef_ = reduction_coef(reduction, size());
}

double CompletionLoss::value(const Mat& w) const {
  double s = 0.0;
  for (std::size_t i = 0; i < b_.size(); ++i) {
    const double res = w(r_[i], c_[i]) - b_[i];
    s += res * res;
  }
  return 0.5 * coef_ * s;
}

double CompletionLoss::value_and_gradient(const Mat& w, Mat& g) const {
  g.setZero(rows_, cols_);
  double s = 0.0;
  for (std::size_t i = 0; i < b_.size(); ++i) {
    const double res = w(r_[i], c_[i]) - b_[i];
    s += res * res;
    g(r_[i], c_[i]) += coef_ * res;
  }
  return 0.5 * coef_ * s;
}

// ---- sensing ----
SensingLoss::SensingLoss(Index rows, Index cols, Mat a, Vec b, Reduction reduction)
    : rows_(rows), cols_(cols), a_(std::move(a)), b_(std::move(b)) {
  if (a_.rows() != b_.size() || a_.cols() != rows_ * cols_)
    throw Error("sensing loss: measurement matrices and values have inconsistent shapes");
  if (b_.size() == 0) throw Error("problem.observations: no measurements");
  if (!a_.allFinite() || !b_.allFinite())
    throw Error("sensing loss: non-finite measurement matrix or value");
  coef_ = reduction_coef(reduction, b_.size());
  res_.resize(b_.size());
}

double SensingLoss::value(const Mat& w) const {
  const Eigen::Map<const Vec> vw(w.data(), w.size());
  res_.noalias() = a_ * vw;
  res_ -= b_;
  return 0.5 * coef_ * res_.squaredNorm();
}

double SensingLoss::value_and_gradient(const Mat& w, Mat& g) const {
  const double v = value(w);
  g.resize(rows_, cols_);
  Eigen::Map<Vec> vg(g.data(), g.size());
  vg.noalias() = coef_ * (a_.transpose() * res_);
  return v;
}

// ---- square regression ----
SquareRegressionLoss::SquareRegressionLoss(Mat x, Mat y) : x_(std::move(x)), y_(std::move(y)) {
  if (x_.cols() != y_.cols()) throw Error("regression loss: X and Y differ in sample count");
  if (x_.cols() == 0) throw Error("problem.samples: no samples");

  if (!x_.allFinite() || !y_.allFinite()) throw Error("regression loss: non-finite X or Y");
  res_.resize(y_.rows(), y_.cols());
}

double SquareRegressionLoss::value(const Mat& w) const {
  res_.noalias() = w * x_;
  res_ -= y_;
  return 0.5 * res_.squaredNorm() / static_cast<double>(x_.cols());
}

double SquareRegressionLoss::value_and_gradient(const Mat& w, Mat& g) const {
  const double v = value(w);
  g.resize(rows(), cols());
  g.noalias() = res_ * x_.transpose();
  g /= static_cast<double>(x_.cols());
  return v;
}

// ---- l_p regression ----
LpRegressionLoss::LpRegressionLoss(Mat x, Mat y, int p)
    : x_(std::move(x)), y_(std::move(y)), p_(p) {
  if (p_ < 2 || p_ % 2 != 0) throw Error("problem.p: must be an even integer >= 2");
  if (x_.cols() != y_.cols()) throw Error("lp regression loss: X and Y differ in sample count");
  if (x_.cols() == 0) throw Error("problem.samples: no samples");
  if (!x_.allFinite() || !y_.allFinite()) throw Error("lp regression loss: non-finite X or Y");
  res_.resize(y_.rows(), y_.cols());
}

double LpRegressionLoss::value(const Mat& w) const {
  res_.noalias() = w * x_;
  res_ -= y_;
  double total = 0.0;
  const double* r = res_.data();
  for (Index i = 0; i < res_.size(); ++i) total += int_pow(r[i], p_ - 1) * r[i];  // as below
  return total / static_cast<double>(x_.cols());
}

double LpRegressionLoss::value_and_gradient(const Mat& w, Mat& g) const {
  res_.noalias() = w * x_;
  res_ -= y_;
  // d/dW 1/m sum |r|^p = p/m r^(p-1) X^T (p even), with l in the same pass.
  const double coef = static_cast<double>(p_) / static_cast<double>(x_.cols());
  double total = 0.0;
  double* r = res_.data();
  for (Index i = 0; i < res_.size(); ++i) {
    const double pm1 = int_pow(r[i], p_ - 1);
    total += pm1 * r[i];
    r[i] = coef * pm1;
  }
  g.resize(rows(), cols());
  g.noalias() = res_ * x_.transpose();
  return total / static_cast<double>(x_.cols());
}

// ---- multinomial logistic ----
LogisticLoss::LogisticLoss(Mat x, std::vector<Index> labels, Index classes)
    : x_(std::move(x)), labels_(std::move(labels)), classes_(classes) {
  if (static_cast<Index>(labels_.size()) != x_.cols())
    throw Error("logistic loss: X and labels differ in sample count");
  if (labels_.empty()) throw Error("problem.samples: no samples");
  if (!x_.allFinite()) throw Error("logistic loss: non-finite X");
  for (Index y : labels_)
    if (y < 0 || y >= classes_) throw Error("logistic loss: label out of range [0, rows)");
  z_.resize(classes_, x_.cols());
}

// Turns z_ (logits) into the mean cross-entropy; optionally leaves softmax - onehot in z_.
double LogisticLoss::logits_to_loss(bool want_probs) const {
  double total = 0.0;
  for (Index i = 0; i < z_.cols(); ++i) {
    auto col = z_.col(i);
    const double zmax = col.maxCoeff();
    const double lse = zmax + std::log((col.array() - zmax).exp().sum());
    const auto y = labels_[static_cast<std::size_t>(i)];
    total += lse - col(y);
    if (want_probs) {
      col = (col.array() - lse).exp();
      col(y) -= 1.0;
    }
  }
  return total / static_cast<double>(z_.cols());
}

double LogisticLoss::value(const Mat& w) const {
  z_.noalias() = w * x_;
  return logits_to_loss(false);
}

double LogisticLoss::value_and_gradient(const Mat& w, Mat& g) const {
  z_.noalias() = w * x_;
  const double v = logits_to_loss(true);
  g.resize(rows(), cols());
  g.noalias() = z_ * x_.transpose();
  g /= static_cast<double>(x_.cols());
  return v;
}

}  // namespace dln
