// SoftImpute and ALS (src/dln/baselines): recovery of low-rank matrices, the SoftImpute
// optimality conditions, the scalable solver against the exact one, the warm-started path,
// ALS = SoftImpute at the same lambda, exact error messages, and `dln baseline` end to end.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/SVD>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>

#include "dln/baselines/als.hpp"
#include "dln/baselines/low_rank.hpp"
#include "dln/baselines/soft_impute.hpp"
#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"
#include "test_support.hpp"

namespace {

using dln::Index;
using dln::Mat;
using dln::Vec;
using dln::testing::expect_error;

// X* = U V^T (Gaussian factors, entries of variance 1) observed on a uniformly random subset.
struct Instance {
  Index rows, cols;
  Mat truth;
  std::vector<Index> r, c;
  std::vector<double> b;
};

Instance make_instance(Index rows, Index cols, Index rank, double fraction, std::uint64_t seed) {
  dln::Rng rng(seed);
  Instance p{rows, cols, {}, {}, {}, {}};
  const double s = std::pow(double(rank), -0.25);
  p.truth = rng.gaussian(rows, rank, s) * rng.gaussian(cols, rank, s).transpose();
  std::vector<Index> lin(static_cast<std::size_t>(rows * cols));
  std::iota(lin.begin(), lin.end(), Index{0});
  for (std::size_t i = lin.size() - 1; i > 0; --i)  // Fisher-Yates with the portable Rng
    std::swap(lin[i], lin[rng.below(i + 1)]);
  const auto m = static_cast<std::size_t>(std::llround(fraction * double(rows * cols)));
  for (std::size_t i = 0; i < m; ++i) {
    p.r.push_back(lin[i] % rows);
    p.c.push_back(lin[i] / rows);
    p.b.push_back(p.truth(p.r.back(), p.c.back()));
  }
  return p;
}

double rel_error(const Mat& x, const Mat& truth) { return (x - truth).norm() / truth.norm(); }

// G = P_Omega(B - X) as a dense matrix.
Mat residual_matrix(const Instance& p, const Mat& x) {
  Mat g = Mat::Zero(p.rows, p.cols);
  for (std::size_t i = 0; i < p.b.size(); ++i) g(p.r[i], p.c[i]) = p.b[i] - x(p.r[i], p.c[i]);
  return g;
}

// ---------------------------------------------------------------------------------------------
// LowRank

TEST(BaselineLowRank, FromFactorsIsTheSvdOfTheProduct) {
  dln::Rng rng(3);
  const Mat a = rng.gaussian(9, 4, 1.0), b = rng.gaussian(7, 4, 1.0);
  const dln::LowRank x = dln::LowRank::from_factors(a, b);
  ASSERT_EQ(x.rank(), 4);
  EXPECT_LT((x.dense() - a * b.transpose()).norm(), 1e-12 * (a * b.transpose()).norm());
  EXPECT_LT((x.u.transpose() * x.u - Mat::Identity(4, 4)).norm(), 1e-13);
  EXPECT_LT((x.v.transpose() * x.v - Mat::Identity(4, 4)).norm(), 1e-13);
  const Eigen::JacobiSVD<Mat> svd(a * b.transpose());
  EXPECT_LT((x.d - svd.singularValues().head(4)).norm(), 1e-12 * x.d[0]);
  EXPECT_NEAR(x.nuclear_norm(), svd.singularValues().sum(), 1e-12 * x.d[0]);
  EXPECT_NEAR(x.at(5, 6), (a * b.transpose())(5, 6), 1e-12);
  const Vec some = x.at({0, 8}, {6, 0});
  EXPECT_NEAR(some[1], (a * b.transpose())(8, 0), 1e-12);
  // A rank-deficient product drops the null directions.
  Mat a2 = a;
  a2.col(3) = a2.col(0);
  Mat b2 = b;
  b2.col(3).setZero();
  EXPECT_EQ(dln::LowRank::from_factors(a2, b2).rank(), 3);
  EXPECT_EQ(dln::LowRank::zero(3, 2).dense(), Mat::Zero(3, 2));
}

TEST(BaselineLowRank, FrobeniusDistanceIsAccurateForNearbyMatrices) {
  dln::Rng rng(4);
  const auto x = dln::LowRank::from_factors(rng.gaussian(30, 3, 1.0), rng.gaussian(20, 3, 1.0));
  dln::LowRank y = x;
  y.d[1] += 1e-11 * x.d[0];  // ||X - Y||_F = 1e-11 ||X||_2: below sqrt(eps) ||X||
  const double exact = 1e-11 * x.d[0];
  EXPECT_NEAR(dln::frobenius_distance(x, y), exact, 1e-3 * exact);
  // Different factors of nearby matrices: Y's factors rotated within its column space.
  const Eigen::JacobiSVD<Mat> rot(rng.gaussian(3, 3, 1.0), Eigen::ComputeFullU);
  dln::LowRank z;
  z.u = y.u * rot.matrixU();
  z.d = Vec::Ones(3);
  z.v = y.v * y.d.asDiagonal() * rot.matrixU();
  EXPECT_NEAR(dln::frobenius_distance(x, z), exact, 1e-2 * exact);
  EXPECT_NEAR(dln::frobenius_distance(x, dln::LowRank::zero(30, 20)), x.d.norm(), 1e-12 * x.d[0]);
  expect_error([&] { dln::frobenius_distance(x, dln::LowRank::zero(3, 3)); },
               "frobenius_distance: shapes differ, 30x20 and 3x3");
}

// ---------------------------------------------------------------------------------------------
// SoftImpute

// Exact (dense SVD) solution at lambda: G = P_Omega(B - X) = lambda (U V^T + W), U^T W = 0,
// W V = 0, ||W||_2 <= 1, checked densely, and the library's own optimality measure agrees.
TEST(SoftImpute, SolutionSatisfiesTheSubgradientOptimalityCondition) {
  const Instance p = make_instance(20, 15, 2, 0.6, 1);
  const double lmax = dln::soft_impute_lambda_max(p.rows, p.cols, p.r, p.c, p.b);
  const Mat pb = residual_matrix(p, Mat::Zero(p.rows, p.cols));
  EXPECT_NEAR(lmax, Eigen::JacobiSVD<Mat>(pb).singularValues()[0], 1e-9 * lmax);
  for (double ratio : {0.5, 0.1, 0.01}) {
    dln::SoftImputeOptions o;
    o.lambda = ratio * lmax;
    o.method = "dense";
    o.tol = 1e-12;
    const auto res = dln::soft_impute(p.rows, p.cols, p.r, p.c, p.b, o);
    ASSERT_EQ(res.termination, "converged") << ratio;
    ASSERT_GT(res.x.rank(), 0);
    const Mat g = residual_matrix(p, res.x.dense());
    const Mat& u = res.x.u;
    const Mat& v = res.x.v;
    const Mat w = g / o.lambda - u * v.transpose();
    EXPECT_LT((u.transpose() * w).norm(), 1e-8) << ratio;
    EXPECT_LT((w * v).norm(), 1e-8) << ratio;
    EXPECT_LE(Eigen::JacobiSVD<Mat>(w).singularValues()[0], 1.0 + 1e-8) << ratio;
    const auto opt = dln::soft_impute_optimality(p.rows, p.cols, p.r, p.c, p.b, o.lambda, res.x);
    EXPECT_LT(opt.stationarity, 1e-8);
    EXPECT_LE(opt.spectral_ratio, 1.0 + 1e-8);
    EXPECT_NEAR(opt.spectral_ratio, Eigen::JacobiSVD<Mat>(w).singularValues()[0], 1e-6);
    // The reported quantities are those of the returned X.
    EXPECT_NEAR(res.nuclear_norm, Eigen::JacobiSVD<Mat>(res.x.dense()).singularValues().sum(),
                1e-10 * res.nuclear_norm);
    EXPECT_NEAR(res.objective, 0.5 * g.squaredNorm() + o.lambda * res.nuclear_norm,
                1e-10 * res.objective);
  }
  // A non-optimal X (the truth, at lambda > 0) is reported as such.
  dln::SoftImputeOptions o;
  const auto truth = dln::LowRank::from_factors(p.truth, Mat::Identity(p.cols, p.cols));
  const auto bad = dln::soft_impute_optimality(p.rows, p.cols, p.r, p.c, p.b, 0.1 * lmax, truth);
  EXPECT_GT(bad.stationarity, 0.1);
}

// The scalable solver (sparse + low rank, subspace iteration) converges to the exact solver's
// point entry by entry, and meets the optimality conditions itself.
TEST(SoftImpute, LowRankSolverAgreesWithTheDenseSolver) {
  const Instance p = make_instance(150, 120, 4, 0.3, 2);
  const double lmax = dln::soft_impute_lambda_max(p.rows, p.cols, p.r, p.c, p.b);
  for (double ratio : {0.2, 0.02}) {
    dln::SoftImputeOptions o;
    o.lambda = ratio * lmax;
    o.tol = 1e-11;
    o.method = "dense";
    const auto dense = dln::soft_impute(p.rows, p.cols, p.r, p.c, p.b, o);
    o.method = "low_rank";
    const auto sparse = dln::soft_impute(p.rows, p.cols, p.r, p.c, p.b, o);
    ASSERT_EQ(dense.termination, "converged");
    ASSERT_EQ(sparse.termination, "converged");
    EXPECT_EQ(sparse.method, "low_rank");
    EXPECT_EQ(sparse.x.rank(), dense.x.rank()) << ratio;
    EXPECT_LT(rel_error(sparse.x.dense(), dense.x.dense()), 1e-8) << ratio;
    EXPECT_NEAR(sparse.objective, dense.objective, 1e-10 * dense.objective);
    const auto opt = dln::soft_impute_optimality(p.rows, p.cols, p.r, p.c, p.b, o.lambda, sparse.x);
    EXPECT_LT(opt.stationarity, 1e-7);
    EXPECT_LE(opt.spectral_ratio, 1.0 + 1e-7);
  }
}

// Recovery: with exact low-rank data, X_lambda -> X* as lambda -> 0 (exact recovery regime:
// 50% of a 60 x 50 rank-3 matrix). The bias is first order in lambda: with every entry observed
// X_lambda = S_lambda(X*) and ||X_lambda - X*||_F = sqrt(3) lambda; with half observed it is a
// few times that, so at lambda = 1e-5 lambda_max (~2e-4 here) the relative error is ~1e-5
//; we require 1e-4, and a path whose error falls with lambda.
TEST(SoftImpute, PathRecoversALowRankMatrix) {
  const Instance p = make_instance(60, 50, 3, 0.5, 3);
  dln::SoftImputeOptions o;
  o.tol = 1e-10;
  dln::SoftImputePathOptions path;
  path.points = 6;
  path.min_ratio = 1e-5;
  const auto res = dln::soft_impute_path(p.rows, p.cols, p.r, p.c, p.b, o, path);
  ASSERT_EQ(res.size(), 6u);
  for (std::size_t i = 1; i < res.size(); ++i)
    EXPECT_LT(rel_error(res[i].x.dense(), p.truth), rel_error(res[i - 1].x.dense(), p.truth));
  EXPECT_LT(rel_error(res.back().x.dense(), p.truth), 1e-4);
  EXPECT_EQ(res.back().x.rank(), 3);
  EXPECT_EQ(res.back().termination, "converged");
}

// Along a warm-started path (decreasing lambda) the nuclear norm of the solution increases and
// the training error decreases (both are theorems for penalized problems); the rank increases on
// this instance. lambda_max gives X = 0.
TEST(SoftImpute, WarmStartedPathIsMonotone) {
  const Instance p = make_instance(300, 200, 5, 0.2, 4);
  dln::SoftImputeOptions o;
  o.tol = 1e-8;
  o.method = "low_rank";
  dln::SoftImputePathOptions path;
  path.points = 8;
  path.min_ratio = 1e-3;
  const auto lambdas = dln::soft_impute_lambdas(p.rows, p.cols, p.r, p.c, p.b, path);
  const auto res = dln::soft_impute_path(p.rows, p.cols, p.r, p.c, p.b, o, path);
  ASSERT_EQ(res.size(), 8u);
  EXPECT_EQ(res[0].x.rank(), 0);
  EXPECT_DOUBLE_EQ(res[0].lambda, lambdas[0]);
  EXPECT_NEAR(res.back().lambda, 1e-3 * lambdas[0], 1e-12 * lambdas[0]);
  long warm_iters = 0;
  for (std::size_t i = 1; i < res.size(); ++i) {
    EXPECT_LT(res[i].lambda, res[i - 1].lambda);
    EXPECT_GE(res[i].nuclear_norm, res[i - 1].nuclear_norm * (1 - 1e-9)) << i;
    EXPECT_LE(res[i].train_rmse, res[i - 1].train_rmse * (1 + 1e-9)) << i;
    EXPECT_GE(res[i].x.rank(), res[i - 1].x.rank()) << i;
    EXPECT_EQ(res[i].termination, "converged");
    warm_iters += res[i].iterations;
  }
  // Warm starts pay: the last lambda alone from zero takes more than a third of the whole path.
  o.lambda = res.back().lambda;
  const auto cold = dln::soft_impute(p.rows, p.cols, p.r, p.c, p.b, o);
  EXPECT_GT(cold.iterations, res.back().iterations);
  EXPECT_LT(rel_error(cold.x.dense(), res.back().x.dense()), 1e-5);
  (void)warm_iters;
}

TEST(SoftImpute, MaxRankCapsTheRank) {
  const Instance p = make_instance(80, 70, 6, 0.5, 5);
  dln::SoftImputeOptions o;
  o.lambda = 1e-3 * dln::soft_impute_lambda_max(p.rows, p.cols, p.r, p.c, p.b);
  o.max_rank = 3;
  for (const char* method : {"dense", "low_rank"}) {
    o.method = method;
    const auto res = dln::soft_impute(p.rows, p.cols, p.r, p.c, p.b, o);
    EXPECT_EQ(res.x.rank(), 3) << method;
    EXPECT_TRUE(res.rank_capped) << method;
  }
}

TEST(SoftImpute, BadInputGivesExactErrors) {
  const std::vector<Index> r{0, 1, 2}, c{0, 1, 2};
  const std::vector<double> b{1.0, 2.0, 3.0};
  dln::SoftImputeOptions o;
  o.lambda = -1;
  expect_error([&] { dln::soft_impute(3, 3, r, c, b, o); },
               "soft_impute.lambda: must be finite and >= 0, got -1");
  o = {};
  o.method = "svd";
  expect_error([&] { dln::soft_impute(3, 3, r, c, b, o); },
               "soft_impute.method: must be \"auto\", \"dense\" or \"low_rank\", got \"svd\"");
  o = {};
  o.max_iters = 0;
  expect_error([&] { dln::soft_impute(3, 3, r, c, b, o); },
               "soft_impute.max_iters: must be >= 1, got 0");
  o = {};
  expect_error([&] { dln::soft_impute(3, 2, r, c, b, o); },
               "soft_impute: entry (2, 2) out of range for 3x2");
  expect_error(
      [&] {
        dln::soft_impute(3, 3, {0, 1, 0}, {0, 1, 0}, b, o);
      },
      "soft_impute: duplicate entry (0, 0)");
  expect_error(
      [&] {
        dln::soft_impute(3, 3, r, c, {1.0, NAN, 3.0}, o);
      },
      "soft_impute: value at (1, 1) is not finite");
  expect_error(
      [&] {
        dln::soft_impute(3, 3, r, c, {1.0, 2.0}, o);
      },
      "soft_impute: r, c and b must have the same length, got 3, 3 and 2");
  expect_error([&] { dln::soft_impute(0, 3, {}, {}, {}, o); },
               "soft_impute: shape must be positive, got 0x3");
  expect_error([&] { dln::soft_impute(3, 3, {}, {}, {}, o); }, "soft_impute: no observations");
  const auto warm = dln::LowRank::zero(2, 2);
  expect_error([&] { dln::soft_impute(3, 3, r, c, b, o, &warm); },
               "soft_impute: warm start is 2x2, expected 3x3");
  dln::SoftImputePathOptions path;
  path.min_ratio = 0;
  expect_error([&] { dln::soft_impute_path(3, 3, r, c, b, o, path); },
               "soft_impute.path.min_ratio: must be in (0, 1], got 0");
  path = {};
  path.lambdas = {1.0, 2.0};
  expect_error([&] { dln::soft_impute_path(3, 3, r, c, b, o, path); },
               "soft_impute.path.lambdas[1]: must be strictly decreasing, got 2 after 1");
}

// ---------------------------------------------------------------------------------------------
// ALS

TEST(Als, RecoversALowRankMatrix) {
  const Instance p = make_instance(60, 50, 3, 0.5, 3);
  dln::AlsOptions o;
  o.rank = 3;
  o.lambda = 1e-8;
  o.tol = 1e-14;
  o.max_iters = 2000;
  const auto res = dln::als(p.rows, p.cols, p.r, p.c, p.b, o);
  EXPECT_LT(rel_error(res.x.dense(), p.truth), 1e-3);
  EXPECT_LT(res.train_rmse, 1e-4);
  EXPECT_EQ(res.x.rank(), 3);
  // Weighted lambda (ALS-WR) recovers it too.
  o.weighted_lambda = true;
  EXPECT_LT(rel_error(dln::als(p.rows, p.cols, p.r, p.c, p.b, o).x.dense(), p.truth), 1e-3);
}

// min ||U||^2 + ||V||^2 over U V^T = X is 2 ||X||_*, so ALS(lambda) with enough rank reaches the
// SoftImpute(lambda) optimum.
TEST(Als, MatchesSoftImputeAtTheSameLambda) {
  const Instance p = make_instance(40, 30, 3, 0.5, 6);
  dln::SoftImputeOptions so;
  so.lambda = 0.05 * dln::soft_impute_lambda_max(p.rows, p.cols, p.r, p.c, p.b);
  so.tol = 1e-12;
  const auto soft = dln::soft_impute(p.rows, p.cols, p.r, p.c, p.b, so);
  dln::AlsOptions ao;
  ao.rank = soft.x.rank() + 2;
  ao.lambda = so.lambda;
  ao.tol = 1e-15;
  ao.max_iters = 20000;
  const auto als = dln::als(p.rows, p.cols, p.r, p.c, p.b, ao);
  EXPECT_LT(rel_error(als.x.dense(), soft.x.dense()), 1e-4);
  // f_ALS = 2 * objective_SoftImpute at the common optimum.
  EXPECT_NEAR(als.objective, 2 * soft.objective, 1e-6 * als.objective);
}

TEST(Als, ObjectiveDecreasesAndSeedsReproduce) {
  const Instance p = make_instance(50, 40, 4, 0.3, 7);
  dln::AlsOptions o;
  o.rank = 4;
  o.lambda = 0.1;
  o.tol = 0;
  double prev = INFINITY;
  for (long iters : {1, 2, 5, 20}) {
    o.max_iters = iters;
    const auto res = dln::als(p.rows, p.cols, p.r, p.c, p.b, o);
    EXPECT_EQ(res.iterations, iters);
    EXPECT_EQ(res.termination, "max_iters");
    EXPECT_LE(res.objective, prev);
    prev = res.objective;
  }
  o.max_iters = 10;
  const auto a = dln::als(p.rows, p.cols, p.r, p.c, p.b, o);
  const auto b = dln::als(p.rows, p.cols, p.r, p.c, p.b, o);
  EXPECT_EQ(a.x.dense(), b.x.dense());
  o.seed = 2;
  EXPECT_NE(dln::als(p.rows, p.cols, p.r, p.c, p.b, o).x.dense(), a.x.dense());
}

TEST(Als, BadInputGivesExactErrors) {
  const std::vector<Index> r{0, 1, 2}, c{0, 1, 2};
  const std::vector<double> b{1.0, 2.0, 3.0};
  dln::AlsOptions o;
  o.rank = 0;
  expect_error([&] { dln::als(3, 3, r, c, b, o); }, "als.rank: must be >= 1, got 0");
  o.rank = 4;
  expect_error([&] { dln::als(3, 3, r, c, b, o); },
               "als.rank: must be <= min(rows, cols) = 3, got 4");
  o = {};
  o.rank = 2;
  o.lambda = 0;
  expect_error([&] { dln::als(3, 3, r, c, b, o); }, "als.lambda: must be finite and > 0, got 0");
  o.lambda = 1;
  o.tol = -1;
  expect_error([&] { dln::als(3, 3, r, c, b, o); }, "als.tol: must be finite and >= 0, got -1");
  o.tol = 0;
  expect_error([&] { dln::als(3, 3, {0, 0, 2}, {1, 1, 2}, b, o); }, "als: duplicate entry (0, 1)");
  expect_error(
      [&] {
        dln::als(3, 3, {0, 1, -1}, c, b, o);
      },
      "als: entry (-1, 2) out of range for 3x3");
  expect_error(
      [&] {
        dln::als(3, 3, r, c, {INFINITY, 2.0, 3.0}, o);
      },
      "als: value at (0, 0) is not finite");
}

// ---------------------------------------------------------------------------------------------
// CLI

namespace fs = std::filesystem;

fs::path scratch() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("dln_baseline_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

struct CliRun {
  int code;
  std::string out, err;
};

CliRun run_dln(const std::string& args) {
  const char* bin = std::getenv("DLN_BIN");
  EXPECT_NE(bin, nullptr) << "DLN_BIN must point at the dln binary";
  const fs::path out = scratch() / "stdout.txt", err = scratch() / "stderr.txt";
  const std::string cmd =
      std::string(bin ? bin : "dln") + " " + args + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string((std::istreambuf_iterator<char>(in)), {});
  };
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

fs::path write_observations(const Instance& p, const std::string& name) {
  const fs::path path = scratch() / name;
  std::ofstream f(path);
  f << "row,col,value\n";
  f.precision(17);
  for (std::size_t i = 0; i < p.b.size(); ++i)
    f << p.r[i] << "," << p.c[i] << "," << p.b[i] << "\n";
  return path;
}

TEST(BaselineCli, NuclearNormWritesTheCompletedMatrix) {
  const Instance p = make_instance(12, 10, 2, 0.7, 8);
  const fs::path obs = write_observations(p, "nn.csv"), out = scratch() / "nn.npy";
  const CliRun run = run_dln("baseline nuclear-norm --observations " + obs.string() +
                             " --shape 12x10 --out " + out.string());
  ASSERT_EQ(run.code, 0) << run.err;
  const auto j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["method"], "nuclear_norm");
  EXPECT_EQ(j["termination"], "converged");
  EXPECT_EQ(j["observations"], p.b.size());
  EXPECT_LE(j["rel_gap"].get<double>(), 1e-7);
  const Mat x = dln::io::read_npy_matrix(out.string());
  ASSERT_EQ(x.rows(), 12);
  ASSERT_EQ(x.cols(), 10);
  for (std::size_t i = 0; i < p.b.size(); ++i) EXPECT_NEAR(x(p.r[i], p.c[i]), p.b[i], 1e-9);
  EXPECT_NEAR(Eigen::JacobiSVD<Mat>(x).singularValues().sum(), j["nuclear_norm"].get<double>(),
              1e-9 * j["nuclear_norm"].get<double>());
}

TEST(BaselineCli, SoftImputeAndAlsWriteTheCompletedMatrix) {
  const Instance p = make_instance(30, 20, 2, 0.6, 9);
  const fs::path obs = write_observations(p, "si.csv"), out = scratch() / "si.npy";
  CliRun run = run_dln("baseline soft-impute --observations " + obs.string() +
                       " --shape 30x20 --path 5 --min-ratio 1e-4 --tol 1e-9 --out " + out.string());
  ASSERT_EQ(run.code, 0) << run.err;
  auto j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["method"], "soft_impute");
  EXPECT_EQ(j["path"].size(), 5u);
  EXPECT_GE(j["rank"].get<int>(), 2);
  Mat x = dln::io::read_npy_matrix(out.string());
  ASSERT_EQ(x.rows(), 30);
  EXPECT_LT(rel_error(x, p.truth), 1e-3);

  run = run_dln("baseline soft-impute --observations " + obs.string() +
                " --shape 30x20 --lambda 0.5 --method low_rank --out " + out.string());
  ASSERT_EQ(run.code, 0) << run.err;
  j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["solver"], "low_rank");
  EXPECT_DOUBLE_EQ(j["lambda"].get<double>(), 0.5);

  run = run_dln("baseline als --observations " + obs.string() +
                " --shape 30x20 --rank 2 --lambda 1e-9 --tol 1e-14 --max-iters 3000 --out " +
                out.string());
  ASSERT_EQ(run.code, 0) << run.err;
  j = nlohmann::json::parse(run.out);
  EXPECT_EQ(j["method"], "als");
  EXPECT_LT(j["train_rmse"].get<double>(), 1e-5);
  x = dln::io::read_npy_matrix(out.string());
  EXPECT_LT(rel_error(x, p.truth), 1e-3);
}

TEST(BaselineCli, BadInputGivesOneLineAndExitCode2) {
  const Instance p = make_instance(12, 10, 2, 0.5, 10);
  const fs::path obs = write_observations(p, "bad.csv"), out = scratch() / "bad.npy";
  const std::string base = "baseline nuclear-norm --observations " + obs.string() + " --out " +
                           out.string() + " --shape ";
  CliRun run = run_dln(base + "10by3");
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.err, "dln: error: --shape: expected ROWSxCOLS, got '10by3'\n");
  run = run_dln(base + "0x3");
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.err, "dln: error: --shape: rows and cols must be >= 1, got '0x3'\n");
  run = run_dln(base + "12x-3");
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.err, "dln: error: --shape: expected ROWSxCOLS, got '12x-3'\n");
  // An observation outside the shape: the CSV reader names the file and line.
  const fs::path wide = scratch() / "wide.csv";
  std::ofstream(wide) << "row,col,value\n0,0,1.0\n3,9,2.0\n";
  run = run_dln("baseline nuclear-norm --observations " + wide.string() + " --out " + out.string() +
                " --shape 12x9");
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.err, "dln: error: " + wide.string() + ":3: col index 9 out of range [0, 9)\n");
  EXPECT_FALSE(fs::exists(out));
  run = run_dln("baseline soft-impute --observations " + obs.string() + " --out " + out.string() +
                " --shape 12x10");
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.err, "dln: error: soft-impute: give --lambda L or --path K\n");
  run = run_dln("baseline als --observations " + obs.string() + " --out " + out.string() +
                " --shape 12x10 --rank 0 --lambda 1");
  EXPECT_EQ(run.code, 2);
  EXPECT_EQ(run.err, "dln: error: als.rank: must be >= 1, got 0\n");
}

}  // namespace
