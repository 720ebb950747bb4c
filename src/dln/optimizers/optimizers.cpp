#include <cmath>

#include "dln/dynamics/end_to_end.hpp"
#include "dln/optimizers/optimizer.hpp"

namespace dln {

OptimizerKind parse_optimizer(const std::string& s) {
  if (s == "gd") return OptimizerKind::kGd;
  if (s == "group_rmsprop") return OptimizerKind::kGroupRmsprop;
  if (s == "momentum") return OptimizerKind::kMomentum;
  if (s == "adam") return OptimizerKind::kAdam;
  if (s == "gradient_flow") return OptimizerKind::kGradientFlow;
  if (s == "end_to_end") return OptimizerKind::kEndToEnd;
  if (s == "adagrad") return OptimizerKind::kAdagrad;
  if (s == "adadelta") return OptimizerKind::kAdadelta;
  throw Error(
      "optimizer.name: expected one of gd, group_rmsprop, momentum, adam, gradient_flow, "
      "end_to_end, adagrad, adadelta; got \"" +
      s + "\"");
}

std::string to_string(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::kGd:
      return "gd";
    case OptimizerKind::kGroupRmsprop:
      return "group_rmsprop";
    case OptimizerKind::kMomentum:
      return "momentum";
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kGradientFlow:
      return "gradient_flow";
    case OptimizerKind::kEndToEnd:
      return "end_to_end";
    case OptimizerKind::kAdagrad:
      return "adagrad";
    case OptimizerKind::kAdadelta:
      return "adadelta";
  }
  return "?";
}

double OptimizerOptions::resolved_eps() const {
  if (eps >= 0) return eps;
  switch (kind) {
    case OptimizerKind::kAdam:
      return 1e-8;
    case OptimizerKind::kAdagrad:
      return 1e-10;
    case OptimizerKind::kAdadelta:
      return 1e-6;
    default:
      return 1e-4;
  }
}

bool OptimizerOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* msg) {
    if (error) *error = msg;
    return false;
  };
  if (!std::isfinite(lr) || lr <= 0) return fail("optimizer.lr: must be finite and > 0");
  if (!(momentum >= 0 && momentum < 1)) return fail("optimizer.momentum: must be in [0, 1)");
  if (!(alpha >= 0 && alpha < 1)) return fail("optimizer.alpha: must be in [0, 1)");
  if (!std::isfinite(eps) || (eps < 0 && eps != -1)) return fail("optimizer.eps: must be >= 0");
  if (!(beta1 >= 0 && beta1 < 1)) return fail("optimizer.beta1: must be in [0, 1)");
  if (!(beta2 >= 0 && beta2 < 1)) return fail("optimizer.beta2: must be in [0, 1)");
  if (!(rho >= 0 && rho < 1)) return fail("optimizer.rho: must be in [0, 1)");
  if (!std::isfinite(time) || time < 0) return fail("optimizer.time: must be finite and >= 0");
  if (kind == OptimizerKind::kGradientFlow && time <= 0)
    return fail("optimizer.time: must be > 0 for gradient_flow");
  if (!std::isfinite(rtol) || rtol <= 0) return fail("optimizer.rtol: must be finite and > 0");
  if (!std::isfinite(atol) || atol <= 0) return fail("optimizer.atol: must be finite and > 0");
  if (max_steps <= 0) return fail("optimizer.max_steps: must be > 0");
  if (depth < 0) return fail("optimizer.depth: must be >= 1 (0: network.depth)");
  return true;
}

namespace {

class GradientDescent final : public Optimizer {
 public:
  explicit GradientDescent(double lr) : lr_(lr) {}
  void step(Factors& w, const Factors& g) override {
    for (std::size_t j = 0; j < w.size(); ++j) w[j] -= lr_ * g[j];
  }

 private:
  double lr_;
};

// Heavy ball: v <- mu v + g; W <- W - lr v.
class Momentum final : public Optimizer {
 public:
  Momentum(const OptimizerOptions& o, const Factors& shape) : lr_(o.lr), mu_(o.momentum) {
    for (const auto& m : shape) v_.emplace_back(Mat::Zero(m.rows(), m.cols()));
  }
  void step(Factors& w, const Factors& g) override {
    for (std::size_t j = 0; j < w.size(); ++j) {
      v_[j] = mu_ * v_[j] + g[j];
      w[j] -= lr_ * v_[j];
    }
  }
  void state(Factors& buffers, std::vector<double>&) const override { buffers = v_; }
  void restore(const Factors& buffers, const std::vector<double>&) override { v_ = buffers; }

 private:
  double lr_, mu_;
  Factors v_;
};

// One running average of the squared norm of the whole gradient, shared by all layers:
// s <- alpha s + (1 - alpha) sum_j ||g_j||^2; v = sqrt(s / (1 - alpha^t)) + eps; W_j -= lr/v g_j.
class GroupRmsprop final : public Optimizer {
 public:
  explicit GroupRmsprop(const OptimizerOptions& o)
      : lr_(o.lr), alpha_(o.alpha), eps_(o.resolved_eps()), bias_correction_(o.bias_correction) {}
  void step(Factors& w, const Factors& g) override {
    double sq = 0.0;
    for (const auto& gj : g) sq += gj.squaredNorm();
    ++t_;
    s_ = alpha_ * s_ + (1 - alpha_) * sq;
    alpha_pow_ *= alpha_;
    const double s_hat = bias_correction_ ? s_ / (1 - alpha_pow_) : s_;
    const double rate = lr_ / (std::sqrt(s_hat) + eps_);
    for (std::size_t j = 0; j < w.size(); ++j) w[j] -= rate * g[j];
  }
  void state(Factors&, std::vector<double>& scalars) const override {
    scalars = {s_, alpha_pow_, static_cast<double>(t_)};
  }
  void restore(const Factors&, const std::vector<double>& scalars) override {
    s_ = scalars.at(0);
    alpha_pow_ = scalars.at(1);
    t_ = static_cast<long>(scalars.at(2));
  }

 private:
  double lr_, alpha_, eps_;
  bool bias_correction_;
  double s_ = 0.0, alpha_pow_ = 1.0;
  long t_ = 0;
};

// Adam (Kingma & Ba 2015), per entry, bias-corrected.
class Adam final : public Optimizer {
 public:
  Adam(const OptimizerOptions& o, const Factors& shape)
      : lr_(o.lr), b1_(o.beta1), b2_(o.beta2), eps_(o.resolved_eps()) {
    for (const auto& m : shape) {
      m_.emplace_back(Mat::Zero(m.rows(), m.cols()));
      v_.emplace_back(Mat::Zero(m.rows(), m.cols()));
    }
  }
  void step(Factors& w, const Factors& g) override {
    b1_pow_ *= b1_;
    b2_pow_ *= b2_;
    const double c1 = 1 - b1_pow_, c2 = 1 - b2_pow_;
    for (std::size_t j = 0; j < w.size(); ++j) {
      m_[j] = b1_ * m_[j] + (1 - b1_) * g[j];
      v_[j] = b2_ * v_[j] + (1 - b2_) * g[j].cwiseProduct(g[j]);
      w[j].array() -= lr_ * (m_[j].array() / c1) / ((v_[j].array() / c2).sqrt() + eps_);
    }
  }
  void state(Factors& buffers, std::vector<double>& scalars) const override {
    buffers = m_;
    buffers.insert(buffers.end(), v_.begin(), v_.end());
    scalars = {b1_pow_, b2_pow_};
  }
  void restore(const Factors& buffers, const std::vector<double>& scalars) override {
    const std::size_t n = m_.size();
    for (std::size_t j = 0; j < n; ++j) {
      m_[j] = buffers.at(j);
      v_[j] = buffers.at(n + j);
    }
    b1_pow_ = scalars.at(0);
    b2_pow_ = scalars.at(1);
  }

 private:
  double lr_, b1_, b2_, eps_;
  double b1_pow_ = 1.0, b2_pow_ = 1.0;
  Factors m_, v_;
};

// AdaGrad (Duchi, Hazan, Singer 2011), diagonal: G <- G + g^2; W <- W - lr g / (sqrt(G) + eps).
class Adagrad final : public Optimizer {
 public:
  Adagrad(const OptimizerOptions& o, const Factors& shape) : lr_(o.lr), eps_(o.resolved_eps()) {
    for (const auto& m : shape) g2_.emplace_back(Mat::Zero(m.rows(), m.cols()));
  }
  void step(Factors& w, const Factors& g) override {
    for (std::size_t j = 0; j < w.size(); ++j) {
      g2_[j] += g[j].cwiseProduct(g[j]);
      w[j].array() -= lr_ * g[j].array() / (g2_[j].array().sqrt() + eps_);
    }
  }
  void state(Factors& buffers, std::vector<double>&) const override { buffers = g2_; }
  void restore(const Factors& buffers, const std::vector<double>&) override { g2_ = buffers; }

 private:
  double lr_, eps_;
  Factors g2_;
};

// AdaDelta (Zeiler 2012, Algorithm 1): E[g^2] <- rho E[g^2] + (1 - rho) g^2;
// dW = -sqrt(E[dW^2] + eps) / sqrt(E[g^2] + eps) g; E[dW^2] <- rho E[dW^2] + (1 - rho) dW^2;
// W <- W + lr dW (lr = 1 is the paper's; as in PyTorch, lr scales the step).
class Adadelta final : public Optimizer {
 public:
  Adadelta(const OptimizerOptions& o, const Factors& shape)
      : lr_(o.lr), rho_(o.rho), eps_(o.resolved_eps()) {
    for (const auto& m : shape) {
      g2_.emplace_back(Mat::Zero(m.rows(), m.cols()));
      dx2_.emplace_back(Mat::Zero(m.rows(), m.cols()));
      dx_.emplace_back(Mat::Zero(m.rows(), m.cols()));
    }
  }
  void step(Factors& w, const Factors& g) override {
    for (std::size_t j = 0; j < w.size(); ++j) {
      g2_[j] = rho_ * g2_[j] + (1 - rho_) * g[j].cwiseProduct(g[j]);
      dx_[j].array() =
          -((dx2_[j].array() + eps_).sqrt() / (g2_[j].array() + eps_).sqrt()) * g[j].array();
      dx2_[j] = rho_ * dx2_[j] + (1 - rho_) * dx_[j].cwiseProduct(dx_[j]);
      w[j] += lr_ * dx_[j];
    }
  }
  void state(Factors& buffers, std::vector<double>&) const override {
    buffers = g2_;
    buffers.insert(buffers.end(), dx2_.begin(), dx2_.end());
  }
  void restore(const Factors& buffers, const std::vector<double>&) override {
    const std::size_t n = g2_.size();
    for (std::size_t j = 0; j < n; ++j) {
      g2_[j] = buffers.at(j);
      dx2_[j] = buffers.at(n + j);
    }
  }

 private:
  double lr_, rho_, eps_;
  Factors g2_, dx2_, dx_;  // dx_: scratch of the update, not state
};

// Claim 1: vec(W+) = vec(W) - zeta P(W) vec(grad l(W)), on the end-to-end matrix alone.
class EndToEndStep final : public Optimizer {
 public:
  EndToEndStep(double lr, int depth) : lr_(lr), depth_(depth) {}
  void step(Factors& w, const Factors& g) override {
    w[0] = end_to_end_discrete_step(w[0], g[0], depth_, lr_);
  }

 private:
  double lr_;
  int depth_;
};

}  // namespace

std::unique_ptr<Optimizer> Optimizer::create(const OptimizerOptions& o, const Factors& shape) {
  std::string err;
  if (!o.IsValid(&err)) throw Error(err);
  switch (o.kind) {
    case OptimizerKind::kGd:
      return std::make_unique<GradientDescent>(o.lr);
    case OptimizerKind::kMomentum:
      return std::make_unique<Momentum>(o, shape);
    case OptimizerKind::kGroupRmsprop:
      return std::make_unique<GroupRmsprop>(o);
    case OptimizerKind::kAdam:
      return std::make_unique<Adam>(o, shape);
    case OptimizerKind::kAdagrad:
      return std::make_unique<Adagrad>(o, shape);
    case OptimizerKind::kAdadelta:
      return std::make_unique<Adadelta>(o, shape);
    case OptimizerKind::kEndToEnd:
      if (shape.size() != 1)
        throw Error("end_to_end: steps the end-to-end matrix alone (one factor expected)");
      return std::make_unique<EndToEndStep>(o.lr, o.depth);
    case OptimizerKind::kGradientFlow:
      throw Error("optimizer.name: gradient_flow is continuous; use train_gradient_flow");
  }
  return nullptr;
}

}  // namespace dln
