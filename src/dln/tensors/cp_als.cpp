#include "dln/tensors/cp_als.hpp"

#include <fmt/format.h>

#include <cmath>

#include "dln/core/rng.hpp"
#include "dln/tensors/network.hpp"

namespace dln::tensors {

bool CpAlsOptions::IsValid(std::string* error) const {
  auto fail = [&](const char* m) {
    if (error) *error = m;
    return false;
  };
  if (max_iters < 1) return fail("cp_als.max_iters: must be >= 1");
  if (!(tol >= 0)) return fail("cp_als.tol: must be >= 0");
  if (restarts < 1) return fail("cp_als.restarts: must be >= 1");
  if (!(ridge >= 0)) return fail("cp_als.ridge: must be >= 0");
  return true;
}

Vec cp_dense(const Shape& shape, const Factors& u) {
  TensorNetworkSpec spec;
  spec.shape = shape;
  spec.components = u.at(0).cols();
  return dense_tensor(spec, u);
}

namespace {

void check(const CpAlsOptions& o, Index rank) {
  std::string err;
  if (!o.IsValid(&err)) throw Error(err);
  if (rank < 1) throw Error(fmt::format("cp_als: rank must be >= 1, got {}", rank));
}

// M_k = T_(k) (Khatri-Rao of the other factors), d_k x R, over the listed entries with values.
// ut[l] = U_l^T (R x d_l).
void mttkrp(const Entries& entries, const double* values, const Factors& ut, int k, Mat& m,
            Vec& z) {
  const int n = entries.order();
  m.setZero();
  for (Index e = 0; e < entries.size(); ++e) {
    const Index* i = entries.at(e);
    z.setConstant(values[e]);
    for (int l = 0; l < n; ++l)
      if (l != k) z.array() *= ut[static_cast<std::size_t>(l)].col(i[l]).array();
    m.col(i[k]) += z;
  }
}

Factors random_start(const Shape& shape, Index rank, Rng& rng) {
  Factors u;
  for (Index d : shape) u.push_back(rng.gaussian(d, rank, 1.0));
  return u;
}

// Relative error over the entries; ut[l] = U_l^T.
double fit_error(const Entries& entries, const double* values, const Factors& ut, Vec& z) {
  const int n = entries.order();
  double diff = 0, norm = 0;
  for (Index e = 0; e < entries.size(); ++e) {
    const Index* i = entries.at(e);
    z = ut[0].col(i[0]);
    for (int l = 1; l < n; ++l) z.array() *= ut[static_cast<std::size_t>(l)].col(i[l]).array();
    const double r = z.sum() - values[e];
    diff += r * r;
    norm += values[e] * values[e];
  }
  return norm > 0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// One start of ALS over `entries`; dense: every entry observed (normal equations from Gram
// matrices), else per-row normal equations.
CpFit als_start(const Entries& entries, const double* values, Factors u, const CpAlsOptions& o,
                bool dense) {
  const int n = entries.order();
  const Index rank = u[0].cols();
  Factors ut(u.size());
  for (int l = 0; l < n; ++l)
    ut[static_cast<std::size_t>(l)] = u[static_cast<std::size_t>(l)].transpose();
  Mat m, gram(rank, rank);
  Vec z(rank);
  double last = INFINITY;
  CpFit fit;
  for (int it = 1; it <= o.max_iters; ++it) {
    for (int k = 0; k < n; ++k) {
      const auto ks = static_cast<std::size_t>(k);
      const Index dk = entries.shape[ks];
      if (dense) {
        m.resize(rank, dk);
        mttkrp(entries, values, ut, k, m, z);
        gram.setOnes();
        for (int l = 0; l < n; ++l)
          if (l != k)
            gram.array() *=
                (ut[static_cast<std::size_t>(l)] * ut[static_cast<std::size_t>(l)].transpose())
                    .array();
        ut[ks] = gram.completeOrthogonalDecomposition().solve(m);
      } else {
        std::vector<Mat> g(static_cast<std::size_t>(dk), Mat::Zero(rank, rank));
        Mat h = Mat::Zero(rank, dk);
        for (Index e = 0; e < entries.size(); ++e) {
          const Index* i = entries.at(e);
          z.setOnes();
          for (int l = 0; l < n; ++l)
            if (l != k) z.array() *= ut[static_cast<std::size_t>(l)].col(i[l]).array();
          g[static_cast<std::size_t>(i[k])].selfadjointView<Eigen::Lower>().rankUpdate(z);
          h.col(i[k]) += values[e] * z;
        }
        for (Index r = 0; r < dk; ++r) {
          Mat a = g[static_cast<std::size_t>(r)].selfadjointView<Eigen::Lower>();
          a.diagonal().array() += o.ridge * std::max(1.0, a.diagonal().maxCoeff());
          ut[ks].col(r) = a.ldlt().solve(h.col(r));
        }
      }
    }
    const double err = fit_error(entries, values, ut, z);
    fit.iterations = it;
    if (!std::isfinite(err)) break;
    fit.rel_error = err;
    if (std::abs(last - err) <= o.tol * std::max(1.0, err) || err < 1e-14) break;
    last = err;
  }
  for (int l = 0; l < n; ++l)
    u[static_cast<std::size_t>(l)] = ut[static_cast<std::size_t>(l)].transpose();
  fit.factors = u;
  return fit;
}

CpFit best_of(const Entries& entries, const std::vector<double>& values, Index rank,
              const CpAlsOptions& o, bool dense) {
  check(o, rank);
  Rng rng(o.seed);
  CpFit best;
  best.rel_error = INFINITY;
  for (int s = 0; s < o.restarts; ++s) {
    CpFit f = als_start(entries, values.data(), random_start(entries.shape, rank, rng), o, dense);
    if (f.rel_error < best.rel_error || best.factors.empty()) best = std::move(f);
  }
  return best;
}

}  // namespace

CpFit cp_als(const Shape& shape, const Vec& dense, Index rank, const CpAlsOptions& options) {
  validate_shape(shape, "cp_als: shape");
  if (static_cast<double>(dense.size()) != entry_count(shape))
    throw Error("cp_als: the tensor's size does not match its shape");
  return best_of(all_entries(shape), std::vector<double>(dense.data(), dense.data() + dense.size()),
                 rank, options, true);
}

CpFit cp_als_completion(const Observations& obs, Index rank, const CpAlsOptions& options) {
  return best_of(obs.entries, obs.values, rank, options, false);
}

RankEstimate estimate_cp_rank(const Shape& shape, const Vec& dense, double tol, Index max_rank,
                              const CpAlsOptions& options) {
  RankEstimate est;
  if (dense.norm() == 0) return est;
  const Entries all = all_entries(shape);
  const std::vector<double> values(dense.data(), dense.data() + dense.size());
  for (Index r = 1; r <= max_rank; ++r) {
    const CpFit f = best_of(all, values, r, options, true);
    est.errors.push_back(f.rel_error);
    if (f.rel_error <= tol) {
      est.rank = r;
      return est;
    }
  }
  est.rank = max_rank + 1;
  return est;
}

}  // namespace dln::tensors
