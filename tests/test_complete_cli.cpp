// `dln complete` options end to end: --baselines, --no-deep, a diverged deep model (exit 3), and
// option errors (one line, exit 2, nothing written).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

fs::path scratch() {
  static const fs::path dir = dln::testing::scratch_dir("dln_complete_cli");
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

using Result = dln::testing::CliResult;

Result run_dln(const std::string& args) { return dln::testing::run_dln(args, scratch()); }

// 30 users x 20 items, about half the cells: 3 + a rank-2 signal + noise 0.05.
const fs::path& ratings() {
  static const fs::path p = [] {
    dln::Rng rng(8);
    const dln::Mat u = rng.gaussian(30, 2, 0.8), v = rng.gaussian(20, 2, 0.8);
    std::string s = "user,item,rating\n";
    for (int i = 0; i < 30; ++i)
      for (int j = 0; j < 20; ++j)
        if (rng.uniform() < 0.5)
          s += fmt::format("u{},m{},{:.4f}\n", i, j,
                           3.0 + u.row(i).dot(v.row(j)) + 0.05 * rng.normal());
    const fs::path f = scratch() / "ratings.csv";
    std::ofstream(f) << s;
    std::ofstream(scratch() / "pairs.csv") << "user,item\nu1,m2\nu4,m0\n";
    return f;
  }();
  return p;
}

std::string complete(const fs::path& out, const std::string& options) {
  const bool iters = options.find("--max-iters") != std::string::npos;
  return fmt::format("complete {} --out {} -q {} {}", ratings().string(), out.string(),
                     iters ? "" : "--max-iters 300", options);
}

std::string header(const fs::path& csv) {
  const std::string s = slurp(csv);
  return s.substr(0, s.find('\n'));
}

TEST(CompleteCliOptions, Baselines) {
  const fs::path out = scratch() / "baselines";
  const Result r = run_dln(
      complete(out, "--baselines als,soft-impute --predict " + (scratch() / "pairs.csv").string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto s = nlohmann::json::parse(slurp(out / "summary.json"));
  const auto& m = s["methods"];
  ASSERT_EQ(m.size(), 4u);
  const double mean_val = m["mean"]["val_rmse"];
  for (const char* name : {"deep", "als", "soft_impute"}) {
    ASSERT_TRUE(m.contains(name)) << name;
    // Rank-2 data with noise 0.05: every fitted model beats the mean by far.
    EXPECT_LT(m[name]["val_rmse"].get<double>(), 0.5 * mean_val) << name;
  }
  EXPECT_EQ(header(out / "predictions.csv"), "user,item,mean,deep,als,soft_impute,note");
  // "none" adds nothing.
  const fs::path plain = scratch() / "none";
  ASSERT_EQ(run_dln(complete(plain, "--baselines none")).code, 0);
  EXPECT_EQ(nlohmann::json::parse(slurp(plain / "summary.json"))["methods"].size(), 2u);
}

TEST(CompleteCliOptions, NoDeepFitsTheBaselinesOnly) {
  const fs::path out = scratch() / "nodeep";
  const Result r = run_dln(
      complete(out, "--no-deep --baselines als --predict " + (scratch() / "pairs.csv").string()));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto s = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(s["methods"].size(), 2u);
  EXPECT_TRUE(s["methods"].contains("als"));
  EXPECT_FALSE(s["methods"].contains("deep"));
  EXPECT_EQ(s["best_by_val_rmse"], "als");
  EXPECT_FALSE(fs::exists(out / "factors"));
  EXPECT_FALSE(fs::exists(out / "history.csv"));
  EXPECT_EQ(header(out / "predictions.csv"), "user,item,mean,als,note");
}

// Docs: a diverged deep model still writes its best factors, and the exit code is 3.
TEST(CompleteCliOptions, DivergedDeepModelExitsThree) {
  const fs::path out = scratch() / "diverged";
  const Result r = run_dln(complete(out, "--optimizer gd --lr 1000"));
  EXPECT_EQ(r.code, 3) << r.err;
  const auto s = nlohmann::json::parse(slurp(out / "summary.json"));
  const auto& deep = s["methods"]["deep"];
  EXPECT_EQ(deep["termination"], "diverged");
  EXPECT_EQ(deep["message"].get<std::string>().rfind("loss became ", 0), 0u);
  EXPECT_TRUE(std::isfinite(deep["val_rmse"].get<double>()));
  for (const char* f : {"factors/W1.npy", "factors/W2.npy", "factors/W3.npy"})
    EXPECT_TRUE(dln::io::read_npy_matrix((out / f).string()).allFinite()) << f;
}

TEST(CompleteCliOptions, OptionErrorsWriteNothing) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--width 0", "--width: must be >= 1, got 0"},
      {"--init-scale 0", "--init-scale: must be finite and > 0, got 0"},
      {"--lr 0", "--lr: must be finite and > 0, got 0"},
      {"--optimizer foo", "--optimizer: must be gd, momentum, group_rmsprop or adam, got foo"},
      {"--optimizer gradient_flow",
       "--optimizer: must be gd, momentum, group_rmsprop or adam, got gradient_flow"},
      {"--max-iters -1", "--max-iters: must be >= 0, got -1"},
      {"--eval-every 0", "--eval-every: must be >= 1, got 0"},
      {"--patience -1", "--patience: must be >= 0, got -1"},
      {"--max-seconds -1", "--max-seconds: must be finite and >= 0, got -1"},
      {"--val-fraction 0", "--val-fraction: must be > 0 (validation picks the stopping point)"},
      {"--val-fraction 1.5", "--val-fraction: must be in [0, 1), got 1.5"},
      {"--test-fraction -0.1", "--test-fraction: must be in [0, 1), got -0.1"},
      {"--val-fraction 0.3 --test-fraction 0.25",
       "--val-fraction + --test-fraction: must be <= 0.5, got 0.55"},
      {"--baselines svd", "--baselines: unknown method 'svd' (known: als, soft-impute)"},
      {"--baselines als --als-rank 0", "--als-rank: must be >= 1"},
      {"--baselines als --als-lambdas 0",
       "--als-lambdas: every lambda must be finite and > 0, got 0"},
      {"--baselines soft-impute --si-points 0", "--si-points: must be >= 1"},
      {"--baselines soft-impute --si-min-ratio 2", "--si-min-ratio: must be in (0, 1]"},
      {"--baselines soft-impute --si-max-rank 0", "--si-max-rank: must be >= 1"},
      {"--unknown zero", "--unknown: must be error or mean, got 'zero'"},
      {"--no-deep", "--no-deep: needs --baselines (nothing to fit)"},
      {"--no-deep --baselines none", "--no-deep: needs --baselines (nothing to fit)"},
  };
  const fs::path out = scratch() / "never";
  for (const auto& [options, message] : cases) {
    const Result r = run_dln(complete(out, options));
    EXPECT_EQ(r.code, 2) << options;
    EXPECT_EQ(r.err, "dln: error: " + message + "\n") << options;
    EXPECT_FALSE(fs::exists(out)) << options;
  }
  // Bad input: nothing written either.
  const fs::path dup = scratch() / "dup.csv";
  std::ofstream(dup) << "user,item,rating\nu1,m1,4\nu1,m1,5\n";
  const Result r = run_dln(fmt::format("complete {} --out {} -q", dup.string(), out.string()));
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
