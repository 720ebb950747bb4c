#include "dln/optimizers/train.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>

namespace dln {

std::string to_string(Termination t) {
  switch (t) {
    case Termination::kMaxIters:
      return "max_iters";
    case Termination::kLossTol:
      return "loss_tol";
    case Termination::kTimeLimit:
      return "time_limit";
    case Termination::kDiverged:
      return "diverged";
    case Termination::kCallback:
      return "callback";
  }
  return "?";
}

bool StopOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) { return (error && (*error = m, true)), false; };
  if (max_iters < 0) return fail("stop.max_iters: must be >= 0");
  if (!std::isfinite(loss_tol) || loss_tol < 0)
    return fail("stop.loss_tol: must be finite and >= 0");
  if (!std::isfinite(max_seconds) || max_seconds < 0)
    return fail("stop.max_seconds: must be finite and >= 0");
  if (!(divergence_threshold > 0)) return fail("stop.divergence_threshold: must be > 0");
  return true;
}

bool RecordOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) { return (error && (*error = m, true)), false; };
  if (every <= 0) return fail("record.every: must be >= 1");
  if (singular_values < 0) return fail("record.singular_values: must be >= 0");
  return true;
}

ProgressBar::~ProgressBar() {
  if (drawn_) std::fputs("\n", stderr);
}

bool ProgressBar::on_step(long iteration, double loss) {
  using clock = std::chrono::steady_clock;
  const double now = std::chrono::duration<double>(clock::now().time_since_epoch()).count();
  if (last_draw_ >= 0 && now - last_draw_ < 0.1 && iteration < max_iters_) return true;
  last_draw_ = now;
  const int width = 30;
  const double frac = max_iters_ > 0 ? double(iteration) / double(max_iters_) : 1.0;
  const int filled = static_cast<int>(frac * width);
  std::fprintf(stderr, "\r[%s%s] %ld/%ld loss %.6e", std::string(filled, '#').c_str(),
               std::string(width - filled, '.').c_str(), iteration, max_iters_, loss);
  std::fflush(stderr);
  drawn_ = true;
  return true;
}

std::string Summary::BriefReport() const {
  return fmt::format("{}: {} iterations, final loss {:.6e}, {:.3f} s{}{}", to_string(termination),
                     iterations, final_loss, wall_seconds, message.empty() ? "" : " - ", message);
}

Summary train(Objective& objective, Factors& w, Optimizer& optimizer, const StopOptions& stop,
              const RecordOptions& record, const Mat* ground_truth,
              const std::vector<Callback*>& callbacks) {
  std::string err;
  if (!stop.IsValid(&err) || !record.IsValid(&err)) throw Error(err);
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(clock::now() - start).count(); };

  Summary summary;
  Factors grads = objective.make_like();
  auto record_row = [&](long t, double loss) {
    const double record_start = elapsed();
    HistoryRow row;
    row.iteration = t;
    row.loss = loss;
    double sq = 0.0;
    for (const auto& g : grads) sq += g.squaredNorm();
    row.grad_norm = std::sqrt(sq);
    row.unbalancedness = unbalancedness(w);
    row.metrics = end_to_end_metrics(end_to_end(w), ground_truth);
    const Index k = std::min<Index>(record.singular_values, row.metrics.singular_values.size());
    row.metrics.singular_values.conservativeResize(k);
    row.seconds = elapsed();
    summary.history.push_back(row);
    summary.record_seconds += elapsed() - record_start;
    bool go_on = true;
    for (auto* cb : callbacks) go_on = cb->on_record(summary.history.back(), w) && go_on;
    return go_on;
  };

  long t = 0;
  for (;; ++t) {
    const double loss = objective.evaluate_with_gradient(w, grads);
    bool go_on = true;
    for (auto* cb : callbacks) go_on = cb->on_step(t, loss) && go_on;
    if (!std::isfinite(loss) || loss > stop.divergence_threshold) {
      summary.termination = Termination::kDiverged;
      summary.message = fmt::format("loss became {} at iteration {}", loss, t);
      break;
    }
    const bool last = !go_on || (stop.loss_tol > 0 && loss <= stop.loss_tol) ||
                      t >= stop.max_iters ||
                      (stop.max_seconds > 0 && elapsed() >= stop.max_seconds);
    if (t % record.every == 0 || last) go_on = record_row(t, loss) && go_on;
    if (!go_on) {
      summary.termination = Termination::kCallback;
      summary.message = "stopped by a callback";
      break;
    }
    if (stop.loss_tol > 0 && loss <= stop.loss_tol) {
      summary.termination = Termination::kLossTol;
      break;
    }
    if (t >= stop.max_iters) {
      summary.termination = Termination::kMaxIters;
      break;
    }
    if (stop.max_seconds > 0 && elapsed() >= stop.max_seconds) {
      summary.termination = Termination::kTimeLimit;
      break;
    }
    optimizer.step(w, grads);
  }
  summary.iterations = t;
  summary.final_loss = objective.loss().value(end_to_end(w));
  summary.wall_seconds = elapsed();
  return summary;
}

}  // namespace dln
