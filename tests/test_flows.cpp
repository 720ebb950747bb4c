// Continuous optimizers: gradient flow (Eq. 2) with error control, the end-to-end dynamics
// (Theorem 1 / Claim 1) as optimizers, their options, and every `dln check` result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>

#include "dln/checks/checks.hpp"
#include "dln/config/config.hpp"
#include "dln/core/rng.hpp"
#include "dln/init/initializers.hpp"
#include "dln/io/npy.hpp"
#include "dln/run/run_dir.hpp"
#include "test_support.hpp"

namespace dln {
namespace {

using dln::testing::expect_error;

SquareRegressionLoss small_regression(std::uint64_t seed) {
  Rng rng(seed);
  const Mat x = rng.gaussian(4, 20, 1.0);
  return SquareRegressionLoss(x, rng.gaussian(3, 4, 1.0) * x);
}

Factors flow_to(const Loss& loss, Factors w, double time, double rtol, long* evals = nullptr) {
  Objective obj(dims_of(w), loss);
  FlowOptions f;
  f.time = time;
  f.record_dt = time;
  f.ode.rtol = rtol;
  f.ode.atol = rtol * 1e-4;
  RecordOptions rec;
  const Summary s = train_gradient_flow(obj, w, f, StopOptions{}, rec, nullptr);
  EXPECT_EQ(s.termination, Termination::kFlowTime);
  if (evals) *evals = s.rhs_evals;
  return w;
}

TEST(GradientFlow, AccuracyImprovesWithRtolAndStaysWithinASmallMultiple) {
  SquareRegressionLoss loss = small_regression(1);
  Rng rng(2);
  const Factors w0{rng.gaussian(5, 4, 0.4), rng.gaussian(6, 5, 0.4), rng.gaussian(3, 6, 0.4)};
  const Mat ref = end_to_end(flow_to(loss, w0, 2.0, 1e-13));
  double previous = 1e300;
  for (double rtol : {1e-4, 1e-6, 1e-8, 1e-10}) {
    const double err = (end_to_end(flow_to(loss, w0, 2.0, rtol)) - ref).norm() / ref.norm();
    std::printf("[measured] rtol %.0e: relative error of W(T) %.2e\n", rtol, err);
    EXPECT_LT(err, previous) << rtol;
    EXPECT_LT(err, 100 * rtol) << rtol;  // global error within a small multiple of rtol
    previous = err;
  }
}

TEST(GradientFlow, NeedsFarFewerGradientsThanGradientDescentOfTheSameAccuracy) {
  SquareRegressionLoss loss = small_regression(3);
  Rng rng(4);
  const Factors w0{rng.gaussian(5, 4, 0.4), rng.gaussian(3, 5, 0.4)};
  const double time = 2.0;
  const Mat ref = end_to_end(flow_to(loss, w0, time, 1e-13));
  long flow_evals = 0;
  const double flow_err =
      (end_to_end(flow_to(loss, w0, time, 1e-5, &flow_evals)) - ref).norm() / ref.norm();
  // GD with step h is Euler's method on Eq. 2: halve h until it is as accurate.
  Objective obj(dims_of(w0), loss);
  long gd_evals = 0;
  for (long steps = 16;; steps *= 2) {
    Factors w = w0, g = obj.make_like();
    const double h = time / static_cast<double>(steps);
    for (long k = 0; k < steps; ++k) {
      obj.evaluate_with_gradient(w, g);
      for (std::size_t j = 0; j < w.size(); ++j) w[j] -= h * g[j];
    }
    if ((end_to_end(w) - ref).norm() / ref.norm() <= flow_err) {
      gd_evals = steps;
      break;
    }
    ASSERT_LT(steps, 1L << 24);
  }
  std::printf(
      "[measured] flow rtol 1e-5: %ld gradient evaluations (error %.2e); GD of the same "
      "accuracy: %ld (ratio %.0f)\n",
      flow_evals, flow_err, gd_evals,
      static_cast<double>(gd_evals) / static_cast<double>(flow_evals));
  EXPECT_GT(static_cast<double>(gd_evals) / static_cast<double>(flow_evals), 10.0)
      << "flow " << flow_evals << " evaluations (error " << flow_err << "), GD " << gd_evals;
}

TEST(EndToEnd, DepthOneIsPlainGradientDescentAndGradientFlow) {
  SquareRegressionLoss loss = small_regression(5);
  Rng rng(6);
  const Mat w0 = rng.gaussian(3, 4, 0.5);
  // Discrete: Claim 1's step with n = 1 is a GD step.
  Objective obj({4, 3}, loss);
  OptimizerOptions e2e;
  e2e.kind = OptimizerKind::kEndToEnd;
  e2e.lr = 0.05;
  e2e.depth = 1;
  OptimizerOptions gd;
  gd.lr = 0.05;
  Factors a{w0}, b{w0};
  auto opt_a = Optimizer::create(e2e, a);
  auto opt_b = Optimizer::create(gd, b);
  StopOptions stop;
  stop.max_iters = 50;
  RecordOptions rec;
  train(obj, a, *opt_a, stop, rec, nullptr);
  train(obj, b, *opt_b, stop, rec, nullptr);
  EXPECT_LT((a[0] - b[0]).norm(), 1e-13 * b[0].norm());
  // Continuous: Eq. 3 with n = 1 is gradient flow on W.
  FlowOptions f;
  f.time = 1.0;
  f.ode.rtol = 1e-11;
  f.ode.atol = 1e-14;
  Mat w = w0;
  train_end_to_end_flow(loss, w, 1, f, StopOptions{}, rec, nullptr);
  const Mat direct = end_to_end(flow_to(loss, {w0}, 1.0, 1e-11));
  EXPECT_LT((w - direct).norm(), 1e-9 * direct.norm());
}

const char* kFlowConfig = R"(
[problem]
kind = "regression"
rows = 3
cols = 4
rank = 2
samples = 20
seed = 1
[network]
depth = 3
width = 5
init = "balanced"
init_scale = 0.3
seed = 2
[optimizer]
name = "gradient_flow"
time = 2.0
rtol = 1e-10
[record]
dt = 0.5
)";

TEST(Flows, RunDirectoryHasTheSameLayoutAndTimes) {
  Config c = parse_config(kFlowConfig, "flow.toml");
  const RunResult r = run(c);
  EXPECT_EQ(r.summary.termination, Termination::kFlowTime);
  ASSERT_EQ(r.summary.history.size(), 5u);
  EXPECT_DOUBLE_EQ(r.summary.history.back().time, 2.0);
  EXPECT_GT(r.summary.rhs_evals, 0);
  // Theorem 1: the end_to_end optimizer from the same balanced init reaches the same W(T).
  Config e = parse_config(kFlowConfig, "flow.toml", {"optimizer.name=end_to_end"});
  const RunResult re = run(e);
  EXPECT_LT((re.end_to_end - r.end_to_end).norm(), 1e-7 * r.end_to_end.norm());
  EXPECT_EQ(re.factors.size(), 3u);
  // The same dynamics from a depth-1 network whose init is W_{3:1}(0), with optimizer.depth = 3.
  Config one = parse_config(kFlowConfig, "flow.toml",
                            {"optimizer.name=end_to_end", "optimizer.depth=3", "network.depth=1"});
  one.network.init.kind = InitKind::kFile;
  const std::string dir = ::testing::TempDir() + "/e2e_init";
  std::filesystem::create_directories(dir);
  io::write_npy(dir + "/W1.npy", end_to_end(r.init));
  one.network.init.path = dir;
  const RunResult r1 = run(one);
  EXPECT_LT((r1.end_to_end - re.end_to_end).norm(), 1e-12 * re.end_to_end.norm());
  EXPECT_LT((end_to_end(re.factors) - re.end_to_end).norm(), 1e-12 * re.end_to_end.norm());
}

TEST(Flows, AnalyticSingularValuesAreSignedContinuousAndMatchTheSvd) {
  Config c = parse_config(kFlowConfig, "flow.toml",
                          {"record.analytic=true", "record.dt=0.01", "optimizer.time=3.0"});
  const RunResult r = run(c);
  ASSERT_EQ(r.summary.history.size(), 301u);
  for (std::size_t k = 0; k < r.summary.history.size(); ++k) {
    const auto& h = r.summary.history[k];
    Vec a = h.analytic_sigma.cwiseAbs();
    std::sort(a.data(), a.data() + a.size(), std::greater<>());
    ASSERT_EQ(a.size(), h.metrics.singular_values.size());
    EXPECT_LT((a - h.metrics.singular_values).norm(), 1e-10 * (1 + a.norm())) << k;
    if (k > 0) {  // each component moves continuously between records
      const Vec& prev = r.summary.history[k - 1].analytic_sigma;
      EXPECT_LT((h.analytic_sigma - prev).cwiseAbs().maxCoeff(), 0.05 * (1 + prev.norm())) << k;
    }
  }
}

TEST(Flows, BadOptionsNameTheKey) {
  expect_error([] { parse_config(kFlowConfig, "f", {"optimizer.time=-1"}); },
               "optimizer.time: must be finite and >= 0");
  expect_error([] { parse_config(kFlowConfig, "f", {"optimizer.time=0"}); },
               "optimizer.time: must be > 0 for gradient_flow");
  expect_error([] { parse_config(kFlowConfig, "f", {"optimizer.rtol=0"}); },
               "optimizer.rtol: must be finite and > 0");
  expect_error([] { parse_config(kFlowConfig, "f", {"optimizer.atol=-1e-9"}); },
               "optimizer.atol: must be finite and > 0");
  expect_error([] { parse_config(kFlowConfig, "f", {"network.depth=0"}); },
               "network.depth: must be >= 1, got 0");
  expect_error([] { parse_config(kFlowConfig, "f", {"optimizer.depth=-2"}); },
               "optimizer.depth: must be >= 1 (0: network.depth)");
  expect_error([] { parse_config(kFlowConfig, "f", {"record.dt=-1"}); },
               "record.dt: must be finite and >= 0");
  Config c = parse_config(kFlowConfig, "f", {"optimizer.name=end_to_end", "network.init=gaussian"});
  try {
    run(c);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "optimizer.name: end_to_end needs balanced initial factors (Assumption 1), but "
                  "network.init = \"gaussian\" has unbalancedness ",
                  0),
              0u)
        << e.what();
  }
}

// Every `dln check` result, seeded, as its own test.
class CheckTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CheckTest, Passes) {
  const auto results = run_checks(1, GetParam());
  ASSERT_FALSE(results.empty());
  for (const auto& r : results)
    EXPECT_TRUE(r.pass) << r.result << ": measured " << r.error << " vs " << r.tolerance << " ("
                        << r.compared << ") " << r.detail;
}

INSTANTIATE_TEST_SUITE_P(Notes, CheckTest,
                         ::testing::Values("Lemma 1", "Theorem 1", "Corollary 1", "Remark 1",
                                           "Proposition 1 / 3", "Exercise 3", "Remark 2",
                                           "Theorem 3", "Theorem 2", "Lemma 2", "Proposition 5",
                                           "Exercise 1", "Exercise 2", "Exercise 5"),
                         [](const auto& param_info) {
                           std::string n = param_info.param;
                           for (char& ch : n)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return n;
                         });

// Proposition 5's bound is vacuous at loss >= 1/6: trajectories stopped before the loss gets
// there (T = 0.5; the loss starts near 1/3) must fail the check, not pass it.
TEST(Checks, Proposition5NeedsLossBelowOneSixth) {
  const CheckResult vacuous = proposition5(0.5, 0.5);
  EXPECT_FALSE(vacuous.pass) << vacuous.detail;
  EXPECT_NE(vacuous.detail.find("2 trajectories never reach loss < 1/6"), std::string::npos)
      << vacuous.detail;
  // The full-length check passes: CheckTest.Passes/Proposition_5.
}

// Remark 2 over enough steps for its bound to fall by e^-3: GD at 0.45 of the step
// (slower than the Remark's rate) must fail; the real check passes with phi(T) below the bound.
TEST(Checks, Remark2BoundDecaysByEMinus3) {
  const auto r = run_checks(1, "Remark 2");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_TRUE(r[0].pass) << r[0].detail;
  EXPECT_LE(r[0].error, 1.0);
  EXPECT_NE(r[0].detail.find("181038 steps"), std::string::npos) << r[0].detail;
}

}  // namespace
}  // namespace dln
