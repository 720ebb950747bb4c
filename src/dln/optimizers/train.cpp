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
    case Termination::kFlowTime:
      return "time";
  }
  return "?";
}

bool StopOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) {
    if (error) *error = m;
    return false;
  };
  if (max_iters < 0) return fail("stop.max_iters: must be >= 0");
  if (!std::isfinite(loss_tol) || loss_tol < 0)
    return fail("stop.loss_tol: must be finite and >= 0");
  if (!std::isfinite(max_seconds) || max_seconds < 0)
    return fail("stop.max_seconds: must be finite and >= 0");
  if (!(divergence_threshold > 0)) return fail("stop.divergence_threshold: must be > 0");
  return true;
}

bool RecordOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) {
    if (error) *error = m;
    return false;
  };
  if (every <= 0) return fail("record.every: must be >= 1");
  if (singular_values < 0) return fail("record.singular_values: must be >= 0");
  if (analytic && !end_to_end) return fail("record.analytic: needs end-to-end records");
  if (components < 0) return fail("record.components: must be >= 0");
  if (!std::isfinite(rank_tol) || rank_tol < 0 || rank_tol >= 1)
    return fail("record.rank_tol: must be in [0, 1)");
  if (max_rank < 1) return fail("record.max_rank: must be >= 1");
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

namespace detail {

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

Recorder::Recorder(Summary& summary, const RecordOptions& record, const Mat* ground_truth,
                   const std::vector<Callback*>& callbacks, RecordAnnotator annotate)
    : summary_(summary),
      options_(record),
      truth_(ground_truth),
      callbacks_(callbacks),
      annotate_(std::move(annotate)),
      start_(now_seconds()) {
  if (record.analytic) tracker_ = std::make_unique<AnalyticSvdTracker>();
}

double Recorder::elapsed() const { return now_seconds() - start_; }

bool Recorder::record(long iteration, double time, double loss, double grad_norm,
                      double unbalancedness_value, const Mat& e2e, const Factors& w) {
  const double record_start = elapsed();
  HistoryRow row;
  row.iteration = iteration;
  row.time = time;
  row.loss = loss;
  row.grad_norm = grad_norm;
  row.unbalancedness = unbalancedness_value;
  if (options_.end_to_end) row.metrics = end_to_end_metrics(e2e, truth_);
  const Index k = std::min<Index>(options_.singular_values, row.metrics.singular_values.size());
  row.metrics.singular_values.conservativeResize(k);
  if (tracker_) {
    // Parameterized by flow time, or by iteration for discrete optimizers (strictly increasing).
    tracker_->update(summary_.continuous ? time : static_cast<double>(iteration), e2e);
    row.analytic_sigma = tracker_->sigma().head(std::min<Index>(k, tracker_->sigma().size()));
  }
  if (annotate_) annotate_(w, row);
  row.seconds = elapsed();
  summary_.history.push_back(row);
  summary_.record_seconds += elapsed() - record_start;
  bool go_on = true;
  for (auto* cb : callbacks_) go_on = cb->on_record(summary_.history.back(), w) && go_on;
  return go_on;
}

}  // namespace detail

double ChainObjective::unbalancedness(const Factors& w) const { return dln::unbalancedness(w); }

double ChainObjective::end_to_end_loss(const Factors& w) {
  return objective_.loss().value(end_to_end(w));
}

Summary train(Objective& objective, Factors& w, Optimizer& optimizer, const StopOptions& stop,
              const RecordOptions& record, const Mat* ground_truth,
              const std::vector<Callback*>& callbacks, const CheckpointOptions* checkpoints,
              const Checkpoint* resume) {
  ChainObjective chain(objective);
  return train(chain, w, optimizer, stop, record, ground_truth, callbacks, checkpoints, resume);
}

Summary train(FactorObjective& objective, Factors& w, Optimizer& optimizer, const StopOptions& stop,
              const RecordOptions& record, const Mat* ground_truth,
              const std::vector<Callback*>& callbacks, const CheckpointOptions* checkpoints,
              const Checkpoint* resume) {
  std::string err;
  if (!stop.IsValid(&err) || !record.IsValid(&err)) throw Error(err);
  if (record.end_to_end && !objective.has_end_to_end())
    throw Error("record.end_to_end: this objective has no end-to-end matrix");
  Summary summary;
  detail::Recorder recorder(summary, record, ground_truth, callbacks, objective.annotator());
  auto elapsed = [&] { return recorder.elapsed(); };
  Factors grads = objective.make_like();
  auto record_row = [&](long t, double loss) {
    double sq = 0.0;
    for (const auto& g : grads) sq += g.squaredNorm();
    return recorder.record(t, 0.0, loss, std::sqrt(sq), objective.unbalancedness(w),
                           record.end_to_end ? end_to_end(w) : Mat(), w);
  };

  long t = 0;
  if (resume) {
    t = resume->iteration;
    w = resume->w;
    optimizer.restore(resume->buffers, resume->scalars);
    summary.history = resume->history;
  }
  const long first = t;
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
    const bool recorded = !summary.history.empty() && summary.history.back().iteration == t;
    if ((t % record.every == 0 || last) && !recorded) go_on = record_row(t, loss) && go_on;
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
    if (checkpoints && checkpoints->every > 0 && t > first && t % checkpoints->every == 0) {
      Checkpoint c;
      c.iteration = t;
      c.w = w;
      optimizer.state(c.buffers, c.scalars);
      c.history = summary.history;
      checkpoints->write(c);
    }
    optimizer.step(w, grads);
  }
  summary.iterations = t;
  summary.final_loss = record.end_to_end ? objective.end_to_end_loss(w) : objective.evaluate(w);
  summary.wall_seconds = elapsed();
  return summary;
}

}  // namespace dln
