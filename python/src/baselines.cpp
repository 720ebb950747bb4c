// Baselines: minimum nuclear norm (Eq. 10), SoftImpute, ALS (docs/baselines.md).
#include <fmt/format.h>

#include "common.hpp"
#include "dln/baselines/als.hpp"
#include "dln/baselines/nuclear_norm.hpp"
#include "dln/baselines/soft_impute.hpp"
#include "dln/core/memory.hpp"

namespace dlnpy {

namespace {

struct Observations {
  std::vector<Index> r, c;
  std::vector<double> b;
};
Observations observations(py::handle r, py::handle c, py::handle b) {
  return {to_indices(r, "r"), to_indices(c, "c"), to_doubles(b, "b")};
}

py::dict nuclear_result(dln::NuclearNormResult&& x) {
  py::dict d;
  d["x"] = to_numpy(std::move(x.x));
  d["nuclear_norm"] = x.nuclear_norm;
  d["max_violation"] = x.max_violation;
  d["iterations"] = x.iterations;
  d["seconds"] = x.seconds;
  d["termination"] = x.termination;
  d["dual_bound"] = x.dual_bound;
  d["rel_gap"] = x.rel_gap;
  d["dual"] = to_numpy(std::move(x.dual));
  d["dual_matrix"] = to_numpy(std::move(x.dual_matrix));
  return d;
}

py::dict soft_impute_result(dln::SoftImputeResult&& x) {
  py::dict d;
  d["lambda"] = x.lambda;
  d["iterations"] = x.iterations;
  d["seconds"] = x.seconds;
  d["termination"] = x.termination;
  d["method"] = x.method;
  d["rel_change"] = x.rel_change;
  d["train_rmse"] = x.train_rmse;
  d["nuclear_norm"] = x.nuclear_norm;
  d["objective"] = x.objective;
  d["rank_capped"] = x.rank_capped;
  d["x"] = py::cast(std::move(x.x));
  return d;
}

// The memory guard (docs/reliability.md): `copies` dense rows x cols matrices, before any.
void require_dense(Index rows, Index cols, double copies) {
  dln::memory::Estimate need;
  need.add("rows, cols", fmt::format("{} dense {}x{} matrices", copies, rows, cols),
           8.0 * copies * static_cast<double>(rows) * static_cast<double>(cols));
  dln::memory::require(need, 0, "memory");
}

dln::SoftImputeOptions soft_impute_options(double lambda, double tol, long max_iters,
                                           Index max_rank, const std::string& method,
                                           bool accelerate, bool continuation, std::uint64_t seed) {
  dln::SoftImputeOptions o;
  o.lambda = lambda;
  o.tol = tol;
  o.max_iters = max_iters;
  o.max_rank = max_rank;
  o.method = method;
  o.accelerate = accelerate;
  o.continuation = continuation;
  o.seed = seed;
  return o;
}

}  // namespace

void init_baselines(py::module_& m) {
  const dln::NuclearNormOptions nn;
  m.def(
      "min_nuclear_norm_completion",
      [](Index rows, Index cols, py::handle r, py::handle c, py::handle b, double tol,
         double rel_gap, long max_iters, double rho) {
        require_dense(rows, cols, 8);
        auto o = observations(r, c, b);
        dln::NuclearNormOptions opt{tol, rel_gap, max_iters, rho};
        dln::NuclearNormResult res{};
        {
          py::gil_scoped_release release;
          res = dln::min_nuclear_norm_completion(rows, cols, o.r, o.c, o.b, opt);
        }
        return nuclear_result(std::move(res));
      },
      py::arg("rows"), py::arg("cols"), py::arg("r"), py::arg("c"), py::arg("b"), py::kw_only(),
      py::arg("tol") = nn.tol, py::arg("rel_gap") = nn.rel_gap, py::arg("max_iters") = nn.max_iters,
      py::arg("rho") = nn.rho,
      "Eq. 10: min ||X||_* with X[r_i, c_i] = b_i (or within tol); ADMM with a certified gap");
  m.def(
      "min_nuclear_norm_sensing",
      [](Index rows, Index cols, py::handle a, py::handle b, double tol, double rel_gap,
         long max_iters, double rho) {
        py::array arr = py::module_::import("numpy").attr("asarray")(a);
        Mat am;
        if (arr.ndim() == 3) {
          if (arr.shape(1) != rows || arr.shape(2) != cols)
            throw py::value_error(fmt::format("A: expected shape (m, {}, {})", rows, cols));
          // vec(A_i) column-first: the transpose of each A_i flattened in C order.
          py::array flat = py::module_::import("numpy")
                               .attr("ascontiguousarray")(arr.attr("transpose")(0, 2, 1))
                               .attr("reshape")(arr.shape(0), rows * cols);
          am = to_mat(flat, "A");
        } else {
          am = to_mat(arr, "A", -1, rows * cols);
        }
        Vec bv = to_vec(b, "b", am.rows());
        dln::NuclearNormOptions opt{tol, rel_gap, max_iters, rho};
        dln::NuclearNormResult res{};
        {
          py::gil_scoped_release release;
          res = dln::min_nuclear_norm_sensing(rows, cols, am, bv, opt);
        }
        return nuclear_result(std::move(res));
      },
      py::arg("rows"), py::arg("cols"), py::arg("A"), py::arg("b"), py::kw_only(),
      py::arg("tol") = nn.tol, py::arg("rel_gap") = nn.rel_gap, py::arg("max_iters") = nn.max_iters,
      py::arg("rho") = nn.rho,
      "Eq. 10 for sensing: min ||X||_* with <A_i, X> = b_i; A is m x rows x cols");

  py::class_<dln::LowRank>(m, "LowRank", "X = U diag(d) V^T (SoftImpute / ALS solutions)")
      .def_property_readonly("u", [](const dln::LowRank& x) { return to_numpy_copy(x.u); })
      .def_property_readonly("d", [](const dln::LowRank& x) { return to_numpy_copy(x.d); })
      .def_property_readonly("v", [](const dln::LowRank& x) { return to_numpy_copy(x.v); })
      .def_property_readonly("rows", &dln::LowRank::rows)
      .def_property_readonly("cols", &dln::LowRank::cols)
      .def_property_readonly("rank", &dln::LowRank::rank)
      .def_property_readonly("nuclear_norm", &dln::LowRank::nuclear_norm)
      .def_property_readonly("frobenius_norm", &dln::LowRank::frobenius_norm)
      .def("dense", [](const dln::LowRank& x) { return to_numpy(x.dense()); })
      .def(
          "at",
          [](const dln::LowRank& x, py::handle r, py::handle c) {
            return to_numpy(x.at(to_indices(r, "r"), to_indices(c, "c")));
          },
          py::arg("r"), py::arg("c"));

  const dln::SoftImputeOptions si;
  m.def(
      "soft_impute",
      [](Index rows, Index cols, py::handle r, py::handle c, py::handle b, double lambda,
         double tol, long max_iters, Index max_rank, const std::string& method, bool accelerate,
         bool continuation, std::uint64_t seed, const dln::LowRank* warm_start) {
        if (method == "dense") require_dense(rows, cols, 6);  // X, Z and the SVD work
        auto o = observations(r, c, b);
        auto opt = soft_impute_options(lambda, tol, max_iters, max_rank, method, accelerate,
                                       continuation, seed);
        dln::SoftImputeResult res;
        {
          py::gil_scoped_release release;
          res = dln::soft_impute(rows, cols, o.r, o.c, o.b, opt, warm_start);
        }
        return soft_impute_result(std::move(res));
      },
      py::arg("rows"), py::arg("cols"), py::arg("r"), py::arg("c"), py::arg("b"), py::arg("lam"),
      py::kw_only(), py::arg("tol") = si.tol, py::arg("max_iters") = si.max_iters,
      py::arg("max_rank") = si.max_rank, py::arg("method") = si.method,
      py::arg("accelerate") = si.accelerate, py::arg("continuation") = si.continuation,
      py::arg("seed") = si.seed, py::arg("warm_start") = nullptr,
      "SoftImpute: min 1/2 sum (X - b)^2 + lam ||X||_*; result['x'] is a dln.LowRank");
  m.def(
      "soft_impute_path",
      [](Index rows, Index cols, py::handle r, py::handle c, py::handle b, py::handle lambdas,
         Index points, double min_ratio, double tol, long max_iters, Index max_rank,
         const std::string& method) {
        if (method == "dense") require_dense(rows, cols, 6);
        auto o = observations(r, c, b);
        const dln::SoftImputeOptions defaults;
        auto opt = soft_impute_options(0, tol, max_iters, max_rank, method, defaults.accelerate,
                                       defaults.continuation, defaults.seed);
        dln::SoftImputePathOptions path;
        if (!lambdas.is_none()) path.lambdas = to_doubles(lambdas, "lambdas");
        path.points = points;
        path.min_ratio = min_ratio;
        std::vector<dln::SoftImputeResult> res;
        {
          py::gil_scoped_release release;
          res = dln::soft_impute_path(rows, cols, o.r, o.c, o.b, opt, path);
        }
        py::list out;
        for (auto& x : res) out.append(soft_impute_result(std::move(x)));
        return out;
      },
      py::arg("rows"), py::arg("cols"), py::arg("r"), py::arg("c"), py::arg("b"), py::kw_only(),
      py::arg("lambdas") = py::none(), py::arg("points") = dln::SoftImputePathOptions{}.points,
      py::arg("min_ratio") = dln::SoftImputePathOptions{}.min_ratio, py::arg("tol") = si.tol,
      py::arg("max_iters") = si.max_iters, py::arg("max_rank") = si.max_rank,
      py::arg("method") = si.method, "SoftImpute along a decreasing lambda path (warm starts)");
  m.def(
      "soft_impute_lambda_max",
      [](Index rows, Index cols, py::handle r, py::handle c, py::handle b) {
        auto o = observations(r, c, b);
        return dln::soft_impute_lambda_max(rows, cols, o.r, o.c, o.b);
      },
      py::arg("rows"), py::arg("cols"), py::arg("r"), py::arg("c"), py::arg("b"),
      "||P_Omega(B)||_2, the smallest lambda whose SoftImpute solution is 0");

  const dln::AlsOptions al;
  m.def(
      "als",
      [](Index rows, Index cols, py::handle r, py::handle c, py::handle b, Index rank,
         double lambda, bool weighted_lambda, long max_iters, double tol, double init_scale,
         std::uint64_t seed) {
        auto o = observations(r, c, b);
        dln::AlsOptions opt;
        opt.rank = rank;
        opt.lambda = lambda;
        opt.weighted_lambda = weighted_lambda;
        opt.max_iters = max_iters;
        opt.tol = tol;
        opt.init_scale = init_scale;
        opt.seed = seed;
        dln::AlsResult res;
        {
          py::gil_scoped_release release;
          res = dln::als(rows, cols, o.r, o.c, o.b, opt);
        }
        py::dict d;
        d["iterations"] = res.iterations;
        d["seconds"] = res.seconds;
        d["termination"] = res.termination;
        d["train_rmse"] = res.train_rmse;
        d["objective"] = res.objective;
        d["rel_change"] = res.rel_change;
        d["nuclear_norm"] = res.nuclear_norm;
        d["x"] = py::cast(std::move(res.x));
        return d;
      },
      py::arg("rows"), py::arg("cols"), py::arg("r"), py::arg("c"), py::arg("b"), py::kw_only(),
      py::arg("rank") = al.rank, py::arg("lam") = al.lambda,
      py::arg("weighted_lambda") = al.weighted_lambda, py::arg("max_iters") = al.max_iters,
      py::arg("tol") = al.tol, py::arg("init_scale") = al.init_scale, py::arg("seed") = al.seed,
      "ALS for explicit-rank completion; result['x'] is a dln.LowRank");
}

}  // namespace dlnpy
