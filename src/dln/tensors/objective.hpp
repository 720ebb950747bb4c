// Tensor completion and tensor sensing (Eq. 9 lifted to tensors) over a CP or hierarchical
// network, as a FactorObjective for the training loop.
#pragma once

#include <memory>
#include <optional>

#include "dln/losses/loss.hpp"
#include "dln/optimizers/factor_objective.hpp"
#include "dln/tensors/network.hpp"

namespace dln::tensors {

// What records compare against: the ground truth tensor, dense in C order.
struct TensorTruth {
  Vec dense;
  double norm = 0;  // ||W*||_F
};

class TensorObjective final : public FactorObjective {
 public:
  // Completion: l = coef/2 sum_e (W[e] - b_e)^2 over the observed entries; coef = 1/m
  // ("half_mean") or 2/m ("mean").
  TensorObjective(const TensorNetworkSpec& spec, const Observations& obs, Reduction reduction);
  // Sensing: l = coef/2 sum_i (<W, A_i> - b_i)^2; row i of `a` (m x d_1...d_N) is A_i in C
  // order. The network is bound to every entry.
  TensorObjective(const TensorNetworkSpec& spec, Mat a, Vec b, Reduction reduction);

  double evaluate_with_gradient(const Factors& w, Factors& grads) override;
  double evaluate(const Factors& w) override;
  Factors make_like() const override { return zero_parameters(spec_); }
  double unbalancedness(const Factors& w) const override;
  RecordAnnotator annotator() const override;

  // Records: the component norms (top record_components per node) and, with a truth, the
  // normalized reconstruction error ||W - W*||_F / ||W*||_F (dense: at most 10^6 entries).
  void set_records(int components, std::optional<TensorTruth> truth);
  // CP completion: with threads >= 2 and enough work per step, each step's two halves of the
  // entries run on this thread and one helper (same result as one thread). Returns whether
  // the helper was started.
  bool set_threads(int threads);
  const TensorNetworkSpec& spec() const { return spec_; }
  const TensorNetwork& network() const { return network_; }
  double flops() const { return network_.flops(); }

 private:
  double residuals(const Factors& w);

  TensorNetworkSpec spec_;
  TensorNetwork network_;
  bool sensing_ = false;
  Vec b_;
  Mat a_;
  double coef_ = 0;
  Vec values_, residual_, dv_;
  int components_ = 10;
  std::optional<TensorTruth> truth_;
  std::shared_ptr<TensorNetwork> dense_;  // bound to every entry (records with a truth)
  std::shared_ptr<HelperThread> helper_;
};

// The normalized reconstruction error of w against a dense truth.
double reconstruction_error(const TensorNetworkSpec& spec, const Factors& w,
                            const TensorTruth& truth);

}  // namespace dln::tensors
