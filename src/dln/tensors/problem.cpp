#include "dln/tensors/problem.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"
#include "dln/tensors/cp_als.hpp"

namespace dln::tensors {

namespace fs = std::filesystem;

double cp_norm(const Factors& u) {
  Mat g = Mat::Ones(u[0].cols(), u[0].cols());
  for (const auto& f : u) g.array() *= (f.transpose() * f).array();
  return std::sqrt(std::max(0.0, g.sum()));
}

Factors cp_ground_truth(const Shape& shape, Index rank, double norm, std::uint64_t seed) {
  Rng rng(seed);
  Factors u;
  for (Index d : shape) u.push_back(rng.gaussian(d, rank, 1.0));
  const double scale = std::pow(norm / cp_norm(u), 1.0 / static_cast<double>(shape.size()));
  for (auto& f : u) f *= scale;
  return u;
}

namespace {

TensorTruth dense_truth(Vec dense) {
  TensorTruth t;
  t.norm = dense.norm();
  t.dense = std::move(dense);
  return t;
}

// A .npy whose shape must be `want` (sensing: m first).
io::NpyArray read_shaped(const std::string& path, const std::vector<Index>& want, bool lead_free,
                         const char* field) {
  io::NpyArray a = io::read_npy(path);
  const std::size_t skip = lead_free ? 1 : 0;
  bool ok = a.shape.size() == want.size() + skip;
  for (std::size_t k = 0; ok && k < want.size(); ++k) ok = a.shape[k + skip] == want[k];
  if (!ok || (lead_free && a.shape[0] < 1)) {
    std::string got, exp = lead_free ? "m" : "";
    for (Index d : a.shape) got += fmt::format("{}{}", got.empty() ? "" : " x ", d);
    for (Index d : want) exp += fmt::format("{}{}", exp.empty() ? "" : " x ", d);
    throw Error(fmt::format("{}: {} has shape {}, expected {} (problem.shape)", field, path,
                            got.empty() ? "()" : got, exp));
  }
  return a;
}

}  // namespace

TensorProblem make_tensor_problem(const ProblemConfig& c) {
  c.validate();
  if (!c.tensor()) throw Error("problem.kind: not a tensor problem");
  TensorProblem p;
  p.kind = c.kind;
  p.shape = c.shape;
  p.reduction = parse_reduction(c.reduction);
  const double entries = entry_count(c.shape);
  const bool completion = c.kind == "tensor_completion";
  if (c.from_files()) {
    if (!c.ground_truth_file.empty()) {
      auto g = read_shaped(c.ground_truth_file, c.shape, false, "problem.ground_truth_file");
      p.truth =
          dense_truth(Eigen::Map<const Vec>(g.data.data(), static_cast<Index>(g.data.size())));
    }
    if (completion) {
      p.observations = read_observations_csv(c.observations_file, c.shape);
    } else {
      auto a = read_shaped(c.sensing_file, c.shape, true, "problem.sensing_file");
      const Index m = a.shape[0], d = static_cast<Index>(entries);
      p.sensing_a =
          Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>>(
              a.data.data(), m, d);
      auto b = io::read_npy(c.measurements_file);
      if (b.shape.size() != 1 || b.shape[0] != m)
        throw Error(fmt::format(
            "problem.measurements_file: {} must hold {} values (one per sensing tensor)",
            c.measurements_file, m));
      p.sensing_b = Eigen::Map<const Vec>(b.data.data(), m);
    }
    return p;
  }
  p.truth_factors = cp_ground_truth(c.shape, c.rank, c.ground_truth_norm, c.seed);
  TensorNetworkSpec truth_spec;
  truth_spec.shape = c.shape;
  truth_spec.components = c.rank;
  if (entries <= kDenseEntries || !completion)
    p.truth = dense_truth(dense_tensor(truth_spec, p.truth_factors));
  if (completion) {
    p.observations.entries = sample_entries(c.shape, c.observations, c.seed + 1);
    TensorNetwork net(truth_spec, p.observations.entries);
    Vec v;
    net.values(p.truth_factors, v);
    p.observations.values.assign(v.data(), v.data() + v.size());
  } else {
    Rng rng(c.seed + 2);
    const double s = c.sensing_std > 0 ? c.sensing_std : 1.0 / std::sqrt(entries);
    p.sensing_a = rng.gaussian(c.observations, static_cast<Index>(entries), s);
    p.sensing_b = p.sensing_a * p.truth->dense;
  }
  return p;
}

void save_tensor_problem_data(const TensorProblem& p, const std::string& dir) {
  io::ensure_writable_directory(dir);
  const fs::path d(dir);
  if (p.kind == "tensor_completion") {
    write_observations_csv((d / "observations.csv").string(), p.observations);
  } else {
    std::vector<Index> shape{p.sensing_a.rows()};
    shape.insert(shape.end(), p.shape.begin(), p.shape.end());
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> a = p.sensing_a;
    io::write_npy((d / "sensing_A.npy").string(), shape,
                  std::vector<double>(a.data(), a.data() + a.size()));
    io::write_npy((d / "sensing_b.npy").string(),
                  std::vector<double>(p.sensing_b.data(), p.sensing_b.data() + p.sensing_b.size()));
  }
  if (p.truth)
    io::write_npy(
        (d / "ground_truth.npy").string(), p.shape,
        std::vector<double>(p.truth->dense.data(), p.truth->dense.data() + p.truth->dense.size()));
  for (std::size_t k = 0; k < p.truth_factors.size(); ++k)
    io::write_npy((d / fmt::format("ground_truth_U{}.npy", k + 1)).string(), p.truth_factors[k]);
}

TensorObjective make_tensor_objective(const TensorProblem& p, const TensorNetworkSpec& spec) {
  if (p.kind == "tensor_completion") return TensorObjective(spec, p.observations, p.reduction);
  return TensorObjective(spec, p.sensing_a, p.sensing_b, p.reduction);
}

}  // namespace dln::tensors
