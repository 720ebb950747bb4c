// The linear neural network x -> W_n ... W_1 x (Section 1) and its overparameterized objective
// phi(W_1, ..., W_n) = l(W_n ... W_1) (Eq. 1).
#pragma once

#include <memory>
#include <vector>

#include "dln/core/helper_thread.hpp"
#include "dln/core/types.hpp"
#include "dln/losses/loss.hpp"
#include "dln/model/sparse_kernels.hpp"

namespace dln {

// Factors W_1..W_n stored at index 0..n-1; W_j has shape d_j x d_{j-1}.
using Factors = std::vector<Mat>;

// dims = {d_0, d_1, ..., d_n}; throws Error when a size is <= 0 or depth < 1.
void validate_dims(const std::vector<Index>& dims);
std::vector<Index> dims_of(const Factors& w);

// Definition 2: W_{n:1} = W_n W_{n-1} ... W_1.
Mat end_to_end(const Factors& w);

// phi and its gradient for every factor (proof of Lemma 1):
//   d phi / d W_j = W_{n:j+1}^T grad l(W_{n:1}) W_{j-1:1}^T,
// from prefix products W_{j:1} and transposed suffix products W_{n:j+1}^T, all preallocated:
// evaluate() performs no heap allocation. For completion losses the gradient of l is kept sparse
// and W_{n:1} is never formed (3(n-2) dense GEMMs per step for n >= 2). Dense losses with fewer
// outputs than inputs (d_n < d_0) multiply from the output side, so every product has d_n rows:
// a one-output network costs ~3 sum_j d_j d_{j-1} per step, far below the data pass.
class Objective {
 public:
  Objective(std::vector<Index> dims, const Loss& loss);
  const std::vector<Index>& dims() const { return dims_; }
  int depth() const { return static_cast<int>(dims_.size()) - 1; }
  const Loss& loss() const { return loss_; }

  // Returns phi(W); fills grads (preallocated with the factors' shapes by make_like()).
  double evaluate_with_gradient(const Factors& w, Factors& grads);
  double evaluate(const Factors& w);
  // Zero matrices shaped like the factors.
  Factors make_like() const;
  // Dense GEMM flops of one evaluate_with_gradient (for benchmarks).
  double gemm_flops() const;

  // Completion losses, BLAS single-threaded (the middle sizes): with threads >= 2 and enough
  // work per step, evaluate_with_gradient may split each step between the calling thread and
  // one helper thread (the prefix and suffix chains, then the residuals by column ranges, then
  // the gradient tasks run concurrently), with results bit-identical to one thread: every
  // number is computed by the same kernel, on one thread or the other. Whether a split step is
  // faster is measured during the run (timed_step). Returns whether the helper thread was
  // started; split_in_use() says whether the last measurement chose it.
  bool set_threads(int threads);
  bool split_in_use() const { return helper_ && use_split_; }

 private:
  double completion_step(const Factors& w, Factors& grads);
  double completion_step_split(const Factors& w, Factors& grads);
  double timed_step(const Factors& w, Factors& grads);
  void gradient_task(int j, const Factors& w, Factors& grads);
  double dense_step(const Factors& w, Factors& grads);
  double output_side_step(const Factors& w, Factors& grads);
  void compute_output_chain(const Factors& w);
  void compute_prefix(const Factors& w, int upto);
  void compute_suffix(const Factors& w);
  const Mat& suffix_operand(const Factors& w, int j, bool& transposed) const;

  std::vector<Index> dims_;
  const Loss& loss_;
  const CompletionLoss* completion_;
  Factors prefix_;   // prefix_[j] = W_{j:1}, j = 2..n (index j)
  Factors suffix_;   // suffix_[j] = W_{n:j+1}^T (d_j x d_n), j = 1..n-1
  Factors scratch_;  // per-layer temporaries
  Mat grad_loss_;    // dense losses: grad l(W_{n:1})
  // Dense losses with d_n < d_0 (e.g. one output, Claim 1): products from the output side.
  bool output_side_ = false;
  Factors output_chain_;     // output_chain_[j] = W_{n:j} (d_n x d_{j-1}), j = 1..n-1
  Factors input_grad_;       // input_grad_[j] = G W_{j-1:1}^T (d_n x d_{j-1}), j = 2..n-1
  sparse::Pattern pattern_;  // completion: observations by column and by row
  Vec residual_;
  Vec residual_rows_;  // completion: the residuals in CSR order (contiguous for G^T products)
  // Two-thread completion step (set_threads).
  std::unique_ptr<HelperThread> helper_;
  Index col_split_ = 0;        // the first column of the second half of the entries
  std::vector<int> tasks_[2];  // gradient tasks j = 1..n of each thread
  long until_probe_ = 0, probe_left_ = 0, strikes_ = 0;  // timed_step's schedule
  double best_[2] = {0.0, 0.0};                          // fastest probe step, one thread / split
  double last_ = 1.0;                                    // seconds of the last step
  bool use_split_ = false;
};

}  // namespace dln
