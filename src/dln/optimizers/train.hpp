// The training loop: stopping rules, recording, callbacks, and a Ceres-style Summary.
#pragma once

#include <string>
#include <vector>

#include "dln/diagnostics/metrics.hpp"
#include "dln/optimizers/optimizer.hpp"

namespace dln {

enum class Termination { kMaxIters, kLossTol, kTimeLimit, kDiverged, kCallback };
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
  bool IsValid(std::string* error) const;
};

// One recorded point: the state after `iteration` optimizer steps.
struct HistoryRow {
  long iteration = 0;
  double loss = 0, grad_norm = 0, unbalancedness = 0;
  EndToEndMetrics metrics;
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
  std::vector<HistoryRow> history;
  std::string BriefReport() const;
};

// Trains w in place. ground_truth (optional) adds reconstruction errors to each record.
Summary train(Objective& objective, Factors& w, Optimizer& optimizer, const StopOptions& stop,
              const RecordOptions& record, const Mat* ground_truth,
              const std::vector<Callback*>& callbacks = {});

}  // namespace dln
