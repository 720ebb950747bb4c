#include "dln/tensors/objective.hpp"

#include <algorithm>
#include <numeric>

#include "dln/optimizers/train.hpp"

namespace dln::tensors {

namespace {
double coefficient(Reduction r, Index m) {
  return (r == Reduction::kMean ? 2.0 : 1.0) / static_cast<double>(m);
}
}  // namespace

TensorObjective::TensorObjective(const TensorNetworkSpec& spec, const Observations& obs,
                                 Reduction reduction)
    : spec_(spec), network_(spec, obs.entries) {
  b_ = Eigen::Map<const Vec>(obs.values.data(), static_cast<Index>(obs.values.size()));
  coef_ = coefficient(reduction, b_.size());
  residual_.resize(b_.size());
  dv_.resize(b_.size());
}

TensorObjective::TensorObjective(const TensorNetworkSpec& spec, Mat a, Vec b, Reduction reduction)
    : spec_(spec),
      network_(spec, all_entries(spec.shape)),
      sensing_(true),
      b_(std::move(b)),
      a_(std::move(a)) {
  if (a_.rows() != b_.size() || static_cast<double>(a_.cols()) != entry_count(spec.shape))
    throw Error("TensorObjective: the sensing tensors do not match the measurements and shape");
  coef_ = coefficient(reduction, b_.size());
  residual_.resize(b_.size());
  dv_.resize(a_.cols());
}

double TensorObjective::residuals(const Factors& w) {
  network_.values(w, values_);
  if (sensing_)
    residual_.noalias() = a_ * values_ - b_;
  else
    residual_ = values_ - b_;
  return 0.5 * coef_ * residual_.squaredNorm();
}

double TensorObjective::evaluate(const Factors& w) { return residuals(w); }

bool TensorObjective::set_threads(int threads) {
  helper_.reset();
  // Below ~10^5 multiply-adds per half the hand-off costs more than it gives.
  if (threads >= 2 && !sensing_ && network_.fused_completion() && network_.flops() > 4e5)
    helper_ = std::make_shared<HelperThread>();
  return helper_ != nullptr;
}

double TensorObjective::evaluate_with_gradient(const Factors& w, Factors& grads) {
  if (!sensing_ && network_.fused_completion())
    return 0.5 * coef_ * network_.completion_step(w, b_, coef_, grads, helper_.get());
  const double loss = residuals(w);
  if (sensing_)
    dv_.noalias() = coef_ * (a_.transpose() * residual_);
  else
    dv_ = coef_ * residual_;
  network_.backward(w, dv_, grads);
  return loss;
}

double TensorObjective::unbalancedness(const Factors& w) const {
  return tensor_unbalancedness(spec_, w);
}

void TensorObjective::set_records(int components, std::optional<TensorTruth> truth) {
  components_ = components;
  truth_ = std::move(truth);
  dense_.reset();
  if (truth_) dense_ = std::make_shared<TensorNetwork>(spec_, all_entries(spec_.shape));
}

double reconstruction_error(const TensorNetworkSpec& spec, const Factors& w,
                            const TensorTruth& truth) {
  return (dense_tensor(spec, w) - truth.dense).norm() / truth.norm;
}

RecordAnnotator TensorObjective::annotator() const {
  return [this](const Factors& w, HistoryRow& row) {
    const auto norms = component_norms(spec_, w);
    std::vector<double> top, ids;
    for (const Vec& n : norms) {
      std::vector<Index> order(static_cast<std::size_t>(n.size()));
      std::iota(order.begin(), order.end(), Index{0});
      const auto k = std::min<std::size_t>(static_cast<std::size_t>(components_), order.size());
      std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                        [&](Index a, Index b) { return n[a] > n[b] || (n[a] == n[b] && a < b); });
      for (std::size_t i = 0; i < k; ++i) {
        top.push_back(n[order[i]]);
        ids.push_back(static_cast<double>(order[i]));
      }
    }
    row.components = Eigen::Map<const Vec>(top.data(), static_cast<Index>(top.size()));
    row.component_ids = Eigen::Map<const Vec>(ids.data(), static_cast<Index>(ids.size()));
    if (truth_) {
      Vec dense;
      dense_->values(w, dense);
      const double diff = (dense - truth_->dense).norm();
      row.metrics.fro_norm = dense.norm();
      row.metrics.recon_rel_error = diff / truth_->norm;
      row.metrics.recon_mse = diff * diff / static_cast<double>(dense.size());
    }
  };
}

}  // namespace dln::tensors
