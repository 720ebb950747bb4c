// Section 5, htf-dynamics (Razin, Maman, Cohen 2022): matrix factorization (depth 3), CP and
// hierarchical tensor factorization trained side by side on completion; each one's singular
// values / component norms / root local component norms rise one at a time.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <atomic>
#include <chrono>
#include <filesystem>

#include "dln/experiments/tensor_common.hpp"
#include "dln/io/files.hpp"

namespace dln::experiments {

namespace fs = std::filesystem;

namespace {
struct DynamicsRun {
  std::string model;  // matrix | cp | hierarchical
  long seed = 0, iterations = 0;
  std::string termination;
  double final_loss = 0, recon_rel_error = 0, seconds = 0;
  Rises rises;
  // Per record: (node, top values) -- matrix: singular values; tensors: every node's top norms.
  std::vector<long> iters;
  std::vector<std::vector<Vec>> values;
};
}  // namespace

int htf_dynamics(const Options& options) {
  const auto start = std::chrono::steady_clock::now();
  const Params p("htf-dynamics", options);
  write_config(options, p);
  const long rank = p.integer("rank"), top = p.integer("top");
  if (top < rank) throw Error(fmt::format("experiment.top: must be >= rank ({})", rank));
  const long seeds = options.seeds > 0 ? options.seeds : p.integer("seeds");
  std::vector<DynamicsRun> runs;
  for (long s = 1; s <= seeds; ++s)
    for (const char* m : {"matrix", "cp", "hierarchical"}) {
      DynamicsRun r;
      r.model = m;
      r.seed = s;
      runs.push_back(r);
    }
  auto common = [&](Config& c, long seed) {
    c.problem.rank = rank;
    c.problem.observations = p.integer("observations");
    c.problem.reduction = p.string("reduction");
    c.problem.seed = static_cast<std::uint64_t>(seed);
    c.network.init.seed = static_cast<std::uint64_t>(1000 + seed);
    c.optimizer.kind = OptimizerKind::kGroupRmsprop;
    c.optimizer.lr = p.real("lr");
    c.optimizer.alpha = p.real("alpha");
    c.optimizer.eps = p.real("eps");
    c.stop.loss_tol = p.real("loss_tol");
    c.stop.max_iters = p.integer("max_iters");
    c.record.every = p.integer("record_every");
    c.record.components = static_cast<int>(top);
    c.record.singular_values = static_cast<int>(top);
  };
  auto tensor_config = [&](const DynamicsRun& run) {
    Config c = tensor_base_config();
    common(c, run.seed);
    c.problem.ground_truth_norm = p.real("norm");
    const bool cp = run.model == "cp";
    const long order = p.integer(cp ? "cp_order" : "htf_order");
    c.problem.shape.assign(static_cast<std::size_t>(order), p.integer(cp ? "cp_mode" : "htf_mode"));
    c.network.model = run.model;
    if (cp) {
      c.network.components = p.integer("cp_components");
    } else {
      for (long w : p.integers("htf_widths")) c.network.widths.push_back(w);
      c.network.pool = static_cast<int>(p.integer("htf_pool"));
    }
    c.network.init.scale = p.real(cp ? "cp_init" : "htf_init");
    c.validate();
    return c;
  };
  auto matrix_config = [&](const DynamicsRun& run) {
    Config c = base_config();
    c.problem.kind = "completion";
    c.problem.rows = c.problem.cols = p.integer("matrix_size");
    common(c, run.seed);
    c.network.depth = static_cast<int>(p.integer("matrix_depth"));
    c.network.width = p.integer("matrix_size");
    c.network.init.kind = InitKind::kGaussian;
    c.network.init.scale = p.real("matrix_init");
    c.validate();
    const double norm = std::sqrt(static_cast<double>(c.problem.rows * c.problem.cols));
    if (std::abs(norm - p.real("norm")) > 1e-9 * norm)
      throw Error(fmt::format(
          "experiment.norm: the matrix ground truth has ||W*||_F = sqrt(rows * cols) = {:g}; set "
          "norm = {:g} or change matrix_size",
          norm, norm));
    return c;
  };
  for (const auto& r : runs) (r.model == "matrix" ? matrix_config(r) : tensor_config(r));
  std::vector<double> cost;
  for (const auto& r : runs) cost.push_back(r.model == "hierarchical" ? 3 : 1);
  std::atomic<int> done{0};
  parallel_for(
      static_cast<int>(runs.size()), options.workers,
      [&](int i) {
        DynamicsRun& run = runs[static_cast<std::size_t>(i)];
        const std::string tag = fmt::format("{}_seed{}", run.model, run.seed);
        const Summary* s = nullptr;
        RunResult matrix;
        tensors::TensorRunResult tensor;
        if (run.model == "matrix") {
          matrix = run_into(matrix_config(run), options.out, tag);
          s = &matrix.summary;
          run.rises = singular_value_rises(s->history, static_cast<int>(rank));
          for (const auto& h : s->history) {
            run.iters.push_back(h.iteration);
            run.values.push_back({h.metrics.singular_values});
          }
        } else {
          tensor = run_tensor_into(tensor_config(run), options.out, tag);
          s = &tensor.summary;
          const auto tree = tensors::build_tree(tensor.spec);
          int nodes = 0;
          for (const auto& v : tree) nodes += v.children.empty() ? 0 : 1;
          run.rises =
              component_rises(s->history, nodes - 1, static_cast<int>(top), static_cast<int>(rank));
          for (const auto& h : s->history) {
            run.iters.push_back(h.iteration);
            std::vector<Vec> per_node;
            for (int v = 0; v < nodes; ++v) per_node.push_back(h.components.segment(v * top, top));
            run.values.push_back(per_node);
          }
        }
        run.iterations = s->iterations;
        run.termination = to_string(s->termination);
        run.final_loss = s->final_loss;
        run.seconds = s->wall_seconds;
        run.recon_rel_error = s->history.back().metrics.recon_rel_error.value_or(NAN);
        progress(options, fmt::format("[htf-dynamics {}/{}] {} seed {}: {} steps ({}), error "
                                      "{:.3g}, t50 {} ({:.1f} s)",
                                      ++done, runs.size(), run.model, run.seed, run.iterations,
                                      run.termination, run.recon_rel_error,
                                      steps_list(run.rises.t50), run.seconds));
      },
      cost);

  Table table({"experiment", "method", "seed", "iterations", "termination", "final_loss",
               "recon_rel_error", "t50", "spread", "separated_pairs", "seconds"});
  Table traj({"method", "seed", "node", "iteration", "index", "value"});
  for (const auto& r : runs) {
    std::vector<std::string> t50;
    for (double t : r.rises.t50) t50.push_back(fmt::format("{:.6g}", t));
    table.add({"htf-dynamics", r.model, std::to_string(r.seed), std::to_string(r.iterations),
               r.termination, num(r.final_loss), num(r.recon_rel_error),
               fmt::format("{}", fmt::join(t50, ";")), num(r.rises.spread),
               std::to_string(r.rises.separated), num(r.seconds)});
    for (std::size_t i = 0; i < r.iters.size(); ++i)
      for (std::size_t v = 0; v < r.values[i].size(); ++v)
        for (Index k = 0; k < r.values[i][v].size(); ++k)
          traj.add({r.model, std::to_string(r.seed), std::to_string(v), std::to_string(r.iters[i]),
                    std::to_string(k + 1), num(r.values[i][v][k])});
  }
  io::write_file_atomic((fs::path(options.out) / "results.csv").string(), table.csv());
  io::write_file_atomic((fs::path(options.out) / "trajectories.csv").string(), traj.csv());

  const double spread = p.real("claim_spread");
  std::vector<Claim> claims;
  const char* what[] = {"depth-3 matrix factorization: its singular values",
                        "CP tensor factorization: its component norms",
                        "hierarchical tensor factorization: its root's local component norms"};
  for (std::size_t k = 0; k < 3; ++k) {
    const DynamicsRun& r = runs[k];  // seed 1
    Claim c;
    c.statement = fmt::format(
        "Incremental learning, {}: the {} largest rise one at a time (half-final times increase, "
        "the last at least {}x after the first).",
        what[k], rank, spread);
    c.supported = r.rises.increasing == rank - 1 && r.rises.spread >= spread;
    c.evidence = fmt::format("t50 = {} steps (spread {:.3g}); error {:.3g} after {} steps ({})",
                             steps_list(r.rises.t50), r.rises.spread, r.recon_rel_error,
                             r.iterations, r.termination);
    claims.push_back(c);
  }
  std::string body =
      "## Results (seed 1)\n\n| model | steps | final loss | error | t50 of the top components | "
      "spread | seconds |\n|---|---|---|---|---|---|---|\n";
  for (std::size_t k = 0; k < 3; ++k) {
    const auto& r = runs[k];
    body += fmt::format("| {} | {} ({}) | {:.3g} | {:.3g} | {} | {:.3g} | {:.1f} |\n", r.model,
                        r.iterations, r.termination, r.final_loss, r.recon_rel_error,
                        steps_list(r.rises.t50), r.rises.spread, r.seconds);
  }
  return finish("htf-dynamics",
                "Section 5: matrix, CP and hierarchical tensor factorization dynamics", options, p,
                claims, body, start, "results.csv,trajectories.csv");
}

}  // namespace dln::experiments
