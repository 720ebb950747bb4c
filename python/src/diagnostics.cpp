// Diagnostics (Def. 1, singular values, effective rank, Def. 3, Theorem 2 / Remark 2, analytic
// SVD (Def. 4, Theorem 3), Lemma 2, Exercise 5) and end-to-end dynamics (P(W), Corollary 1).
#include "common.hpp"
#include "dln/diagnostics/metrics.hpp"
#include "dln/diagnostics/theory.hpp"
#include "dln/dynamics/end_to_end.hpp"

namespace dlnpy {

void init_diagnostics(py::module_& m) {
  m.def(
      "unbalancedness", [](py::handle f) { return dln::unbalancedness(to_factors(f, "factors")); },
      py::arg("factors"), "Def. 1: max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F");
  m.def(
      "singular_values",
      [](py::handle w) { return to_numpy(dln::singular_values(to_mat(w, "W"))); }, py::arg("W"),
      "descending singular values (LAPACK dgesdd)");
  m.def(
      "effective_rank", [](py::handle s) { return dln::effective_rank(to_vec(s, "sigma")); },
      py::arg("sigma"), "exp(H(p)), p_i = sigma_i / sum sigma (Roy & Vetterli 2007)");
  m.def(
      "end_to_end_metrics",
      [](py::handle w, py::handle truth) {
        Mat wm = to_mat(w, "W");
        std::optional<Mat> t;
        if (!truth.is_none()) t = to_mat(truth, "ground_truth", wm.rows(), wm.cols());
        auto e = dln::end_to_end_metrics(wm, t ? &*t : nullptr);
        py::dict d;
        d["fro_norm"] = e.fro_norm;
        d["nuclear_norm"] = e.nuclear_norm;
        d["spectral_norm"] = e.spectral_norm;
        d["effective_rank"] = e.effective_rank;
        if (e.recon_mse) d["recon_mse"] = *e.recon_mse;
        if (e.recon_rel_error) d["recon_rel_error"] = *e.recon_rel_error;
        d["singular_values"] = to_numpy(std::move(e.singular_values));
        return d;
      },
      py::arg("W"), py::arg("ground_truth") = py::none(), "what each record holds, as a dict");

  // Definition 3 / Example 1 / Exercise 3
  m.def(
      "whitened_target",
      [](py::handle x, py::handle y) {
        Mat xm = to_mat(x, "X");
        return to_numpy(dln::whitened_target(xm, to_mat(y, "Y", -1, xm.cols())));
      },
      py::arg("X"), py::arg("Y"), "Lambda_yx = Y X^T / m");
  m.def(
      "is_whitened", [](py::handle x, double tol) { return dln::is_whitened(to_mat(x, "X"), tol); },
      py::arg("X"), py::arg("tol"));
  m.def(
      "deficiency_margin",
      [](py::handle w, py::handle l) {
        Mat lm = to_mat(l, "lambda_yx");
        return dln::deficiency_margin_whitened(to_mat(w, "W", lm.rows(), lm.cols()), lm);
      },
      py::arg("W"), py::arg("lambda_yx"),
      "Example 1: sigma_min(Lambda_yx) - ||W - Lambda_yx||_F (sup of the margins delta)");
  m.def(
      "distance_to_rank_deficient",
      [](py::handle w, double delta) {
        return dln::distance_to_rank_deficient(to_mat(w, "W"), delta);
      },
      py::arg("W"), py::arg("delta"), "Exercise 3: max(0, sigma_min(W) - delta)");
  m.def(
      "closest_with_sigma_min",
      [](py::handle w, double delta) {
        return to_numpy(dln::closest_with_sigma_min(to_mat(w, "W"), delta));
      },
      py::arg("W"), py::arg("delta"), "Exercise 3's minimizer");
  m.def("theorem2_time_bound", &dln::theorem2_time_bound, py::arg("phi0_minus_phistar"),
        py::arg("epsilon"), py::arg("alpha"), py::arg("delta"), py::arg("depth"));
  m.def(
      "remark2_thresholds",
      [](py::handle l, double delta, int depth) {
        auto r = dln::remark2_thresholds(to_mat(l, "lambda_yx"), delta, depth);
        py::dict d;
        d["max_unbalancedness"] = r.max_unbalancedness;
        d["max_step"] = r.max_step;
        d["delta"] = r.delta;
        d["depth"] = r.depth;
        return d;
      },
      py::arg("lambda_yx"), py::arg("delta"), py::arg("depth"));

  // Definition 4 / Theorem 3 / Lemma 2 / Exercise 5
  py::class_<dln::AnalyticSvdTracker>(m, "AnalyticSvdTracker",
                                      "Follows an analytic SVD (Def. 4) of W(t_0), W(t_1), ...")
      .def(py::init<double, double>(), py::arg("cluster_rtol") = 1e-7,
           py::arg("ambiguity_threshold") = 0.5)
      .def(
          "update",
          [](dln::AnalyticSvdTracker& t, double time, py::handle w) {
            t.update(time, to_mat(w, "W"));
          },
          py::arg("t"), py::arg("W"))
      .def_property_readonly(
          "sigma", [](const dln::AnalyticSvdTracker& t) { return to_numpy_copy(t.sigma()); })
      .def_property_readonly("u",
                             [](const dln::AnalyticSvdTracker& t) { return to_numpy_copy(t.u()); })
      .def_property_readonly("v",
                             [](const dln::AnalyticSvdTracker& t) { return to_numpy_copy(t.v()); })
      .def_property_readonly("times", &dln::AnalyticSvdTracker::times)
      .def_property_readonly("sigma_history",
                             [](const dln::AnalyticSvdTracker& t) {
                               Index k = 0;
                               for (const auto& s : t.sigma_history()) k = std::max(k, s.size());
                               Mat out = Mat::Zero(static_cast<Index>(t.sigma_history().size()), k);
                               for (std::size_t i = 0; i < t.sigma_history().size(); ++i) {
                                 const auto& s = t.sigma_history()[i];
                                 out.row(static_cast<Index>(i)).head(s.size()) = s.transpose();
                               }
                               return to_numpy(std::move(out));
                             })
      .def_property_readonly("ambiguous_matches", &dln::AnalyticSvdTracker::ambiguous_matches);
  m.def(
      "theorem3_rates",
      [](py::handle g, py::handle u, py::handle v, py::handle sigma, int depth) {
        Mat gm = to_mat(g, "grad_l");
        Vec s = to_vec(sigma, "sigma");
        return to_numpy(dln::theorem3_rates(gm, to_mat(u, "u", gm.rows(), s.size()),
                                            to_mat(v, "v", gm.cols(), s.size()), s, depth));
      },
      py::arg("grad_l"), py::arg("u"), py::arg("v"), py::arg("sigma"), py::arg("depth"),
      "Theorem 3: d sigma_r/dt = (sigma_r^2)^{1-1/n} n <-grad l, u_r v_r^T>");
  m.def(
      "determinant_sign", [](py::handle w) { return dln::determinant_sign(to_mat(w, "W")); },
      py::arg("W"), "Lemma 2: sign of det W (0 when singular to rounding)");
  m.def("exercise5_sigma", &dln::exercise5_sigma, py::arg("eps"), py::arg("c"), py::arg("t"));
  m.def("exercise5_ratio", &dln::exercise5_ratio, py::arg("c_r"), py::arg("c_rp"), py::arg("t"));

  // End-to-end dynamics (Theorem 1, Corollary 1, Claim 1)
  m.def(
      "full_svd",
      [](py::handle w) {
        auto s = dln::full_svd(to_mat(w, "W"));
        py::dict d;
        d["u"] = to_numpy(std::move(s.u));
        d["v"] = to_numpy(std::move(s.v));
        d["sigma_n"] = to_numpy(std::move(s.sigma_n));
        d["sigma_0"] = to_numpy(std::move(s.sigma_0));
        return d;
      },
      py::arg("W"));
  m.def(
      "preconditioner_eigenvalues",
      [](py::handle sn, py::handle s0, int depth) {
        return to_numpy(
            dln::preconditioner_eigenvalues(to_vec(sn, "sigma_n"), to_vec(s0, "sigma_0"), depth));
      },
      py::arg("sigma_n"), py::arg("sigma_0"), py::arg("depth"), "Corollary 1: Lambda(r, r')");
  m.def(
      "apply_preconditioner",
      [](py::handle w, py::handle g, int depth) {
        Mat wm = to_mat(w, "W");
        Mat gm = to_mat(g, "G", wm.rows(), wm.cols());
        return to_numpy(dln::apply_preconditioner(wm, gm, depth));
      },
      py::arg("W"), py::arg("G"), py::arg("depth"), "unvec(P(W) vec(G)), matrix-free (Eq. 3)");
  m.def(
      "materialize_preconditioner",
      [](py::handle w, int depth) {
        return to_numpy(dln::materialize_preconditioner(to_mat(w, "W"), depth));
      },
      py::arg("W"), py::arg("depth"), "P(W) as a (d_0 d_n) x (d_0 d_n) matrix (vec column-first)");
  m.def(
      "preconditioner_spectrum",
      [](py::handle w, int depth) {
        auto s = dln::preconditioner_spectrum(to_mat(w, "W"), depth);
        return py::make_tuple(to_numpy(std::move(s.eigenvalues)),
                              to_numpy(std::move(s.eigenvectors)));
      },
      py::arg("W"), py::arg("depth"), "(eigenvalues, eigenvectors) of P(W), Corollary 1");
  m.def(
      "end_to_end_velocity",
      [](py::handle w, const dln::Loss& loss, int depth) {
        return to_numpy(
            dln::end_to_end_velocity(to_mat(w, "W", loss.rows(), loss.cols()), loss, depth));
      },
      py::arg("W"), py::arg("loss"), py::arg("depth"), "Theorem 1 (Eq. 3): -P(W) grad l(W)");
  m.def(
      "end_to_end_discrete_step",
      [](py::handle w, py::handle g, int depth, double zeta) {
        Mat wm = to_mat(w, "W");
        return to_numpy(dln::end_to_end_discrete_step(wm, to_mat(g, "grad", wm.rows(), wm.cols()),
                                                      depth, zeta));
      },
      py::arg("W"), py::arg("grad"), py::arg("depth"), py::arg("zeta"),
      "Claim 1: vec(W) - zeta P(W) vec(grad)");
}

}  // namespace dlnpy
