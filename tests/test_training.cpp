// Gradient descent and the other optimizers against hand-computed numbers; Lemma 1 / Prop. 2 for
// discrete steps; balanced initialization (Procedure 1); stopping rules.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "dln/core/rng.hpp"
#include "dln/diagnostics/metrics.hpp"
#include "dln/init/initializers.hpp"
#include "dln/optimizers/train.hpp"
#include "dln/problems/problem.hpp"

namespace dln {
namespace {

Mat scalar(double v) { return Mat::Constant(1, 1, v); }

// 1x1 completion with one observation b = 1: l(W) = 1/2 (W - 1)^2.
CompletionLoss one_entry() { return CompletionLoss(1, 1, {0}, {0}, {1.0}); }

TEST(GradientDescent, ThreeStepsMatchHandComputation) {
  // Depth 2, W_1 = a = 1/2, W_2 = b = 1, lr = 0.1: r = ba - 1, a <- a - lr b r, b <- b - lr a r.
  // t=0: r = -1/2 -> a = 0.55, b = 1.025; t=1: r = -0.43625 -> a = 0.594715625, b = 1.04899375.
  CompletionLoss loss = one_entry();
  Objective obj({1, 1, 1}, loss);
  Factors w{scalar(0.5), scalar(1.0)};
  OptimizerOptions o;
  o.lr = 0.1;
  auto opt = Optimizer::create(o, w);
  StopOptions stop;
  stop.max_iters = 3;
  RecordOptions rec;
  rec.every = 1;
  Summary s = train(obj, w, *opt, stop, rec, nullptr);
  ASSERT_EQ(s.iterations, 3);
  EXPECT_EQ(s.termination, Termination::kMaxIters);
  ASSERT_EQ(s.history.size(), 4u);
  const double loss_hand[] = {0.125, 0.09515703125, 0.07074329271509221, 0.05138249058232579};
  for (int t = 0; t < 4; ++t) EXPECT_NEAR(s.history[t].loss, loss_hand[t], 1e-15);
  EXPECT_NEAR(w[0](0, 0), 0.6341732129719777, 1e-15);
  EXPECT_NEAR(w[1](0, 0), 1.0713638013866238, 1e-15);
  EXPECT_NEAR(s.final_loss, 0.05138249058232579, 1e-15);
  // Gradient norm at t = 0: sqrt((b r)^2 + (a r)^2) = sqrt(0.25 + 0.0625).
  EXPECT_NEAR(s.history[0].grad_norm, std::sqrt(0.3125), 1e-15);
  // Unbalancedness (Def. 1) at t = 0: |b^2 - a^2| = 0.75.
  EXPECT_NEAR(s.history[0].unbalancedness, 0.75, 1e-15);
}

TEST(GroupRmsprop, MatchesHandComputedSteps) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kGroupRmsprop;
  o.lr = 0.1;
  o.alpha = 0.9;
  o.eps = 1e-4;
  Factors w{scalar(1.0), scalar(2.0)};
  auto opt = Optimizer::create(o, w);
  // Step 1: g = (3, 4): s = 0.1 * 25 = 2.5, s / (1 - 0.9) = 25, v = 5 + 1e-4.
  opt->step(w, Factors{scalar(3.0), scalar(4.0)});
  EXPECT_NEAR(w[0](0, 0), 1.0 - 0.1 / 5.0001 * 3.0, 1e-15);
  EXPECT_NEAR(w[1](0, 0), 2.0 - 0.1 / 5.0001 * 4.0, 1e-15);
  // Step 2: g = (0, 1): s = 0.9 * 2.5 + 0.1 * 1 = 2.35, s / (1 - 0.81) = 12.368421052631579.
  const double w1 = w[1](0, 0);
  opt->step(w, Factors{scalar(0.0), scalar(1.0)});
  EXPECT_NEAR(w[1](0, 0), w1 - 0.1 / (std::sqrt(12.368421052631579) + 1e-4), 1e-15);
}

TEST(Momentum, MatchesHandComputedSteps) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kMomentum;
  o.lr = 0.5;
  o.momentum = 0.9;
  Factors w{scalar(1.0)};
  auto opt = Optimizer::create(o, w);
  opt->step(w, Factors{scalar(2.0)});  // v = 2, w = 1 - 1 = 0
  EXPECT_DOUBLE_EQ(w[0](0, 0), 0.0);
  opt->step(w, Factors{scalar(1.0)});  // v = 1.8 + 1 = 2.8, w = -1.4
  EXPECT_NEAR(w[0](0, 0), -1.4, 1e-15);
}

TEST(Adam, FirstStepIsLrTimesSign) {
  OptimizerOptions o;
  o.kind = OptimizerKind::kAdam;
  o.lr = 0.01;
  o.eps = 0;
  Factors w{Mat::Constant(2, 1, 1.0)};
  auto opt = Optimizer::create(o, w);
  Mat g(2, 1);
  g << 3.0, -0.5;
  opt->step(w, Factors{g});  // bias-corrected m / sqrt(v) = sign(g)
  EXPECT_NEAR(w[0](0, 0), 0.99, 1e-15);
  EXPECT_NEAR(w[0](1, 0), 1.01, 1e-15);
}

// ---- Balanced initialization (Procedure 1) ----
TEST(BalancedInit, UnbalancednessZeroAndProductIsTarget) {
  Rng rng(4);
  const std::vector<std::vector<Index>> shapes = {
      {5, 8, 7, 9, 4}, {6, 6, 6}, {3, 10, 12, 3}, {7, 9}, {4, 5, 6, 7, 8, 9}};
  for (const auto& dims : shapes) {
    const Mat a = rng.gaussian(dims.back(), dims.front(), 1.3);
    const Factors w = balanced_factors(dims, a);
    double scale = 0.0;
    for (const auto& m : w) scale = std::max(scale, m.squaredNorm());
    EXPECT_LE(unbalancedness(w), 1e-12 * scale);
    EXPECT_LT((end_to_end(w) - a).norm(), 1e-12 * a.norm());
  }
}

TEST(BalancedInit, NarrowWidthGivesBestLowRankApproximation) {
  Rng rng(8);
  const Mat a = rng.gaussian(6, 5, 1.0);
  const Factors w = balanced_factors({5, 2, 6}, a);
  Eigen::JacobiSVD<Mat> svd(a, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Mat best = svd.matrixU().leftCols(2) * svd.singularValues().head(2).asDiagonal() *
                   svd.matrixV().leftCols(2).transpose();
  EXPECT_LT((end_to_end(w) - best).norm(), 1e-12 * best.norm());
  EXPECT_LE(unbalancedness(w), 1e-12 * a.squaredNorm());
}

// ---- Lemma 1 / Prop. 2 under gradient descent: D_j = W_{j+1}^T W_{j+1} - W_j W_j^T changes by
// eta^2 (g_{j+1}^T g_{j+1} - g_j g_j^T) per step, so the drift over K steps is O(eta^2 K). ----
double unbalancedness_drift(double eta, int steps) {
  ProblemConfig c;
  c.rows = 6;
  c.cols = 5;
  c.rank = 2;
  c.observations = 15;
  c.seed = 2;
  Problem p = make_problem(c);
  const std::vector<Index> dims{5, 7, 4, 6};
  Objective obj(dims, *p.loss);
  InitOptions io;
  io.scale = 0.6;
  io.seed = 9;
  Factors w = initialize(dims, io);
  std::vector<Mat> d0;
  for (int j = 0; j + 1 < 3; ++j)
    d0.push_back(w[j + 1].transpose() * w[j + 1] - w[j] * w[j].transpose());
  OptimizerOptions o;
  o.lr = eta;
  auto opt = Optimizer::create(o, w);
  StopOptions stop;
  stop.max_iters = steps;
  RecordOptions rec;
  rec.every = steps;
  train(obj, w, *opt, stop, rec, nullptr);
  double drift = 0.0;
  for (int j = 0; j + 1 < 3; ++j)
    drift =
        std::max(drift, (w[j + 1].transpose() * w[j + 1] - w[j] * w[j].transpose() - d0[j]).norm());
  return drift;
}

TEST(GradientDescent, UnbalancednessDriftShrinksFourfoldWhenStepHalves) {
  const double d1 = unbalancedness_drift(2e-3, 40);
  const double d2 = unbalancedness_drift(1e-3, 40);
  const double d3 = unbalancedness_drift(5e-4, 40);
  EXPECT_GT(d1, 0.0);
  EXPECT_NEAR(d1 / d2, 4.0, 0.4);
  EXPECT_NEAR(d2 / d3, 4.0, 0.2);
}

// ---- Stopping rules ----
Summary run_scalar(double lr, StopOptions stop, std::vector<Callback*> cbs = {}) {
  static CompletionLoss loss = one_entry();
  Objective obj({1, 1, 1}, loss);
  Factors w{scalar(0.5), scalar(0.5)};
  OptimizerOptions o;
  o.lr = lr;
  auto opt = Optimizer::create(o, w);
  RecordOptions rec;
  rec.every = 10;
  return train(obj, w, *opt, stop, rec, nullptr, cbs);
}

TEST(Stopping, LossToleranceStopsAtFirstIterateBelowIt) {
  StopOptions stop;
  stop.max_iters = 100000;
  stop.loss_tol = 1e-10;
  Summary s = run_scalar(0.1, stop);
  EXPECT_EQ(s.termination, Termination::kLossTol);
  EXPECT_LE(s.final_loss, 1e-10);
  EXPECT_GT(s.iterations, 10);
  EXPECT_EQ(s.history.back().iteration, s.iterations);
}

TEST(Stopping, DivergenceIsATerminationNotACrash) {
  StopOptions stop;
  stop.max_iters = 10000;
  Summary s = run_scalar(50.0, stop);
  EXPECT_EQ(s.termination, Termination::kDiverged);
  EXPECT_LT(s.iterations, 10000);
  EXPECT_NE(s.message.find("loss became"), std::string::npos);
}

TEST(Stopping, CallbackCanStopTheRun) {
  struct StopAt : Callback {
    bool on_step(long t, double) override { return t < 7; }
  } cb;
  StopOptions stop;
  stop.max_iters = 1000;
  Summary s = run_scalar(0.01, stop, {&cb});
  EXPECT_EQ(s.termination, Termination::kCallback);
  EXPECT_EQ(s.iterations, 7);
}

// stop.max_seconds: a callback sleeps 2 ms at iteration 5 (time passes for sure, whatever the
// clock or the sanitizers); the run must end by time_limit there, with its last iterate recorded.
// Only the termination is asserted, no wall time.
struct SleepAt final : Callback {
  long at;
  explicit SleepAt(long a) : at(a) {}
  bool on_step(long t, double) override {
    if (t == at) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return true;
  }
};

TEST(Stopping, TimeLimitEndsTheRun) {
  SleepAt sleep(5);
  StopOptions stop;
  stop.max_iters = 100000;
  stop.max_seconds = 1e-3;
  const Summary s = run_scalar(1e-3, stop, {&sleep});
  EXPECT_EQ(s.termination, Termination::kTimeLimit);
  EXPECT_EQ(to_string(s.termination), "time_limit");
  EXPECT_LE(s.iterations, 5);
  EXPECT_EQ(s.history.back().iteration, s.iterations);
  // Gradient flow: the same rule between accepted ODE steps.
  static CompletionLoss loss = one_entry();
  Objective obj({1, 1, 1}, loss);
  Factors w{scalar(0.5), scalar(0.5)};
  FlowOptions flow;
  flow.time = 100;
  flow.record_dt = 0.01;  // on_step every 0.01: the sleep at the 3rd comes early
  SleepAt sleep_flow(3);
  const Summary f =
      train_gradient_flow(obj, w, flow, stop, RecordOptions{}, nullptr, {&sleep_flow});
  EXPECT_EQ(f.termination, Termination::kTimeLimit);
  EXPECT_LT(f.time, 100);
}

// RecordOptions::end_to_end = false (dln complete on huge matrices): the factors follow the same
// trajectory, records carry loss and gradient norm but no end-to-end metrics, and the final loss
// is computed without forming W_{n:1}.
TEST(Recording, WithoutEndToEndTheTrajectoryIsUnchanged) {
  ProblemConfig pc;
  pc.rows = 12;
  pc.cols = 9;
  pc.rank = 2;
  pc.observations = 60;
  pc.seed = 4;
  const Problem problem = make_problem(pc);
  const std::vector<Index> dims{9, 6, 5, 12};
  InitOptions io;
  io.scale = 0.3;
  io.seed = 2;
  Factors w[2] = {initialize(dims, io), initialize(dims, io)};
  Summary s[2];
  for (int k = 0; k < 2; ++k) {
    Objective objective(dims, *problem.loss);
    OptimizerOptions oo;
    oo.lr = 0.05;
    auto optimizer = Optimizer::create(oo, w[k]);
    StopOptions stop;
    stop.max_iters = 40;
    RecordOptions record;
    record.every = 10;
    record.end_to_end = k == 0;
    s[k] = train(objective, w[k], *optimizer, stop, record, &*problem.ground_truth);
  }
  for (std::size_t j = 0; j < w[0].size(); ++j) EXPECT_EQ(w[0][j], w[1][j]);
  ASSERT_EQ(s[0].history.size(), s[1].history.size());
  for (std::size_t i = 0; i < s[0].history.size(); ++i) {
    EXPECT_NEAR(s[1].history[i].loss, s[0].history[i].loss, 1e-12 * s[0].history[i].loss);
    EXPECT_EQ(s[1].history[i].grad_norm, s[0].history[i].grad_norm);
  }
  EXPECT_GT(s[0].history.back().metrics.fro_norm, 0.0);
  EXPECT_EQ(s[1].history.back().metrics.fro_norm, 0.0);
  EXPECT_FALSE(s[1].history.back().metrics.recon_mse.has_value());
  EXPECT_NEAR(s[1].final_loss, s[0].final_loss, 1e-12 * s[0].final_loss);
  RecordOptions bad;
  bad.end_to_end = false;
  bad.analytic = true;
  std::string err;
  EXPECT_FALSE(bad.IsValid(&err));
  EXPECT_EQ(err, "record.analytic: needs end-to-end records");
}

TEST(Stopping, InvalidOptionsNameTheKey) {
  StopOptions stop;
  stop.max_iters = -1;
  std::string err;
  EXPECT_FALSE(stop.IsValid(&err));
  EXPECT_EQ(err, "stop.max_iters: must be >= 0");
  OptimizerOptions o;
  o.lr = 0;
  EXPECT_FALSE(o.IsValid(&err));
  EXPECT_EQ(err, "optimizer.lr: must be finite and > 0");
}

TEST(Metrics, EffectiveRankAndNorms) {
  Vec s(3);
  s << 2.0, 2.0, 0.0;
  EXPECT_NEAR(effective_rank(s), 2.0, 1e-14);
  Mat w = Mat::Zero(3, 4);
  w(0, 0) = 3;
  w(1, 2) = -4;
  const auto m = end_to_end_metrics(w, nullptr);
  EXPECT_NEAR(m.nuclear_norm, 7.0, 1e-14);
  EXPECT_NEAR(m.spectral_norm, 4.0, 1e-14);
  EXPECT_NEAR(m.fro_norm, 5.0, 1e-14);
  const Mat truth = Mat::Zero(3, 4);
  const auto r = end_to_end_metrics(w, &truth);
  EXPECT_NEAR(*r.recon_mse, 25.0 / 12.0, 1e-14);
}

TEST(Sampling, ObservationsAreDistinctAndUniform) {
  const auto e = sample_entries(10, 10, 100, 3);  // all entries
  EXPECT_EQ(e.size(), 100u);
  std::vector<int> count(10, 0);
  for (int rep = 0; rep < 2000; ++rep)
    for (auto [r, c] : sample_entries(5, 2, 3, static_cast<std::uint64_t>(rep))) ++count[c * 5 + r];
  for (int k = 0; k < 10; ++k) EXPECT_NEAR(count[k], 600, 90);  // 3/10 of 2000, ~4 sigma
}

}  // namespace
}  // namespace dln
