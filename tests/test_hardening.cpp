// Hardening (issue 10): the memory guard refuses impossible sizes before allocation, with one
// line naming the field and both numbers; inputs that used to be misread; what the fuzzers found.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "dln/config/config.hpp"
#include "dln/io/npy.hpp"
#include "dln/run/run_dir.hpp"
#include "test_support.hpp"

namespace dln {
namespace {

using testing::expect_error;
namespace fs = std::filesystem;

fs::path scratch() {
  static const fs::path dir = testing::scratch_dir("dln_hardening_test");
  return dir;
}

// The dln binary's exit code and stderr.
std::pair<int, std::string> run_dln(const std::string& args) {
  auto r = testing::run_dln(args, scratch());
  return {r.code, r.err};
}

Config with(const std::vector<std::string>& sets) { return parse_config("", "test", sets); }

// Error message of f(), or "" when it does not throw dln::Error.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Memory, ExplicitWidthZeroIsAnErrorNotTheDefault) {
  expect_error([] { with({"network.width=0"}); }, "network.width: must be > 0, got 0");
  EXPECT_EQ(with({}).dims(), (std::vector<Index>{24, 30, 30, 30}));  // unset: max(rows, cols)
}

TEST(Memory, MaxMemoryParsesSizesAndRefusesNonsense) {
  EXPECT_EQ(with({"run.max_memory=8GiB"}).max_memory, 8.0 * 1024 * 1024 * 1024);
  EXPECT_EQ(with({"run.max_memory=\"512 MB\""}).max_memory, 512e6);
  EXPECT_EQ(with({"run.max_memory=4096"}).max_memory, 4096.0);
  EXPECT_EQ(with({}).max_memory, 0.0);
  const Config round = parse_config(with({"run.max_memory=2k"}).to_toml(), "resolved");
  EXPECT_EQ(round.max_memory, 2048.0);
  expect_error([] { with({"run.max_memory=lots"}); },
               "run.max_memory: expected a size such as 8GiB, 512MB or a number of bytes, got "
               "'lots'");
  expect_error([] { with({"run.max_memory=3PB"}); },
               "run.max_memory: expected a size such as 8GiB, 512MB or a number of bytes, got "
               "'3PB'");
  expect_error([] { with({"run.max_memory=99999999999999999999999999999999999999TiB"}); },
               "run.max_memory: '99999999999999999999999999999999999999TiB' is more than 4 EiB");
  EXPECT_EQ(with({"run.max_memory=1.7k"}).max_memory, 1740.0);  // whole bytes
  expect_error([] { with({"run.max_memory=9223372036854775807"}); },
               "run.max_memory: '9223372036854775807' is more than 4 EiB");
  expect_error([] { with({"run.max_memory=-1"}); },
               "run.max_memory: expected a size such as \"8GiB\" or a number of bytes >= 0");
  expect_error([] { with({"run.max_memory=1.5"}); },
               "run.max_memory: expected a size such as \"8GiB\" or a number of bytes >= 0");
}

TEST(Memory, RequireNamesTheLargestItemAndBothNumbers) {
  memory::Estimate e;
  e.add("network.width", "the factors", 3.0 * 1024 * 1024 * 1024);
  e.add("problem.observations", "the entries", 1024.0 * 1024 * 1024);
  EXPECT_EQ(error_of([&] { memory::require(e, 4.0 * 1024 * 1024 * 1024, "run.max_memory"); }), "");
  expect_error([&] { memory::require(e, 2.0 * 1024 * 1024 * 1024, "run.max_memory"); },
               "network.width: the run needs about 4.00 GiB (the factors: 3.00 GiB), more than "
               "run.max_memory = 2.00 GiB");
  memory::Estimate one;
  one.add("--shape", "2 dense 10x10 matrices", 1600);
  expect_error([&] { memory::require(one, 1000, "--max-memory"); },
               "--shape: the run needs about 1.56 KiB (2 dense 10x10 matrices), more than "
               "--max-memory = 1000 B");
  EXPECT_GT(memory::available_bytes(), 1e6);
  EXPECT_EQ(memory::format_bytes(1.5 * 1024 * 1024 * 1024 * 1024 * 1e7), "1.5e+07 TiB");
}

// dln::run refuses before allocating: under ASan a 1e11-wide factor would abort, not throw.
TEST(Memory, RunRefusesImpossibleSizesBeforeAllocating) {
  const auto prefix_of = [](const std::vector<std::string>& sets) {
    const std::string m = error_of([&] { run(with(sets)); });
    return m.substr(0, m.find(" (")) + " ... " +
           (m.find("more than the ") != std::string::npos ? "available" : m);
  };
  EXPECT_EQ(prefix_of({"network.width=100000000000"}),
            "network.width: the run needs about 4.4e+11 TiB ... available");
  EXPECT_EQ(prefix_of({"network.widths=[10, 100000000000]"}),
            "network.widths: the run needs about 175 TiB ... available");
  EXPECT_EQ(prefix_of({"problem.rows=3000000000", "problem.cols=3000000000", "network.width=4"}),
            "problem.rows, problem.cols: the run needs about 3.3e+08 TiB ... available");
  EXPECT_EQ(prefix_of({"problem.kind=sensing", "problem.observations=100000000"}),
            "problem.observations: the run needs about 1.05 TiB ... available");
  EXPECT_EQ(prefix_of({"problem.kind=regression", "problem.samples=10000000000"}),
            "problem.samples: the run needs about 11.8 TiB ... available");
  // run.max_memory caps below what the machine has; the default 30x24 run fits in 1 MiB.
  const std::string capped = error_of([] { run(with({"run.max_memory=64KiB"})); });
  EXPECT_EQ(capped.substr(0, capped.find(':')), "problem.rows, problem.cols");
  EXPECT_NE(capped.find("more than run.max_memory = 64.0 KiB"), std::string::npos) << capped;
  EXPECT_EQ(error_of([] { run(with({"run.max_memory=1MiB", "stop.max_iters=1"})); }), "");
}

TEST(Memory, CliRefusesImpossibleSizesWithExitTwo) {
  const fs::path obs = scratch() / "obs.csv";
  std::ofstream(obs) << "0,0,1\n1,2,0.5\n";
  auto [code, err] = run_dln("baseline nuclear-norm --observations " + obs.string() +
                             " --shape 99999999999x5 --out " + (scratch() / "x.npy").string());
  EXPECT_EQ(code, 2);
  EXPECT_EQ(err.substr(0, err.find(", more than")),
            "dln: error: --shape: the run needs about 29.1 TiB (8 dense 99999999999x5 matrices "
            "(the --out matrix and the solver's))");
  std::tie(code, err) =
      run_dln("baseline als --rank 1 --lambda 1 --max-memory 50 --observations " + obs.string() +
              " --shape 3x3 --out " + (scratch() / "y.npy").string());
  EXPECT_EQ(code, 2);
  EXPECT_EQ(err,
            "dln: error: --shape: the run needs about 72 B (1 dense 3x3 matrices (the --out matrix "
            "and the solver's)), more than --max-memory = 50 B\n");
  const fs::path cfg = scratch() / "empty.toml";
  std::ofstream(cfg) << "";
  std::tie(code, err) =
      run_dln("train --config " + cfg.string() + " --set network.width=100000000000 --out " +
              (scratch() / "never").string());
  EXPECT_EQ(code, 2);
  EXPECT_EQ(err.rfind("dln: error: network.width: the run needs about", 0), 0u) << err;
  EXPECT_FALSE(fs::exists(scratch() / "never"));
  const fs::path ratings = scratch() / "ratings.csv";
  std::ofstream(ratings) << "a,b,1\nc,d,2\na,d,3\nc,b,4\n";
  std::tie(code, err) = run_dln("complete " + ratings.string() + " --width 10000000000 --out " +
                                (scratch() / "never_complete").string());
  EXPECT_EQ(code, 2);
  EXPECT_EQ(err.substr(0, err.find(':', 12)), "dln: error: --width") << err;
  EXPECT_NE(err.find("at width 10000000000"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(scratch() / "never_complete"));  // refused before the run directory
}

TEST(Memory, DirectoryGivenAsAFileSaysSo) {
  const fs::path dir = scratch() / "a_directory";
  fs::create_directories(dir);
  expect_error([&] { io::read_file(dir.string()); }, dir.string() + ": is a directory, not a file");
  expect_error([&] { io::read_npy(dir.string()); }, dir.string() + ": is a directory, not a file");
  expect_error([&] { io::read_observations_csv(dir.string(), 3, 3); },
               dir.string() + ": is a directory, not a file");
}

// Found by fuzz_config and fuzz_npy (fuzz/regressions/): a parser's message quoting the input
// carried its newline or NUL, so "one line" broke and what() ended at the NUL.
TEST(Memory, ErrorMessagesStayOneLine) {
  EXPECT_STREQ(Error(std::string("a\nb\r"
                                 "\x00"
                                 "c\td"
                                 "\x7f",
                                 9))
                   .what(),
               "a\\nb\\r\\x00c\td\\x7f");
  expect_error([] { parse_config("[problem]\ncols = n\n", "bad.toml"); },
               "bad.toml: line 2: Error while parsing floating-point: expected 'nan', saw 'n\\n'");
}

// A checkpoint is outside input: a factor of the wrong shape, a missing optimizer buffer or an
// iteration past the budget is refused before training (Eigen would assert, or read past).
TEST(Hardening, ResumeChecksTheCheckpointAgainstTheConfig) {
  Config c = with({"problem.rows=6", "problem.cols=5", "problem.rank=2", "problem.observations=20",
                   "network.width=4", "optimizer.name=momentum", "stop.max_iters=20",
                   "run.checkpoint_every=5"});
  const fs::path dir = scratch() / "ckpt_run";
  run(c, {}, dir.string());
  const fs::path ck = dir / "checkpoint";
  ASSERT_TRUE(fs::exists(ck / "state.json"));
  EXPECT_EQ(error_of([&] { run(c, {}, dir.string(), true); }), "");  // intact: resumes
  io::write_npy((ck / "W2.npy").string(), Mat::Zero(3, 3));
  expect_error([&] { run(c, {}, dir.string(), true); },
               ck.string() + ": factor 2 is 3x3, expected 4x4 for this config");
  io::write_npy((ck / "W2.npy").string(), Mat::Constant(4, 4, std::nan("")));
  expect_error([&] { run(c, {}, dir.string(), true); },
               (ck / "W2.npy").string() + ": non-finite value at flat index 0");
  io::write_npy((ck / "W2.npy").string(), Mat::Zero(4, 4));
  c.optimizer.kind = OptimizerKind::kAdam;  // two buffers per factor, two scalars
  expect_error([&] { run(c, {}, dir.string(), true); },
               ck.string() + ": 3 optimizer buffer matrices, expected 6 for this config");
  c.optimizer.kind = OptimizerKind::kMomentum;
  c.stop.max_iters = 3;
  expect_error([&] { run(c, {}, dir.string(), true); },
               ck.string() + ": iteration 15 is outside [0, stop.max_iters = 3]");
}

}  // namespace
}  // namespace dln
