#include "dln/model/network.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "dln/core/blas.hpp"
#include "dln/model/sparse_kernels.hpp"

namespace dln {

namespace {
constexpr double kMinSplitFlops = 1e6;
constexpr long kWarmup = 3, kProbe = 12, kReprobe = 20000, kRecheck = 2000;
constexpr double kProbeSeconds = 5e-3;  // probe steps per mode: ~5 ms worth, 2 to kProbe
constexpr double kMinGain = 0.95;       // the split must save 5% to be used
}  // namespace

void validate_dims(const std::vector<Index>& dims) {
  if (dims.size() < 2) throw Error("network.depth: must be >= 1");
  for (std::size_t j = 0; j < dims.size(); ++j)
    if (dims[j] <= 0)
      throw Error(fmt::format("network: dimension d_{} must be > 0, got {}", j, dims[j]));
}

std::vector<Index> dims_of(const Factors& w) {
  std::vector<Index> d;
  if (w.empty()) return d;
  d.push_back(w[0].cols());
  for (const auto& m : w) d.push_back(m.rows());
  return d;
}

Mat end_to_end(const Factors& w) {
  Mat e = w.at(0);
  for (std::size_t j = 1; j < w.size(); ++j) {
    Mat next(w[j].rows(), e.cols());
    next.noalias() = w[j] * e;
    e.swap(next);
  }
  return e;
}

Objective::Objective(std::vector<Index> dims, const Loss& loss)
    : dims_(std::move(dims)), loss_(loss), completion_(loss.as_completion()) {
  validate_dims(dims_);
  const int n = depth();
  if (dims_.front() != loss.cols() || dims_.back() != loss.rows())
    throw Error(fmt::format("network: end-to-end shape {}x{} does not match the problem's {}x{}",
                            dims_.back(), dims_.front(), loss.rows(), loss.cols()));
  auto d = [&](int j) { return dims_[static_cast<std::size_t>(j)]; };
  prefix_.resize(static_cast<std::size_t>(n) + 1);
  suffix_.resize(static_cast<std::size_t>(n) + 1);
  scratch_.resize(static_cast<std::size_t>(n) + 1);
  output_side_ = !completion_ && n >= 2 && d(n) < d(0);
  if (!output_side_) {
    // Completion never forms W_{n:1} (d_n x d_0): its prefixes stop at W_{n-1:1}.
    for (int j = 2; j <= (completion_ ? n - 1 : n); ++j) prefix_[j].setZero(d(j), d(0));
    for (int j = 1; j < n; ++j)
      if (j < n - 1 || n == 2) suffix_[j].setZero(d(j), d(n));
    for (int j = 1; j <= n; ++j) {
      if (completion_) {
        if (j >= 2) scratch_[j].setZero(d(j - 1), d(n));  // W_{j-1:1} G^T (j = 1 is never used)
      } else {
        scratch_[j].setZero(d(j), d(0));  // W_{n:j+1}^T G
      }
    }
  }
  if (!completion_) grad_loss_.setZero(d(n), d(0));
  if (output_side_) {
    output_chain_.resize(static_cast<std::size_t>(n) + 1);
    input_grad_.resize(static_cast<std::size_t>(n) + 1);
    for (int j = 1; j < n; ++j) output_chain_[j].setZero(d(n), d(j - 1));
    for (int j = 2; j < n; ++j) input_grad_[j].setZero(d(n), d(j - 1));
  }
  if (completion_) {
    pattern_ = sparse::make_pattern(loss.rows(), loss.cols(), completion_->obs_rows(),
                                    completion_->obs_cols(), completion_->obs_values());
    residual_.setZero(completion_->size());
    if (n >= 2) residual_rows_.setZero(completion_->size());
  }
}

Factors Objective::make_like() const {
  Factors g;
  for (int j = 1; j <= depth(); ++j) g.emplace_back(Mat::Zero(dims_[j], dims_[j - 1]));
  return g;
}

double Objective::gemm_flops() const {
  const int n = depth();
  auto d = [&](int j) { return static_cast<double>(dims_[static_cast<std::size_t>(j)]); };
  double f = 0.0;
  if (completion_) {
    for (int j = 2; j < n; ++j) f += 2 * d(j) * d(j - 1) * d(0);       // prefix W_{j:1}
    for (int j = n - 2; j >= 1; --j) f += 2 * d(j) * d(j + 1) * d(n);  // suffix
    for (int j = 2; j < n; ++j) f += 2 * d(j) * d(n) * d(j - 1);       // middle gradients
  } else if (output_side_) {
    for (int j = 1; j < n; ++j) f += 2 * d(n) * d(j) * d(j - 1);       // W_{n:j}
    for (int j = 2; j <= n; ++j) f += 2 * d(n) * d(j - 1) * d(j - 2);  // G W_{j-1:1}^T
    for (int j = 1; j < n; ++j) f += 2 * d(j) * d(n) * d(j - 1);       // gradients
  } else {
    for (int j = 2; j <= n; ++j) f += 2 * d(j) * d(j - 1) * d(0);
    for (int j = n - 2; j >= 1; --j) f += 2 * d(j) * d(j + 1) * d(n);
    if (n >= 2) f += 2 * d(1) * d(n) * d(0) + 2 * d(n) * d(0) * d(n - 1);
    for (int j = 2; j < n; ++j) f += 2 * d(j) * d(n) * d(0) + 2 * d(j) * d(0) * d(j - 1);
  }
  return f;
}

// prefix_[j] = W_j W_{j-1:1} for j = 2..upto (W_{1:1} = W_1 is read in place).
void Objective::compute_prefix(const Factors& w, int upto) {
  for (int j = 2; j <= upto; ++j) {
    const Mat& prev = (j == 2) ? w[0] : prefix_[j - 1];
    blas::gemm(w[j - 1], false, prev, false, prefix_[j]);
  }
}

// suffix_[j] = W_{n:j+1}^T = W_{j+1}^T W_{n:j+2}^T for j = n-1..1. W_n^T itself is only
// materialized for n = 2 (the sparse kernels read its columns); otherwise GEMMs read W_n
// transposed.
void Objective::compute_suffix(const Factors& w) {
  const int n = depth();
  if (n < 2) return;
  if (n == 2) {
    blas::transpose(w[1], suffix_[1]);
    return;
  }
  blas::gemm(w[n - 2], true, w[n - 1], true, suffix_[n - 2]);
  for (int j = n - 3; j >= 1; --j) blas::gemm(w[j], true, suffix_[j + 1], false, suffix_[j]);
}

// op(suffix_[j]) for GEMMs: W_{n:j+1}^T, read from W_n directly when j = n - 1.
const Mat& Objective::suffix_operand(const Factors& w, int j, bool& transposed) const {
  transposed = (j == depth() - 1 && depth() > 2);
  return transposed ? w[static_cast<std::size_t>(depth() - 1)] : suffix_[j];
}

double Objective::evaluate_with_gradient(const Factors& w, Factors& grads) {
  if (helper_) return timed_step(w, grads);
  return completion_ ? completion_step(w, grads) : dense_step(w, grads);
}

double Objective::evaluate(const Factors& w) {
  if (depth() == 1) return loss_.value(w[0]);
  if (completion_) {  // residuals at the observed entries only, as in completion_step
    compute_suffix(w);
    compute_prefix(w, depth() - 1);
    sparse::residuals(suffix_[1], w[0], pattern_, residual_.data());
    return 0.5 * completion_->coef() * residual_.squaredNorm();
  }
  if (output_side_) {
    compute_output_chain(w);
    return loss_.value(output_chain_[1]);
  }
  compute_prefix(w, depth());
  return loss_.value(prefix_[depth()]);
}

double Objective::completion_step(const Factors& w, Factors& grads) {
  const int n = depth();
  const double coef = completion_->coef();
  double* res = residual_.data();  // CSC order of pattern_
  // Residuals W_{n:1}[r, c] - b = <W_{n:2}^T e_r, W_1 e_c>, without forming W_{n:1}.
  if (n == 1) {
    for (Index c = 0; c < pattern_.cols; ++c)
      for (Index p = pattern_.col_ptr[c]; p < pattern_.col_ptr[c + 1]; ++p)
        res[p] = w[0](pattern_.row_idx[p], c) - pattern_.values[p];
  } else {
    compute_suffix(w);
    compute_prefix(w, n - 1);
    sparse::residuals(suffix_[1], w[0], pattern_, res);
  }
  const double sum_sq = residual_.squaredNorm();
  residual_ *= coef;  // now the non-zeros g_i of grad l

  if (n == 1) {
    grads[0].setZero();
    for (Index c = 0; c < pattern_.cols; ++c)
      for (Index p = pattern_.col_ptr[c]; p < pattern_.col_ptr[c + 1]; ++p)
        grads[0](pattern_.row_idx[p], c) = res[p];
    return 0.5 * coef * sum_sq;
  }
  sparse::to_row_order(pattern_, res, residual_rows_.data());  // one gather for all j >= 2
  for (int j = 1; j <= n; ++j) gradient_task(j, w, grads);
  return 0.5 * coef * sum_sq;
}

// d phi / d W_j from the scaled residuals. j = 1: W_{n:2}^T G. j = 2..n: T_j = W_{j-1:1} G^T
// (d_{j-1} x d_n), then W_{n:j+1}^T T_j^T.
void Objective::gradient_task(int j, const Factors& w, Factors& grads) {
  const int n = depth();
  if (j == 1) {
    sparse::times_sparse(suffix_[1], pattern_, residual_.data(), grads[0]);
    return;
  }
  const Mat& p = (j == 2) ? w[0] : prefix_[j - 1];
  Mat& t = scratch_[j];
  sparse::times_sparse_transpose_rows(p, pattern_, residual_rows_.data(), t);
  if (j == n) {
    blas::transpose(t, grads[n - 1]);
  } else {
    bool tr = false;
    const Mat& s = suffix_operand(w, j, tr);
    blas::gemm(s, tr, t, true, grads[j - 1]);
  }
}

bool Objective::set_threads(int threads) {
  helper_.reset();
  const int n = depth();
  // With BLAS itself threaded (large sizes), splitting only the sparse passes was measured
  // slower (d = 500: 10.9 vs 10.3 ms per step; OpenBLAS's workers spin between products), and
  // running the products on one BLAS thread instead changes their rounding (OpenBLAS's
  // 2-thread DGEMM differs in the last bits at d = 500), which would tie results to timing.
  if (threads < 2 || !completion_ || n < 2 || blas::threads() > 1) return false;
  // Below ~1 MFLOP a step takes < ~30 us and the hand-offs (~1 us each) stop paying.
  const double m = static_cast<double>(pattern_.size());
  double sparse_flops = 2.0 * m * static_cast<double>(dims_[1]) * 2.0;  // residuals, j = 1
  for (int j = 2; j <= n; ++j) sparse_flops += 2.0 * m * static_cast<double>(dims_[j - 1]);
  if (gemm_flops() + sparse_flops < kMinSplitFlops) return false;
  helper_ = std::make_unique<HelperThread>();
  until_probe_ = kWarmup;
  probe_left_ = strikes_ = 0;
  use_split_ = false;
  col_split_ = sparse::balanced_split(pattern_.col_ptr);
  // Gradient tasks to the less loaded thread, largest first (flops of each task).
  auto d = [&](int j) { return static_cast<double>(dims_[static_cast<std::size_t>(j)]); };
  std::vector<std::pair<double, int>> cost;
  cost.push_back({2.0 * m * d(1), 1});
  for (int j = 2; j <= n; ++j)
    cost.push_back({2.0 * m * d(j - 1) + (j < n ? 2.0 * d(j) * d(n) * d(j - 1) : 0.0), j});
  std::stable_sort(cost.begin(), cost.end(), [](auto& a, auto& b) { return a.first > b.first; });
  double load[2] = {0.0, 0.0};
  tasks_[0].clear();
  tasks_[1].clear();
  for (const auto& [c, j] : cost) {
    const int side = load[1] < load[0] ? 1 : 0;
    load[side] += c;
    tasks_[side].push_back(j);
  }
  return true;
}

// Whether the split pays depends on the machine (two vCPUs may share one core's FP units) and
// on its load, so it is measured: kProbe steps alternate between the two modes (after kWarmup
// steps, then every kReprobe steps), and the faster minimum wins. A split step that takes twice
// the one-thread time, twice in a row (the other core got busy), ends the split until a probe
// kRecheck steps later. Both modes give bit-identical results: the choice never changes a
// trajectory.
double Objective::timed_step(const Factors& w, Factors& grads) {
  using Clock = std::chrono::steady_clock;
  if (--until_probe_ == 0) {
    // Steps of a few ms time well: fewer probe steps keep short runs short.
    probe_left_ = 2 * std::clamp(static_cast<long>(kProbeSeconds / last_), 2L, kProbe);
    best_[0] = best_[1] = 1e300;
  }
  const int mode = probe_left_ > 0 ? static_cast<int>(probe_left_ % 2) : use_split_;
  const auto t0 = Clock::now();
  const double f = mode ? completion_step_split(w, grads) : completion_step(w, grads);
  const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
  last_ = dt;
  if (mode == 0 && probe_left_ == 0) return f;
  if (probe_left_ > 0) {
    best_[mode] = std::min(best_[mode], dt);
    if (--probe_left_ == 0) {
      use_split_ = best_[1] < kMinGain * best_[0];
      strikes_ = 0;
      until_probe_ = kReprobe;
    }
  } else if (dt > 2.0 * best_[0] && ++strikes_ >= 2) {
    use_split_ = false;
    until_probe_ = kRecheck;
  } else if (dt <= 2.0 * best_[0]) {
    strikes_ = 0;
  }
  return f;
}

double Objective::completion_step_split(const Factors& w, Factors& grads) {
  const int n = depth();
  const double coef = completion_->coef();
  double* res = residual_.data();
  HelperThread& h = *helper_;
  h.run([&] { compute_suffix(w); }, [&] { compute_prefix(w, n - 1); });  // independent chains
  h.run([&] { sparse::residuals(suffix_[1], w[0], pattern_, res, 0, col_split_); },
        [&] { sparse::residuals(suffix_[1], w[0], pattern_, res, col_split_); });
  const double sum_sq = residual_.squaredNorm();
  residual_ *= coef;
  sparse::to_row_order(pattern_, res, residual_rows_.data());
  auto tasks = [&](int side) {
    for (int j : tasks_[side]) gradient_task(j, w, grads);
  };
  h.run([&] { tasks(0); }, [&] { tasks(1); });
  return 0.5 * coef * sum_sq;
}

// output_chain_[j] = W_{n:j} = W_{n:j+1} W_j for j = n-1..1 (W_{n:n} = W_n read in place).
void Objective::compute_output_chain(const Factors& w) {
  const int n = depth();
  for (int j = n - 1; j >= 1; --j) {
    const Mat& left = (j == n - 1) ? w[n - 1] : output_chain_[j + 1];
    blas::gemm(left, false, w[j - 1], false, output_chain_[j]);
  }
}

// Lemma 1 from the output side: d phi / d W_j = W_{n:j+1}^T (G W_{j-1:1}^T), with
// G W_{j:1}^T = (G W_{j-1:1}^T) W_j^T built up from G; every product has d_n rows.
double Objective::output_side_step(const Factors& w, Factors& grads) {
  const int n = depth();
  compute_output_chain(w);
  const double value = loss_.value_and_gradient(output_chain_[1], grad_loss_);
  auto left = [&](int j) -> const Mat& { return j == 1 ? grad_loss_ : input_grad_[j]; };
  for (int j = 1; j < n; ++j) {
    const Mat& above = (j == n - 1) ? w[n - 1] : output_chain_[j + 1];  // W_{n:j+1}
    blas::gemm(above, true, left(j), false, grads[j - 1]);
    if (j + 1 < n) blas::gemm(left(j), false, w[j - 1], true, input_grad_[j + 1]);
  }
  blas::gemm(left(n - 1), false, w[n - 2], true, grads[n - 1]);  // G W_{n-1:1}^T
  return value;
}

double Objective::dense_step(const Factors& w, Factors& grads) {
  const int n = depth();
  if (n == 1) return loss_.value_and_gradient(w[0], grads[0]);
  if (output_side_) return output_side_step(w, grads);
  compute_prefix(w, n);
  compute_suffix(w);
  const double value = loss_.value_and_gradient(prefix_[n], grad_loss_);
  const Mat& g = grad_loss_;
  blas::gemm(suffix_[1], false, g, false, grads[0]);  // W_{n:2}^T G
  const Mat& before_n = (n == 2) ? w[0] : prefix_[n - 1];
  blas::gemm(g, false, before_n, true, grads[n - 1]);  // G W_{n-1:1}^T
  for (int j = 2; j < n; ++j) {
    bool tr = false;
    const Mat& s = suffix_operand(w, j, tr);
    blas::gemm(s, tr, g, false, scratch_[j]);  // W_{n:j+1}^T G
    const Mat& p = (j == 2) ? w[0] : prefix_[j - 1];
    blas::gemm(scratch_[j], false, p, true, grads[j - 1]);  // ... W_{j-1:1}^T
  }
  return value;
}

}  // namespace dln
