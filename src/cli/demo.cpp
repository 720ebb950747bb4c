#include <fmt/format.h>

#include <cmath>
#include <cstdio>

#include "cli/commands.hpp"
#include "dln/run/run_dir.hpp"

namespace dln::cli {

int demo(bool quiet) {
  Config base = parse_config(R"(
[problem]
kind = "completion"
rows = 100
cols = 100
rank = 5
observations = 2000
seed = 1
[network]
width = 100
init = "gaussian"
seed = 2
[optimizer]
name = "gd"
[stop]
max_iters = 30000
loss_tol = 1e-7
[record]
every = 1000
)",
                             "demo");
  (void)quiet;
  std::printf("Matrix completion: 100x100, rank 5, 2000 observed entries, gradient descent.\n");
  std::printf("%5s %10s %12s %12s %12s %10s %8s  %s\n", "depth", "iterations", "final loss",
              "recon MSE", "rel error", "eff. rank", "seconds", "stopped by");
  for (int depth = 1; depth <= 3; ++depth) {
    Config c = base;
    c.network.depth = depth;
    // Near-zero init; per-layer std scale^(1/n)/sqrt(100) keeps the end-to-end norm ~ 1e-3 * 10.
    c.network.init.scale = std::pow(1e-3, 1.0 / depth) / 10.0;
    // Steps near the largest stable one: lr * n * sigma_max^(2 - 2/n) / m < 2 (Theorem 1).
    c.optimizer.lr = depth == 1 ? 1000.0 : (depth == 2 ? 20.0 : 6.0);
    RunResult r = run(c);
    const auto& f = r.summary.history.back().metrics;
    std::printf("%5d %10ld %12.4e %12.4e %12.4e %10.3f %8.2f  %s\n", depth, r.summary.iterations,
                r.summary.final_loss, f.recon_mse.value_or(0), f.recon_rel_error.value_or(0),
                f.effective_rank, r.summary.wall_seconds, to_string(r.summary.termination).c_str());
    std::fflush(stdout);
  }
  std::printf(
      "Ground truth effective rank 5. Depth >= 2 from near-zero init finds the low-rank solution "
      "(Section 4);\ndepth 1 fits the observed entries and leaves the rest near zero.\n");
  return 0;
}

}  // namespace dln::cli
