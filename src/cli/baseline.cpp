// `dln baseline nuclear-norm | soft-impute | als`: the completion baselines on a row,col,value
// observations CSV; writes the completed matrix as .npy and prints a one-line JSON summary.
// docs/baselines.md describes the options and the output.
#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "dln/baselines/als.hpp"
#include "dln/baselines/nuclear_norm.hpp"
#include "dln/baselines/soft_impute.hpp"
#include "dln/core/blas.hpp"
#include "dln/core/memory.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"

namespace dln::cli {

namespace {

// "ROWSxCOLS", both positive decimal integers, nothing else.
std::pair<Index, Index> parse_shape(const std::string& text) {
  const auto bad = [&]() {
    return Error(fmt::format("--shape: expected ROWSxCOLS, got '{}'", text));
  };
  const auto x = text.find('x');
  if (x == std::string::npos || x == 0 || x + 1 >= text.size()) throw bad();
  auto parse = [&](std::size_t from, std::size_t to) {
    long long v = 0;
    for (std::size_t i = from; i < to; ++i)
      if (text[i] < '0' || text[i] > '9') throw bad();
    const auto [ptr, ec] = std::from_chars(text.data() + from, text.data() + to, v);
    if (ec != std::errc() || ptr != text.data() + to) throw bad();
    return static_cast<Index>(v);
  };
  const Index rows = parse(0, x), cols = parse(x + 1, text.size());
  if (rows < 1 || cols < 1)
    throw Error(fmt::format("--shape: rows and cols must be >= 1, got '{}'", text));
  return {rows, cols};
}

struct Common {
  std::string observations, shape, out, max_memory;
  int threads = 0;
  double dense_copies = 1;  // rows x cols arrays the method holds at once, with the output
};

struct Data {
  Index rows = 0, cols = 0;
  std::vector<Index> r, c;
  std::vector<double> b;
};

void add_common(CLI::App* sub, Common& common) {
  sub->add_option("--observations", common.observations, "row,col,value CSV (0-based indices)")
      ->required();
  sub->add_option("--shape", common.shape, "Matrix shape ROWSxCOLS")->required();
  sub->add_option("--out", common.out, "Completed matrix to write (.npy, float64)")->required();
  sub->add_option("--threads", common.threads, "BLAS threads (0: OpenBLAS default)")
      ->check(CLI::Range(0, 1024));
  sub->add_option("--max-memory", common.max_memory,
                  "Memory the solve may use, e.g. 8GiB (default: what is available)");
}

Data load(const Common& common) {
  Data d;
  std::tie(d.rows, d.cols) = parse_shape(common.shape);
  memory::Estimate need;  // before reading or allocating anything (docs/errors.md, "memory")
  need.add("--shape",
           fmt::format("{} dense {}x{} matrices (the --out matrix and the solver's)",
                       common.dense_copies, d.rows, d.cols),
           8.0 * common.dense_copies * static_cast<double>(d.rows) * static_cast<double>(d.cols));
  memory::require(
      need, common.max_memory.empty() ? 0 : memory::parse_bytes(common.max_memory, "--max-memory"),
      "--max-memory");
  namespace fs = std::filesystem;
  const fs::path parent = fs::path(common.out).parent_path();
  if (!parent.empty() && !fs::is_directory(parent))
    throw Error(fmt::format("--out: directory '{}' does not exist", parent.string()));
  if (common.threads > 0) blas::set_threads(common.threads);
  for (const auto& o : io::read_observations_csv(common.observations, d.rows, d.cols)) {
    d.r.push_back(o.row);
    d.c.push_back(o.col);
    d.b.push_back(o.value);
  }
  return d;
}

void print(const nlohmann::json& j) { std::printf("%s\n", j.dump().c_str()); }

nlohmann::json summary(const char* method, const Data& d, const Common& common) {
  return {{"method", method},
          {"rows", d.rows},
          {"cols", d.cols},
          {"observations", d.b.size()},
          {"out", common.out}};
}

}  // namespace

void add_baseline(CLI::App& app, std::vector<Command>& commands) {
  auto* baseline =
      app.add_subcommand("baseline", "Completion baselines: nuclear-norm, soft-impute, als");
  baseline->require_subcommand(1);

  {  // nuclear-norm
    auto* sub = baseline->add_subcommand(
        "nuclear-norm",
        "Minimum nuclear norm completion (notes Eq. 10) by ADMM with a certificate");
    auto common = std::make_shared<Common>();
    common->dense_copies = 8;  // X, the dual Y, the SVT input and its SVD work
    auto opts = std::make_shared<NuclearNormOptions>();
    add_common(sub, *common);
    sub->add_option("--tol", opts->tol, "0: equality; > 0: |X(r,c) - b| <= tol")
        ->capture_default_str();
    sub->add_option("--rel-gap", opts->rel_gap, "Certified relative duality gap to stop at")
        ->capture_default_str();
    sub->add_option("--max-iters", opts->max_iters, "ADMM iterations")->capture_default_str();
    sub->add_option("--rho", opts->rho, "Initial ADMM penalty (0: automatic)")
        ->capture_default_str();
    commands.emplace_back(sub, [common, opts]() {
      const Data d = load(*common);
      const auto res = min_nuclear_norm_completion(d.rows, d.cols, d.r, d.c, d.b, *opts);
      io::write_npy(common->out, res.x);
      auto j = summary("nuclear_norm", d, *common);
      j["tol"] = opts->tol;
      j["nuclear_norm"] = res.nuclear_norm;
      j["dual_bound"] = res.dual_bound;
      j["rel_gap"] = res.rel_gap;
      j["max_violation"] = res.max_violation;
      j["iterations"] = res.iterations;
      j["seconds"] = res.seconds;
      j["termination"] = res.termination;
      print(j);
      return 0;
    });
  }

  {  // soft-impute
    auto* sub = baseline->add_subcommand(
        "soft-impute", "SoftImpute: min 1/2 sum (X - b)^2 + lambda ||X||_*, one lambda or a path");
    auto common = std::make_shared<Common>();
    auto opts = std::make_shared<SoftImputeOptions>();
    auto path = std::make_shared<SoftImputePathOptions>();
    add_common(sub, *common);
    auto* lambda_opt = sub->add_option("--lambda", opts->lambda, "The regularization (>= 0)");
    auto* path_opt = sub->add_option("--path", path->points,
                                     "Solve a path of K lambdas from lambda_max down; --out gets "
                                     "the last solution");
    lambda_opt->excludes(path_opt);
    sub->add_option("--min-ratio", path->min_ratio, "Path end: min_ratio * lambda_max")
        ->capture_default_str();
    sub->add_option("--max-rank", opts->max_rank, "Cap on the rank of X (0: none)")
        ->capture_default_str();
    sub->add_option("--tol", opts->tol, "Stop when ||X_new - X||_F <= tol ||X||_F")
        ->capture_default_str();
    sub->add_option("--max-iters", opts->max_iters, "Iterations per lambda")->capture_default_str();
    sub->add_option("--method", opts->method, "auto, dense or low_rank")->capture_default_str();
    sub->add_option("--seed", opts->seed, "Seed of the random subspace start")
        ->capture_default_str();
    commands.emplace_back(sub, [common, opts, path, lambda_opt, path_opt]() {
      if (lambda_opt->count() == 0 && path_opt->count() == 0)
        throw Error("soft-impute: give --lambda L or --path K");
      // The --out matrix and a low-rank iterate, or the dense solver's X, Z and SVD work.
      common->dense_copies = opts->method == "dense" ? 6 : 2;
      const Data d = load(*common);
      std::vector<SoftImputeResult> res;
      if (path_opt->count() > 0) {
        res = soft_impute_path(d.rows, d.cols, d.r, d.c, d.b, *opts, *path);
      } else {
        res.push_back(soft_impute(d.rows, d.cols, d.r, d.c, d.b, *opts));
      }
      const SoftImputeResult& last = res.back();
      io::write_npy(common->out, last.x.dense());
      auto point = [](const SoftImputeResult& p) {
        return nlohmann::json{{"lambda", p.lambda},
                              {"rank", p.x.rank()},
                              {"nuclear_norm", p.nuclear_norm},
                              {"train_rmse", p.train_rmse},
                              {"objective", p.objective},
                              {"iterations", p.iterations},
                              {"seconds", p.seconds},
                              {"termination", p.termination},
                              {"rank_capped", p.rank_capped}};
      };
      auto j = summary("soft_impute", d, *common);
      j["solver"] = last.method;
      const nlohmann::json last_point = point(last);
      for (auto it = last_point.begin(); it != last_point.end(); ++it) j[it.key()] = it.value();
      if (path_opt->count() > 0) {
        double total = 0.0;
        long iters = 0;
        j["path"] = nlohmann::json::array();
        for (const auto& p : res) {
          j["path"].push_back(point(p));
          total += p.seconds;
          iters += p.iterations;
        }
        j["seconds"] = total;
        j["iterations"] = iters;
      }
      print(j);
      return 0;
    });
  }

  {  // als
    auto* sub = baseline->add_subcommand(
        "als", "Alternating least squares: X = U V^T of rank K with ridge lambda");
    auto common = std::make_shared<Common>();
    auto opts = std::make_shared<AlsOptions>();
    add_common(sub, *common);
    sub->add_option("--rank", opts->rank, "Rank K of the factorization")->required();
    sub->add_option("--lambda", opts->lambda, "Ridge regularization (> 0)")->required();
    sub->add_flag("--weighted", opts->weighted_lambda,
                  "Weighted-lambda regularization lambda * n_i (Zhou et al. 2008)");
    sub->add_option("--max-iters", opts->max_iters, "Sweeps")->capture_default_str();
    sub->add_option("--tol", opts->tol, "Relative objective change to stop at")
        ->capture_default_str();
    sub->add_option("--seed", opts->seed, "Seed of the initial V")->capture_default_str();
    commands.emplace_back(sub, [common, opts]() {
      const Data d = load(*common);
      const AlsResult res = als(d.rows, d.cols, d.r, d.c, d.b, *opts);
      io::write_npy(common->out, res.x.dense());
      auto j = summary("als", d, *common);
      j["rank"] = opts->rank;
      j["lambda"] = opts->lambda;
      j["weighted_lambda"] = opts->weighted_lambda;
      j["nuclear_norm"] = res.nuclear_norm;
      j["train_rmse"] = res.train_rmse;
      j["objective"] = res.objective;
      j["iterations"] = res.iterations;
      j["seconds"] = res.seconds;
      j["termination"] = res.termination;
      print(j);
      return 0;
    });
  }
}

}  // namespace dln::cli
