// Continuous-time optimizers: gradient flow (Eq. 2) integrated with error control.
#include <fmt/format.h>

#include <cmath>

#include "dln/dynamics/end_to_end.hpp"
#include "dln/optimizers/train.hpp"

namespace dln {

bool FlowOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) {
    if (error) *error = m;
    return false;
  };
  if (!std::isfinite(time) || time <= 0) return fail("optimizer.time: must be finite and > 0");
  if (!std::isfinite(record_dt) || record_dt < 0) return fail("record.dt: must be finite and >= 0");
  return ode.IsValid(error);
}

Summary run_flow(Index size, double* y, const OdeIntegrator::Rhs& rhs,
                 const std::function<FlowPoint(const double* y)>& observe, const FlowOptions& flow,
                 const StopOptions& stop, const RecordOptions& record, const Mat* ground_truth,
                 const std::vector<Callback*>& callbacks, const RecordAnnotator& annotate) {
  std::string err;
  if (!flow.IsValid(&err) || !stop.IsValid(&err) || !record.IsValid(&err)) throw Error(err);
  Summary summary;
  summary.continuous = true;
  detail::Recorder recorder(summary, record, ground_truth, callbacks, annotate);
  OdeIntegrator ode(size, rhs, flow.ode, 0.0, y);
  const double dt = flow.record_dt > 0 ? flow.record_dt : flow.time / 100.0;
  const long points = static_cast<long>(std::ceil(flow.time / dt - 1e-9));
  summary.termination = Termination::kFlowTime;
  for (long k = 0; k <= points; ++k) {
    const double t = std::min(flow.time, static_cast<double>(k) * dt);
    if (k > 0) {
      try {
        ode.advance(t, y);
      } catch (const Error& e) {
        summary.termination = Termination::kDiverged;
        summary.message = e.what();
        break;
      }
    }
    summary.time = t;
    const FlowPoint p = observe(y);
    const OdeStats st = ode.stats();
    bool go_on = true;
    for (auto* cb : callbacks) go_on = cb->on_step(k, p.loss) && go_on;
    if (!std::isfinite(p.loss) || p.loss > stop.divergence_threshold) {
      summary.termination = Termination::kDiverged;
      summary.message = fmt::format("loss became {} at t = {}", p.loss, t);
      break;
    }
    go_on = recorder.record(st.steps, t, p.loss, p.grad_norm, p.unbalancedness, p.end_to_end,
                            p.factors) &&
            go_on;
    if (!go_on) {
      summary.termination = Termination::kCallback;
      summary.message = "stopped by a callback";
      break;
    }
    if (stop.loss_tol > 0 && p.loss <= stop.loss_tol) {
      summary.termination = Termination::kLossTol;
      break;
    }
    if (stop.max_seconds > 0 && recorder.elapsed() >= stop.max_seconds) {
      summary.termination = Termination::kTimeLimit;
      break;
    }
  }
  const OdeStats st = ode.stats();
  summary.iterations = st.steps;
  summary.rhs_evals = st.rhs_evals;
  summary.steps_attempted = st.attempts;
  summary.steps_rejected = st.error_test_failures;
  summary.wall_seconds = recorder.elapsed();
  return summary;
}

namespace {

Index total_size(const Factors& w) {
  Index n = 0;
  for (const auto& m : w) n += m.size();
  return n;
}

void unpack(const double* y, Factors& w) {
  for (auto& m : w) {
    std::copy(y, y + m.size(), m.data());
    y += m.size();
  }
}

}  // namespace

Summary train_gradient_flow(Objective& objective, Factors& w, const FlowOptions& flow,
                            const StopOptions& stop, const RecordOptions& record,
                            const Mat* ground_truth, const std::vector<Callback*>& callbacks) {
  ChainObjective chain(objective);
  return train_gradient_flow(chain, w, flow, stop, record, ground_truth, callbacks);
}

Summary train_gradient_flow(FactorObjective& objective, Factors& w, const FlowOptions& flow,
                            const StopOptions& stop, const RecordOptions& record,
                            const Mat* ground_truth, const std::vector<Callback*>& callbacks) {
  if (record.end_to_end && !objective.has_end_to_end())
    throw Error("record.end_to_end: this objective has no end-to-end matrix");
  const Index n = total_size(w);
  std::vector<double> y(static_cast<std::size_t>(n));
  {
    double* p = y.data();
    for (const auto& m : w) p = std::copy(m.data(), m.data() + m.size(), p);
  }
  Factors work = w, grads = objective.make_like();
  // Eq. 2: dW_j/dt = -d phi / d W_j.
  auto rhs = [&](double, const double* state, double* ydot) {
    unpack(state, work);
    objective.evaluate_with_gradient(work, grads);
    for (const auto& g : grads) {
      for (Index i = 0; i < g.size(); ++i) ydot[i] = -g.data()[i];
      ydot += g.size();
    }
  };
  auto observe = [&](const double* state) {
    FlowPoint p;
    unpack(state, work);
    p.loss = objective.evaluate_with_gradient(work, grads);
    double sq = 0.0;
    for (const auto& g : grads) sq += g.squaredNorm();
    p.grad_norm = std::sqrt(sq);
    p.unbalancedness = objective.unbalancedness(work);
    if (record.end_to_end) p.end_to_end = end_to_end(work);
    p.factors = work;
    return p;
  };
  Summary s = run_flow(n, y.data(), rhs, observe, flow, stop, record, ground_truth, callbacks,
                       objective.annotator());
  unpack(y.data(), w);
  s.final_loss = objective.end_to_end_loss(w);
  return s;
}

Summary train_end_to_end_flow(const Loss& loss, Mat& w, int depth, const FlowOptions& flow,
                              const StopOptions& stop, const RecordOptions& record,
                              const Mat* ground_truth, const std::vector<Callback*>& callbacks) {
  Mat state = w, grad(w.rows(), w.cols());
  auto rhs = [&](double, const double* y, double* ydot) {
    std::copy(y, y + state.size(), state.data());
    const Mat v = end_to_end_velocity(state, loss, depth);
    std::copy(v.data(), v.data() + v.size(), ydot);
  };
  auto observe = [&](const double* y) {
    FlowPoint p;
    std::copy(y, y + state.size(), state.data());
    p.loss = loss.value_and_gradient(state, grad);
    p.grad_norm = grad.norm();
    p.unbalancedness = 0.0;
    p.end_to_end = state;
    p.factors = {state};
    return p;
  };
  Summary s =
      run_flow(w.size(), w.data(), rhs, observe, flow, stop, record, ground_truth, callbacks);
  s.final_loss = loss.value(w);
  return s;
}

}  // namespace dln
