// Long runs can be killed and resumed: checkpoints hold factors, optimizer state and history, and
// a resumed run ends bit-identical to an uninterrupted one.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "dln/io/npy.hpp"
#include "dln/run/run_dir.hpp"

namespace fs = std::filesystem;

namespace dln {
namespace {

const char* kConfig = R"(
[problem]
kind = "completion"
rows = 12
cols = 9
rank = 2
observations = 60
seed = 3
[network]
depth = 3
width = 10
init = "gaussian"
init_scale = 0.3
seed = 4
[optimizer]
name = "gd"
lr = 0.5
[stop]
max_iters = 100
[record]
every = 7
[run]
checkpoint_every = 30
)";

struct StopAt final : Callback {
  long at;
  explicit StopAt(long a) : at(a) {}
  bool on_step(long t, double) override { return t < at; }
};

class ResumeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumeTest, KilledThenResumedEqualsUninterrupted) {
  const Config c = parse_config(kConfig, "resume.toml", {"optimizer.name=" + GetParam()});
  const RunResult full = run(c);
  const std::string dir = ::testing::TempDir() + "/dln_resume_" + GetParam();
  fs::remove_all(dir);
  StopAt stop(70);  // "killed" after iteration 70; the last checkpoint is at 60
  const RunResult cut = run(c, {&stop}, dir);
  ASSERT_EQ(cut.summary.termination, Termination::kCallback);
  ASSERT_TRUE(fs::exists(fs::path(dir) / "checkpoint/state.json"));
  EXPECT_EQ(read_checkpoint(dir).iteration, 60);
  const RunResult resumed = run(c, {}, dir, true);
  EXPECT_EQ(resumed.summary.iterations, 100);
  for (std::size_t j = 0; j < full.factors.size(); ++j)
    EXPECT_EQ((resumed.factors[j] - full.factors[j]).norm(), 0.0) << "W" << j + 1;
  ASSERT_EQ(resumed.summary.history.size(), full.summary.history.size());
  for (std::size_t k = 0; k < full.summary.history.size(); ++k) {
    EXPECT_EQ(resumed.summary.history[k].iteration, full.summary.history[k].iteration);
    EXPECT_EQ(resumed.summary.history[k].loss, full.summary.history[k].loss);
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, ResumeTest,
                         ::testing::Values("gd", "momentum", "group_rmsprop", "adam"));

TEST(Resume, CliKillMinusNineThenResume) {
  const char* bin = std::getenv("DLN_BIN");
  ASSERT_NE(bin, nullptr);
  const fs::path base = fs::path(::testing::TempDir()) / "dln_kill";
  fs::remove_all(base);
  fs::create_directories(base);
  const fs::path cfg = base / "c.toml";
  {
    std::string text = kConfig;
    text.replace(text.find("max_iters = 100"), 15, "max_iters = 150000");
    text.replace(text.find("checkpoint_every = 30"), 21, "checkpoint_every = 2000");
    text.replace(text.find("every = 7"), 9, "every = 50000");
    std::ofstream(cfg) << text;
  }
  const fs::path killed = base / "killed", whole = base / "whole";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execl(bin, bin, "train", "--quiet", "--config", cfg.c_str(), "--out", killed.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill as soon as the first checkpoint exists.
  for (int i = 0; i < 3000 && !fs::exists(killed / "checkpoint/state.json"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the run finished before it could be killed";
  ASSERT_FALSE(fs::exists(killed / "summary.json"));
  ASSERT_EQ(std::system((std::string(bin) + " train --quiet --resume " + killed.string()).c_str()),
            0);
  ASSERT_EQ(std::system((std::string(bin) + " train --quiet --config " + cfg.string() + " --out " +
                         whole.string())
                            .c_str()),
            0);
  const Mat a = io::read_npy_matrix((killed / "end_to_end.npy").string());
  const Mat b = io::read_npy_matrix((whole / "end_to_end.npy").string());
  EXPECT_EQ((a - b).norm(), 0.0);
  // A complete run is not resumed again.
  EXPECT_NE(
      std::system((std::string(bin) + " train --quiet --resume " + killed.string() + " 2>/dev/null")
                      .c_str()),
      0);
}

}  // namespace
}  // namespace dln
