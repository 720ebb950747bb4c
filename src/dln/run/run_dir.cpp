#include "dln/run/run_dir.hpp"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "dln/core/blas.hpp"
#include "dln/core/blas_kernel.hpp"
#include "dln/dynamics/end_to_end.hpp"
#include "dln/io/npy.hpp"

namespace dln {

namespace fs = std::filesystem;

long peak_rss_bytes() {
  // VmHWM belongs to this program's address space; getrusage's ru_maxrss would also count the
  // parent's memory copied at fork() before exec().
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) * 1024L;
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss * 1024L;
}

namespace {
void write_factors(const std::string& dir, const Factors& w, const char* prefix = "W");
}  // namespace

RunResult run(const Config& config, const std::vector<Callback*>& callbacks, const std::string& dir,
              bool resume) {
  config.validate();
  blas::select_kernel();  // once per process: the best kernel the CPU runs, self-tested
  RunResult r;
  r.config = config;
  // Refuse what cannot fit before allocating any of it (docs/errors.md, "memory").
  memory::require(config.memory_estimate(), config.max_memory, "run.max_memory");
  const auto dims = config.dims();
  // Below ~150 OpenBLAS's second thread costs more than it gives (bench/RESULTS.md). Set before
  // make_problem: its products (sensing b = A vec(W*)) split work by thread count, so leaving
  // them at OpenBLAS's startup default would tie the data to the machine's core count and to
  // earlier runs in the same process (dln.train in Python).
  blas::set_threads(*std::max_element(dims.begin(), dims.end()) >= 150 ? config.threads : 1);
  r.problem = make_problem(config.problem);
  r.init = initialize(dims, config.network.init);
  r.factors = r.init;
  if (!dir.empty() && !resume) {
    // What a killed run needs to be replayed or resumed, before any training.
    io::ensure_writable_directory(dir);
    write_factors((fs::path(dir) / "init").string(), r.init);
    save_problem_data(r.problem, (fs::path(dir) / "data").string());
    io::write_file_atomic((fs::path(dir) / "config.toml").string(), config.to_toml());
  }
  CheckpointOptions ckpt;
  if (!dir.empty() && config.checkpoint_every > 0) {
    ckpt.every = config.checkpoint_every;
    ckpt.write = [dir](const Checkpoint& c) { write_checkpoint(dir, c); };
  }
  std::optional<Checkpoint> from;
  if (resume) {
    if (config.optimizer.continuous())
      throw Error("--resume: continuous optimizers write no checkpoints");
    from = read_checkpoint(dir);
  }
  const Checkpoint* resume_from = from ? &*from : nullptr;
  const auto check_resume = [&](const Optimizer& fresh, const Factors& w) {
    if (!resume_from) return;
    Factors buffers;
    std::vector<double> scalars;
    fresh.state(buffers, scalars);
    check_checkpoint(*resume_from, w, buffers, scalars.size(), config.stop.max_iters,
                     (fs::path(dir) / "checkpoint").string());
  };
  const Mat* truth = r.problem.ground_truth ? &*r.problem.ground_truth : nullptr;
  OptimizerOptions opt = config.optimizer;
  if (opt.depth == 0) opt.depth = config.network.depth;
  FlowOptions flow;
  flow.time = opt.time;
  flow.record_dt = config.record_dt;
  flow.ode = {opt.rtol, opt.atol, opt.max_steps};
  if (opt.kind == OptimizerKind::kEndToEnd) {
    // Theorem 1 assumes unbalancedness zero (Assumption 1): only then do the factors' dynamics
    // reduce to Eq. 3.
    double scale = 0.0;
    for (const auto& w : r.init) scale = std::max(scale, w.squaredNorm());
    const double u = unbalancedness(r.init);
    if (u > 1e-10 * std::max(scale, 1e-300))
      throw Error(fmt::format(
          "optimizer.name: end_to_end needs balanced initial factors (Assumption 1), but "
          "network.init = \"{}\" has unbalancedness {:.3e}; use network.init = \"balanced\"",
          to_string(config.network.init.kind), u));
    Factors w{end_to_end(r.init)};
    r.summary = opt.continuous()
                    ? train_end_to_end_flow(*r.problem.loss, w[0], opt.depth, flow, config.stop,
                                            config.record, truth)
                    : [&] {
                        Objective e2e_objective({dims.front(), dims.back()}, *r.problem.loss);
                        auto stepper = Optimizer::create(opt, w);
                        check_resume(*stepper, w);
                        return train(e2e_objective, w, *stepper, config.stop, config.record, truth,
                                     callbacks, &ckpt, resume_from);
                      }();
    // Factors for the run directory: Procedure 1 applied to the final end-to-end matrix.
    r.factors = balanced_factors(dims, w[0]);
  } else {
    Objective objective(dims, *r.problem.loss);
    r.gemm_flops_per_step = objective.gemm_flops();
    objective.set_threads(config.threads);
    if (opt.kind == OptimizerKind::kGradientFlow) {
      r.summary = train_gradient_flow(objective, r.factors, flow, config.stop, config.record, truth,
                                      callbacks);
    } else {
      auto optimizer = Optimizer::create(opt, r.factors);
      check_resume(*optimizer, r.factors);
      r.summary = train(objective, r.factors, *optimizer, config.stop, config.record, truth,
                        callbacks, &ckpt, resume_from);
    }
    r.step_threads = objective.split_in_use() ? 2 : 1;
  }
  r.end_to_end = end_to_end(r.factors);
  return r;
}

namespace {

std::string num(double v) { return fmt::format("{:.17g}", v); }

std::string history_csv(const RunResult& r) {
  const bool truth = r.problem.ground_truth.has_value();
  const bool flow = r.summary.continuous;
  std::string out = flow ? "iteration,time," : "iteration,";
  out += "loss,grad_norm,unbalancedness,fro_norm,nuclear_norm,spectral_norm,effective_rank";
  if (truth) out += ",recon_mse,recon_rel_error";
  out += ",seconds\n";
  for (const auto& h : r.summary.history) {
    if (flow)
      out += fmt::format("{},{},", h.iteration, num(h.time));
    else
      out += fmt::format("{},", h.iteration);
    out += fmt::format("{},{},{},{},{},{},{}", num(h.loss), num(h.grad_norm), num(h.unbalancedness),
                       num(h.metrics.fro_norm), num(h.metrics.nuclear_norm),
                       num(h.metrics.spectral_norm), num(h.metrics.effective_rank));
    if (truth)
      out += fmt::format(",{},{}", num(h.metrics.recon_mse.value_or(0)),
                         num(h.metrics.recon_rel_error.value_or(0)));
    out += fmt::format(",{}\n", num(h.seconds));
  }
  return out;
}

// One row per record: iteration[,time] and the vector `column(row)` as columns prefix1..prefixK.
template <class Column>
std::string per_record_csv(const RunResult& r, const char* prefix, const Column& column) {
  Index k = 0;
  for (const auto& h : r.summary.history) k = std::max(k, column(h).size());
  const bool flow = r.summary.continuous;
  std::string out = flow ? "iteration,time" : "iteration";
  for (Index i = 1; i <= k; ++i) out += fmt::format(",{}{}", prefix, i);
  out += "\n";
  for (const auto& h : r.summary.history) {
    out += std::to_string(h.iteration);
    if (flow) {
      out += ',';
      out += num(h.time);
    }
    const Vec& v = column(h);
    for (Index i = 0; i < k; ++i) {
      out += ',';
      if (i < v.size()) out += num(v[i]);
    }
    out += "\n";
  }
  return out;
}

std::string singular_values_csv(const RunResult& r) {
  return per_record_csv(
      r, "s", [](const HistoryRow& h) -> const Vec& { return h.metrics.singular_values; });
}

// record.analytic: signed singular values of the analytic SVD (Def. 4), one column per tracked
// component in a fixed identity order.
std::string analytic_csv(const RunResult& r) {
  return per_record_csv(r, "sigma",
                        [](const HistoryRow& h) -> const Vec& { return h.analytic_sigma; });
}

void write_factors(const std::string& dir, const Factors& w, const char* prefix) {
  io::ensure_writable_directory(dir);
  for (std::size_t j = 0; j < w.size(); ++j)
    io::write_npy((fs::path(dir) / fmt::format("{}{}.npy", prefix, j + 1)).string(), w[j]);
}

Factors read_factors(const std::string& dir, const char* prefix, std::size_t count) {
  Factors w;
  for (std::size_t j = 0; j < count; ++j)
    w.push_back(
        io::read_npy_matrix((fs::path(dir) / fmt::format("{}{}.npy", prefix, j + 1)).string()));
  return w;
}

nlohmann::json row_json(const HistoryRow& h) {
  auto vec = [](const Vec& v) { return std::vector<double>(v.data(), v.data() + v.size()); };
  nlohmann::json j = {{"iteration", h.iteration},
                      {"time", h.time},
                      {"loss", h.loss},
                      {"grad_norm", h.grad_norm},
                      {"unbalancedness", h.unbalancedness},
                      {"fro_norm", h.metrics.fro_norm},
                      {"nuclear_norm", h.metrics.nuclear_norm},
                      {"spectral_norm", h.metrics.spectral_norm},
                      {"effective_rank", h.metrics.effective_rank},
                      {"seconds", h.seconds},
                      {"singular_values", vec(h.metrics.singular_values)},
                      {"analytic_sigma", vec(h.analytic_sigma)}};
  if (h.metrics.recon_mse) j["recon_mse"] = *h.metrics.recon_mse;
  if (h.metrics.recon_rel_error) j["recon_rel_error"] = *h.metrics.recon_rel_error;
  if (h.components.size()) {
    j["components"] = vec(h.components);
    j["component_ids"] = vec(h.component_ids);
  }
  return j;
}

// A non-negative integer field; get<long>() of a float such as 7e125 is undefined (found by
// fuzz_checkpoint), so a float or a negative value is malformed.
long whole(const nlohmann::json& j, const char* key) {
  const nlohmann::json& v = j.at(key);
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<std::uint64_t>() > LONG_MAX) ||
      v.get<long>() < 0)
    throw nlohmann::json::type_error::create(302, fmt::format("{}: expected an integer >= 0", key),
                                             &v);
  return v.get<long>();
}

HistoryRow row_from_json(const nlohmann::json& j) {
  auto vec = [](const nlohmann::json& a) {
    const auto v = a.get<std::vector<double>>();
    return Vec(Eigen::Map<const Vec>(v.data(), static_cast<Index>(v.size())));
  };
  HistoryRow h;
  h.iteration = whole(j, "iteration");
  h.time = j.at("time").get<double>();
  h.loss = j.at("loss").get<double>();
  h.grad_norm = j.at("grad_norm").get<double>();
  h.unbalancedness = j.at("unbalancedness").get<double>();
  h.metrics.fro_norm = j.at("fro_norm").get<double>();
  h.metrics.nuclear_norm = j.at("nuclear_norm").get<double>();
  h.metrics.spectral_norm = j.at("spectral_norm").get<double>();
  h.metrics.effective_rank = j.at("effective_rank").get<double>();
  h.seconds = j.at("seconds").get<double>();
  h.metrics.singular_values = vec(j.at("singular_values"));
  h.analytic_sigma = vec(j.at("analytic_sigma"));
  if (j.contains("recon_mse")) h.metrics.recon_mse = j["recon_mse"].get<double>();
  if (j.contains("recon_rel_error")) h.metrics.recon_rel_error = j["recon_rel_error"].get<double>();
  if (j.contains("components")) {
    h.components = vec(j["components"]);
    h.component_ids = vec(j.at("component_ids"));
  }
  return h;
}

}  // namespace

nlohmann::json summary_fields(const Summary& s) {
  nlohmann::json j;
  j["version"] = DLN_VERSION;
  j["termination"] = to_string(s.termination);
  j["message"] = s.message;
  j["iterations"] = s.iterations;
  j["final_loss"] = s.final_loss;
  j["wall_seconds"] = s.wall_seconds;
  j["record_seconds"] = s.record_seconds;
  j["seconds_per_step"] =
      s.iterations > 0 ? (s.wall_seconds - s.record_seconds) / static_cast<double>(s.iterations)
                       : 0.0;
  return j;
}

std::string summary_json(const RunResult& r) {
  using nlohmann::json;
  const auto& s = r.summary;
  json j = summary_fields(s);
  j["gemm_flops_per_step"] = r.gemm_flops_per_step;
  j["step_threads"] = r.step_threads;
  j["optimizer"] = to_string(r.config.optimizer.kind);
  if (s.continuous)
    j["ode"] = {{"time", s.time},
                {"rhs_evals", s.rhs_evals},
                {"steps", s.iterations},
                {"steps_attempted", s.steps_attempted},
                {"steps_rejected", s.steps_rejected},
                {"rtol", r.config.optimizer.rtol},
                {"atol", r.config.optimizer.atol}};
  j["peak_rss_bytes"] = peak_rss_bytes();
  j["dims"] = r.config.dims();
  Index params = 0;
  for (const auto& w : r.factors) params += w.size();
  j["parameters"] = params;
  j["loss"] = r.problem.loss->name();
  j["reduction"] = r.config.problem.reduction;
  const auto& kernel = blas::select_kernel();
  j["blas"] = {{"corename", blas::corename()},    {"config", blas::config()},
               {"threads", blas::threads()},      {"reason", kernel.reason},
               {"override", kernel.override_env}, {"openblas_choice", kernel.openblas_choice},
               {"cpu_isa", kernel.cpu_isa},       {"self_test_passed", kernel.self_test_passed}};
  if (!s.history.empty()) {
    const auto& h = s.history.back();
    json f;
    f["loss"] = h.loss;
    f["grad_norm"] = h.grad_norm;
    f["unbalancedness"] = h.unbalancedness;
    f["fro_norm"] = h.metrics.fro_norm;
    f["nuclear_norm"] = h.metrics.nuclear_norm;
    f["spectral_norm"] = h.metrics.spectral_norm;
    f["effective_rank"] = h.metrics.effective_rank;
    if (h.metrics.recon_mse) f["recon_mse"] = *h.metrics.recon_mse;
    if (h.metrics.recon_rel_error) f["recon_rel_error"] = *h.metrics.recon_rel_error;
    j["final"] = f;
  }
  return j.dump(2) + "\n";
}

void write_checkpoint(const std::string& dir, const Checkpoint& c) {
  const fs::path final_dir = fs::path(dir) / "checkpoint", tmp = fs::path(dir) / "checkpoint.tmp",
                 old = fs::path(dir) / "checkpoint.old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  write_factors(tmp.string(), c.w, "W");
  write_factors(tmp.string(), c.buffers, "B");
  nlohmann::json j;
  j["iteration"] = c.iteration;
  j["factors"] = c.w.size();
  j["buffers"] = c.buffers.size();
  j["scalars"] = c.scalars;
  j["history"] = nlohmann::json::array();
  for (const auto& h : c.history) j["history"].push_back(row_json(h));
  io::write_file_atomic((tmp / "state.json").string(), j.dump() + "\n");
  // Swap directories: a kill at any point leaves either checkpoint/ or checkpoint.old/ whole.
  fs::remove_all(old, ec);
  if (fs::exists(final_dir)) fs::rename(final_dir, old);
  fs::rename(tmp, final_dir);
  fs::remove_all(old, ec);
}

Checkpoint read_checkpoint(const std::string& dir) {
  fs::path cdir = fs::path(dir) / "checkpoint";
  if (!fs::exists(cdir / "state.json") && fs::exists(fs::path(dir) / "checkpoint.old/state.json"))
    cdir = fs::path(dir) / "checkpoint.old";
  const fs::path state = cdir / "state.json";
  if (!fs::exists(state)) throw Error(state.string() + ": no checkpoint to resume from");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file(state.string()));
    Checkpoint c;
    c.iteration = whole(j, "iteration");
    c.w = read_factors(cdir.string(), "W", static_cast<std::size_t>(whole(j, "factors")));
    c.buffers = read_factors(cdir.string(), "B", static_cast<std::size_t>(whole(j, "buffers")));
    c.scalars = j.at("scalars").get<std::vector<double>>();
    for (const auto& h : j.at("history")) c.history.push_back(row_from_json(h));
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw Error(state.string() + ": malformed checkpoint (" + e.what() + ")");
  }
}

void check_checkpoint(const Checkpoint& c, const Factors& w, const Factors& buffers,
                      std::size_t scalars, long max_iters, const std::string& where) {
  const auto same = [&](const Factors& got, const Factors& want, const char* what) {
    if (got.size() != want.size())
      throw Error(fmt::format("{}: {} {} matrices, expected {} for this config", where, got.size(),
                              what, want.size()));
    for (std::size_t j = 0; j < got.size(); ++j) {
      if (got[j].rows() != want[j].rows() || got[j].cols() != want[j].cols())
        throw Error(fmt::format("{}: {} {} is {}x{}, expected {}x{} for this config", where, what,
                                j + 1, got[j].rows(), got[j].cols(), want[j].rows(),
                                want[j].cols()));
      if (!got[j].allFinite())
        throw Error(fmt::format("{}: {} {} has a non-finite entry", where, what, j + 1));
    }
  };
  same(c.w, w, "factor");
  same(c.buffers, buffers, "optimizer buffer");
  if (c.scalars.size() != scalars)
    throw Error(fmt::format("{}: {} optimizer scalars, expected {} for this config", where,
                            c.scalars.size(), scalars));
  for (double v : c.scalars)
    if (!std::isfinite(v)) throw Error(fmt::format("{}: a non-finite optimizer scalar", where));
  if (c.iteration < 0 || c.iteration > max_iters)
    throw Error(fmt::format("{}: iteration {} is outside [0, stop.max_iters = {}]", where,
                            c.iteration, max_iters));
}

void write_run_directory(const std::string& dir, const RunResult& r) {
  io::ensure_writable_directory(dir);
  const fs::path d(dir);
  write_factors((d / "init").string(), r.init);
  write_factors((d / "factors").string(), r.factors);
  save_problem_data(r.problem, (d / "data").string());
  io::write_npy((d / "end_to_end.npy").string(), r.end_to_end);
  io::write_file_atomic((d / "history.csv").string(), history_csv(r));
  io::write_file_atomic((d / "singular_values.csv").string(), singular_values_csv(r));
  if (r.config.record.analytic)
    io::write_file_atomic((d / "analytic_singular_values.csv").string(), analytic_csv(r));
  io::write_file_atomic((d / "config.toml").string(), r.config.to_toml());
  // summary.json last: its presence marks a complete run directory.
  io::write_file_atomic((d / "summary.json").string(), summary_json(r));
}

}  // namespace dln
