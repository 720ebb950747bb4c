// Figure 2 (Section 4.2): min nuclear norm (Eq. 10) vs deep linear networks on matrix completion,
// reconstruction error and nuclear norm per observation count.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include "dln/baselines/nuclear_norm.hpp"
#include "dln/experiments/common.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"

namespace dln::experiments {

namespace fs = std::filesystem;

namespace {

struct Fig2Row {
  std::string method;
  long observations = 0, seed = 0;
  double recon_mse = 0, recon_rel_error = 0, nuclear_norm = 0, effective_rank = 0;
  double train_loss = 0, seconds = 0, truth_nuclear_norm = 0;
  long iterations = 0;
  std::string termination;
};

}  // namespace

int fig2(const Options& options) {
  const auto start = std::chrono::steady_clock::now();
  const Params p("fig2", options);
  write_config(options, p);
  const auto counts = p.integers("observations");
  const auto depths = p.integers("depths");
  const long seeds = options.seeds > 0 ? options.seeds : p.integer("seeds");

  // Jobs: per seed and count, the min nuclear norm solution and one network per depth.
  struct Job {
    long seed, count, depth;  // depth 0: min nuclear norm
  };
  std::vector<Job> jobs;
  for (long s = 1; s <= seeds; ++s)
    for (long m : counts) {
      for (long d : depths) jobs.push_back({s, m, d});
      jobs.push_back({s, m, 0});
    }
  std::vector<Fig2Row> rows(jobs.size());
  std::vector<double> cost;
  for (const Job& j : jobs)
    cost.push_back(j.depth > 0 ? expected_cost(completion_config(p, j.count, j.seed, j.depth))
                               : expected_nuclear_cost(p.integer("rows"), p.integer("cols")));
  std::atomic<int> done{0};
  parallel_for(
      static_cast<int>(jobs.size()), options.workers,
      [&](int i) {
        const Job& j = jobs[static_cast<std::size_t>(i)];
        Config c = completion_config(p, j.count, j.seed, j.depth);
        Fig2Row& row = rows[static_cast<std::size_t>(i)];
        row.observations = j.count;
        row.seed = j.seed;
        if (j.depth == 0) {
          // Eq. 10 on the same observations as the networks (same problem seed).
          const Problem problem = make_problem(c.problem);
          const auto sol = min_nuclear_for(
              problem, p, options.out, fmt::format("min_nuclear_obs{}_seed{}", j.count, j.seed));
          const auto m = end_to_end_metrics(sol.x, &*problem.ground_truth);
          row.method = "min_nuclear";
          row.truth_nuclear_norm = singular_values(*problem.ground_truth).sum();
          row.recon_mse = *m.recon_mse;
          row.recon_rel_error = *m.recon_rel_error;
          row.nuclear_norm = m.nuclear_norm;
          row.effective_rank = m.effective_rank;
          row.train_loss = problem.loss->value(sol.x);
          row.seconds = sol.seconds;
          row.iterations = sol.iterations;
          row.termination = sol.termination;
        } else {
          const auto r = run_into(c, options.out,
                                  fmt::format("depth{}_obs{}_seed{}", j.depth, j.count, j.seed));
          const auto m = end_to_end_metrics(r.end_to_end, &*r.problem.ground_truth);
          row.method = fmt::format("depth{}", j.depth);
          row.truth_nuclear_norm = singular_values(*r.problem.ground_truth).sum();
          row.recon_mse = *m.recon_mse;
          row.recon_rel_error = *m.recon_rel_error;
          row.nuclear_norm = m.nuclear_norm;
          row.effective_rank = m.effective_rank;
          row.train_loss = r.summary.final_loss;
          row.seconds = r.summary.wall_seconds;
          row.iterations = r.summary.iterations;
          row.termination = to_string(r.summary.termination);
        }
        progress(options, fmt::format("[fig2 {}/{}] {} observations={} seed={}: recon_mse {:.3g}, "
                                      "nuclear norm {:.4g} ({:.1f} s)",
                                      ++done, jobs.size(), row.method, row.observations, row.seed,
                                      row.recon_mse, row.nuclear_norm, row.seconds));
      },
      cost);

  Table table({"experiment", "method", "observations", "seed", "recon_mse", "recon_rel_error",
               "nuclear_norm", "effective_rank", "train_loss", "iterations", "seconds",
               "termination", "truth_nuclear_norm"});
  for (const auto& r : rows)
    table.add({"fig2", r.method, std::to_string(r.observations), std::to_string(r.seed),
               num(r.recon_mse), num(r.recon_rel_error), num(r.nuclear_norm), num(r.effective_rank),
               num(r.train_loss), std::to_string(r.iterations), num(r.seconds), r.termination,
               num(r.truth_nuclear_norm)});
  io::write_file_atomic((fs::path(options.out) / "results.csv").string(), table.csv());

  // Means over seeds per (method, count).
  std::map<std::pair<std::string, long>, std::vector<const Fig2Row*>> by;
  for (const auto& r : rows) by[{r.method, r.observations}].push_back(&r);
  auto avg = [&](const std::string& method, long m, double Fig2Row::*field) {
    std::vector<double> v;
    for (const auto* r : by.at({method, m})) v.push_back(r->*field);
    return mean(v);
  };
  auto has = [&](long m) { return std::find(counts.begin(), counts.end(), m) != counts.end(); };
  const long few = p.integer("claim_few"), many = p.integer("claim_many");
  const double factor = p.real("claim_factor"), coincide = p.real("claim_coincide");
  std::vector<Claim> claims;
  {
    Claim c;
    c.statement = fmt::format(
        "With few observations ({}), deeper networks (depth >= 3) reach a reconstruction error "
        "far below (at least {}x) that of the minimum nuclear norm solution, while their "
        "nuclear norm is higher.",
        few, factor);
    if (!has(few)) {
      c.evidence =
          fmt::format("not tested: experiment.claim_few = {} is not an observation count", few);
    } else {
      const double nuc_err = avg("min_nuclear", few, &Fig2Row::recon_mse);
      const double nuc_norm = avg("min_nuclear", few, &Fig2Row::nuclear_norm);
      bool ok = false, all = true;
      std::vector<std::string> parts{
          fmt::format("min nuclear: MSE {:.3g}, nuclear norm {:.5g}", nuc_err, nuc_norm)};
      for (long d : depths) {
        const double e = avg(fmt::format("depth{}", d), few, &Fig2Row::recon_mse);
        const double n = avg(fmt::format("depth{}", d), few, &Fig2Row::nuclear_norm);
        parts.push_back(fmt::format("depth {}: MSE {:.3g} ({:.0f}x below), nuclear norm {:.5g}", d,
                                    e, nuc_err / e, n));
        if (d >= 3) {
          ok = true;
          all = all && e * factor <= nuc_err && n > nuc_norm;
        }
      }
      c.supported = ok && all;
      c.evidence = fmt::format("{}", fmt::join(parts, "; "));
      if (!ok) c.evidence += " (no depth >= 3 in experiment.depths)";
    }
    claims.push_back(c);
  }
  {
    Claim c;
    c.statement = fmt::format(
        "With many observations ({}), all solutions coincide with the ground truth (relative "
        "error <= {}).",
        many, coincide);
    if (!has(many)) {
      c.evidence =
          fmt::format("not tested: experiment.claim_many = {} is not an observation count", many);
    } else {
      bool all = true;
      std::vector<std::string> parts;
      std::vector<std::string> methods{"min_nuclear"};
      for (long d : depths) methods.push_back(fmt::format("depth{}", d));
      for (const auto& meth : methods) {
        const double e = avg(meth, many, &Fig2Row::recon_rel_error);
        parts.push_back(fmt::format("{}: relative error {:.3g}", meth, e));
        all = all && e <= coincide;
      }
      c.supported = all;
      c.evidence = fmt::format("{}", fmt::join(parts, "; "));
    }
    claims.push_back(c);
  }

  std::string body =
      "## Results (mean over seeds)\n\n| observations | method | MSE | relative "
      "error | nuclear norm | effective rank | iterations |\n|---|---|---|---|---|"
      "---|---|\n";
  for (long m : counts) {
    std::vector<std::string> methods{"min_nuclear"};
    for (long d : depths) methods.push_back(fmt::format("depth{}", d));
    for (const auto& meth : methods)
      body += fmt::format(
          "| {} | {} | {:.3g} | {:.3g} | {:.5g} | {:.2f} | {:.0f} |\n", m, meth,
          avg(meth, m, &Fig2Row::recon_mse), avg(meth, m, &Fig2Row::recon_rel_error),
          avg(meth, m, &Fig2Row::nuclear_norm), avg(meth, m, &Fig2Row::effective_rank), [&] {
            std::vector<double> v;
            for (const auto* r : by.at({meth, m})) v.push_back(static_cast<double>(r->iterations));
            return mean(v);
          }());
  }
  return finish("fig2",
                "Figure 2: implicit regularization in matrix completion (min nuclear norm vs deep "
                "linear networks)",
                options, p, claims, body, start, "results.csv");
}

}  // namespace dln::experiments
