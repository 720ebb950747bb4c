// Training losses l(W) over the end-to-end matrix W (d_n x d_0), each with value and gradient.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dln/core/types.hpp"

namespace dln {

// r^k for a small integer k >= 0 by repeated squaring (l_p losses; std::pow is ~10x slower).
inline double int_pow(double r, int k) {
  double out = 1.0;
  for (double b = r; k > 0; k >>= 1, b *= b)
    if (k & 1) out *= b;
  return out;
}

// How Eq. 9 sums residuals: "half_mean" is the notes' 1/(2m) sum r^2; "mean" is the plain
// 1/m sum r^2 (twice the gradient) used by some published code.
enum class Reduction { kHalfMean, kMean };
Reduction parse_reduction(const std::string& s);  // throws Error naming problem.reduction
std::string to_string(Reduction r);

class CompletionLoss;

class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  virtual Index rows() const = 0;  // d_n
  virtual Index cols() const = 0;  // d_0
  virtual double value(const Mat& w) const = 0;
  // Returns l(W) and writes grad l(W) into g (resized to rows x cols if needed).
  virtual double value_and_gradient(const Mat& w, Mat& g) const = 0;
  // Losses whose gradient is entry-sparse (completion) expose their observations so the network
  // can keep the work sparse and never form W.
  virtual const CompletionLoss* as_completion() const { return nullptr; }
};

// Eq. 9 with A_i = e_{r_i} e_{c_i}^T: 1/(2m) sum_i (W[r_i, c_i] - b_i)^2.
class CompletionLoss final : public Loss {
 public:
  CompletionLoss(Index rows, Index cols, std::vector<Index> r, std::vector<Index> c,
                 std::vector<double> b, Reduction reduction = Reduction::kHalfMean);
  std::string name() const override { return "completion"; }
  Index rows() const override { return rows_; }
  Index cols() const override { return cols_; }
  double value(const Mat& w) const override;
  double value_and_gradient(const Mat& w, Mat& g) const override;
  const CompletionLoss* as_completion() const override { return this; }

  Index size() const { return static_cast<Index>(b_.size()); }
  const std::vector<Index>& obs_rows() const { return r_; }
  const std::vector<Index>& obs_cols() const { return c_; }
  const std::vector<double>& obs_values() const { return b_; }
  // value = coef/2 * sum r_i^2 and dl/dW[r_i, c_i] = coef * r_i.
  double coef() const { return coef_; }

 private:
  Index rows_, cols_;
  std::vector<Index> r_, c_;
  std::vector<double> b_;
  double coef_;
};

// Eq. 9 with dense measurement matrices: 1/(2m) sum_i (<W, A_i> - b_i)^2. `a` is m x (rows*cols),
// row i = vec(A_i) in column-first order.
class SensingLoss final : public Loss {
 public:
  SensingLoss(Index rows, Index cols, Mat a, Vec b, Reduction reduction = Reduction::kHalfMean);
  std::string name() const override { return "sensing"; }
  Index rows() const override { return rows_; }
  Index cols() const override { return cols_; }
  double value(const Mat& w) const override;
  double value_and_gradient(const Mat& w, Mat& g) const override;

 private:
  Index rows_, cols_;
  Mat a_;
  Vec b_;
  double coef_;
  mutable Vec res_;
};

// Example 1: l(W) = 1/(2m) ||W X - Y||_F^2, X is d_0 x m, Y is d_n x m.
class SquareRegressionLoss final : public Loss {
 public:
  SquareRegressionLoss(Mat x, Mat y);
  std::string name() const override { return "regression"; }
  Index rows() const override { return y_.rows(); }
  Index cols() const override { return x_.rows(); }
  double value(const Mat& w) const override;
  double value_and_gradient(const Mat& w, Mat& g) const override;

 private:
  Mat x_, y_;
  mutable Mat res_;
};

// Claim 1: l(W) = 1/m sum_i ||W x_i - y_i||_p^p for even p >= 2.
class LpRegressionLoss final : public Loss {
 public:
  LpRegressionLoss(Mat x, Mat y, int p);
  std::string name() const override { return "lp_regression"; }
  Index rows() const override { return y_.rows(); }
  Index cols() const override { return x_.rows(); }
  double value(const Mat& w) const override;
  double value_and_gradient(const Mat& w, Mat& g) const override;
  int p() const { return p_; }

 private:
  Mat x_, y_;
  int p_;
  mutable Mat res_;
};

// Multinomial logistic regression: l(W) = 1/m sum_i [logsumexp(W x_i) - (W x_i)_{y_i}],
// X is d_0 x m, labels in [0, d_n).
class LogisticLoss final : public Loss {
 public:
  LogisticLoss(Mat x, std::vector<Index> labels, Index classes);
  std::string name() const override { return "logistic"; }
  Index rows() const override { return classes_; }
  Index cols() const override { return x_.rows(); }
  double value(const Mat& w) const override;
  double value_and_gradient(const Mat& w, Mat& g) const override;

 private:
  double logits_to_loss(bool want_probs) const;
  Mat x_;
  std::vector<Index> labels_;
  Index classes_;
  mutable Mat z_;
};

}  // namespace dln
