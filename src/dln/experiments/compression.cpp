// Section 4.4: implicit compression by overparameterization. Truncate each solution's SVD to
// rank rho (rho (d + d' - rho) parameters) and measure the reconstruction error.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <Eigen/SVD>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>

#include "dln/baselines/nuclear_norm.hpp"
#include "dln/experiments/common.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"

namespace dln::experiments {

namespace fs = std::filesystem;

namespace {

struct Solution {
  std::string method;
  long depth = 0, seed = 0, iterations = 0;
  double train_loss = 0, seconds = 0;
  Mat x, truth;
  const Problem* problem = nullptr;
  std::vector<double> mse, rel, fit;  // per rho = 1..max (index rho - 1); then the full solution
};

}  // namespace

int compression(const Options& options) {
  const auto start = std::chrono::steady_clock::now();
  const Params p("compression", options);
  write_config(options, p);
  const auto depths = p.integers("depths");
  const long seeds = options.seeds > 0 ? options.seeds : p.integer("seeds");
  const long rows = p.integer("rows"), cols = p.integer("cols"), rank = p.integer("rank");
  const long max_rho = std::min(p.integer("max_truncation_rank"), std::min(rows, cols));
  if (max_rho < rank)
    throw Error(fmt::format("experiment.max_truncation_rank: must be >= rank ({})", rank));

  std::vector<Solution> sols;
  for (long s = 1; s <= seeds; ++s) {
    for (long d : depths) {
      Solution x;
      x.method = fmt::format("depth{}", d);
      x.depth = d;
      x.seed = s;
      sols.push_back(x);
    }
    Solution n;
    n.method = "min_nuclear";
    n.seed = s;
    sols.push_back(n);
  }
  std::vector<double> cost;
  for (const Solution& x : sols)
    cost.push_back(x.depth > 0 ? expected_cost(completion_config(p, p.integer("observations"),
                                                                 x.seed, x.depth))
                               : expected_nuclear_cost(rows, cols));
  std::atomic<int> done{0};
  parallel_for(
      static_cast<int>(sols.size()), options.workers,
      [&](int i) {
        Solution& sol = sols[static_cast<std::size_t>(i)];
        const Config c = completion_config(p, p.integer("observations"), sol.seed, sol.depth);
        Problem problem = make_problem(c.problem);
        if (sol.depth == 0) {
          auto res =
              min_nuclear_for(problem, p, options.out, fmt::format("min_nuclear_seed{}", sol.seed));
          sol.x = std::move(res.x);
          sol.iterations = res.iterations;
          sol.seconds = res.seconds;
        } else {
          auto r = run_into(c, options.out, fmt::format("depth{}_seed{}", sol.depth, sol.seed));
          sol.x = std::move(r.end_to_end);
          sol.iterations = r.summary.iterations;
          sol.seconds = r.summary.wall_seconds;
        }
        sol.train_loss = problem.loss->value(sol.x);
        const Mat& truth = *problem.ground_truth;
        // Eckart-Young: the best rank-rho approximation keeps the top rho singular triplets.
        Eigen::JacobiSVD<Mat> svd(sol.x, Eigen::ComputeThinU | Eigen::ComputeThinV);
        const Mat& u = svd.matrixU();
        const Mat& v = svd.matrixV();
        const Vec& sv = svd.singularValues();
        Mat xr = Mat::Zero(rows, cols);
        for (long rho = 1; rho <= max_rho; ++rho) {
          const Index k = rho - 1;
          xr.noalias() += sv(k) * u.col(k) * v.col(k).transpose();
          sol.mse.push_back((xr - truth).squaredNorm() / static_cast<double>(rows * cols));
          sol.rel.push_back((xr - truth).norm() / truth.norm());
          sol.fit.push_back(problem.loss->value(xr));
        }
        sol.mse.push_back((sol.x - truth).squaredNorm() / static_cast<double>(rows * cols));
        sol.rel.push_back((sol.x - truth).norm() / truth.norm());
        sol.fit.push_back(sol.train_loss);
        progress(options,
                 fmt::format("[compression {}/{}] {} seed {}: full MSE {:.3g}, rank-{} MSE {:.3g} "
                             "({:.1f} s)",
                             ++done, sols.size(), sol.method, sol.seed, sol.mse.back(), rank,
                             sol.mse[static_cast<std::size_t>(rank - 1)], sol.seconds));
      },
      cost);

  const long dense = rows * cols;
  Table table({"experiment", "method", "seed", "rank", "parameters", "dense_parameters",
               "recon_mse", "recon_rel_error", "train_loss", "full_recon_mse"});
  for (const auto& s : sols) {
    for (long rho = 1; rho <= max_rho; ++rho) {
      const auto k = static_cast<std::size_t>(rho - 1);
      table.add({"compression", s.method, std::to_string(s.seed), std::to_string(rho),
                 std::to_string(rho * (rows + cols - rho)), std::to_string(dense), num(s.mse[k]),
                 num(s.rel[k]), num(s.fit[k]), num(s.mse.back())});
    }
  }
  io::write_file_atomic((fs::path(options.out) / "results.csv").string(), table.csv());

  std::vector<std::string> methods;
  for (long d : depths) methods.push_back(fmt::format("depth{}", d));
  methods.push_back("min_nuclear");
  auto avg = [&](const std::string& m, std::size_t k) {
    std::vector<double> v;
    for (const auto& s : sols)
      if (s.method == m) v.push_back(s.mse[k]);
    return mean(v);
  };
  const auto kr = static_cast<std::size_t>(rank - 1);
  const std::size_t kfull = static_cast<std::size_t>(max_rho);
  const long params_r = rank * (rows + cols - rank);
  const long deepest = *std::max_element(depths.begin(), depths.end());
  const std::string deep = fmt::format("depth{}", deepest);
  const double factor = p.real("claim_factor");
  std::vector<Claim> claims;
  {
    Claim c;
    c.statement = fmt::format(
        "Overparameterization compresses: truncated to rank {} ({} parameters, {:.1f}x fewer "
        "than the dense {}), the deepest network's solution (depth {}) keeps its accuracy "
        "(error within 2x of untruncated) and its error is at least {}x below that of the "
        "depth-1 model and of the minimum nuclear norm solution at the same budget.",
        rank, params_r, double(dense) / double(params_r), dense, deepest, factor);
    const double e_deep = avg(deep, kr), e_full = avg(deep, kfull);
    bool ok = deepest >= 2 && e_deep <= 2 * e_full;
    std::vector<std::string> parts{
        fmt::format("{}: rank-{} MSE {:.3g} vs untruncated {:.3g}", deep, rank, e_deep, e_full)};
    for (const auto& m : methods) {
      if (m == deep) continue;
      const double e = avg(m, kr);
      parts.push_back(
          fmt::format("{}: rank-{} MSE {:.3g} ({:.3g}x the deepest's)", m, rank, e, e / e_deep));
      if (m == "depth1" || m == "min_nuclear") ok = ok && e >= factor * e_deep;
    }
    c.supported = ok;
    c.evidence = fmt::format("{}", fmt::join(parts, "; "));
    claims.push_back(c);
  }
  {
    Claim c;
    c.statement = fmt::format(
        "Compressibility grows with depth: at {} parameters (rank {}) the truncated error "
        "decreases as depth increases.",
        params_r, rank);
    bool ok = depths.size() >= 2;
    std::vector<std::string> parts;
    double prev = std::numeric_limits<double>::infinity();
    for (long d : depths) {
      const double e = avg(fmt::format("depth{}", d), kr);
      parts.push_back(fmt::format("depth {}: {:.3g}", d, e));
      ok = ok && e < prev;
      prev = e;
    }
    c.supported = ok;
    c.evidence = fmt::format("rank-{} MSE: {}", rank, fmt::join(parts, "; "));
    claims.push_back(c);
  }

  std::string body = fmt::format(
      "## Reconstruction error (per-entry MSE, mean over seeds) of the rank-rho truncation\n\n"
      "| method | untruncated |");
  std::vector<long> show;
  for (long rho : {1L, 2L, 3L, rank - 1, rank, rank + 1, 2 * rank, max_rho})
    if (rho >= 1 && rho <= max_rho && std::find(show.begin(), show.end(), rho) == show.end())
      show.push_back(rho);
  std::sort(show.begin(), show.end());
  for (long rho : show)
    body += fmt::format(" rho={} ({} params) |", rho, rho * (rows + cols - rho));
  body += "\n|---|---|";
  for (std::size_t i = 0; i < show.size(); ++i) body += "---|";
  body += "\n";
  for (const auto& m : methods) {
    body += fmt::format("| {} | {:.3g} |", m, avg(m, kfull));
    for (long rho : show)
      body += fmt::format(" {:.3g} |", avg(m, static_cast<std::size_t>(rho - 1)));
    body += "\n";
  }
  body += fmt::format("\nDense model: {} parameters.\n", dense);
  return finish("compression", "Section 4.4: implicit compression by overparameterization", options,
                p, claims, body, start, "results.csv");
}

}  // namespace dln::experiments
