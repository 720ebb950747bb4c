// Section 5 in Python: tensor runs (dln.train with problem.kind = "tensor_*" returns a
// dln.TensorResult), CP-ALS, the CP-rank estimate, dense tensors and component norms.
#include <fmt/format.h>

#include "common.hpp"
#include "dln/io/files.hpp"
#include "dln/tensors/cp_als.hpp"
#include "dln/tensors/run.hpp"

namespace dlnpy {

namespace t = dln::tensors;

namespace {

py::array tensor_array(const Vec& v, const t::Shape& shape) {
  std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  py::array_t<double> a(dims);
  std::copy(v.data(), v.data() + v.size(), a.mutable_data());
  return a;
}

// A dense C-order tensor from any real numpy array; with `shape`, it must have it.
Vec tensor_from(py::handle obj, const std::string& name, t::Shape& shape) {
  auto np = py::module_::import("numpy");
  py::array a = np.attr("asarray")(obj);
  if (a.dtype().kind() != 'f' && a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
    throw py::value_error(name + ": expected a real array");
  py::array_t<double, py::array::c_style | py::array::forcecast> c(a);
  shape.assign(c.shape(), c.shape() + c.ndim());
  t::validate_shape(shape, name);
  Vec v(c.size());
  std::copy(c.data(), c.data() + c.size(), v.data());
  if (!v.allFinite()) throw py::value_error(name + ": non-finite value");
  return v;
}

t::Observations observations_from(py::handle indices, py::handle values, const t::Shape& shape) {
  py::array a = py::module_::import("numpy").attr("asarray")(indices);
  if (a.ndim() != 2 || a.shape(1) != static_cast<py::ssize_t>(shape.size()))
    throw py::value_error(
        fmt::format("observations[0] (indices): expected an m x {} array (the order of the shape)",
                    shape.size()));
  const auto idx = to_indices(a.attr("reshape")(-1), "observations[0] (indices)");
  const auto val = to_doubles(values, "observations[1] (values)");
  t::Observations o;
  o.entries.shape = shape;
  o.entries.index = idx;
  o.values = val;
  if (idx.size() != val.size() * shape.size())
    throw py::value_error(fmt::format(
        "observations: indices must be m x {} (order of problem.shape) for {} values, got {} "
        "numbers",
        shape.size(), val.size(), idx.size()));
  t::check_observations(o, "observations");
  return o;
}

t::TensorNetworkSpec spec_from(const std::string& model, t::Shape shape, const Factors& w,
                               const std::vector<Index>& widths, int pool) {
  t::TensorNetworkSpec s;
  s.model = t::parse_tensor_model(model);
  s.shape = std::move(shape);
  if (s.model == t::TensorModel::kCp) {
    if (w.empty()) throw py::value_error("factors: expected U_1..U_N");
    s.components = w[0].cols();
  }
  s.widths = widths;
  s.pool = pool;
  s.validate();
  t::check_parameters(s, w, "factors");
  return s;
}

py::dict tensor_history(const t::TensorRunResult& r) {
  const auto& h = r.summary.history;
  py::dict d;
  std::vector<long> it;
  std::vector<double> loss, grad, unb, err, sec;
  for (const auto& row : h) {
    it.push_back(row.iteration);
    loss.push_back(row.loss);
    grad.push_back(row.grad_norm);
    unb.push_back(row.unbalancedness);
    err.push_back(row.metrics.recon_rel_error.value_or(NAN));
    sec.push_back(row.seconds);
  }
  d["iteration"] = int_array(it);
  d["loss"] = double_array(loss);
  d["grad_norm"] = double_array(grad);
  d["unbalancedness"] = double_array(unb);
  if (r.problem.truth) d["recon_rel_error"] = double_array(err);
  d["seconds"] = double_array(sec);
  // Records x (nodes * K): each node's top component norms and which components they are.
  const Index k = h.empty() ? 0 : h.front().components.size();
  Mat norms(static_cast<Index>(h.size()), k), ids(static_cast<Index>(h.size()), k);
  for (std::size_t i = 0; i < h.size(); ++i) {
    norms.row(static_cast<Index>(i)) = h[i].components.transpose();
    ids.row(static_cast<Index>(i)) = h[i].component_ids.transpose();
  }
  d["component_norms"] = to_numpy(std::move(norms));
  d["component_ids"] = to_numpy(std::move(ids));
  return d;
}

}  // namespace

py::object train_tensor(const dln::Config& c, const std::string& dir, py::handle observations,
                        CallbackSet& cbs) {
  auto r = std::make_unique<t::TensorRunResult>();
  std::optional<t::TensorProblem> given;
  if (!observations.is_none()) {
    if (c.problem.kind != "tensor_completion" || c.problem.from_files())
      throw py::value_error(
          "observations: given with problem.kind = \"tensor_completion\" and no "
          "problem.observations_file");
    auto pair = observations.cast<py::tuple>();
    if (pair.size() != 2) throw py::value_error("observations: expected (indices m x N, values m)");
    t::TensorProblem p;
    p.kind = c.problem.kind;
    p.shape = c.problem.shape;
    p.reduction = dln::parse_reduction(c.problem.reduction);
    p.observations = observations_from(pair[0], pair[1], p.shape);
    given = std::move(p);
  }
  {
    py::gil_scoped_release release;
    if (!dir.empty()) dln::io::ensure_writable_directory(dir);
    *r = given ? t::run_tensor(c, std::move(*given), cbs.pointers, dir)
               : t::run_tensor(c, cbs.pointers, dir);
  }
  cbs.pending->rethrow();
  if (!dir.empty()) {
    py::gil_scoped_release release;
    t::write_tensor_run_directory(dir, *r);
  }
  return py::cast(std::move(r));
}

void init_tensors(py::module_& m) {
  py::class_<t::TensorRunResult>(m, "TensorResult",
                                 "The outcome of dln.train on a tensor problem (docs/tensors.md): "
                                 "the run directory's content.")
      .def_property_readonly(
          "summary",
          [](const t::TensorRunResult& r) {
            return py::module_::import("json").attr("loads")(t::tensor_summary_json(r));
          },
          "summary.json as a dict")
      .def_property_readonly("history", &tensor_history,
                             "history columns as numpy arrays, plus component_norms and "
                             "component_ids (records x nodes*K)")
      .def_property_readonly(
          "factors", [](const t::TensorRunResult& r) { return factors_copy(r.factors); },
          "final parameters (CP: U_1..U_N, d_k x R; hierarchical: docs/tensors.md)")
      .def_property_readonly(
          "init", [](const t::TensorRunResult& r) { return factors_copy(r.init); },
          "initial parameters")
      .def_property_readonly(
          "end_to_end",
          [](const t::TensorRunResult& r) -> py::object {
            if (!r.end_to_end) return py::none();
            return tensor_array(*r.end_to_end, r.spec.shape);
          },
          "the learned tensor (d_1 x ... x d_N) when it has at most 10^6 entries, else None")
      .def_property_readonly(
          "ground_truth",
          [](const t::TensorRunResult& r) -> py::object {
            if (!r.problem.truth) return py::none();
            return tensor_array(r.problem.truth->dense, r.spec.shape);
          },
          "W* when known and dense, else None")
      .def_property_readonly(
          "cp_rank",
          [](const t::TensorRunResult& r) -> py::object {
            if (!r.cp_rank) return py::none();
            py::dict d;
            d["rank"] = r.cp_rank->rank;
            d["errors"] = double_array(r.cp_rank->errors);
            return d;
          },
          "the learned tensor's estimated CP rank (record.rank_tol), or None")
      .def_property_readonly("model",
                             [](const t::TensorRunResult& r) { return t::to_string(r.spec.model); })
      .def_property_readonly("shape", [](const t::TensorRunResult& r) { return r.spec.shape; })
      .def_property_readonly(
          "termination",
          [](const t::TensorRunResult& r) { return dln::to_string(r.summary.termination); })
      .def_property_readonly("final_loss",
                             [](const t::TensorRunResult& r) { return r.summary.final_loss; })
      .def_property_readonly("config_toml",
                             [](const t::TensorRunResult& r) { return r.config.to_toml(); })
      .def(
          "save",
          [](const t::TensorRunResult& r, py::handle dir) {
            const auto d = py::module_::import("os").attr("fspath")(dir).cast<std::string>();
            py::gil_scoped_release release;
            t::write_tensor_run_directory(d, r);
          },
          py::arg("dir"), "Writes the run directory `dln train --out DIR` would write")
      .def("brief_report", [](const t::TensorRunResult& r) { return r.summary.BriefReport(); })
      .def("__repr__", [](const t::TensorRunResult& r) {
        return fmt::format("<dln.TensorResult {} {} iterations={} final_loss={:.6g}>",
                           t::to_string(r.spec.model), dln::to_string(r.summary.termination),
                           r.summary.iterations, r.summary.final_loss);
      });

  m.def(
      "cp_als",
      [](py::handle tensor, Index rank, int restarts, int max_iters, double tol,
         std::uint64_t seed) {
        t::Shape shape;
        const Vec v = tensor_from(tensor, "tensor", shape);
        t::CpAlsOptions o;
        o.restarts = restarts;
        o.max_iters = max_iters;
        o.tol = tol;
        o.seed = seed;
        t::CpFit f;
        {
          py::gil_scoped_release release;
          f = t::cp_als(shape, v, rank, o);
        }
        return py::make_tuple(factors_to_list(std::move(f.factors)), f.rel_error);
      },
      py::arg("tensor"), py::arg("rank"), py::kw_only(), py::arg("restarts") = 5,
      py::arg("max_iters") = 1000, py::arg("tol") = 1e-12, py::arg("seed") = 0,
      "CP decomposition by ALS of a dense tensor (best of `restarts` random starts): "
      "([U_1..U_N], relative error)");
  m.def(
      "cp_als_completion",
      [](py::handle indices, py::handle values, std::vector<Index> shape, Index rank, int restarts,
         int max_iters, double ridge, std::uint64_t seed) {
        t::validate_shape(shape, "shape");
        const auto obs = observations_from(indices, values, shape);
        t::CpAlsOptions o;
        o.restarts = restarts;
        o.max_iters = max_iters;
        o.ridge = ridge;
        o.seed = seed;
        t::CpFit f;
        {
          py::gil_scoped_release release;
          f = t::cp_als_completion(obs, rank, o);
        }
        return py::make_tuple(factors_to_list(std::move(f.factors)), f.rel_error);
      },
      py::arg("indices"), py::arg("values"), py::arg("shape"), py::arg("rank"), py::kw_only(),
      py::arg("restarts") = 5, py::arg("max_iters") = 1000, py::arg("ridge") = 1e-10,
      py::arg("seed") = 0,
      "Masked CP-ALS on observed entries (indices m x N, values m): ([U_1..U_N], relative error "
      "on the observed entries)");
  m.def(
      "estimate_cp_rank",
      [](py::handle tensor, double tol, Index max_rank, int restarts, std::uint64_t seed) {
        t::Shape shape;
        const Vec v = tensor_from(tensor, "tensor", shape);
        if (!(tol >= 0 && tol < 1)) throw py::value_error("tol: must be in [0, 1)");
        if (max_rank < 1) throw py::value_error("max_rank: must be >= 1");
        t::CpAlsOptions o;
        o.max_iters = 500;
        o.tol = 1e-10;
        o.restarts = restarts;
        o.seed = seed;
        t::RankEstimate e;
        {
          py::gil_scoped_release release;
          e = t::estimate_cp_rank(shape, v, tol, max_rank, o);
        }
        py::dict d;
        d["rank"] = e.rank;
        d["errors"] = double_array(e.errors);
        return d;
      },
      py::arg("tensor"), py::kw_only(), py::arg("tol") = 1e-2, py::arg("max_rank") = 10,
      py::arg("restarts") = 3, py::arg("seed") = 0,
      "Smallest R' <= max_rank whose CP-ALS fit has relative error <= tol (max_rank + 1: none)");
  m.def(
      "dense_tensor",
      [](py::handle factors, std::vector<Index> shape, const std::string& model,
         std::vector<Index> widths, int pool) {
        const Factors w = to_factors(factors, "factors");
        const auto s = spec_from(model, std::move(shape), w, widths, pool);
        return tensor_array(t::dense_tensor(s, w), s.shape);
      },
      py::arg("factors"), py::arg("shape"), py::kw_only(), py::arg("model") = "cp",
      py::arg("widths") = std::vector<Index>{}, py::arg("pool") = 2,
      "The full tensor of CP factors (or hierarchical parameters) as a d_1 x ... x d_N array");
  m.def(
      "component_norms",
      [](py::handle factors, std::vector<Index> shape, const std::string& model,
         std::vector<Index> widths, int pool) {
        const Factors w = to_factors(factors, "factors");
        const auto s = spec_from(model, std::move(shape), w, widths, pool);
        py::list out;
        for (auto& v : t::component_norms(s, w)) out.append(to_numpy(std::move(v)));
        return out;
      },
      py::arg("factors"), py::arg("shape"), py::kw_only(), py::arg("model") = "cp",
      py::arg("widths") = std::vector<Index>{}, py::arg("pool") = 2,
      "Component norms per node of level >= 1 (CP: one array of R; hierarchical: local "
      "component norms, root last)");
}

}  // namespace dlnpy
