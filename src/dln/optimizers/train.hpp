// The training loop: stopping rules, recording, callbacks, and a Ceres-style Summary.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dln/diagnostics/metrics.hpp"
#include "dln/diagnostics/theory.hpp"
#include "dln/dynamics/ode.hpp"
#include "dln/optimizers/factor_objective.hpp"
#include "dln/optimizers/optimizer.hpp"

namespace dln {

// kFlowTime: a continuous optimizer reached its final time T.
enum class Termination { kMaxIters, kLossTol, kTimeLimit, kDiverged, kCallback, kFlowTime };
std::string to_string(Termination t);

struct StopOptions {
  long max_iters = 1000;                // optimizer steps
  double loss_tol = 0.0;                // stop once loss <= loss_tol (0 disables)
  double max_seconds = 0.0;             // wall-time limit of the loop (0 disables)
  double divergence_threshold = 1e100;  // loss above this (or NaN/Inf) is divergence
  bool IsValid(std::string* error) const;
};

struct RecordOptions {
  long every = 50;           // record at iterations 0, every, 2 every, ... and the last
  int singular_values = 10;  // how many top singular values of W_{n:1} to keep per record
  bool analytic = false;     // also track signed, continuously ordered singular values (Def. 4)
  // false: records hold loss, grad_norm and unbalancedness only and train()'s final_loss comes
  // from the objective, so W_{n:1} is never formed (large completion problems, e.g. ratings).
  bool end_to_end = true;
  int components = 10;  // tensor models: how many of each node's largest component norms to keep
  // Tensor runs: the learned tensor's CP rank, the smallest R' <= max_rank whose CP-ALS fit has
  // relative error <= rank_tol (dense tensors of at most 10^6 entries; rank_tol = 0: off).
  double rank_tol = 1e-2;
  int max_rank = 10;
  bool IsValid(std::string* error) const;
};

// One recorded point: the state after `iteration` optimizer steps (for flows: accepted ODE
// steps, at flow time `time`).
struct HistoryRow {
  long iteration = 0;
  double time = 0;  // continuous optimizers: time t of the flow (Eq. 2 / Eq. 3); else 0
  double loss = 0, grad_norm = 0, unbalancedness = 0;
  EndToEndMetrics metrics;
  Vec analytic_sigma;  // record.analytic: signed singular values sigma_r(t), identity-ordered
  // Tensor models: per node of level >= 1, its record.components largest component norms
  // (descending) and which components they are.
  Vec components, component_ids;
  double seconds = 0;  // wall time since the loop started
};

// ensmallen-style callback; returning false stops the run (Termination::kCallback).
class Callback {
 public:
  virtual ~Callback() = default;
  virtual bool on_step(long /*iteration*/, double /*loss*/) { return true; }
  virtual bool on_record(const HistoryRow& /*row*/, const Factors& /*w*/) { return true; }
};

// Redraws a one-line progress bar on stderr at most 10 times a second.
class ProgressBar final : public Callback {
 public:
  explicit ProgressBar(long max_iters) : max_iters_(max_iters) {}
  ~ProgressBar() override;
  bool on_step(long iteration, double loss) override;

 private:
  long max_iters_;
  double last_draw_ = -1;
  bool drawn_ = false;
};

struct Summary {
  Termination termination = Termination::kMaxIters;
  std::string message;
  long iterations = 0;        // optimizer steps taken
  double final_loss = 0;      // l of the returned end-to-end matrix
  double wall_seconds = 0;    // the loop, recording included
  double record_seconds = 0;  // part of wall_seconds spent recording
  bool continuous = false;    // a flow: history rows carry `time`
  double time = 0;            // flows: the time reached
  long rhs_evals = 0, steps_attempted = 0, steps_rejected = 0;  // flows: ODE solver work
  std::vector<HistoryRow> history;
  std::string BriefReport() const;
};

namespace detail {
// Appends history rows (metrics of the end-to-end matrix, top singular values) and runs the
// callbacks' on_record; shared by the discrete loop and the flows.
class Recorder {
 public:
  Recorder(Summary& summary, const RecordOptions& record, const Mat* ground_truth,
           const std::vector<Callback*>& callbacks, RecordAnnotator annotate = {});
  double elapsed() const;
  // Returns false when a callback asks to stop.
  bool record(long iteration, double time, double loss, double grad_norm, double unbalancedness,
              const Mat& end_to_end, const Factors& w);

 private:
  Summary& summary_;
  const RecordOptions& options_;
  const Mat* truth_;
  const std::vector<Callback*>& callbacks_;
  RecordAnnotator annotate_;
  double start_;
  std::unique_ptr<AnalyticSvdTracker> tracker_;
};
}  // namespace detail

// Continuous optimizers: integrate to `time` with error control, recording every `record_dt`.
struct FlowOptions {
  double time = 1.0;       // T
  double record_dt = 0.0;  // 0: T / 100
  OdeOptions ode;
  bool IsValid(std::string* error) const;
};

// One evaluation of a flow's state for recording: loss, gradient norm, unbalancedness, the
// end-to-end matrix and factors (for callbacks).
struct FlowPoint {
  double loss = 0, grad_norm = 0, unbalancedness = 0;
  Mat end_to_end;
  Factors factors;
};

// Integrates y' = rhs(y) from y (in place) over [0, T], recording at t = 0, dt, ..., T through
// `observe(y)`; stops early on loss_tol, divergence, max_seconds or a callback.
Summary run_flow(Index size, double* y, const OdeIntegrator::Rhs& rhs,
                 const std::function<FlowPoint(const double* y)>& observe, const FlowOptions& flow,
                 const StopOptions& stop, const RecordOptions& record, const Mat* ground_truth,
                 const std::vector<Callback*>& callbacks, const RecordAnnotator& annotate = {});

// Gradient flow (Eq. 2) on the factors: dW_j/dt = -d phi / d W_j, integrated with error control.
Summary train_gradient_flow(FactorObjective& objective, Factors& w, const FlowOptions& flow,
                            const StopOptions& stop, const RecordOptions& record,
                            const Mat* ground_truth, const std::vector<Callback*>& callbacks = {});
Summary train_gradient_flow(Objective& objective, Factors& w, const FlowOptions& flow,
                            const StopOptions& stop, const RecordOptions& record,
                            const Mat* ground_truth, const std::vector<Callback*>& callbacks = {});

// Theorem 1 (Eq. 3) as an ODE on the end-to-end matrix alone: dW/dt = -P(W) vec(grad l(W)).
// Cost independent of depth and hidden widths. grad_norm records ||grad l(W)||_F.
Summary train_end_to_end_flow(const Loss& loss, Mat& w, int depth, const FlowOptions& flow,
                              const StopOptions& stop, const RecordOptions& record,
                              const Mat* ground_truth,
                              const std::vector<Callback*>& callbacks = {});

// A discrete run's full state after `iteration` steps (before the next one): factors, optimizer
// state and the history so far. Resuming from it continues bit-identically.
struct Checkpoint {
  long iteration = 0;
  Factors w;
  Factors buffers;
  std::vector<double> scalars;
  std::vector<HistoryRow> history;
};
struct CheckpointOptions {
  long every = 0;  // write a checkpoint every this many iterations (0: never)
  std::function<void(const Checkpoint&)> write;
};

// Trains w in place. ground_truth (optional) adds reconstruction errors to each record. Records
// need objective.has_end_to_end() unless record.end_to_end is false.
Summary train(FactorObjective& objective, Factors& w, Optimizer& optimizer, const StopOptions& stop,
              const RecordOptions& record, const Mat* ground_truth,
              const std::vector<Callback*>& callbacks = {},
              const CheckpointOptions* checkpoints = nullptr, const Checkpoint* resume = nullptr);
Summary train(Objective& objective, Factors& w, Optimizer& optimizer, const StopOptions& stop,
              const RecordOptions& record, const Mat* ground_truth,
              const std::vector<Callback*>& callbacks = {},
              const CheckpointOptions* checkpoints = nullptr, const Checkpoint* resume = nullptr);

}  // namespace dln
