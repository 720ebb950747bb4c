// `dln complete RATINGS --out DIR`: complete a user x item rating matrix (docs/complete.md).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "cli/commands.hpp"
#include "dln/completion/ratings.hpp"
#include "dln/core/blas.hpp"
#include "dln/core/memory.hpp"
#include "dln/io/files.hpp"

namespace dln::cli {

namespace {

struct CompleteArgs {
  std::string ratings, out, predict, unknown = "error", optimizer = "adam", max_memory;
  std::vector<std::string> baselines;
  int threads = 1;
  bool no_center = false, no_clip = false, no_deep = false, quiet = false;
  completion::CompleteOptions options;
};

// The memory guard (docs/errors.md, "memory"): the factors and optimizer state of each model,
// before any is allocated.
void require_memory(const completion::RatingsData& data, const completion::CompleteOptions& o,
                    const std::string& max_memory) {
  const double users = static_cast<double>(data.users.size());
  const double items = static_cast<double>(data.items.size());
  memory::Estimate need;
  need.add("--ratings", fmt::format("{} ratings and their splits", data.size()),
           64.0 * static_cast<double>(data.size()));
  if (o.run_deep) {
    const double w = static_cast<double>(o.deep.width);
    const double entries =
        o.deep.depth == 1 ? users * items : users * w + items * w + (o.deep.depth - 2.0) * w * w;
    need.add(
        "--width",
        fmt::format("the depth-{} network's factors, gradients and optimizer state at width {}",
                    o.deep.depth, o.deep.width),
        8.0 * 8 * entries);
  }
  for (const auto& m : o.baselines.methods) {
    const bool als = m == "als";
    const double rank = static_cast<double>(als ? o.baselines.als_rank : o.baselines.si_max_rank);
    need.add(als ? "--als-rank" : "--si-max-rank",
             fmt::format("{}'s factors of rank {}", m, static_cast<Index>(rank)),
             8.0 * 6 * (users + items) * rank);
  }
  memory::require(need, max_memory.empty() ? 0 : memory::parse_bytes(max_memory, "--max-memory"),
                  "--max-memory");
}

std::string cell(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "-"; }

int run_complete(CompleteArgs& a) {
  auto& o = a.options;
  o.center = !a.no_center;
  o.clip = !a.no_clip;
  o.run_deep = !a.no_deep;
  try {
    o.deep.optimizer.kind = parse_optimizer(a.optimizer);
  } catch (const Error&) {  // its message names the TOML key optimizer.name
    throw Error(fmt::format("--optimizer: must be gd, momentum, group_rmsprop or adam, got {}",
                            a.optimizer));
  }
  o.deep.seed = o.split.seed;
  o.baselines.seed = o.split.seed + 1;
  o.baselines.methods.clear();
  for (auto m : a.baselines) {
    if (m == "none") continue;
    if (m == "soft-impute") m = "soft_impute";
    o.baselines.methods.push_back(m);
  }
  const auto unknown = completion::parse_unknown_policy(a.unknown);
  std::string err;
  if (!o.IsValid(&err)) throw Error(err);
  if (!o.run_deep && o.baselines.methods.empty())
    throw Error("--no-deep: needs --baselines (nothing to fit)");
  blas::set_threads(a.threads);

  const completion::RatingsData data = completion::read_ratings_csv(a.ratings);
  require_memory(data, o, a.max_memory);
  std::vector<completion::PredictPair> pairs;
  if (!a.predict.empty()) {
    pairs = completion::read_pairs_csv(a.predict, data);
    if (unknown == completion::UnknownPolicy::kError)
      completion::check_known_ids(data, pairs, a.predict);  // before training, not after
  }
  io::ensure_writable_directory(a.out);  // fail before training, not after
  if (!a.quiet)
    std::printf("%s: %td users x %td items, %td ratings (density %.3g)\n", a.ratings.c_str(),
                data.users.size(), data.items.size(), data.size(), data.density());

  ProgressBar bar(o.deep.max_iters);
  std::vector<Callback*> callbacks;
  if (!a.quiet && isatty(STDERR_FILENO)) callbacks.push_back(&bar);
  const completion::CompleteResult result = completion::complete(data, o, callbacks);
  std::unique_ptr<std::vector<completion::PredictionRow>> rows;
  if (!a.predict.empty())
    rows = std::make_unique<std::vector<completion::PredictionRow>>(
        completion::predict_pairs(data, result, pairs, unknown, a.predict));
  completion::write_complete_directory(a.out, data, o, result, rows.get());

  if (!a.quiet) {
    std::printf("%-12s %10s %10s %10s %10s %9s  %s\n", "method", "train_rmse", "val_rmse",
                "test_rmse", "iterations", "seconds", "termination");
    for (const auto& m : result.methods)
      std::printf("%-12s %10s %10s %10s %10ld %9.2f  %s\n", m.name.c_str(),
                  cell(m.train_rmse).c_str(), cell(m.val_rmse).c_str(), cell(m.test_rmse).c_str(),
                  m.iterations, m.seconds, m.termination.c_str());
    std::printf("wrote %s (%.2f s)\n", a.out.c_str(), result.seconds);
  }
  const auto* deep = result.find("deep");
  return deep && deep->termination == "diverged" ? 3 : 0;
}

}  // namespace

void add_complete(CLI::App& app, std::vector<Command>& commands) {
  auto args = std::make_shared<CompleteArgs>();
  auto& o = args->options;
  auto* sub = app.add_subcommand(
      "complete", "Complete a user x item rating matrix from a user,item,rating file");
  sub->add_option("ratings", args->ratings, "user,item,rating CSV (ids: any strings)")->required();
  sub->add_option("--out", args->out, "Output directory")->required();
  sub->add_option("--val-fraction", o.split.val_fraction,
                  "Held-out validation fraction (early stopping, lambda choice)")
      ->capture_default_str();
  sub->add_option("--test-fraction", o.split.test_fraction, "Held-out test fraction")
      ->capture_default_str();
  sub->add_option("--seed", o.split.seed, "Seed of the split and the initial factors")
      ->capture_default_str();
  sub->add_option("--depth", o.deep.depth, "Number of factors n")->capture_default_str();
  sub->add_option("--width", o.deep.width, "Hidden width (may be below full rank)")
      ->capture_default_str();
  sub->add_option("--init-scale", o.deep.init_scale, "Entry std of every initial factor")
      ->capture_default_str();
  sub->add_option("--optimizer", args->optimizer, "gd, momentum, group_rmsprop or adam")
      ->capture_default_str();
  sub->add_option("--lr", o.deep.optimizer.lr, "Step size")->capture_default_str();
  sub->add_option("--max-iters", o.deep.max_iters, "Optimizer steps at most")
      ->capture_default_str();
  sub->add_option("--eval-every", o.deep.eval_every, "Validation RMSE every this many steps")
      ->capture_default_str();
  sub->add_option("--patience", o.deep.patience,
                  "Stop after this many evaluations without a new best (0: never)")
      ->capture_default_str();
  sub->add_option("--max-seconds", o.deep.max_seconds, "Training time limit (0: none)")
      ->capture_default_str();
  sub->add_flag("--no-center", args->no_center, "Do not subtract the training mean");
  sub->add_flag("--no-clip", args->no_clip,
                "Do not clip predictions to the training ratings' range");
  sub->add_flag("--no-deep", args->no_deep, "Fit the baselines only");
  sub->add_option("--baselines", args->baselines, "Also fit: als, soft-impute (comma-separated)")
      ->delimiter(',');
  sub->add_option("--als-rank", o.baselines.als_rank, "ALS rank")->capture_default_str();
  sub->add_option("--als-lambdas", o.baselines.als_lambdas,
                  "ALS-WR lambdas tried (comma-separated)")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--si-points", o.baselines.si_points, "SoftImpute lambda path length")
      ->capture_default_str();
  sub->add_option("--si-min-ratio", o.baselines.si_min_ratio,
                  "SoftImpute smallest lambda / lambda_max")
      ->capture_default_str();
  sub->add_option("--si-max-rank", o.baselines.si_max_rank, "SoftImpute rank cap")
      ->capture_default_str();
  sub->add_option("--si-max-iters", o.baselines.si_max_iters, "SoftImpute iterations per lambda")
      ->capture_default_str();
  sub->add_option("--als-max-iters", o.baselines.als_max_iters, "ALS sweeps per lambda")
      ->capture_default_str();
  sub->add_option("--predict", args->predict, "user,item CSV of pairs to predict");
  sub->add_option("--unknown", args->unknown,
                  "Unknown ids in --predict: error, or mean (training mean + note column)")
      ->capture_default_str();
  sub->add_option("--threads", args->threads, "BLAS threads")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_option("--max-memory", args->max_memory,
                  "Memory the fits may use, e.g. 8GiB (default: what is available)");
  sub->add_flag("--quiet,-q", args->quiet, "No progress or table");
  commands.emplace_back(sub, [args] { return run_complete(*args); });
}

}  // namespace dln::cli
