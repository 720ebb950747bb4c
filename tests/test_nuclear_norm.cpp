// Minimum nuclear norm baseline (notes Section 4.1, Eq. 10): recovery, feasibility, the duality
// certificate, optimality conditions, and option errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "dln/baselines/nuclear_norm.hpp"
#include "dln/core/rng.hpp"
#include "dln/diagnostics/metrics.hpp"
#include "dln/problems/problem.hpp"
#include "test_support.hpp"

using dln::Index;
using dln::Mat;
using dln::NuclearNormOptions;
using dln::NuclearNormResult;
using dln::Vec;

namespace {

struct Completion {
  Index rows = 0, cols = 0;
  Mat truth;
  std::vector<Index> r, c;
  std::vector<double> b;
};

// m entries of a rank-`rank` ground truth (||W*||_F = sqrt(rows * cols)).
Completion make_completion(Index rows, Index cols, Index rank, Index m, std::uint64_t seed) {
  Completion p;
  p.rows = rows;
  p.cols = cols;
  p.truth = dln::low_rank_ground_truth(rows, cols, rank, seed);
  for (auto [i, j] : dln::sample_entries(rows, cols, m, seed + 1000)) {
    p.r.push_back(i);
    p.c.push_back(j);
    p.b.push_back(p.truth(i, j));
  }
  return p;
}

NuclearNormResult solve(const Completion& p, const NuclearNormOptions& o) {
  return dln::min_nuclear_norm_completion(p.rows, p.cols, p.r, p.c, p.b, o);
}

// The same instance as sensing: A_i = e_r e_c^T, vec column-first.
Mat selection_matrix(const Completion& p) {
  Mat a = Mat::Zero(static_cast<Index>(p.b.size()), p.rows * p.cols);
  for (std::size_t i = 0; i < p.b.size(); ++i)
    a(static_cast<Index>(i), p.r[i] + p.c[i] * p.rows) = 1.0;
  return a;
}

Vec to_vec(const std::vector<double>& v) {
  return Eigen::Map<const Vec>(v.data(), static_cast<Index>(v.size()));
}

double max_abs_residual(const Completion& p, const Mat& x) {
  double worst = 0.0;
  for (std::size_t i = 0; i < p.b.size(); ++i)
    worst = std::max(worst, std::abs(x(p.r[i], p.c[i]) - p.b[i]));
  return worst;
}

// Checks the certificate independently of the solver's bookkeeping: the returned multipliers are
// dual feasible (||sum y_i A_i||_2 <= 1) and their dual objective <b, y> - tol ||y||_1 is the
// reported bound, which lies below the primal value (weak duality).
void expect_valid_certificate(const NuclearNormResult& res, const Vec& b, double tol) {
  ASSERT_EQ(res.dual.size(), b.size());
  const Vec sv = dln::singular_values(res.dual_matrix);
  if (res.dual_bound > 0) {
    EXPECT_LE(sv[0], 1.0 + 1e-12);
  }
  const double value = b.dot(res.dual) - tol * res.dual.lpNorm<1>();
  EXPECT_NEAR(value, res.dual_bound, 1e-9 * std::max(1.0, std::abs(res.dual_bound)));
  EXPECT_LE(res.dual_bound, res.nuclear_norm);
  EXPECT_NEAR(dln::singular_values(res.x).sum(), res.nuclear_norm, 1e-9 * res.nuclear_norm);
  EXPECT_NEAR(res.rel_gap, (res.nuclear_norm - res.dual_bound) / res.nuclear_norm, 1e-15);
}

}  // namespace

// (1) Many observations of a low-rank matrix: the minimizer is the ground truth (exact recovery).
TEST(NuclearNorm, RecoversLowRankGroundTruthFromManyObservations) {
  const Completion p = make_completion(40, 40, 2, 1000, 7);
  const NuclearNormResult res = solve(p, {});
  EXPECT_EQ(res.termination, "converged");
  EXPECT_LE((res.x - p.truth).norm() / p.truth.norm(), 1e-5);
  EXPECT_NEAR(res.nuclear_norm, dln::singular_values(p.truth).sum(), 1e-6 * res.nuclear_norm);
}

// (2) Equality constraints hold to 1e-8 and box constraints to tol + 1e-8, completion and sensing.
TEST(NuclearNorm, SolutionsMeetTheConstraints) {
  const Completion p = make_completion(20, 15, 2, 120, 3);
  NuclearNormOptions o;
  const NuclearNormResult eq = solve(p, o);
  EXPECT_LE(max_abs_residual(p, eq.x), 1e-8);
  EXPECT_LE(eq.max_violation, 1e-8);

  o.tol = 1e-2;
  const NuclearNormResult box = solve(p, o);
  EXPECT_LE(max_abs_residual(p, box.x), o.tol + 1e-8);
  EXPECT_LE(box.max_violation, 1e-8);
  EXPECT_LT(box.nuclear_norm, eq.nuclear_norm);  // a larger feasible set

  dln::Rng rng(11);
  const Mat a = rng.gaussian(60, 20 * 15, 1.0 / 20.0);
  const Vec b = a * p.truth.reshaped();
  for (double tol : {0.0, 1e-2}) {
    o.tol = tol;
    const NuclearNormResult s = dln::min_nuclear_norm_sensing(20, 15, a, b, o);
    EXPECT_EQ(s.termination, "converged");
    const Vec res = a * s.x.reshaped() - b;
    EXPECT_LE(res.lpNorm<Eigen::Infinity>(), tol + 1e-8) << "tol " << tol;
    EXPECT_LE(s.max_violation, 1e-8);
  }
}

// (3) At termination the certified gap is <= rel_gap; the bound never exceeds the primal value,
// also when stopped early.
TEST(NuclearNorm, CertifiedGapAndWeakDuality) {
  const Completion p = make_completion(30, 25, 3, 300, 5);
  for (double tol : {0.0, 1e-3, 5e-2}) {
    NuclearNormOptions o;
    o.tol = tol;
    const NuclearNormResult res = solve(p, o);
    EXPECT_EQ(res.termination, "converged") << "tol " << tol;
    EXPECT_LE(res.rel_gap, o.rel_gap);
    expect_valid_certificate(res, to_vec(p.b), tol);

    // Stopped early: a looser but still valid certificate, bracketing the optimum.
    NuclearNormOptions early = o;
    early.max_iters = 25;
    const NuclearNormResult e = solve(p, early);
    EXPECT_EQ(e.termination, "max_iters");
    EXPECT_EQ(e.iterations, 25);
    expect_valid_certificate(e, to_vec(p.b), tol);
    EXPECT_LE(e.dual_bound, res.nuclear_norm);
    EXPECT_GE(e.nuclear_norm, res.dual_bound);
  }
}

// Sensing with selection matrices is completion: both code paths reach the same optimum, and the
// sensing certificate is valid.
TEST(NuclearNorm, SensingWithSelectionMatricesMatchesCompletion) {
  const Completion p = make_completion(12, 10, 2, 50, 9);
  const Mat a = selection_matrix(p);
  for (double tol : {0.0, 1e-2}) {
    NuclearNormOptions o;
    o.tol = tol;
    const NuclearNormResult c = solve(p, o);
    const NuclearNormResult s = dln::min_nuclear_norm_sensing(p.rows, p.cols, a, to_vec(p.b), o);
    EXPECT_EQ(s.termination, "converged");
    EXPECT_NEAR(s.nuclear_norm, c.nuclear_norm, 2e-7 * c.nuclear_norm) << "tol " << tol;
    expect_valid_certificate(s, to_vec(p.b), tol);
    EXPECT_LE(s.rel_gap, o.rel_gap);
  }
}

// (4) Optimality conditions at a generic equality instance whose minimizer is not the ground
// truth: with X = U S V^T (rank r), the certificate Y lives on the observed entries,
// ||Y||_2 <= 1 and U^T Y V = I (Y is a subgradient of ||.||_* at X).
TEST(NuclearNorm, DualCertificateSatisfiesOptimalityConditions) {
  const Completion p = make_completion(20, 18, 3, 110, 15);
  NuclearNormOptions o;
  o.rel_gap = 1e-9;
  const NuclearNormResult res = solve(p, o);
  ASSERT_EQ(res.termination, "converged");
  EXPECT_GT((res.x - p.truth).norm() / p.truth.norm(), 1e-2);  // not the recovery regime

  // The rank is where the spectrum drops most (here 7: sigma_7 / sigma_1 ~ 3e-2, then ~1e-9).
  Eigen::JacobiSVD<Mat> svd(res.x, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Vec& s = svd.singularValues();
  Index rank = 1;
  for (Index k = 2; k < s.size(); ++k)
    if (s[k - 1] * s[rank] > s[rank - 1] * s[k]) rank = k;
  ASSERT_GT(s[rank - 1], 1e5 * s[rank]);  // a clear drop
  EXPECT_LT(rank, 10);

  const Mat& y = res.dual_matrix;
  Mat off_support = y;
  for (std::size_t i = 0; i < p.b.size(); ++i) off_support(p.r[i], p.c[i]) = 0.0;
  EXPECT_EQ(off_support.norm(), 0.0);
  EXPECT_LE(dln::singular_values(y)[0], 1.0 + 1e-6);
  const Mat uyv = svd.matrixU().leftCols(rank).transpose() * y * svd.matrixV().leftCols(rank);
  EXPECT_LE((uyv - Mat::Identity(rank, rank)).cwiseAbs().maxCoeff(), 1e-4) << uyv;
}

// Every |b_i| <= tol: zero is feasible and optimal.
TEST(NuclearNorm, ZeroIsOptimalWhenFeasible) {
  NuclearNormOptions o;
  o.tol = 0.5;
  const NuclearNormResult res =
      dln::min_nuclear_norm_completion(3, 3, {0, 1}, {0, 2}, {0.25, -0.5}, o);
  EXPECT_EQ(res.termination, "converged");
  EXPECT_EQ(res.nuclear_norm, 0.0);
  EXPECT_EQ(res.x.norm(), 0.0);
  EXPECT_EQ(res.dual_bound, 0.0);

  const NuclearNormResult none = dln::min_nuclear_norm_sensing(2, 3, Mat(0, 6), Vec(0), {});
  EXPECT_EQ(none.nuclear_norm, 0.0);
  EXPECT_EQ(none.x.rows(), 2);
  EXPECT_EQ(none.x.cols(), 3);
}

// The 2 x 2 instance of the notes' Eq. 15 (observed (0,1) = 1, (1,0) = 1, (1,1) = 0): the minimum
// nuclear norm completion is [[t, 1], [1, 0]] with t = 0, nuclear norm 2 (singular values 1, 1).
TEST(NuclearNorm, NotesTwoByTwoExample) {
  const NuclearNormResult res =
      dln::min_nuclear_norm_completion(2, 2, {0, 1, 1}, {1, 0, 1}, {1.0, 1.0, 0.0}, {});
  EXPECT_EQ(res.termination, "converged");
  EXPECT_NEAR(res.nuclear_norm, 2.0, 1e-6);
  EXPECT_LE(res.dual_bound, res.nuclear_norm);
}

// (5) Bad options and data give one-line errors naming the key.
TEST(NuclearNorm, BadOptionsAndDataGiveExactErrors) {
  using dln::testing::expect_error;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto run = [](const NuclearNormOptions& o) {
    return [o] { dln::min_nuclear_norm_completion(2, 2, {0}, {0}, {1.0}, o); };
  };
  NuclearNormOptions o;
  o.tol = -1e-3;
  expect_error(run(o), "nuclear_norm.tol: must be finite and >= 0");
  o.tol = nan;
  expect_error(run(o), "nuclear_norm.tol: must be finite and >= 0");
  o = {};
  o.rel_gap = 0;
  expect_error(run(o), "nuclear_norm.rel_gap: must be in (0, 1)");
  o.rel_gap = 1;
  expect_error(run(o), "nuclear_norm.rel_gap: must be in (0, 1)");
  o = {};
  o.max_iters = 0;
  expect_error(run(o), "nuclear_norm.max_iters: must be >= 1");
  o = {};
  o.rho = -1;
  expect_error(run(o), "nuclear_norm.rho: must be finite and >= 0 (0: automatic)");
  std::string err;
  EXPECT_TRUE(NuclearNormOptions{}.IsValid(&err));
  o.rho = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(o.IsValid(nullptr));  // no message requested

  expect_error(
      [] {
        dln::min_nuclear_norm_completion(2, 2, {0, 0}, {1, 1}, {1.0, 2.0}, {});
      },
      "min_nuclear_norm_completion: duplicate entry (0, 1)");
  expect_error([] { dln::min_nuclear_norm_completion(2, 2, {2}, {0}, {1.0}, {}); },
               "min_nuclear_norm_completion: entry (2, 0) out of range for 2x2");
  expect_error(
      [] {
        dln::min_nuclear_norm_completion(2, 2, {0}, {0, 1}, {1.0}, {});
      },
      "min_nuclear_norm_completion: r, c and b must have the same length, got 1, 2 and 1");
  expect_error([nan] { dln::min_nuclear_norm_completion(2, 2, {1}, {0}, {nan}, {}); },
               "min_nuclear_norm_completion: value at (1, 0) is not finite");
  expect_error([] { dln::min_nuclear_norm_completion(0, 2, {}, {}, {}, {}); },
               "min_nuclear_norm_completion: shape must be positive, got 0x2");

  expect_error([] { dln::min_nuclear_norm_sensing(2, 2, Mat::Ones(1, 3), Vec::Ones(1), {}); },
               "min_nuclear_norm_sensing: A must have rows*cols = 4 columns, got 3");
  expect_error([] { dln::min_nuclear_norm_sensing(2, 2, Mat::Ones(1, 4), Vec::Ones(2), {}); },
               "min_nuclear_norm_sensing: b must have 1 entries (rows of A), got 2");
  expect_error([] { dln::min_nuclear_norm_sensing(2, 2, Mat::Ones(2, 4), Vec::Ones(2), {}); },
               "min_nuclear_norm_sensing: the measurement matrices are linearly dependent (A A^T "
               "is singular)");
  expect_error([] { dln::min_nuclear_norm_sensing(1, 2, Mat::Ones(3, 2), Vec::Ones(3), {}); },
               "min_nuclear_norm_sensing: 3 measurements of a 1x2 matrix cannot be independent");
  Mat zero_row = Mat::Identity(2, 4);
  zero_row.row(1).setZero();
  expect_error([zero_row] { dln::min_nuclear_norm_sensing(2, 2, zero_row, Vec::Ones(2), {}); },
               "min_nuclear_norm_sensing: a measurement matrix A_i is zero");
}
