// Claim 1's tools: Newton's exact l* for l_p regression (with its gradient-norm certificate),
// iterations to epsilon, and the best-rate search.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "dln/acceleration/claim1.hpp"
#include "dln/acceleration/lp_optimum.hpp"
#include "dln/core/rng.hpp"
#include "dln/losses/loss.hpp"
#include "dln/model/network.hpp"
#include "dln/optimizers/optimizer.hpp"
#include "test_support.hpp"

namespace dln::acceleration {
namespace {

using dln::testing::expect_error;

struct Data {
  Mat x, y;
};
Data noisy_lp_data(Index d0, Index dn, Index m, std::uint64_t seed) {
  Rng rng(seed);
  Data d{rng.gaussian(d0, m, 1.0), Mat()};
  d.y = rng.gaussian(dn, d0, 1.0) * d.x + rng.gaussian(dn, m, 0.3);
  return d;
}

// Newton's l*: certificate <= 1e-10, below every trained loss and every nearby point.
TEST(LpOptimum, CertifiedAndBelowTrainedLosses) {
  for (int p : {2, 4, 6}) {
    const Data d = noisy_lp_data(6, 2, 80, 3);
    const LpOptimum opt = lp_regression_optimum(d.x, d.y, p);
    EXPECT_TRUE(opt.converged) << p << " " << opt.grad_norm << " " << opt.iterations;
    EXPECT_LE(opt.grad_norm, 1e-10) << p;
    LpRegressionLoss loss(d.x, d.y, p);
    Mat g;
    EXPECT_NEAR(loss.value_and_gradient(opt.w, g), opt.loss, 1e-13 * opt.loss);
    EXPECT_LE(g.norm(), 1e-10);  // the certificate, recomputed by the training loss
    Rng rng(9);
    for (int k = 0; k < 20; ++k)  // convexity: no nearby point is lower
      EXPECT_GE(loss.value(opt.w + rng.gaussian(2, 6, 1e-3)), opt.loss);
    // GD on the linear model and a depth-2 network from near zero stay above l*.
    for (int depth : {1, 2}) {
      std::vector<Index> dims{6};
      if (depth == 2) dims.push_back(5);
      dims.push_back(2);
      Objective obj(dims, loss);
      Factors w;
      for (std::size_t j = 1; j < dims.size(); ++j)
        w.push_back(rng.gaussian(dims[j], dims[j - 1], 0.05));
      OptimizerOptions o;
      o.lr = p == 2 ? 0.05 : p == 4 ? 2e-3 : 1e-4;
      auto gd = Optimizer::create(o, w);
      StopOptions stop;
      stop.max_iters = 3000;
      RecordOptions rec;
      rec.every = 100;
      const Summary s = train(obj, w, *gd, stop, rec, nullptr);
      for (const auto& row : s.history)  // equal to rounding once GD has converged (p = 2)
        EXPECT_GE(row.loss - opt.loss, -1e-15 * opt.loss) << p << " " << depth;
      if (p <= 4) {  // not vacuous: training came close (l_6 is too flat for 3000 steps)
        EXPECT_LT(s.final_loss - opt.loss, 0.1 * opt.loss) << "training got close: " << p;
      }
    }
  }
}

TEST(LpOptimum, P2IsLeastSquaresAndExactFitIsZero) {
  const Data d = noisy_lp_data(5, 1, 40, 4);
  const LpOptimum opt = lp_regression_optimum(d.x, d.y, 2);
  const Mat ls = (d.x * d.x.transpose()).ldlt().solve(d.x * d.y.transpose()).transpose();
  EXPECT_LT((opt.w - ls).norm(), 1e-12 * ls.norm());
  Rng rng(2);
  const Mat truth = rng.gaussian(1, 5, 3.0);
  const Mat y = truth * d.x;  // noise-free: l* = 0 at W* = truth
  const LpOptimum exact = lp_regression_optimum(d.x, y, 4);
  EXPECT_LT((exact.w - truth).norm(), 1e-12 * truth.norm());
  EXPECT_LT(exact.loss, 1e-40);
}

TEST(LpOptimum, BadInputsAreOneLineErrors) {
  const Data d = noisy_lp_data(3, 1, 10, 1);
  expect_error([&] { lp_regression_optimum(d.x, d.y, 3); },
               "problem.p: must be an even integer >= 2, got 3");
  expect_error([&] { lp_regression_optimum(d.x, d.y.leftCols(4), 4); },
               "lp optimum: X is 3x10 and Y 1x4: need the same number (> 0) of samples");
  Mat bad = d.x;
  bad(0, 0) = std::nan("");
  expect_error([&] { lp_regression_optimum(bad, d.y, 4); }, "lp optimum: non-finite X or Y");
  LpOptimumOptions o;
  o.max_iters = 0;
  expect_error([&] { lp_regression_optimum(d.x, d.y, 4, o); },
               "lp optimum: max_iters: must be >= 1, got 0");
}

TEST(Claim1, BadArgumentsAreOneLineErrors) {
  expect_error(
      [] {
        iterations_to_epsilon({0, 1}, {1.0}, 0, 1);
      },
      "iterations_to_epsilon: 2 iterations but 1 losses");
  expect_error([] { iterations_to_epsilon({0}, {1.0}, 0, 0); },
               "iterations_to_epsilon: epsilon must be > 0, got 0");
  auto run = [](double r) {
    RatePoint p;
    p.rate = r;
    return p;
  };
  auto search = [&](auto edit, const std::string& message) {
    RateSearchOptions o;
    edit(o);
    expect_error([&] { search_best_rate(run, o); }, message);
  };
  search([](auto& o) { o.start = 0; }, "rate search: start must be finite and > 0, got 0");
  search([](auto& o) { o.factor = 1; }, "rate search: factor must be finite and > 1, got 1");
  search([](auto& o) { o.patience = 0; }, "rate search: patience must be >= 1, got 0");
  search([](auto& o) { o.max_points = 0; }, "rate search: max_points must be >= 1, got 0");
  search([](auto& o) { o.min_rate = 1; },
         "rate search: start 0.001 outside [min_rate, max_rate] = [1, inf]");
  expect_error([&] { best_rate_on_grid(run, {}); }, "rate search: the grid is empty");
  expect_error([&] { best_rate_on_grid(run, {0.1, -1}); }, "rate search: rate -1 is not > 0");
  LpOptimumOptions o;
  o.grad_tol = -1;
  Mat x = Mat::Ones(1, 2), y = Mat::Ones(1, 2);
  expect_error([&] { lp_regression_optimum(x, y, 4, o); },
               "lp optimum: grad_tol: must be finite and >= 0, got -1");
}

TEST(Claim1, IterationsToEpsilon) {
  const std::vector<long> it{0, 10, 20, 30};
  const std::vector<double> loss{5.0, 2.0, 1.05, 1.0001};
  EXPECT_EQ(iterations_to_epsilon(it, loss, 1.0, 1.5), 10);
  EXPECT_EQ(iterations_to_epsilon(it, loss, 1.0, 0.06), 20);
  EXPECT_EQ(iterations_to_epsilon(it, loss, 1.0, 1e-3), 30);
  EXPECT_EQ(iterations_to_epsilon(it, loss, 1.0, 1e-5), kNever);
  const std::vector<double> nan_first{std::nan(""), 0.5, 0.1, 0.1};
  EXPECT_EQ(iterations_to_epsilon(it, nan_first, 0.0, 0.6), 10);
  std::vector<HistoryRow> h(2);
  h[0].iteration = 0, h[0].loss = 3;
  h[1].iteration = 7, h[1].loss = 1;
  EXPECT_EQ(iterations_to_epsilon(h, 0.5, 0.5), 7);
}

// GD on l(w) = (w - 1)^2 from w = 0: the error is multiplied by (1 - 2 eta) per step, so
// eta = 1/2 reaches the optimum in one step, eta = 1 oscillates at loss 1 and eta >= 2 diverges.
// The search must pick 1/2 and run fewer points than the whole grid.
TEST(Claim1, SearchPicksTheKnownBestRate) {
  Mat x(1, 1), y(1, 1);
  x << 1;
  y << 1;
  LpRegressionLoss loss(x, y, 2);
  int runs = 0;
  auto run = [&](double rate) {
    ++runs;
    Objective obj({1, 1}, loss);
    Factors w{Mat::Zero(1, 1)};
    OptimizerOptions o;
    o.lr = rate;
    auto gd = Optimizer::create(o, w);
    StopOptions stop;
    stop.max_iters = 50;
    stop.divergence_threshold = 1e6;
    RecordOptions rec;
    rec.every = 50;
    const Summary s = train(obj, w, *gd, stop, rec, nullptr);
    RatePoint p;
    p.rate = rate;
    p.final_loss = s.final_loss;
    p.iterations = s.iterations;
    p.diverged = s.termination == Termination::kDiverged;
    return p;
  };
  for (double start : {1.0 / 64, 4.0}) {  // from below, and from the divergent side
    runs = 0;
    RateSearchOptions o;
    o.start = start;
    o.factor = 2;
    const RateSearch s = search_best_rate(run, o);
    ASSERT_NE(s.best_point(), nullptr);
    EXPECT_DOUBLE_EQ(s.best_point()->rate, 0.5) << start;
    EXPECT_TRUE(s.interior);
    EXPECT_EQ(s.best_point()->final_loss, 0.0);
    EXPECT_LT(runs, 12);
    bool saw_divergence = false;
    for (const auto& p : s.points) saw_divergence |= p.diverged;
    EXPECT_TRUE(saw_divergence);
  }
  const RateSearch g = best_rate_on_grid(run, {0.1, 0.25, 0.5, 1.0, 2.0, 4.0});
  EXPECT_DOUBLE_EQ(g.best_point()->rate, 0.5);
  EXPECT_TRUE(g.points[4].diverged && g.points[5].diverged);
  EXPECT_FALSE(g.points[3].diverged);  // eta = 1: bounded oscillation, loss 1
  EXPECT_EQ(grid_index(0.5, 1.0 / 64, 2), 5);
}

}  // namespace
}  // namespace dln::acceleration
