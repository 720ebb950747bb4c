// The config of a tensor problem (Section 5): network.model = "cp" | "hierarchical", its
// validation and its memory estimate.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "dln/config/config.hpp"

namespace dln {

tensors::TensorNetworkSpec Config::tensor_spec() const {
  tensors::TensorNetworkSpec s;
  if (network.model == "matrix")
    throw Error(
        fmt::format("network.model: kind = \"{}\" needs network.model = \"cp\" or \"hierarchical\"",
                    problem.kind));
  s.model = tensors::parse_tensor_model(network.model);
  s.shape = problem.shape;
  s.components = network.components;
  s.widths = network.widths;
  s.pool = network.pool;
  if (s.model == tensors::TensorModel::kCp && !network.widths.empty())
    throw Error("network.widths: not read by network.model = \"cp\" (use network.components)");
  if (s.model == tensors::TensorModel::kHierarchical && network.components != 0)
    throw Error(
        "network.components: not read by network.model = \"hierarchical\" (use network.widths)");
  s.validate();
  return s;
}

void Config::validate_tensor() const {
  const auto spec = tensor_spec();
  if (network.init.kind != InitKind::kGaussian && network.init.kind != InitKind::kFile)
    throw Error(fmt::format(
        "network.init: tensor models take \"gaussian\" (entries N(0, init_scale^2)) or \"file\", "
        "got \"{}\"",
        to_string(network.init.kind)));
  if (!std::isfinite(network.init.scale) || network.init.scale < 0)
    throw Error("network.init_scale: must be finite and >= 0");
  if (network.init.kind == InitKind::kFile && network.init.path.empty())
    throw Error("network.init_path: required when network.init = \"file\"");
  if (spec.model == tensors::TensorModel::kCp && !problem.from_files() &&
      problem.rank > network.components)
    throw Error(
        fmt::format("problem.rank: the ground truth's CP rank {} exceeds network.components = {}",
                    problem.rank, network.components));
  if (optimizer.kind == OptimizerKind::kEndToEnd)
    throw Error("optimizer.name: end_to_end needs a matrix model (Theorem 1)");
  if (record.analytic) throw Error("record.analytic: needs a matrix model");
}

memory::Estimate Config::tensor_memory_estimate() const {
  memory::Estimate e;
  const auto& p = problem;
  const double entries = tensors::entry_count(p.shape), order = static_cast<double>(p.shape.size());
  const double m = static_cast<double>(p.observations);
  const auto spec = tensor_spec();
  double params = 0, buffers = 0;
  for (auto [r, c] : tensors::parameter_shapes(spec))
    params += static_cast<double>(r) * static_cast<double>(c);
  const double copies = optimizer.kind == OptimizerKind::kGradientFlow ? 14 : 8;
  e.add(spec.model == tensors::TensorModel::kCp ? "network.components" : "network.widths",
        "parameters, gradients and optimizer state", 8.0 * copies * params);
  // Per-node buffers: at most one column per observed entry and node width.
  const double bound = p.kind == "tensor_completion" ? std::min(m, entries) : entries;
  for (const auto& v : tensors::build_tree(spec))
    if (!v.children.empty())
      buffers += bound * static_cast<double>(v.in) * (v.param >= 0 ? 2.0 : 0.0) +
                 bound * 2.0 * static_cast<double>(v.out);
  e.add(spec.model == tensors::TensorModel::kCp ? "network.components" : "network.widths",
        "per-node products and their gradients", 8.0 * buffers);
  if (p.kind == "tensor_completion")
    e.add("problem.observations", fmt::format("{} observed entries", p.observations),
          (8.0 * (order + 6) + 64) * m);
  else
    e.add("problem.observations",
          fmt::format("{} sensing tensors of {:.0f} entries", p.observations, entries),
          8.0 * 2 * m * entries);
  if (entries <= 1e6 || p.kind == "tensor_sensing")
    e.add("problem.shape", "dense ground truth and end-to-end tensors", 8.0 * 4 * entries);
  return e;
}

}  // namespace dln
