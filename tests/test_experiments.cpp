// dln experiment: config contract (unknown keys, types, [quick]), determinism across workers,
// and error propagation from parallel runs. The claims themselves are asserted by
// tests/experiment_claims.py on each experiment's --quick output.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dln/experiments/common.hpp"
#include "dln/io/files.hpp"

namespace dln::experiments {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("dln_test_experiments_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::string write(const std::string& dir, const std::string& text) {
  const std::string path = (fs::path(dir) / "config.toml").string();
  io::write_file_atomic(path, text);
  return path;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ExperimentParams, BuiltInDefaultsAndQuickOverrides) {
  Options full, quick;
  quick.quick = true;
  const Params pf("fig2", full), pq("fig2", quick);
  EXPECT_EQ(pf.integers("observations").size(), 9u);
  EXPECT_EQ(pf.integers("depths"), (std::vector<long>{2, 3, 4}));
  EXPECT_EQ(pq.integers("depths"), (std::vector<long>{2, 3}));
  EXPECT_EQ(pq.integer("rows"), 100);  // not in [quick]: the full value
  EXPECT_DOUBLE_EQ(pf.real("init_scale"), 1e-3);
}

TEST(ExperimentParams, UserFileKeysAreCheckedAgainstTheBuiltIn) {
  const auto dir = temp_dir("keys");
  Options o;
  o.config_path = write(dir, "[experiment]\nlrr = 0.1\n");
  EXPECT_EQ(error_of([&] { Params p("fig2", o); }),
            "experiment.lrr: unknown key (see the built-in experiments/*.toml)");
  o.config_path = write(dir, "[experiment]\ndepths = [2.5]\n");
  EXPECT_EQ(error_of([&] { Params p("fig2", o); }),
            "experiment.depths: expected an array of integers");
  o.config_path = write(dir, "[experiment]\nlr = \"fast\"\n");
  EXPECT_EQ(error_of([&] { Params p("fig2", o); }), "experiment.lr: expected a number");
  o.config_path = write(dir, "[experiments]\nlr = 1\n");
  EXPECT_EQ(error_of([&] { Params p("fig2", o); }),
            o.config_path + ": [experiments]: unknown table (expected [experiment] and [quick])");
  o.config_path = write(dir, "[experiment]\nlr = \n");
  EXPECT_NE(error_of([&] { Params p("fig2", o); }).find(o.config_path + ": line 2:"),
            std::string::npos);
  // An integer where a number is expected is fine; omitted keys keep the built-in value.
  o.config_path = write(dir, "[experiment]\nlr = 1\n[quick]\nseeds = 3\n");
  o.quick = true;
  const Params p("fig2", o);
  EXPECT_DOUBLE_EQ(p.real("lr"), 1.0);
  EXPECT_EQ(p.integer("seeds"), 3);
  EXPECT_EQ(p.integer("max_iters"), 300000);  // user [quick] replaces the built-in [quick]
}

TEST(ExperimentRun, BadNamesAndOptions) {
  Options o;
  EXPECT_EQ(error_of([&] { run_experiment("fig9", o); }),
            "experiment: unknown name 'fig9' (expected one of fig1-lp, fig1-nonlinear, fig2, fig3, "
            "prop5, compression, tensor-rank, tensor-completion, htf-dynamics)");
  o.workers = 0;
  EXPECT_EQ(error_of([&] { run_experiment("fig2", o); }), "--workers: must be >= 1, got 0");
  const auto dir = temp_dir("perdepth");
  Options f;
  f.config_path = write(dir, "[experiment]\nlr = [1.0]\n");
  f.out = dir + "/out";
  f.quiet = true;
  f.plot = false;
  EXPECT_EQ(error_of([&] { run_experiment("fig3", f); }),
            "experiment.lr: expected one entry per depth (3), got 1");
}

TEST(ExperimentRun, ParallelForRethrowsTheFirstError) {
  std::atomic<int> ran{0};
  EXPECT_EQ(error_of([&] {
              parallel_for(8, 2, [&](int i) {
                ++ran;
                if (i == 3) throw Error("job 3 failed");
              });
            }),
            "job 3 failed");
  EXPECT_GE(ran.load(), 4);
}

TEST(ExperimentRun, LongestExpectedJobsStartFirst) {
  EXPECT_EQ(longest_first({1.0, 5.0, 3.0, 5.0, 0.5}), (std::vector<int>{1, 3, 2, 0, 4}));
  std::vector<int> started;
  parallel_for(4, 1, [&](int i) { started.push_back(i); }, {2.0, 9.0, 1.0, 4.0});
  EXPECT_EQ(started, (std::vector<int>{1, 3, 0, 2}));
  // The cost model ranks the published Figure 2 jobs: depth 4 > depth 3 > depth 2 > nuclear norm,
  // and more observations cost more at the same depth.
  Options o;
  o.quiet = true;
  const Params p("fig2", o);
  auto cost = [&](long count, long depth) {
    return expected_cost(completion_config(p, count, 1, depth));
  };
  EXPECT_GT(cost(1000, 4), cost(5000, 3));
  EXPECT_GT(cost(1000, 3), cost(5000, 2));
  EXPECT_GT(cost(1000, 2), expected_nuclear_cost(100, 100));
  EXPECT_GT(cost(5000, 4), cost(1000, 4));
  EXPECT_THROW(parallel_for(2, 1, [](int) {}, {1.0}), std::logic_error);
}

// A tiny fig3 (12x12 sensing/completion): results do not depend on how many runs go in parallel.
TEST(ExperimentRun, ResultsAreIdenticalForOneAndTwoWorkers) {
  const auto dir = temp_dir("workers");
  const std::string cfg = write(dir,
                                "[experiment]\nrows = 12\ncols = 12\nrank = 2\nmeasurements = 80\n"
                                "width = 12\nlr = [50.0, 2.0, 0.5]\nmax_iters = [300, 1500, 1500]\n"
                                "record_every = [1, 5, 5]\n");
  std::string csv[2], results[2];
  // results.csv without its wall-time column (`seconds`), which no two runs share.
  auto without_seconds = [](const std::string& text) {
    std::vector<std::vector<std::string>> rows;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      std::vector<std::string> cells;
      std::istringstream in(line);
      for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
      rows.push_back(cells);
    }
    const auto& head = rows.at(0);
    const auto col = std::find(head.begin(), head.end(), "seconds") - head.begin();
    EXPECT_LT(col, static_cast<long>(head.size()));
    std::string out;
    for (auto& r : rows) {
      if (col < static_cast<long>(r.size())) r.erase(r.begin() + col);
      for (const auto& cell : r) out += cell + ",";
      out += "\n";
    }
    return out;
  };
  for (int w = 1; w <= 2; ++w) {
    Options o;
    o.config_path = cfg;
    o.out = dir + "/out" + std::to_string(w);
    o.workers = w;
    o.quiet = true;
    o.plot = false;
    ASSERT_EQ(run_experiment("fig3", o), 0);
    std::string text = io::read_file(o.out + "/trajectories.csv");
    csv[w - 1] = text;
    results[w - 1] = without_seconds(io::read_file(o.out + "/results.csv"));
    EXPECT_TRUE(fs::exists(o.out + "/report.md"));
    EXPECT_TRUE(fs::exists(o.out + "/runs/sensing_depth3_seed1/summary.json"));
  }
  EXPECT_EQ(csv[0], csv[1]);
  EXPECT_GT(csv[0].size(), 1000u);
  EXPECT_EQ(results[0], results[1]);  // two workers start the longest runs first: same rows
  EXPECT_NE(results[0].find("depth3"), std::string::npos);
}

}  // namespace
}  // namespace dln::experiments

namespace dln::experiments {
namespace {

// The core alone (no libtorch linked): fig1-nonlinear is listed but refused with the option.
TEST(Experiments, Fig1NonlinearNeedsLibtorch) {
  const auto n = names();
  EXPECT_NE(std::find(n.begin(), n.end(), "fig1-nonlinear"), n.end());
  Options o;
  o.out = (std::filesystem::temp_directory_path() / "dln-fig1nl-unregistered").string();
  try {
    run_experiment("fig1-nonlinear", o);
    ADD_FAILURE() << "ran without libtorch";
  } catch (const Error& e) {
    // clang-format off
    EXPECT_EQ(std::string(e.what()), "experiment fig1-nonlinear: this dln was built without libtorch (configure with -DDLN_WITH_TORCH=ON, as `make build` does)");
    // clang-format on
  }
  EXPECT_FALSE(std::filesystem::exists(o.out));
}

}  // namespace
}  // namespace dln::experiments
