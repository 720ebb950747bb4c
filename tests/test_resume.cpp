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

#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"
#include "dln/run/run_dir.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace dln {
namespace {

using dln::testing::expect_error;

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

// The iterations a run evaluates: a resumed run starts at the checkpoint's, not at 0.
struct Steps final : Callback {
  long first = -1, count = 0;
  bool on_step(long t, double) override {
    if (count++ == 0) first = t;
    return true;
  }
};

// dir holds a run of kConfig ("optimizer.name=gd") killed after iteration 70 (checkpoint at 60).
Config cut_run(const std::string& dir) {
  const Config c = parse_config(kConfig, "resume.toml", {"optimizer.name=gd"});
  fs::remove_all(dir);
  StopAt stop(70);
  run(c, {&stop}, dir);
  return c;
}

std::string temp(const std::string& name) { return ::testing::TempDir() + "/dln_resume_" + name; }

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
  Steps steps;
  const RunResult resumed = run(c, {&steps}, dir, true);
  EXPECT_EQ(resumed.summary.iterations, 100);
  EXPECT_EQ(steps.first, 60);  // from the checkpoint, not from init/
  EXPECT_EQ(steps.count, 41);  // iterations 60..100
  for (std::size_t j = 0; j < full.factors.size(); ++j)
    EXPECT_EQ((resumed.factors[j] - full.factors[j]).norm(), 0.0) << "W" << j + 1;
  ASSERT_EQ(resumed.summary.history.size(), full.summary.history.size());
  for (std::size_t k = 0; k < full.summary.history.size(); ++k) {
    EXPECT_EQ(resumed.summary.history[k].iteration, full.summary.history[k].iteration);
    EXPECT_EQ(resumed.summary.history[k].loss, full.summary.history[k].loss);
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, ResumeTest,
                         ::testing::Values("gd", "momentum", "group_rmsprop", "adam", "adagrad",
                                           "adadelta"));

// The resumed state is the checkpoint's: its history rows and factors are used (tampering with
// them shows), init/ is not read.
TEST(Resume, StateComesFromTheCheckpoint) {
  const std::string dir = temp("tamper");
  const Config c = cut_run(dir);
  const RunResult full = run(c);
  const fs::path ckpt = fs::path(dir) / "checkpoint";
  io::write_npy((fs::path(dir) / "init/W1.npy").string(), Mat::Zero(10, 9));
  std::string state = io::read_file((ckpt / "state.json").string());
  const std::string first_loss = "\"loss\":";
  const auto at = state.find(first_loss) + first_loss.size();
  state.replace(at, state.find(',', at) - at, "123.0");
  io::write_file_atomic((ckpt / "state.json").string(), state);
  const RunResult resumed = run(c, {}, dir, true);
  EXPECT_EQ(resumed.summary.history.front().loss, 123.0);
  for (std::size_t j = 0; j < full.factors.size(); ++j)
    EXPECT_EQ((resumed.factors[j] - full.factors[j]).norm(), 0.0) << "W" << j + 1;
  // Changed factors in the checkpoint change the result.
  cut_run(dir);
  const Mat w2 = io::read_npy_matrix((ckpt / "W2.npy").string());
  io::write_npy((ckpt / "W2.npy").string(), 1.01 * w2);
  EXPECT_GT((run(c, {}, dir, true).end_to_end - full.end_to_end).norm(), 1e-6);
}

// A kill between the two renames of write_checkpoint leaves only checkpoint.old/: resume uses it.
TEST(Resume, FallsBackToCheckpointOld) {
  const std::string dir = temp("old");
  const Config c = cut_run(dir);
  fs::rename(fs::path(dir) / "checkpoint", fs::path(dir) / "checkpoint.old");
  Steps steps;
  const RunResult resumed = run(c, {&steps}, dir, true);
  EXPECT_EQ(steps.first, 60);
  EXPECT_EQ((resumed.end_to_end - run(c).end_to_end).norm(), 0.0);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "checkpoint/state.json"));  // written again at 90
}

TEST(Resume, Errors) {
  const std::string dir = temp("errors");
  const Config c = cut_run(dir);
  const fs::path ckpt = fs::path(dir) / "checkpoint";
  // Another configuration's checkpoint (--set on --resume).
  expect_error([&] { run(parse_config(kConfig, "r.toml", {"network.depth=2"}), {}, dir, true); },
               ckpt.string() + ": 3 factor matrices, expected 2 for this config");
  expect_error([&] { run(parse_config(kConfig, "r.toml", {"network.width=8"}), {}, dir, true); },
               ckpt.string() + ": factor 1 is 10x9, expected 8x9 for this config");
  expect_error(
      [&] { run(parse_config(kConfig, "r.toml", {"optimizer.name=momentum"}), {}, dir, true); },
      ckpt.string() + ": 0 optimizer buffer matrices, expected 3 for this config");
  expect_error(
      [&] { run(parse_config(kConfig, "r.toml", {"optimizer.name=adam"}), {}, dir, true); },
      ckpt.string() + ": 0 optimizer buffer matrices, expected 6 for this config");
  expect_error(
      [&] {
        run(parse_config(kConfig, "r.toml", {"optimizer.name=gradient_flow", "optimizer.time=1"}),
            {}, dir, true);
      },
      "--resume: continuous optimizers write no checkpoints");
  // A missing factor file, a malformed state.json, no checkpoint at all.
  fs::rename(ckpt / "W2.npy", ckpt / "W2.bak");
  expect_error([&] { run(c, {}, dir, true); }, (ckpt / "W2.npy").string() + ": cannot open");
  fs::rename(ckpt / "W2.bak", ckpt / "W2.npy");
  io::write_file_atomic((ckpt / "state.json").string(), "{\"iteration\": 60}");
  expect_error([&] { read_checkpoint(dir); },
               (ckpt / "state.json").string() +
                   ": malformed checkpoint ([json.exception.out_of_range.403] key 'factors' not "
                   "found)");
  fs::remove_all(ckpt);
  expect_error([&] { run(c, {}, dir, true); },
               (ckpt / "state.json").string() + ": no checkpoint to resume from");
}

// `dln train --resume` misuse: exit code 2 and one line on stderr.
TEST(Resume, CliErrors) {
  const char* bin = std::getenv("DLN_BIN");
  ASSERT_NE(bin, nullptr);
  const fs::path dir = temp("cli");
  cut_run(dir.string());
  auto dln = [&](const std::string& args, int& code) {
    const std::string err = (dir / "stderr.txt").string();
    const int status =
        std::system((std::string(bin) + " " + args + " >/dev/null 2>" + err).c_str());
    code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return io::read_file(err);
  };
  int code = 0;
  EXPECT_EQ(dln("train --resume " + dir.string() + " --out " + dir.string(), code),
            "dln: error: --resume: takes the run directory alone (its config.toml is used)\n");
  EXPECT_EQ(code, 2);
  EXPECT_EQ(dln("train --config " + (dir / "config.toml").string(), code),
            "dln: error: train: --config and --out are required (or --resume DIR)\n");
  EXPECT_EQ(code, 2);
  EXPECT_EQ(dln("train --quiet --resume " + dir.string() + " --set optimizer.name=adam", code),
            "dln: error: " + (dir / "checkpoint").string() +
                ": 0 optimizer buffer matrices, expected 6 for this config\n");
  EXPECT_EQ(code, 2);
  EXPECT_FALSE(fs::exists(dir / "summary.json"));
  EXPECT_EQ(dln("train --quiet --resume " + dir.string(), code), "");
  EXPECT_EQ(code, 0);
  EXPECT_EQ(
      dln("train --quiet --resume " + dir.string(), code),
      "dln: error: " + dir.string() + ": the run is already complete (summary.json exists)\n");
  EXPECT_EQ(code, 2);
}

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
