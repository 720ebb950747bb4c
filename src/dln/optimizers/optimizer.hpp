// Gradient-based optimizers over the factors (gradient descent is the discretization of Eq. 2).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "dln/model/network.hpp"

namespace dln {

// kGradientFlow: Eq. 2 as an ODE; kEndToEnd: Theorem 1 / Claim 1 on W_{n:1} alone; kAdagrad
// (Duchi, Hazan, Singer 2011) and kAdadelta (Zeiler 2012): the per-entry adaptive baselines of
// Claim 1's experiment.
enum class OptimizerKind {
  kGd,
  kGroupRmsprop,
  kMomentum,
  kAdam,
  kGradientFlow,
  kEndToEnd,
  kAdagrad,
  kAdadelta
};
OptimizerKind parse_optimizer(const std::string& s);  // throws Error naming optimizer.name
std::string to_string(OptimizerKind k);

// Ceres-style options: documented defaults, IsValid() names the offending key.
struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kGd;
  double lr = 0.01;       // step size (eta)
  double momentum = 0.9;  // momentum: v <- momentum v + g; W <- W - lr v
  double alpha = 0.99;    // group_rmsprop: s <- alpha s + (1 - alpha) sum_j ||g_j||_F^2
  // -1 = the kind's default: group_rmsprop 1e-4, adam 1e-8, adagrad 1e-10, adadelta 1e-6.
  double eps = -1;
  bool bias_correction = true;        // group_rmsprop: divide s by (1 - alpha^t)
  double beta1 = 0.9, beta2 = 0.999;  // adam
  double rho = 0.95;                  // adadelta: decay of the running E[g^2] and E[dW^2]
  double time = 0;  // gradient_flow (required) / end_to_end (0: discrete steps of lr)
  double rtol = 1e-8, atol = 1e-12;  // continuous optimizers: ODE tolerances
  long max_steps = 10'000'000;       // continuous optimizers: ODE step budget
  int depth = 0;                     // end_to_end: n in P(W); 0 means network.depth
  bool continuous() const {
    return kind == OptimizerKind::kGradientFlow || (kind == OptimizerKind::kEndToEnd && time > 0);
  }
  double resolved_eps() const;
  bool IsValid(std::string* error) const;
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // One update from gradients g at the current factors w (all layers simultaneously).
  virtual void step(Factors& w, const Factors& g) = 0;
  // The optimizer's state for checkpoints (buffers like the factors, and scalars); restore()
  // takes exactly what state() gave and continues bit-identically.
  virtual void state(Factors& /*buffers*/, std::vector<double>& /*scalars*/) const {}
  virtual void restore(const Factors& /*buffers*/, const std::vector<double>& /*scalars*/) {}
  static std::unique_ptr<Optimizer> create(const OptimizerOptions& options, const Factors& shape);
};

}  // namespace dln
