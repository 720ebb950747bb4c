#include "dln/tensors/run.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "dln/core/blas.hpp"
#include "dln/core/blas_kernel.hpp"
#include "dln/io/npy.hpp"
#include "dln/run/run_dir.hpp"

namespace dln::tensors {

namespace fs = std::filesystem;

const char* parameter_prefix(const TensorNetworkSpec& spec) {
  return spec.model == TensorModel::kCp ? "U" : "H";
}

namespace {

void write_parameters(const std::string& dir, const TensorNetworkSpec& spec, const Factors& w) {
  io::ensure_writable_directory(dir);
  for (std::size_t j = 0; j < w.size(); ++j)
    io::write_npy((fs::path(dir) / fmt::format("{}{}.npy", parameter_prefix(spec), j + 1)).string(),
                  w[j]);
}

Factors read_parameters(const std::string& dir, const TensorNetworkSpec& spec) {
  Factors w;
  const auto shapes = parameter_shapes(spec);
  for (std::size_t j = 0; j < shapes.size(); ++j)
    w.push_back(io::read_npy_matrix(
        (fs::path(dir) / fmt::format("{}{}.npy", parameter_prefix(spec), j + 1)).string()));
  check_parameters(spec, w, "network.init_path: " + dir);
  return w;
}

std::string tree_json(const TensorNetworkSpec& spec) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& v : build_tree(spec)) {
    nlohmann::json j = {{"level", v.level}, {"children", v.children}, {"modes", v.modes}};
    if (v.param >= 0) {
      j["parameter"] = fmt::format("{}{}.npy", parameter_prefix(spec), v.param + 1);
      j["shape"] = {v.in, v.out};
    }
    nodes.push_back(j);
  }
  return nlohmann::json{{"model", to_string(spec.model)}, {"shape", spec.shape}, {"nodes", nodes}}
             .dump(2) +
         "\n";
}

std::string num(double v) { return fmt::format("{:.17g}", v); }

}  // namespace

TensorRunResult run_tensor(const Config& config, const std::vector<Callback*>& callbacks,
                           const std::string& dir, bool resume) {
  config.validate();
  if (!config.problem.tensor()) throw Error("problem.kind: not a tensor problem (dln::run)");
  memory::require(config.memory_estimate(), config.max_memory, "run.max_memory");
  return run_tensor(config, make_tensor_problem(config.problem), callbacks, dir, resume);
}

TensorRunResult run_tensor(const Config& config, TensorProblem problem,
                           const std::vector<Callback*>& callbacks, const std::string& dir,
                           bool resume) {
  config.validate();
  if (problem.kind != config.problem.kind || problem.shape != config.problem.shape)
    throw Error(
        fmt::format("problem.shape: the given {} data do not have the config's kind and "
                    "shape",
                    problem.kind));
  blas::select_kernel();  // once per process: the best kernel the CPU runs, self-tested
  memory::require(config.memory_estimate(), config.max_memory, "run.max_memory");
  // The hierarchical model's node products are GEMMs; below ~150 a second BLAS thread costs more
  // than it gives (bench/RESULTS.md). CP steps split by entries instead (set_threads below).
  Index widest = 0;
  for (Index w : config.network.widths) widest = std::max(widest, w);
  blas::set_threads(widest >= 150 ? config.threads : 1);
  TensorRunResult r;
  r.config = config;
  r.spec = config.tensor_spec();
  r.problem = std::move(problem);
  r.init = config.network.init.kind == InitKind::kFile
               ? read_parameters(config.network.init.path, r.spec)
               : gaussian_parameters(r.spec, config.network.init.scale, config.network.init.seed);
  r.factors = r.init;
  if (!dir.empty() && !resume) {
    io::ensure_writable_directory(dir);
    write_parameters((fs::path(dir) / "init").string(), r.spec, r.init);
    save_tensor_problem_data(r.problem, (fs::path(dir) / "data").string());
    io::write_file_atomic((fs::path(dir) / "tree.json").string(), tree_json(r.spec));
    io::write_file_atomic((fs::path(dir) / "config.toml").string(), config.to_toml());
  }
  TensorObjective objective = make_tensor_objective(r.problem, r.spec);
  objective.set_records(config.record.components, r.problem.truth);
  r.flops_per_step = objective.flops();
  r.step_threads = objective.set_threads(config.threads) ? 2 : 1;
  RecordOptions record = config.record;
  record.end_to_end = false;
  if (config.optimizer.kind == OptimizerKind::kGradientFlow) {
    FlowOptions flow;
    flow.time = config.optimizer.time;
    flow.record_dt = config.record_dt;
    flow.ode = {config.optimizer.rtol, config.optimizer.atol, config.optimizer.max_steps};
    if (resume) throw Error("--resume: continuous optimizers write no checkpoints");
    r.summary =
        train_gradient_flow(objective, r.factors, flow, config.stop, record, nullptr, callbacks);
  } else {
    auto optimizer = Optimizer::create(config.optimizer, r.factors);
    CheckpointOptions ckpt;
    if (!dir.empty() && config.checkpoint_every > 0) {
      ckpt.every = config.checkpoint_every;
      ckpt.write = [dir](const Checkpoint& c) { write_checkpoint(dir, c); };
    }
    std::optional<Checkpoint> from;
    if (resume) {
      from = read_checkpoint(dir);
      Factors buffers;
      std::vector<double> scalars;
      optimizer->state(buffers, scalars);
      check_checkpoint(*from, r.factors, buffers, scalars.size(), config.stop.max_iters,
                       (fs::path(dir) / "checkpoint").string());
    }
    r.summary = train(objective, r.factors, *optimizer, config.stop, record, nullptr, callbacks,
                      &ckpt, from ? &*from : nullptr);
  }
  if (entry_count(r.spec.shape) <= kDenseEntries) {
    r.end_to_end = dense_tensor(r.spec, r.factors);
    if (config.record.rank_tol > 0) {
      CpAlsOptions o;
      o.max_iters = 500;
      o.tol = 1e-10;
      o.restarts = 3;
      o.seed = config.network.init.seed;
      r.cp_rank = estimate_cp_rank(r.spec.shape, *r.end_to_end, config.record.rank_tol,
                                   config.record.max_rank, o);
    }
  }
  return r;
}

std::string tensor_history_csv(const TensorRunResult& r) {
  const bool flow = r.summary.continuous;
  const bool truth = r.problem.truth.has_value();
  const auto tree = build_tree(r.spec);
  const Index k = std::min<Index>(r.config.record.components, tree.back().in);
  std::string out = flow ? "iteration,time," : "iteration,";
  out += "loss,grad_norm,unbalancedness";
  if (truth) out += ",fro_norm,recon_rel_error";
  for (Index i = 1; i <= k; ++i) out += fmt::format(",norm{}", i);
  out += ",seconds\n";
  for (const auto& h : r.summary.history) {
    out += flow ? fmt::format("{},{},", h.iteration, num(h.time)) : fmt::format("{},", h.iteration);
    out += fmt::format("{},{},{}", num(h.loss), num(h.grad_norm), num(h.unbalancedness));
    if (truth)
      out += fmt::format(",{},{}", num(h.metrics.fro_norm),
                         num(h.metrics.recon_rel_error.value_or(NAN)));
    // The root's (CP: the only node's) norms are the last k of the record.
    const Index start = h.components.size() - k;
    for (Index i = 0; i < k; ++i) {
      out += ',';
      out += num(h.components[start + i]);
    }
    out += fmt::format(",{}\n", num(h.seconds));
  }
  return out;
}

namespace {

// Long form: one row per record, node and kept component.
std::string component_norms_csv(const TensorRunResult& r) {
  const auto tree = build_tree(r.spec);
  std::string out = "iteration,node,level,rank,component,norm\n";
  for (const auto& h : r.summary.history) {
    Index at = 0;
    for (std::size_t v = 0; v < tree.size(); ++v) {
      if (tree[v].children.empty()) continue;
      const Index k = std::min<Index>(r.config.record.components, tree[v].in);
      for (Index i = 0; i < k; ++i, ++at)
        out += fmt::format("{},{},{},{},{},{}\n", h.iteration, v, tree[v].level, i + 1,
                           static_cast<Index>(h.component_ids[at]), num(h.components[at]));
    }
  }
  return out;
}

}  // namespace

std::string tensor_summary_json(const TensorRunResult& r) {
  using nlohmann::json;
  const auto& s = r.summary;
  json j = summary_fields(s);
  j["flops_per_step"] = r.flops_per_step;
  j["step_threads"] = r.step_threads;
  j["optimizer"] = to_string(r.config.optimizer.kind);
  j["model"] = to_string(r.spec.model);
  j["shape"] = r.spec.shape;
  j["loss"] = r.problem.kind;
  j["reduction"] = r.config.problem.reduction;
  j["observations"] = r.problem.kind == "tensor_completion" ? r.problem.observations.entries.size()
                                                            : r.problem.sensing_b.size();
  Index params = 0;
  for (const auto& w : r.factors) params += w.size();
  j["parameters"] = params;
  j["peak_rss_bytes"] = peak_rss_bytes();
  if (s.continuous)
    j["ode"] = {{"time", s.time},
                {"rhs_evals", s.rhs_evals},
                {"steps", s.iterations},
                {"steps_rejected", s.steps_rejected}};
  if (!s.history.empty()) {
    const auto& h = s.history.back();
    json f = {{"loss", h.loss}, {"grad_norm", h.grad_norm}, {"unbalancedness", h.unbalancedness}};
    if (h.metrics.recon_rel_error) f["recon_rel_error"] = *h.metrics.recon_rel_error;
    f["top_component_norms"] =
        std::vector<double>(h.components.data(), h.components.data() + h.components.size());
    j["final"] = f;
  }
  if (r.cp_rank) {
    j["cp_rank_estimate"] = {{"rank", r.cp_rank->rank},
                             {"tol", r.config.record.rank_tol},
                             {"max_rank", r.config.record.max_rank},
                             {"errors", r.cp_rank->errors}};
  }
  return j.dump(2) + "\n";
}

void write_tensor_run_directory(const std::string& dir, const TensorRunResult& r) {
  io::ensure_writable_directory(dir);
  const fs::path d(dir);
  write_parameters((d / "init").string(), r.spec, r.init);
  write_parameters((d / "factors").string(), r.spec, r.factors);
  save_tensor_problem_data(r.problem, (d / "data").string());
  if (r.end_to_end)
    io::write_npy(
        (d / "end_to_end.npy").string(), r.spec.shape,
        std::vector<double>(r.end_to_end->data(), r.end_to_end->data() + r.end_to_end->size()));
  io::write_file_atomic((d / "tree.json").string(), tree_json(r.spec));
  io::write_file_atomic((d / "history.csv").string(), tensor_history_csv(r));
  io::write_file_atomic((d / "component_norms.csv").string(), component_norms_csv(r));
  io::write_file_atomic((d / "config.toml").string(), r.config.to_toml());
  io::write_file_atomic((d / "summary.json").string(), tensor_summary_json(r));
}

}  // namespace dln::tensors
