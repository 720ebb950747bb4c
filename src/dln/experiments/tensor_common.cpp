#include "dln/experiments/tensor_common.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>

namespace dln::experiments {

namespace fs = std::filesystem;

Config tensor_base_config() {
  Config c = base_config();
  c.problem.kind = "tensor_completion";
  c.problem.reduction = "mean";
  c.network.model = "cp";
  c.optimizer.kind = OptimizerKind::kGroupRmsprop;
  c.optimizer.lr = 1e-2;
  c.optimizer.alpha = 0.99;
  c.optimizer.eps = 1e-6;
  c.record.rank_tol = 0;
  return c;
}

Config cp_completion_config(const Params& p, long observations, double init_std, long seed) {
  Config c = tensor_base_config();
  for (long d : p.integers("shape")) c.problem.shape.push_back(d);
  c.problem.rank = p.integer("rank");
  c.problem.ground_truth_norm = p.real("norm");
  c.problem.observations = observations;
  c.problem.reduction = p.string("reduction");
  c.problem.seed = static_cast<std::uint64_t>(seed);
  c.network.components = p.integer("components");
  c.network.init.scale = init_std;
  c.network.init.seed = static_cast<std::uint64_t>(1000 + seed);
  c.optimizer.lr = p.real("lr");
  c.optimizer.alpha = p.real("alpha");
  c.optimizer.eps = p.real("eps");
  c.stop.loss_tol = p.real("loss_tol");
  c.stop.max_iters = p.integer("max_iters");
  c.record.every = p.integer("record_every");
  c.record.rank_tol = p.real("rank_tol");
  c.record.max_rank = static_cast<int>(p.integer("max_rank"));
  c.validate();
  return c;
}

tensors::TensorRunResult run_tensor_into(const Config& config, const std::string& out,
                                         const std::string& tag) {
  const std::string dir = (fs::path(out) / "runs" / tag).string();
  auto r = tensors::run_tensor(config, {}, dir);
  tensors::write_tensor_run_directory(dir, r);
  return r;
}

namespace {

// First iteration at which curve(i) reaches `level`, interpolating linearly between records.
double crossing(const std::vector<double>& iters, const std::vector<double>& curve, double level) {
  for (std::size_t i = 0; i < curve.size(); ++i)
    if (curve[i] >= level) {
      if (i == 0) return iters[0];
      const double c0 = curve[i - 1];
      return iters[i - 1] + (iters[i] - iters[i - 1]) * (level - c0) / (curve[i] - c0);
    }
  return std::numeric_limits<double>::quiet_NaN();
}

Rises rises_of(const std::vector<double>& iters, const std::vector<std::vector<double>>& curves,
               const std::vector<double>& ids) {
  Rises r;
  std::vector<std::size_t> order(curves.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::vector<double> t50(curves.size());
  for (std::size_t k = 0; k < curves.size(); ++k)
    t50[k] = crossing(iters, curves[k], 0.5 * curves[k].back());
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return t50[a] < t50[b]; });
  for (auto k : order) {
    const double f = curves[k].back();
    r.id.push_back(ids[k]);
    r.final_norm.push_back(f);
    r.t10.push_back(crossing(iters, curves[k], 0.1 * f));
    r.t50.push_back(t50[k]);
    r.t90.push_back(crossing(iters, curves[k], 0.9 * f));
  }
  for (std::size_t k = 0; k + 1 < r.t50.size(); ++k) {
    if (r.t90[k] <= r.t10[k + 1]) ++r.separated;
    if (r.t50[k] < r.t50[k + 1]) ++r.increasing;
  }
  if (!r.t50.empty() && r.t50.front() > 0) r.spread = r.t50.back() / r.t50.front();
  return r;
}

}  // namespace

std::string steps_list(const std::vector<double>& steps) {
  std::string out;
  for (double t : steps) out += fmt::format("{}{:.0f}", out.empty() ? "" : ", ", t);
  return out;
}

Rises component_rises(const std::vector<HistoryRow>& history, int node, int per_node, int count) {
  if (history.empty()) return {};
  const Index base = static_cast<Index>(node) * per_node;
  const HistoryRow& last = history.back();
  std::vector<double> ids;
  for (int k = 0; k < count && base + k < last.component_ids.size(); ++k)
    ids.push_back(last.component_ids[base + k]);
  std::vector<double> iters;
  std::vector<std::vector<double>> curves(ids.size());
  for (const auto& h : history) {
    iters.push_back(static_cast<double>(h.iteration));
    for (std::size_t k = 0; k < ids.size(); ++k) {
      double v = 0;
      for (Index j = base; j < base + per_node && j < h.component_ids.size(); ++j)
        if (h.component_ids[j] == ids[k]) v = h.components[j];
      curves[k].push_back(v);
    }
  }
  return rises_of(iters, curves, ids);
}

Rises singular_value_rises(const std::vector<HistoryRow>& history, int count) {
  std::vector<double> iters, ids;
  std::vector<std::vector<double>> curves(static_cast<std::size_t>(count));
  for (const auto& h : history) {
    iters.push_back(static_cast<double>(h.iteration));
    for (int k = 0; k < count; ++k)
      curves[static_cast<std::size_t>(k)].push_back(
          k < h.metrics.singular_values.size() ? h.metrics.singular_values[k] : 0.0);
  }
  for (int k = 0; k < count; ++k) ids.push_back(k);
  return rises_of(iters, curves, ids);
}

}  // namespace dln::experiments
