#include "dln/diagnostics/metrics.hpp"

#include <lapacke.h>

#include <algorithm>
#include <cmath>

#include "dln/core/blas.hpp"

namespace dln {

double unbalancedness(const Factors& w) {
  double worst = 0.0;
  Mat d;
  for (std::size_t j = 0; j + 1 < w.size(); ++j) {
    d.resize(w[j].rows(), w[j].rows());
    blas::gemm(w[j + 1], true, w[j + 1], false, d);     // W_{j+1}^T W_{j+1}
    blas::gemm(w[j], false, w[j], true, d, -1.0, 1.0);  // - W_j W_j^T
    worst = std::max(worst, d.norm());
  }
  return worst;
}

Vec singular_values(const Mat& m) {
  const Index k = std::min(m.rows(), m.cols());
  Vec s(k);
  if (k == 0) return s;
  Mat a = m;  // dgesdd overwrites its input
  Vec u_unused(1), vt_unused(1);
  const lapack_int info =
      LAPACKE_dgesdd(LAPACK_COL_MAJOR, 'N', static_cast<lapack_int>(a.rows()),
                     static_cast<lapack_int>(a.cols()), a.data(), static_cast<lapack_int>(a.rows()),
                     s.data(), u_unused.data(), 1, vt_unused.data(), 1);
  if (info != 0) s.setConstant(std::numeric_limits<double>::quiet_NaN());
  return s;
}

double effective_rank(const Vec& sigma) {
  const double total = sigma.sum();
  if (!(total > 0)) return 0.0;
  double h = 0.0;
  for (Index i = 0; i < sigma.size(); ++i) {
    const double p = sigma[i] / total;
    if (p > 0) h -= p * std::log(p);
  }
  return std::exp(h);
}

EndToEndMetrics end_to_end_metrics(const Mat& w, const Mat* ground_truth) {
  EndToEndMetrics out;
  out.singular_values = singular_values(w);
  out.fro_norm = w.norm();
  out.nuclear_norm = out.singular_values.sum();
  out.spectral_norm = out.singular_values.size() ? out.singular_values[0] : 0.0;
  out.effective_rank = effective_rank(out.singular_values);
  if (ground_truth) {
    const double diff = (w - *ground_truth).squaredNorm();
    out.recon_mse = diff / static_cast<double>(w.size());
    const double ref = ground_truth->norm();
    out.recon_rel_error = ref > 0 ? std::sqrt(diff) / ref : std::sqrt(diff);
  }
  return out;
}

}  // namespace dln
