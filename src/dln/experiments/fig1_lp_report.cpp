// fig1-lp's tables (results.csv, trajectories.csv), its claims and report.md.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "dln/config/config.hpp"
#include "dln/experiments/fig1_lp.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"

namespace dln::experiments::fig1lp {

namespace fs = std::filesystem;
using acceleration::iterations_to_epsilon;
using acceleration::kNever;

const SearchResult& find_result(const std::vector<SearchResult>& results, std::size_t instance,
                                std::size_t method) {
  for (const auto& r : results)
    if (r.instance == instance && r.method == method) return r;
  throw std::logic_error("fig1-lp: no search for this instance and method");
}

namespace {

std::string eps_column(double e) { return fmt::format("t_{:.0e}", e); }

// Iterations to a gap l - l* <= e, kNever if not within the run.
long t_eps(const RunOutcome& r, const Instance& in, double e) {
  return iterations_to_epsilon(r.iteration, r.loss, in.l_star, e);
}

std::string t_text(long t) { return t == kNever ? "never" : fmt::format("{}", t); }

// t_a / t_b as text: how many times faster b is than a.
std::string speedup(long a, long b) {
  if (b == kNever) return a == kNever ? "—" : "0 (never)";
  if (a == kNever) return fmt::format("> {:.3g}", 1.0);
  if (b == 0) return "—";
  return fmt::format("{:.3g}", static_cast<double>(a) / static_cast<double>(b));
}

double gap(const RunOutcome& r, const Instance& in) { return r.point.final_loss - in.l_star; }

int index_of(const std::vector<Method>& methods, const std::string& name) {
  for (std::size_t k = 0; k < methods.size(); ++k)
    if (methods[k].name == name) return static_cast<int>(k);
  return -1;
}

int instance_of(const std::vector<Instance>& instances, const std::string& dataset, long p) {
  for (std::size_t i = 0; i < instances.size(); ++i)
    if (instances[i].dataset == dataset && instances[i].p == p) return static_cast<int>(i);
  return -1;
}

// Largest |log10 gap_a - log10 gap_b| over common records where both gaps lie in
// (1e-12 l(0), ceiling]: past the steep descent, above rounding.
double tracking_decades(const RunOutcome& a, const RunOutcome& b, const Instance& in,
                        double ceiling, int* compared) {
  const double floor = 1e-12 * in.l0;
  double worst = 0;
  *compared = 0;
  const std::size_t n = std::min(a.loss.size(), b.loss.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a.iteration[i] != b.iteration[i]) break;
    const double ga = a.loss[i] - in.l_star, gb = b.loss[i] - in.l_star;
    if (!(ga > floor && gb > floor && ga <= ceiling && gb <= ceiling)) continue;
    worst = std::max(worst, std::abs(std::log10(ga) - std::log10(gb)));
    ++*compared;
  }
  return worst;
}

}  // namespace

void write_tables(const Options& options, const std::vector<Instance>& instances,
                  const std::vector<Method>& methods, const std::vector<SearchResult>& results,
                  const std::vector<Tracking>& tracking, const Params& params) {
  const auto eps = params.reals("epsilons");
  std::vector<std::string> cols{
      "experiment", "dataset",    "p",          "method",         "depth", "width",
      "optimizer",  "role",       "rate",       "rate_over_eta0", "best",  "termination",
      "diverged",   "iterations", "final_loss", "l_star",         "gap",   "rel_gap"};
  for (double e : eps) cols.push_back(eps_column(e));
  cols.push_back("seconds");
  cols.push_back("ms_per_step");
  Table table(cols);
  Table traj({"dataset", "p", "method", "role", "rate", "iteration", "loss", "gap"});
  auto add = [&](const Instance& in, const Method& m, const RunOutcome& r, const char* role,
                 bool best) {
    std::vector<std::string> row{"fig1-lp",
                                 in.dataset,
                                 std::to_string(in.p),
                                 m.name,
                                 std::to_string(m.depth),
                                 std::to_string(m.width),
                                 to_string(m.kind),
                                 role,
                                 num(r.point.rate),
                                 num(r.point.rate / in.eta0),
                                 best ? "1" : "0",
                                 r.termination,
                                 r.point.diverged ? "1" : "0",
                                 std::to_string(r.point.iterations),
                                 num(r.point.final_loss),
                                 num(in.l_star),
                                 num(gap(r, in)),
                                 num(gap(r, in) / (in.l0 - in.l_star))};
    for (double e : eps) row.push_back(std::to_string(t_eps(r, in, e)));
    row.push_back(num(r.seconds));
    row.push_back(num(
        r.point.iterations > 0 ? 1e3 * r.seconds / static_cast<double>(r.point.iterations) : 0.0));
    table.add(row);
    if (best || std::string(role) == "tracking")
      for (std::size_t i = 0; i < r.iteration.size(); ++i)
        traj.add({in.dataset, std::to_string(in.p), m.name, role, num(r.point.rate),
                  std::to_string(r.iteration[i]), num(r.loss[i]), num(r.loss[i] - in.l_star)});
  };
  for (const auto& res : results)
    for (std::size_t k = 0; k < res.runs.size(); ++k)
      add(instances[res.instance], methods[res.method], res.runs[k], "search",
          static_cast<int>(k) == res.search.best);
  for (const auto& t : tracking) {
    add(instances[t.instance], methods[t.net], t.run, "tracking", false);
    add(instances[t.instance], methods[t.method], t.e2e_run, "tracking", false);
  }
  io::write_file_atomic((fs::path(options.out) / "results.csv").string(), table.csv());
  io::write_file_atomic((fs::path(options.out) / "trajectories.csv").string(), traj.csv());
}

void write_replay_configs(const Options& options, const std::vector<Instance>& instances,
                          const std::vector<Method>& methods,
                          const std::vector<SearchResult>& results, const Params& params) {
  const fs::path out = fs::absolute(options.out);
  fs::create_directories(out / "data");
  fs::create_directories(out / "configs");
  for (const auto& res : results) {
    const Instance& in = instances[res.instance];
    const Method& m = methods[res.method];
    const RunOutcome* best = res.best();
    if (!best) continue;
    const std::string x = (out / "data" / (in.dataset + "_X.npy")).string();
    const std::string y = (out / "data" / (in.dataset + "_Y.npy")).string();
    if (!fs::exists(x)) io::write_npy(x, in.x), io::write_npy(y, in.y);
    Config c;
    c.problem.kind = "lp_regression";
    c.problem.rows = in.y.rows();
    c.problem.cols = in.x.rows();
    c.problem.rank = 1;
    c.problem.p = in.p;
    c.problem.x_file = x;
    c.problem.y_file = y;
    c.network.depth = m.kind == OptimizerKind::kEndToEnd ? 1 : m.depth;
    if (c.network.depth > 1) c.network.width = m.width;
    c.network.init.kind = InitKind::kGaussian;
    c.network.init.scale = m.depth == 1 ? 0.0 : params.real("init_std");  // linear: W = 0
    c.network.init.seed = static_cast<std::uint64_t>(params.integer("init_seed"));
    if (m.kind == OptimizerKind::kEndToEnd) {  // the update starts from the network's W_{n:1}
      const fs::path dir = out / "init" / fmt::format("{}_{}", in.dataset, m.name);
      fs::create_directories(dir);
      io::write_npy((dir / "W1.npy").string(), initial_factors(m, in, params)[0]);
      c.network.init.kind = InitKind::kFile;
      c.network.init.path = dir.string();
      c.optimizer.depth = m.depth;
    }
    c.optimizer.kind = m.kind;
    c.optimizer.lr = best->point.rate;
    c.stop.max_iters = params.integer("iterations");
    c.stop.divergence_threshold = params.real("divergence_factor") * in.l0;
    c.record.every = params.integer("record_every");
    c.record.singular_values = 1;
    c.threads = 1;
    c.validate();
    io::write_file_atomic(
        (out / "configs" / fmt::format("{}_p{}_{}.toml", in.dataset, in.p, m.name)).string(),
        c.to_toml());
  }
}

std::string report_body(const std::vector<Instance>& instances, const std::vector<Method>& methods,
                        const std::vector<SearchResult>& results,
                        const std::vector<Tracking>& tracking, const Params& params,
                        std::vector<Claim>& claims) {
  const auto eps = params.reals("epsilons");
  const long budget = params.integer("iterations");
  const int linear = index_of(methods, "linear_gd");
  std::string body = fmt::format(
      "## Claim 1 (informally, as the notes state it)\n\nFor l_p regression with p in {{4, 6, "
      "...}}, let t_{{l,eta}} be the first iteration at which gradient descent with fixed step "
      "eta on the linear model is within epsilon of the global minimum, and t_{{phi,zeta}} the "
      "same for the discretized end-to-end dynamics vec(W) <- vec(W) - zeta P(W) vec(grad l(W)); "
      "t_l = min over eta, t_phi = min over zeta. For any c there are cases where a near-zero "
      "initialization gives t_l > c t_phi. It is an **existence** statement: it does not say "
      "that depth accelerates every l_p problem, nor any l_2 problem.\n\n"
      "Each method below ran at every rate its search visited, {} iterations each; its best rate "
      "is the one whose run reached the lowest loss within the budget. Gaps are l - l*, with l* "
      "from Newton's method; t(eps) is the first recorded iteration with l - l* <= eps. t(eps) is "
      "exact to the record "
      "stride ({} iterations). Speed-up: linear GD's t(eps) over the method's, both at their "
      "best rates.\n\n",
      budget, params.integer("record_every"));
  for (std::size_t i = 0; i < instances.size(); ++i) {
    const Instance& in = instances[i];
    body += fmt::format(
        "## {}, p = {}\n\nData: {}. l* = {:.12g} (Newton: {} steps, certificate ||grad l(W*)||_F "
        "= {:.2g}); l(0) = {:.6g}; eta_0 = 1/lambda_max(Hessian at 0) = {:.4g}.\n\n",
        in.dataset, in.p, in.source, in.l_star, in.newton_iterations, in.certificate, in.l0,
        in.eta0);
    std::string head = "| method | best rate | rate / eta_0 | runs (diverged) | gap at budget |";
    std::string rule = "|---|---|---|---|---|";
    for (double e : eps) {
      head += fmt::format(" t({:.0e}) |", e);
      rule += "---|";
    }
    for (double e : eps) {
      head += fmt::format(" speed-up at {:.0e} |", e);
      rule += "---|";
    }
    body += head + " ms/step |\n" + rule + "---|\n";
    const RunOutcome* lin =
        linear >= 0 ? find_result(results, i, static_cast<std::size_t>(linear)).best() : nullptr;
    for (std::size_t k = 0; k < methods.size(); ++k) {
      const SearchResult& res = find_result(results, i, k);
      int diverged = 0;
      for (const auto& r : res.runs) diverged += r.point.diverged;
      const RunOutcome* b = res.best();
      if (!b) {
        body += fmt::format("| {} | none converged | | {} ({}) | |\n", methods[k].name,
                            res.runs.size(), diverged);
        continue;
      }
      std::string row =
          fmt::format("| {} | {:.4g}{} | {:.3g} | {} ({}) | {:.4g} |", methods[k].name,
                      b->point.rate, res.search.interior ? "" : " (grid edge)",
                      b->point.rate / in.eta0, res.runs.size(), diverged, gap(*b, in));
      for (double e : eps) row += fmt::format(" {} |", t_text(t_eps(*b, in, e)));
      for (double e : eps)
        row += fmt::format(" {} |", lin ? speedup(t_eps(*lin, in, e), t_eps(*b, in, e)) : "—");
      row += fmt::format(
          " {:.4f} |\n",
          1e3 * b->seconds / static_cast<double>(std::max<long>(1, b->point.iterations)));
      body += row;
    }
    // Claim 1's own quantities: minima over every rate run.
    auto t_min = [&](const std::string& name, double e) {
      const int k = index_of(methods, name);
      if (k < 0) return kNever;
      long best = kNever;
      for (const auto& r : find_result(results, i, static_cast<std::size_t>(k)).runs) {
        const long t = t_eps(r, in, e);
        if (t != kNever && (best == kNever || t < best)) best = t;
      }
      return best;
    };
    body +=
        "\nClaim 1's t_l (linear GD) and t_phi (end-to-end update, n = 2 and 3), minimised over "
        "every rate run:\n\n| epsilon | t_l | t_phi (n = 2) | t_phi (n = 3) | t_l / t_phi (n = 3) "
        "|\n|---|---|---|---|---|\n";
    for (double e : eps) {
      const long tl = t_min("linear_gd", e), t2 = t_min("e2e_n2", e), t3 = t_min("e2e_n3", e);
      body += fmt::format("| {:.0e} | {} | {} | {} | {} |\n", e, t_text(tl), t_text(t2), t_text(t3),
                          speedup(tl, t3));
    }
    body += "\n";
  }

  // Claims: Claim 1 itself (the notes' statement) decides the verdict; the published
  // observations on the real data are re-measured and reported beside it.
  std::vector<Claim> observed;
  const long claim_p = params.integer("claim_p");
  const double claim_eps = params.real("claim_epsilon");
  auto best_of = [&](int instance, const std::string& name) -> const RunOutcome* {
    const int k = index_of(methods, name);
    if (instance < 0 || k < 0) return nullptr;
    return find_result(results, static_cast<std::size_t>(instance), static_cast<std::size_t>(k))
        .best();
  };
  {
    Claim c;
    c.statement = fmt::format(
        "Claim 1 on the synthetic instance of its proof sketch (p = {}): the depth-3 network "
        "(width 100, near-zero init) reaches l - l* <= {:.0e} in fewer iterations than "
        "gradient descent on the linear model, each at its best rate.",
        claim_p, claim_eps);
    const int s = instance_of(instances, "synthetic", claim_p);
    const RunOutcome *lin = best_of(s, "linear_gd"), *deep = best_of(s, "depth3_w100");
    if (lin && deep) {
      const Instance& in = instances[static_cast<std::size_t>(s)];
      const long tl = t_eps(*lin, in, claim_eps), td = t_eps(*deep, in, claim_eps);
      c.supported = td != kNever && (tl == kNever || td < tl);
      c.evidence =
          fmt::format("t = {} (depth 3, rate {:.4g}) vs {} (linear, rate {:.4g}): speed-up {}",
                      t_text(td), deep->point.rate, t_text(tl), lin->point.rate, speedup(tl, td));
    } else {
      c.evidence =
          "not tested: needs dataset synthetic, p = claim_p and methods linear_gd, depth3_w100";
    }
    claims.push_back(c);
  }
  {
    Claim c;
    const double tol = params.real("claim_tracking_decades");
    c.statement = fmt::format(
        "Claim 1's discrete end-to-end update tracks the depth-n network it stands for (width 100, "
        "from balanced factors of the same initial end-to-end matrix, Theorem 1's setting, at "
        "the same rate, a fraction tracking_rate_fraction of the smaller best rate): on the "
        "synthetic "
        "instance, p = {}, past the steep descent (gaps <= 1e-2 l(0)) their gaps l - l* differ "
        "by at most {} decades at every record (at least 10 compared), and each epsilon is "
        "reached at the same iteration to 10% or two records (other instances reported).",
        claim_p, tol);
    std::vector<std::string> ev;
    bool ok = true, any = false;
    const auto eps_list = params.reals("epsilons");
    const long stride = params.integer("record_every");
    for (const auto& t : tracking) {
      const Instance& in = instances[t.instance];
      int compared = 0;
      const bool diverged = t.run.point.diverged || t.e2e_run.point.diverged;
      const double d = diverged ? std::numeric_limits<double>::infinity()
                                : tracking_decades(t.run, t.e2e_run, in, 1e-2 * in.l0, &compared);
      bool same_t = !diverged;
      for (double e : eps_list) {
        const long a = t_eps(t.run, in, e), b = t_eps(t.e2e_run, in, e);
        if ((a == kNever) != (b == kNever)) same_t = false;
        if (a != kNever && b != kNever &&
            std::abs(a - b) >
                std::max<long>(2 * stride, static_cast<long>(0.1 * static_cast<double>(a))))
          same_t = false;
      }
      ev.push_back(
          fmt::format("{} p={} {} vs {} at rate {:.3g}: {:.3g} decades over {} records, "
                      "t(eps) {}",
                      in.dataset, in.p, methods[t.method].name, methods[t.net].name, t.rate, d,
                      compared, same_t ? "agree" : "differ"));
      if (in.dataset == "synthetic" && in.p == claim_p) {
        any = true;
        ok = ok && compared >= 10 && d <= tol && same_t;
      }
    }
    c.supported = any && ok;
    c.evidence = ev.empty() ? "not tested: no e2e method with its network"
                            : fmt::format("{}", fmt::join(ev, "; "));
    claims.push_back(c);
  }
  {
    Claim c;
    c.statement = fmt::format(
        "Figure 1 (left) on the ethanol data, l_{}: at the budget the depth-3 network is closer to "
        "the optimum than the linear model (published at 10^6 iterations: ~6.5e-3 vs ~3.7e-2; an "
        "independent re-run did not find the speed-up, and our copy holds 8 of 10 batches).",
        claim_p);
    const int e = instance_of(instances, "ethanol", claim_p);
    const RunOutcome *lin = best_of(e, "linear_gd"), *deep = best_of(e, "depth3_w100"),
                     *two = best_of(e, "depth2_w100");
    if (lin && deep) {
      const Instance& in = instances[static_cast<std::size_t>(e)];
      c.supported = gap(*deep, in) < gap(*lin, in);
      c.evidence = fmt::format("gap at {} iterations: linear {:.4g}, depth 2 {}, depth 3 {:.4g}",
                               budget, gap(*lin, in),
                               two ? fmt::format("{:.4g}", gap(*two, in)) : "—", gap(*deep, in));
    } else {
      c.evidence = "not tested: needs dataset ethanol, p = claim_p, linear_gd and depth3_w100";
    }
    observed.push_back(c);
  }
  {
    Claim c;
    const double factor = params.real("claim_l2_factor");
    c.statement = fmt::format(
        "l_2 (published on ethanol: no speed-up): at the budget neither the depth-2 nor the "
        "depth-3 network is closer to the optimum than linear GD's gap / {}, each at its best "
        "rate.",
        factor);
    std::vector<std::string> ev;
    bool any = false, ok = true;
    for (const auto& d : {"ethanol", "synthetic"}) {
      const int i = instance_of(instances, d, 2);
      const RunOutcome* lin = best_of(i, "linear_gd");
      if (!lin) continue;
      const Instance& in = instances[static_cast<std::size_t>(i)];
      for (const auto& name : {"depth2_w100", "depth3_w100"}) {
        const RunOutcome* r = best_of(i, name);
        if (!r) continue;
        any = true;
        if (std::string(d) == "ethanol") ok = ok && gap(*r, in) >= gap(*lin, in) / factor;
        ev.push_back(
            fmt::format("{}: linear {:.4g} vs {} {:.4g}", d, gap(*lin, in), name, gap(*r, in)));
      }
    }
    c.supported = any && ok;
    c.evidence = any ? fmt::format("{} (judged on ethanol)", fmt::join(ev, "; "))
                     : "not tested: needs p = 2";
    observed.push_back(c);
  }
  {
    Claim c;
    c.statement =
        "Width does not matter (published): depth-n networks of hidden width 1 and 100 reach gaps "
        "within a factor 2 of each other at the budget, on every instance.";
    std::vector<std::string> ev;
    bool any = false, ok = true;
    for (std::size_t i = 0; i < instances.size(); ++i)
      for (int n : {2, 3}) {
        const RunOutcome *a = best_of(static_cast<int>(i), fmt::format("depth{}_w1", n)),
                         *b = best_of(static_cast<int>(i), fmt::format("depth{}_w100", n));
        if (!a || !b) continue;
        any = true;
        const double ga = gap(*a, instances[i]), gb = gap(*b, instances[i]);
        // Gaps at rounding level (<= 1e-12 l(0), possibly negative) are both l*: equal.
        const double floor = 1e-12 * instances[i].l0;
        const double ratio = (ga <= floor && gb <= floor) ? 1.0
                             : (ga <= floor || gb <= floor)
                                 ? std::numeric_limits<double>::infinity()
                                 : std::max(ga, gb) / std::min(ga, gb);
        ok = ok && ratio <= 2;
        ev.push_back(fmt::format("{} p={} depth {}: {:.3g} vs {:.3g}", instances[i].dataset,
                                 instances[i].p, n, ga, gb));
      }
    c.supported = any && ok;
    c.evidence = any ? fmt::format("{}", fmt::join(ev, "; ")) : "not tested";
    observed.push_back(c);
  }

  body += "## Published observations (Figure 1 left, Arora et al. 2018), re-measured\n\n";
  for (const auto& o : observed)
    body += fmt::format("- **{}:** {}\n  - {}\n", o.supported ? "Reproduced" : "Not reproduced",
                        o.statement, o.evidence);
  body += "\n";
  body +=
      "## Caveats\n\n- The ethanol data is partial: 8 of the 10 batches of the UCI set (1316 of "
      "2565 rows), see data/uci-gas-sensor-ethanol/README.md; the published curves are not "
      "expected to match in value, only in shape.\n- Rates come from a geometric grid (factor "
      "grid_factor) walked from start_rates until search_patience worse points in a row; a best "
      "rate marked (grid edge) had no worse neighbour on one side inside max_grid_points.\n- The "
      "networks start from a per-layer Gaussian of std init_std, which is only approximately "
      "balanced; Claim 1's update starts from the same end-to-end matrix. Divergence: loss above "
      "divergence_factor x l(0), NaN or Inf.\n- Claim 1 is an existence statement; the synthetic "
      "instance is built to satisfy it, the ethanol result is what this data gives.\n";
  return body;
}

}  // namespace dln::experiments::fig1lp
