// AdaGrad (Duchi, Hazan, Singer 2011), AdaDelta (Zeiler 2012, Algorithm 1) and Adam (Kingma & Ba
// 2015, Algorithm 1): each update against the paper's recursion written out entry by entry, and
// their validation.
#include <gtest/gtest.h>

#include <cmath>

#include "dln/config/config.hpp"
#include "dln/optimizers/optimizer.hpp"
#include "test_support.hpp"

namespace dln {
namespace {

using testing::expect_error;

OptimizerOptions options(const char* name, double lr) {
  OptimizerOptions o;
  o.kind = parse_optimizer(name);
  o.lr = lr;
  return o;
}

// Three steps on a 1x2 factor with fixed gradients, against scalar recursions.
const double kGrads[3][2] = {{0.5, -2.0}, {1.5, 0.25}, {-0.75, 1.0}};

TEST(AdaptiveOptimizers, AdagradIsTheDiagonalRecursion) {
  auto o = options("adagrad", 0.1);
  EXPECT_EQ(o.resolved_eps(), 1e-10);
  Factors w{Mat(1, 2)};
  w[0] << 1.0, -1.0;
  auto opt = Optimizer::create(o, w);
  double x[2] = {1.0, -1.0}, g2[2] = {0, 0};
  for (const auto& g : kGrads) {
    Factors grad{Mat(1, 2)};
    grad[0] << g[0], g[1];
    opt->step(w, grad);
    for (int i = 0; i < 2; ++i) {
      g2[i] += g[i] * g[i];
      x[i] -= 0.1 * g[i] / (std::sqrt(g2[i]) + 1e-10);
    }
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(w[0](0, i), x[i], 1e-15);
  }
  // The first step moves every entry by lr, whatever the gradient's scale: lr |g| / (|g| + eps),
  // off lr by lr eps / |g|.
  Factors w1{Mat::Zero(1, 2)};
  Factors g1{Mat(1, 2)};
  g1[0] << 1e-3, -1e3;
  Optimizer::create(o, w1)->step(w1, g1);
  EXPECT_NEAR(w1[0](0, 0), -0.1, 1.01 * 0.1 * 1e-10 / 1e-3);
  EXPECT_NEAR(w1[0](0, 1), 0.1, 1.01 * 0.1 * 1e-10 / 1e3 + 1e-16);
}

TEST(AdaptiveOptimizers, AdadeltaIsZeilersAlgorithmOne) {
  auto o = options("adadelta", 1.0);
  o.rho = 0.9;
  EXPECT_EQ(o.resolved_eps(), 1e-6);
  Factors w{Mat(1, 2)};
  w[0] << 1.0, -1.0;
  auto opt = Optimizer::create(o, w);
  double x[2] = {1.0, -1.0}, eg2[2] = {0, 0}, edx2[2] = {0, 0};
  for (const auto& g : kGrads) {
    Factors grad{Mat(1, 2)};
    grad[0] << g[0], g[1];
    opt->step(w, grad);
    for (int i = 0; i < 2; ++i) {
      eg2[i] = 0.9 * eg2[i] + 0.1 * g[i] * g[i];
      const double dx = -std::sqrt(edx2[i] + 1e-6) / std::sqrt(eg2[i] + 1e-6) * g[i];
      edx2[i] = 0.9 * edx2[i] + 0.1 * dx * dx;
      x[i] += dx;
    }
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(w[0](0, i), x[i], 1e-15);
  }
}

// Kingma & Ba 2015, Algorithm 1: m, v moving averages, bias-corrected by 1 - beta^t.
TEST(AdaptiveOptimizers, AdamIsKingmaBaAlgorithmOne) {
  auto o = options("adam", 0.05);
  o.beta1 = 0.8;
  o.beta2 = 0.95;
  EXPECT_EQ(o.resolved_eps(), 1e-8);
  Factors w{Mat(1, 2)};
  w[0] << 1.0, -1.0;
  auto opt = Optimizer::create(o, w);
  double x[2] = {1.0, -1.0}, m[2] = {0, 0}, v[2] = {0, 0};
  int t = 0;
  for (const auto& g : kGrads) {
    Factors grad{Mat(1, 2)};
    grad[0] << g[0], g[1];
    opt->step(w, grad);
    ++t;
    for (int i = 0; i < 2; ++i) {
      m[i] = 0.8 * m[i] + 0.2 * g[i];
      v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
      const double mh = m[i] / (1 - std::pow(0.8, t)), vh = v[i] / (1 - std::pow(0.95, t));
      x[i] -= 0.05 * mh / (std::sqrt(vh) + 1e-8);
    }
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(w[0](0, i), x[i], 1e-15);
  }
}

TEST(AdaptiveOptimizers, StateRoundTripsAndConfigKeys) {
  for (const char* name : {"adagrad", "adadelta"}) {
    auto o = options(name, 0.05);
    Factors w{Mat::Constant(2, 3, 0.5)}, g{Mat::Constant(2, 3, 0.25)};
    auto a = Optimizer::create(o, w);
    a->step(w, g);
    Factors buffers;
    std::vector<double> scalars;
    a->state(buffers, scalars);
    EXPECT_EQ(buffers.size(), std::string(name) == "adagrad" ? 1u : 2u) << name;
    auto b = Optimizer::create(o, w);
    b->restore(buffers, scalars);
    Factors wa = w, wb = w;
    a->step(wa, g);
    b->step(wb, g);
    EXPECT_EQ((wa[0] - wb[0]).norm(), 0.0) << name;
  }
  const Config c = parse_config("[optimizer]\nname = \"adadelta\"\nrho = 0.8\n", "t.toml");
  EXPECT_EQ(c.optimizer.kind, OptimizerKind::kAdadelta);
  EXPECT_EQ(c.optimizer.rho, 0.8);
  EXPECT_EQ(parse_config(c.to_toml(), "resolved").optimizer.rho, 0.8);
  expect_error([] { parse_config("", "t", {"optimizer.rho=1"}); },
               "optimizer.rho: must be in [0, 1)");
  expect_error([] { parse_config("", "t", {"optimizer.rho=-0.1"}); },
               "optimizer.rho: must be in [0, 1)");
}

}  // namespace
}  // namespace dln
