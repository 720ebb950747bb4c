// The dln binary end to end: a run directory's files, and bad input -> one line + non-zero exit.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "dln/io/npy.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace {

using Result = dln::testing::CliResult;

fs::path scratch() {
  static const fs::path dir = dln::testing::scratch_dir("dln_cli_test");
  return dir;
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

Result run_dln(const std::string& args) { return dln::testing::run_dln(args, scratch()); }

const char* kConfig = R"([problem]
kind = "completion"
rows = 12
cols = 9
rank = 2
observations = 60
seed = 11
[network]
depth = 3
width = 10
init = "gaussian"
init_scale = 0.1
seed = 5
[optimizer]
name = "gd"
lr = 0.5
[stop]
max_iters = 30
[record]
every = 10
)";

void expect_fails_with(const std::string& args, const std::string& line) {
  const Result r = run_dln(args);
  EXPECT_EQ(r.code, 2) << args;
  EXPECT_EQ(r.err, "dln: error: " + line + "\n") << args;
}

TEST(Cli, TrainWritesTheRunDirectory) {
  const fs::path cfg = scratch() / "ok.toml", out = scratch() / "run_ok";
  write(cfg, kConfig);
  const Result r = run_dln("train --quiet --config " + cfg.string() + " --out " + out.string());
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"config.toml", "summary.json", "history.csv", "singular_values.csv",
                        "end_to_end.npy", "init/W1.npy", "init/W3.npy", "factors/W3.npy",
                        "data/observations.csv", "data/ground_truth.npy"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  EXPECT_FALSE(fs::exists(out / "summary.json.tmp"));
  auto summary = nlohmann::json::parse(std::ifstream(out / "summary.json"));
  EXPECT_EQ(summary["termination"], "max_iters");
  EXPECT_EQ(summary["iterations"], 30);
  const dln::Mat e2e = dln::io::read_npy_matrix((out / "end_to_end.npy").string());
  EXPECT_EQ(e2e.rows(), 12);
  EXPECT_EQ(e2e.cols(), 9);
  std::ifstream hist(out / "history.csv");
  std::string header;
  std::getline(hist, header);
  EXPECT_EQ(header.rfind("iteration,loss,grad_norm,unbalancedness", 0), 0u);
  // Same config, same seed -> bit-identical end-to-end matrix; replaying from the written
  // config + init/ as files gives the same numbers too.
  const fs::path out2 = scratch() / "run_replay";
  const Result r2 =
      run_dln("train --quiet --config " + (out / "config.toml").string() +
              " --set network.init=file --set network.init_path=" + (out / "init").string() +
              " --set problem.observations_file=" + (out / "data/observations.csv").string() +
              " --out " + out2.string());
  ASSERT_EQ(r2.code, 0) << r2.err;
  const dln::Mat again = dln::io::read_npy_matrix((out2 / "end_to_end.npy").string());
  EXPECT_EQ((again - e2e).norm(), 0.0);
}

TEST(Cli, ContinuousOptimizersWriteTheSameLayout) {
  const fs::path cfg = scratch() / "flow.toml";
  write(cfg, kConfig);
  for (const char* opt : {"--set optimizer.name=gradient_flow --set optimizer.time=0.5",
                          "--set optimizer.name=end_to_end --set optimizer.time=0.5 "
                          "--set network.init=balanced",
                          "--set optimizer.name=end_to_end --set network.init=balanced"}) {
    const fs::path out = scratch() / ("run_flow_" + std::to_string(std::hash<std::string>{}(opt)));
    const Result r =
        run_dln("train --quiet --config " + cfg.string() + " " + opt + " --out " + out.string());
    ASSERT_EQ(r.code, 0) << opt << ": " << r.err;
    for (const char* f :
         {"config.toml", "summary.json", "history.csv", "singular_values.csv", "end_to_end.npy",
          "init/W3.npy", "factors/W3.npy", "data/observations.csv"})
      EXPECT_TRUE(fs::exists(out / f)) << opt << ": " << f;
  }
}

TEST(Cli, BadInputsGiveOneLineAndNonZeroExit) {
  const fs::path cfg = scratch() / "base.toml";
  write(cfg, kConfig);
  const std::string c =
      "train --quiet --config " + cfg.string() + " --out " + (scratch() / "r").string();
  expect_fails_with(c + " --set network.depth=0", "network.depth: must be >= 1, got 0");
  expect_fails_with(c + " --set problem.colour=3", "problem.colour: unknown key");
  expect_fails_with(c + " --set problem.rank=10", "problem.rank: 10 exceeds min(rows, cols) = 9");
  expect_fails_with(c + " --set problem.observations=200",
                    "problem.observations: 200 exceeds the 108 entries of a 12x9 matrix");

  const fs::path bad_toml = scratch() / "bad.toml";
  write(bad_toml, "[problem\nrows = 3\n");
  const Result r =
      run_dln("train --config " + bad_toml.string() + " --out " + (scratch() / "r").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("dln: error: " + bad_toml.string() + ": line 1: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);

  const fs::path csv = scratch() / "obs.csv";
  write(csv, "row,col,value\n0,0,1.0\n12,3,2.0\n");
  expect_fails_with(c + " --set problem.observations_file=" + csv.string(),
                    csv.string() + ":3: row index 12 out of range [0, 12)");
  write(csv, "row,col,value\n0,0,nan\n");
  expect_fails_with(c + " --set problem.observations_file=" + csv.string(),
                    csv.string() + ":2: non-finite value");
  write(csv, "row,col,value\n0,0\n");
  expect_fails_with(c + " --set problem.observations_file=" + csv.string(),
                    csv.string() + ":2: expected 3 fields row,col,value");

  const fs::path npy = scratch() / "W1.npy";
  write(npy, "not an npy file");
  expect_fails_with(c + " --set network.init=file --set network.init_path=" + scratch().string(),
                    npy.string() + ": not a .npy file (bad magic)");

  const fs::path file = scratch() / "plain_file";
  write(file, "x");
  const Result r3 =
      run_dln("train --quiet --config " + cfg.string() + " --out " + (file / "sub").string());
  EXPECT_EQ(r3.code, 2);
  EXPECT_NE(r3.err.find((file / "sub").string()), std::string::npos) << r3.err;
}

TEST(Cli, DivergenceExitsWithItsOwnCode) {
  const fs::path cfg = scratch() / "div.toml", out = scratch() / "run_div";
  write(cfg, kConfig);
  const Result r = run_dln("train --quiet --config " + cfg.string() +
                           " --set optimizer.lr=1e6 --out " + out.string());
  EXPECT_EQ(r.code, 3);
  auto summary = nlohmann::json::parse(std::ifstream(out / "summary.json"));
  EXPECT_EQ(summary["termination"], "diverged");
}

}  // namespace
