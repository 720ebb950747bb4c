// Figure 1 (left) and Claim 1 (Section 3.2): implicit acceleration by overparameterization on
// l_p regression. Every method's best fixed rate comes from a search over a geometric grid
// (acceleration/claim1.hpp); l* from Newton's method (acceleration/lp_optimum.hpp).
#include "dln/experiments/fig1_lp.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <Eigen/Eigenvalues>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>

#include "dln/acceleration/claim1.hpp"
#include "dln/acceleration/lp_optimum.hpp"
#include "dln/core/blas.hpp"
#include "dln/core/rng.hpp"
#include "dln/experiments/common.hpp"
#include "dln/init/initializers.hpp"
#include "dln/io/files.hpp"
#include "dln/io/gas_sensor.hpp"
#include "dln/problems/standardize.hpp"

namespace dln::experiments {

namespace fs = std::filesystem;
using acceleration::kNever;

namespace fig1lp {

const std::vector<Method>& known_methods() {
  using K = OptimizerKind;
  static const std::vector<Method> m = {{"linear_gd", 1, 0, K::kGd, false},
                                        {"depth2_w100", 2, 100, K::kGd, false},
                                        {"depth2_w1", 2, 1, K::kGd, false},
                                        {"depth3_w100", 3, 100, K::kGd, false},
                                        {"depth3_w1", 3, 1, K::kGd, false},
                                        {"e2e_n2", 2, 100, K::kEndToEnd, false},
                                        {"e2e_n3", 3, 100, K::kEndToEnd, false},
                                        {"linear_adagrad", 1, 0, K::kAdagrad, true},
                                        {"linear_adadelta", 1, 0, K::kAdadelta, true},
                                        {"linear_adam", 1, 0, K::kAdam, true},
                                        {"depth3_w100_adam", 3, 100, K::kAdam, true}};
  return m;
}

const Method& method_named(const std::string& name) {
  std::vector<std::string> names;
  for (const auto& m : known_methods()) {
    if (m.name == name) return m;
    names.push_back(m.name);
  }
  throw Error(fmt::format("experiment.methods: unknown method '{}' (expected one of {})", name,
                          fmt::join(names, ", ")));
}

namespace {

// eta_0 = 1 / lambda_max of the Hessian of l at W = 0: p (p-1)/m sum_i y_i^{p-2} x_i x_i^T per
// output row (the rows of W decouple); the largest over rows.
double origin_rate(const Mat& x, const Mat& y, int p) {
  double lmax = 0;
  for (Index k = 0; k < y.rows(); ++k) {
    Vec weights(x.cols());
    for (Index i = 0; i < x.cols(); ++i) weights(i) = int_pow(y(k, i), p - 2);
    const Mat h =
        x * weights.asDiagonal() * x.transpose() * (p * (p - 1) / static_cast<double>(x.cols()));
    lmax = std::max(
        lmax,
        Eigen::SelfAdjointEigenSolver<Mat>(h, Eigen::EigenvaluesOnly).eigenvalues().maxCoeff());
  }
  if (!(lmax > 0)) throw Error("fig1-lp: the Hessian of l at W = 0 is zero (all targets zero?)");
  return 1.0 / lmax;
}

std::string ethanol_path(const Params& p) {
  std::string path = p.string("ethanol_file");
  if (!path.empty()) return path;
  const char* env = std::getenv("DLN_DATA_DIR");
  const std::string dir = env && *env ? env : DLN_DATA_DIR;
  return (fs::path(dir) / "uci-gas-sensor-ethanol" / "ethanol.dat").string();
}

}  // namespace

Instance make_instance(const std::string& dataset, int p, const Params& params) {
  Instance in;
  in.dataset = dataset;
  in.p = p;
  if (dataset == "ethanol") {
    const std::string path = ethanol_path(params);
    if (!fs::exists(path))
      throw Error(
          fmt::format("experiment.ethanol_file: {} not found (set ethanol_file or "
                      "$DLN_DATA_DIR to the folder holding uci-gas-sensor-ethanol/)",
                      path));
    io::GasSensorData d = io::read_gas_sensor(path);
    in.x = std::move(d.features);
    in.y = d.concentration.transpose();
    standardize_rows(in.x);
    standardize_rows(in.y);
    in.source = fmt::format("{} ({} measurements, 128 features; standardized)", path, in.x.cols());
  } else if (dataset == "synthetic") {
    const long d0 = params.integer("synthetic_inputs"), m = params.integer("synthetic_samples");
    if (d0 < 1 || m < d0)
      throw Error(
          fmt::format("experiment.synthetic_samples: need synthetic_samples >= "
                      "synthetic_inputs >= 1, got {} and {}",
                      m, d0));
    Rng rng(static_cast<std::uint64_t>(params.integer("synthetic_seed")));
    in.x = rng.gaussian(d0, m, 1.0);
    Mat w = rng.gaussian(1, d0, 1.0);
    w *= params.real("synthetic_norm") / w.norm();
    in.y = w * in.x + rng.gaussian(1, m, params.real("synthetic_noise"));
    in.source =
        fmt::format("x_i ~ N(0, I_{}), y_i = W* x_i + N(0, {}^2), ||W*|| = {}, m = {} (seed {})",
                    d0, params.real("synthetic_noise"), params.real("synthetic_norm"), m,
                    params.integer("synthetic_seed"));
  } else {
    throw Error(fmt::format(
        "experiment.datasets: expected \"ethanol\" or \"synthetic\", got \"{}\"", dataset));
  }
  const acceleration::LpOptimum opt = acceleration::lp_regression_optimum(in.x, in.y, p);
  in.l_star = opt.loss;
  in.certificate = opt.grad_norm;
  in.newton_iterations = opt.iterations;
  in.l0 = LpRegressionLoss(in.x, in.y, p).value(Mat::Zero(in.y.rows(), in.x.rows()));
  in.eta0 = origin_rate(in.x, in.y, p);
  return in;
}

// The initial factors of a method: W = 0 for the linear model; per-layer Gaussian (init_std,
// init_seed) for networks; for the end-to-end update, the end-to-end matrix of the same
// network's initial factors.
Factors initial_factors(const Method& m, const Instance& in, const Params& params) {
  const Index d0 = in.x.rows(), dn = in.y.rows();
  if (m.depth == 1) return {Mat::Zero(dn, d0)};
  std::vector<Index> dims{d0};
  for (int j = 1; j < m.depth; ++j) dims.push_back(m.width);
  dims.push_back(dn);
  InitOptions init;
  init.kind = InitKind::kGaussian;
  init.scale = params.real("init_std");
  init.seed = static_cast<std::uint64_t>(params.integer("init_seed"));
  Factors w = initialize(dims, init);
  if (m.kind == OptimizerKind::kEndToEnd) return {end_to_end(w)};
  return w;
}

RunOutcome run_method(const Method& m, const Instance& in, double rate, const Params& params,
                      long iterations, long record_every, const Factors* init) {
  LpRegressionLoss loss(in.x, in.y, in.p);  // per run: the loss keeps mutable work space
  Factors w = init ? *init : initial_factors(m, in, params);
  Objective objective(dims_of(w), loss);
  OptimizerOptions o;
  o.kind = m.kind;
  o.lr = rate;
  if (m.kind == OptimizerKind::kEndToEnd) o.depth = m.depth;
  std::string error;
  if (!o.IsValid(&error)) throw Error(error);
  auto optimizer = Optimizer::create(o, w);
  StopOptions stop;
  stop.max_iters = iterations;
  stop.divergence_threshold = params.real("divergence_factor") * in.l0;
  RecordOptions record;
  record.every = record_every;
  record.singular_values = 1;
  const Summary s = train(objective, w, *optimizer, stop, record, nullptr);
  RunOutcome r;
  r.point.rate = rate;
  r.point.iterations = s.iterations;
  r.point.diverged = s.termination == Termination::kDiverged;
  r.point.final_loss = r.point.diverged ? std::numeric_limits<double>::infinity() : s.final_loss;
  r.termination = to_string(s.termination);
  r.seconds = s.wall_seconds;
  for (const auto& h : s.history) {
    r.iteration.push_back(h.iteration);
    r.loss.push_back(h.loss);
  }
  return r;
}

}  // namespace fig1lp

int fig1_lp(const Options& options) {
  using namespace fig1lp;
  const auto start = std::chrono::steady_clock::now();
  const Params p("fig1-lp", options);
  write_config(options, p);
  blas::set_threads(1);  // the runs are small: parallel over runs, not inside products
  const auto datasets = p.strings("datasets");
  const auto ps = p.integers("ps");
  const auto method_names = p.strings("methods");
  const auto starts = p.reals("start_rates");
  if (starts.size() != method_names.size())
    throw Error(fmt::format("experiment.start_rates: expected one entry per method ({}), got {}",
                            method_names.size(), starts.size()));
  for (double s : starts)
    if (!(s > 0) || !std::isfinite(s))
      throw Error(fmt::format("experiment.start_rates: every rate must be > 0, got {}", s));
  for (long q : ps)
    if (q < 2 || q % 2 != 0)
      throw Error(fmt::format("experiment.ps: every p must be an even integer >= 2, got {}", q));
  std::vector<Method> methods;
  for (const auto& n : method_names) methods.push_back(method_named(n));
  const long iterations = p.integer("iterations"), every = p.integer("record_every");
  if (iterations < 1 || every < 1)
    throw Error("experiment.iterations: iterations and record_every must be >= 1");
  const double fraction = p.real("tracking_rate_fraction");
  if (!(fraction > 0 && fraction <= 1))
    throw Error(
        fmt::format("experiment.tracking_rate_fraction: must be in (0, 1], got {}", fraction));
  acceleration::RateSearchOptions search;
  search.factor = p.real("grid_factor");
  search.patience = static_cast<int>(p.integer("search_patience"));
  search.max_points = static_cast<int>(p.integer("max_grid_points"));

  std::vector<Instance> instances;
  for (const auto& d : datasets)
    for (long q : ps) {
      instances.push_back(make_instance(d, static_cast<int>(q), p));
      const Instance& in = instances.back();
      progress(options, fmt::format("[fig1-lp] {} p={}: l* = {:.10g} (Newton, |grad| = {:.2g}), "
                                    "l(0) = {:.6g}, eta_0 = {:.4g}",
                                    in.dataset, in.p, in.l_star, in.certificate, in.l0, in.eta0));
    }

  // Phase 1: one rate search per (instance, method), longest first.
  struct Job {
    std::size_t instance, method;
  };
  std::vector<Job> jobs;
  std::vector<double> cost;
  for (std::size_t i = 0; i < instances.size(); ++i)
    for (std::size_t k = 0; k < methods.size(); ++k) {
      jobs.push_back({i, k});
      const double d0 = static_cast<double>(instances[i].x.rows());
      const double m = static_cast<double>(instances[i].x.cols());
      const double w = methods[k].depth > 1 ? static_cast<double>(methods[k].width) : 0.0;
      cost.push_back(d0 * m + w * (d0 + w * (methods[k].depth - 2)));
    }
  std::vector<SearchResult> results(jobs.size());
  std::atomic<int> done{0};
  parallel_for(
      static_cast<int>(jobs.size()), options.workers,
      [&](int j) {
        const Job& job = jobs[static_cast<std::size_t>(j)];
        const Instance& in = instances[job.instance];
        const Method& m = methods[job.method];
        SearchResult& res = results[static_cast<std::size_t>(j)];
        res.instance = job.instance;
        res.method = job.method;
        acceleration::RateSearchOptions o = search;
        o.start = starts[job.method] * (m.adaptive ? 1.0 : in.eta0);
        std::mutex mu;
        res.search = acceleration::search_best_rate(
            [&](double rate) {
              RunOutcome r = run_method(m, in, rate, p, iterations, every);
              std::lock_guard<std::mutex> lock(mu);
              res.runs.push_back(r);
              return r.point;
            },
            o);
        const auto* best = res.search.best_point();
        progress(options,
                 fmt::format("[fig1-lp {}/{}] {} p={} {}: {} rates, best {} (gap {:.4g})", ++done,
                             jobs.size(), in.dataset, in.p, m.name, res.runs.size(),
                             best ? fmt::format("{:.4g}", best->rate) : "none",
                             best ? best->final_loss - in.l_star : std::nan("")));
      },
      cost);

  // Phase 2 (Theorem 1's setting): the depth-n network from balanced factors of the end-to-end
  // update's initial matrix (Procedure 1) and the update itself, both at tracking_rate_fraction
  // of the smaller of their best rates (at the edge of stability the two discretizations of the
  // same flow part: the network's factors can overshoot into a product near zero).
  std::vector<Tracking> tracking;
  for (std::size_t i = 0; i < instances.size(); ++i)
    for (std::size_t k = 0; k < methods.size(); ++k) {
      if (methods[k].kind != OptimizerKind::kEndToEnd) continue;
      const auto* e2e = find_result(results, i, k).search.best_point();
      for (std::size_t n = 0; n < methods.size(); ++n) {
        if (methods[n].kind != OptimizerKind::kGd || methods[n].depth != methods[k].depth ||
            methods[n].width != methods[k].width)
          continue;
        const auto* net = find_result(results, i, n).search.best_point();
        if (e2e && net)
          tracking.push_back({i, k, n, fraction * std::min(e2e->rate, net->rate), {}, {}});
      }
    }
  parallel_for(2 * static_cast<int>(tracking.size()), options.workers, [&](int t) {
    Tracking& tr = tracking[static_cast<std::size_t>(t / 2)];
    const Instance& in = instances[tr.instance];
    if (t % 2 == 0) {
      tr.e2e_run = run_method(methods[tr.method], in, tr.rate, p, iterations, every);
      return;
    }
    const Method& net = methods[tr.net];
    std::vector<Index> dims{in.x.rows()};
    for (int j = 1; j < net.depth; ++j) dims.push_back(net.width);
    dims.push_back(in.y.rows());
    const Factors w0 = balanced_factors(dims, initial_factors(methods[tr.method], in, p)[0]);
    tr.run = run_method(net, in, tr.rate, p, iterations, every, &w0);
  });

  write_tables(options, instances, methods, results, tracking, p);
  write_replay_configs(options, instances, methods, results, p);
  std::vector<Claim> claims;
  const std::string body = report_body(instances, methods, results, tracking, p, claims);
  return finish("fig1-lp",
                "Figure 1 (left) and Claim 1: implicit acceleration by overparameterization on l_p "
                "regression",
                options, p, claims, body, start, "results.csv,trajectories.csv");
}

}  // namespace dln::experiments
