// What the training loop optimizes: any function of a list of parameter matrices with a gradient
// (ensmallen-style). The matrix chain phi(W_1..W_n) = l(W_n...W_1) (Eq. 1) and the tensor
// factorizations of Section 5 (dln/tensors) both implement it.
#pragma once

#include <functional>

#include "dln/model/network.hpp"

namespace dln {

struct HistoryRow;
// Fills model-specific fields of each record from the parameters (tensor component norms and
// reconstruction error, dln/tensors); called by train() and the flows before callbacks run.
using RecordAnnotator = std::function<void(const Factors& w, HistoryRow& row)>;

class FactorObjective {
 public:
  virtual ~FactorObjective() = default;
  // Returns the objective; fills grads (preallocated by make_like()).
  virtual double evaluate_with_gradient(const Factors& w, Factors& grads) = 0;
  virtual double evaluate(const Factors& w) = 0;
  // Zero matrices shaped like the parameters.
  virtual Factors make_like() const = 0;
  // The quantity gradient flow conserves (Def. 1 for the chain; per-component norm differences
  // for CP), recorded in every history row.
  virtual double unbalancedness(const Factors& w) const = 0;
  // Whether the parameters have an end-to-end matrix W_{n:1} (records with record.end_to_end).
  virtual bool has_end_to_end() const { return false; }
  // l(W_{n:1}) from the product itself (the chain's final loss); others return evaluate(w).
  virtual double end_to_end_loss(const Factors& w) { return evaluate(w); }
  // Fills model-specific fields of a record (HistoryRow) from the parameters; empty: none.
  virtual RecordAnnotator annotator() const { return {}; }
};

// The deep matrix factorization's Objective seen through FactorObjective.
class ChainObjective final : public FactorObjective {
 public:
  explicit ChainObjective(Objective& objective) : objective_(objective) {}
  double evaluate_with_gradient(const Factors& w, Factors& grads) override {
    return objective_.evaluate_with_gradient(w, grads);
  }
  double evaluate(const Factors& w) override { return objective_.evaluate(w); }
  Factors make_like() const override { return objective_.make_like(); }
  double unbalancedness(const Factors& w) const override;
  bool has_end_to_end() const override { return true; }
  double end_to_end_loss(const Factors& w) override;

 private:
  Objective& objective_;
};

}  // namespace dln
