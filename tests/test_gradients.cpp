// d phi / d W_j (proof of Lemma 1) against central finite differences, every loss, depth 1-4.
#include <gtest/gtest.h>

#include <memory>

#include "dln/core/blas.hpp"
#include "dln/core/rng.hpp"
#include "dln/model/network.hpp"
#include "dln/problems/problem.hpp"

namespace dln {
namespace {

// Hides as_completion() so the dense path of Objective runs on a completion loss.
class DenseView final : public Loss {
 public:
  explicit DenseView(const Loss& l) : l_(l) {}
  std::string name() const override { return l_.name(); }
  Index rows() const override { return l_.rows(); }
  Index cols() const override { return l_.cols(); }
  double value(const Mat& w) const override { return l_.value(w); }
  double value_and_gradient(const Mat& w, Mat& g) const override {
    return l_.value_and_gradient(w, g);
  }

 private:
  const Loss& l_;
};

std::vector<Index> dims_for(int depth, Index rows, Index cols) {
  std::vector<Index> d{cols};
  const Index hidden[] = {6, 3, 7};
  for (int j = 1; j < depth; ++j) d.push_back(hidden[j - 1]);
  d.push_back(rows);
  return d;
}

// Max relative error between the analytic gradient and central differences (step h).
double gradient_error(const Loss& loss, int depth, std::uint64_t seed) {
  const auto dims = dims_for(depth, loss.rows(), loss.cols());
  Objective obj(dims, loss);
  Rng rng(seed);
  Factors w;
  for (int j = 1; j <= depth; ++j) w.push_back(rng.gaussian(dims[j], dims[j - 1], 0.7));
  Factors g = obj.make_like();
  const double f0 = obj.evaluate_with_gradient(w, g);
  EXPECT_NEAR(f0, obj.evaluate(w), 1e-12 * std::max(1.0, std::abs(f0)));
  double worst = 0.0;
  const double h = 1e-5;
  for (int j = 0; j < depth; ++j) {
    for (Index k = 0; k < w[j].size(); ++k) {
      const double saved = w[j].data()[k];
      w[j].data()[k] = saved + h;
      const double fp = obj.evaluate(w);
      w[j].data()[k] = saved - h;
      const double fm = obj.evaluate(w);
      w[j].data()[k] = saved;
      const double fd = (fp - fm) / (2 * h);
      const double an = g[j].data()[k];
      worst = std::max(worst, std::abs(fd - an) / std::max(1.0, std::abs(an)));
    }
  }
  return worst;
}

ProblemConfig small(const std::string& kind) {
  ProblemConfig c;
  c.kind = kind;
  c.rows = 4;
  c.cols = 5;
  c.rank = 2;
  c.observations = 9;
  c.samples = 8;
  c.seed = 17;
  c.p = 4;
  c.noise = 0.1;
  return c;
}

class GradientTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(GradientTest, MatchesCentralDifferences) {
  const auto& [kind, depth] = GetParam();
  Problem p = make_problem(small(kind));
  // lp loss grows like |x|^4: scale the data down so differences stay well conditioned.
  EXPECT_LT(gradient_error(*p.loss, depth, 99), kind == "lp_regression" ? 1e-6 : 1e-7);
  if (kind == "completion") {
    DenseView dense(*p.loss);
    EXPECT_LT(gradient_error(dense, depth, 99), 1e-7);
  }
}

INSTANTIATE_TEST_SUITE_P(AllLosses, GradientTest,
                         ::testing::Combine(::testing::Values("completion", "sensing", "regression",
                                                              "lp_regression", "logistic"),
                                            ::testing::Values(1, 2, 3, 4)),
                         [](const auto& param_info) {
                           return std::get<0>(param_info.param) + "_depth" +
                                  std::to_string(std::get<1>(param_info.param));
                         });

// Fewer outputs than inputs (d_n < d_0): the step multiplies from the output side. Its value and
// gradients equal Lemma 1's formula W_{n:j+1}^T grad l(W) W_{j-1:1}^T formed directly.
TEST(OutputSidePath, EqualsLemma1FormedDirectly) {
  for (int depth : {2, 3, 4}) {
    ProblemConfig c = small("lp_regression");
    c.rows = 1;
    c.cols = 9;
    c.samples = 30;
    c.rank = 1;
    Problem p = make_problem(c);
    std::vector<Index> dims{9};
    for (int j = 1; j < depth; ++j) dims.push_back(j == 1 ? 11 : 4);
    dims.push_back(1);
    Objective obj(dims, *p.loss);
    Rng rng(5);
    Factors w;
    for (int j = 1; j <= depth; ++j) w.push_back(rng.gaussian(dims[j], dims[j - 1], 0.5));
    Factors g = obj.make_like();
    const double value = obj.evaluate_with_gradient(w, g);
    const Mat e = end_to_end(w);
    Mat gl;
    EXPECT_NEAR(value, p.loss->value_and_gradient(e, gl), 1e-13 * value);
    for (int j = 1; j <= depth; ++j) {
      Mat below = Mat::Identity(dims[0], dims[0]);  // W_{j-1:1}
      for (int k = 1; k < j; ++k) below = (w[k - 1] * below).eval();
      Mat above = Mat::Identity(dims[depth], dims[depth]);  // W_{n:j+1}
      for (int k = depth; k > j; --k) above = (above * w[k - 1]).eval();
      const Mat expect = above.transpose() * gl * below.transpose();
      EXPECT_LT((g[j - 1] - expect).norm(), 1e-12 * expect.norm())
          << "depth " << depth << " W_" << j;
    }
    EXPECT_LT(obj.gemm_flops(), 2.0 * 3 * (9 * 11 + 11 * 4 + 4 * 4 + 4));
  }
}

// Sizes chosen so the sparse kernels run every chunk width (32, 16, 8, 4 and a 1-3 row tail).
class SparsePathTest : public ::testing::TestWithParam<std::vector<Index>> {};

TEST_P(SparsePathTest, CompletionSparsePathEqualsDensePath) {
  const std::vector<Index> hidden = GetParam();
  ProblemConfig c = small("completion");
  c.rows = 61;
  c.cols = 45;
  c.observations = 700;
  Problem p = make_problem(c);
  DenseView dense(*p.loss);
  for (int depth = 1; depth <= 4; ++depth) {
    std::vector<Index> dims{c.cols};
    for (int j = 1; j < depth; ++j) dims.push_back(hidden[static_cast<std::size_t>(j - 1)]);
    dims.push_back(c.rows);
    Objective sparse_obj(dims, *p.loss), dense_obj(dims, dense);
    Rng rng(5);
    Factors w;
    for (int j = 1; j <= depth; ++j) w.push_back(rng.gaussian(dims[j], dims[j - 1], 0.5));
    Factors gs = sparse_obj.make_like(), gd = dense_obj.make_like();
    const double fs = sparse_obj.evaluate_with_gradient(w, gs);
    const double fd = dense_obj.evaluate_with_gradient(w, gd);
    EXPECT_NEAR(fs, fd, 1e-13 * fd);
    for (int j = 0; j < depth; ++j) EXPECT_LT((gs[j] - gd[j]).norm(), 1e-12 * (1 + gd[j].norm()));
  }
}

INSTANTIATE_TEST_SUITE_P(ChunkWidths, SparsePathTest,
                         ::testing::Values(std::vector<Index>{77, 29, 3},
                                           std::vector<Index>{2, 60, 33},
                                           std::vector<Index>{45, 45, 45}));

// The two-thread completion step (Objective::set_threads) computes every number with the same
// kernel as one thread: the loss and gradients are bit-identical through the probe steps of both
// modes, and it allocates nothing per step.
TEST(Gradient, TwoThreadStepIsBitIdentical) {
  ProblemConfig c = small("completion");
  c.rows = 90;
  c.cols = 70;
  c.observations = 3000;
  Problem p = make_problem(c);
  for (int blas_threads : {1, 2}) {
    blas::set_threads(blas_threads);
    for (int depth = 2; depth <= 4; ++depth) {
      std::vector<Index> dims{c.cols};
      for (int j = 1; j < depth; ++j) dims.push_back(j == 1 ? 77 : 45);
      dims.push_back(c.rows);
      Objective one(dims, *p.loss), two(dims, *p.loss);
      if (blas_threads > 1) {  // BLAS threaded: measured not to pay, never split
        EXPECT_FALSE(two.set_threads(2));
        continue;
      }
      ASSERT_TRUE(two.set_threads(2)) << depth;
      EXPECT_FALSE(Objective(dims, *p.loss).set_threads(1));
      Rng rng(7);
      Factors w;
      for (int j = 1; j <= depth; ++j) w.push_back(rng.gaussian(dims[j], dims[j - 1], 0.3));
      Factors g1 = one.make_like(), g2 = two.make_like();
      for (int rep = 0; rep < 40; ++rep) {  // through timed_step's probe: both modes run
        const double f1 = one.evaluate_with_gradient(w, g1);
        Eigen::internal::set_is_malloc_allowed(rep == 0);
        const double f2 = two.evaluate_with_gradient(w, g2);
        Eigen::internal::set_is_malloc_allowed(true);
        EXPECT_EQ(f1, f2);
        for (int j = 0; j < depth; ++j) EXPECT_EQ(g1[j], g2[j]) << depth << " " << j;
        for (auto& x : w) x *= 0.99;
      }
    }
  }
  blas::set_threads(1);
  // Too little work per step to pay for the hand-offs: stays on one thread.
  Problem tiny = make_problem(small("completion"));
  EXPECT_FALSE(
      Objective(dims_for(3, tiny.loss->rows(), tiny.loss->cols()), *tiny.loss).set_threads(2));
}

TEST(Gradient, MeanReductionDoublesTheGradient) {
  ProblemConfig c = small("completion");
  Problem half = make_problem(c);
  c.reduction = "mean";
  Problem mean = make_problem(c);
  Rng rng(3);
  const Mat w = rng.gaussian(c.rows, c.cols, 1.0);
  Mat g1, g2;
  const double v1 = half.loss->value_and_gradient(w, g1);
  const double v2 = mean.loss->value_and_gradient(w, g2);
  EXPECT_NEAR(v2, 2 * v1, 1e-14 * v2);
  EXPECT_LT((g2 - 2 * g1).norm(), 1e-14 * g2.norm());
}

TEST(Gradient, EvaluateWithGradientDoesNotAllocate) {
#ifdef NDEBUG
  GTEST_SKIP() << "Eigen's malloc check needs assertions: runs in the sanitizer (debug) build";
#endif
  ProblemConfig c = small("completion");
  c.rows = 20;
  c.cols = 16;
  c.observations = 100;
  Problem p = make_problem(c);
  for (int depth = 1; depth <= 4; ++depth) {
    const auto dims = dims_for(depth, c.rows, c.cols);
    Objective obj(dims, *p.loss);
    Rng rng(1);
    Factors w;
    for (int j = 1; j <= depth; ++j) w.push_back(rng.gaussian(dims[j], dims[j - 1], 0.5));
    Factors g = obj.make_like();
    obj.evaluate_with_gradient(w, g);
    Eigen::internal::set_is_malloc_allowed(false);
    obj.evaluate_with_gradient(w, g);  // aborts (Eigen assertion) if it allocates
    Eigen::internal::set_is_malloc_allowed(true);
  }
}

}  // namespace
}  // namespace dln
