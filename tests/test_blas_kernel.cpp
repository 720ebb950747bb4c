// BLAS kernel selection (docs/blas.md): the self-test catches a wrong product, the fall-back runs,
// the override is honoured, and the choice changes no result beyond the kernel's rounding.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dln/core/blas.hpp"
#include "dln/core/blas_kernel.hpp"
#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"

namespace fs = std::filesystem;
using dln::Mat;
using nlohmann::json;

namespace {

struct Output {
  int code;
  std::string out, err;
};

fs::path scratch() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("dln_blas_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

// `env` is a shell prefix such as "DLN_BLAS_CORETYPE=Prescott"; the rest of the caller's
// environment (OPENBLAS_CORETYPE included, where a machine sets it) is kept.
Output run_dln(const std::string& env, const std::string& args) {
  const char* bin = std::getenv("DLN_BIN");
  EXPECT_NE(bin, nullptr) << "DLN_BIN must point at the dln binary";
  const fs::path out = scratch() / "stdout.txt", err = scratch() / "stderr.txt";
  const std::string cmd = env + " " + std::string(bin ? bin : "dln") + " " + args + " >" +
                          out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

json selected_line(const Output& o) {
  std::istringstream lines(o.out);
  for (std::string l; std::getline(lines, l);) {
    const json j = json::parse(l);
    if (j.value("selected", false)) return j;
  }
  ADD_FAILURE() << "no selected kernel in: " << o.out;
  return json::object();
}

json peak(const std::string& env) {
  const Output o = run_dln(env, "gemm-peak --size 64 --threads 1 --repeats 1");
  EXPECT_EQ(o.code, 0) << o.err;
  return selected_line(o);
}

// A depth-3 completion run large enough for the packed GEMM paths (d = 60), 1 BLAS thread.
Mat train(const std::string& env, const std::string& name) {
  const fs::path cfg = scratch() / (name + ".toml"), out = scratch() / name;
  std::ofstream(cfg) << R"([problem]
kind = "completion"
rows = 60
cols = 50
rank = 3
observations = 1200
seed = 3
[network]
depth = 3
width = 60
init = "gaussian"
init_scale = 0.3
seed = 4
[optimizer]
name = "gd"
lr = 0.3
[stop]
max_iters = 150
[record]
every = 50
)";
  const Output o =
      run_dln(env, "train --quiet --config " + cfg.string() + " --out " + out.string());
  EXPECT_EQ(o.code, 0) << o.err;
  return dln::io::read_npy_matrix((out / "end_to_end.npy").string());
}

std::string auto_choice() { return peak("").at("corename").get<std::string>(); }

}  // namespace

TEST(BlasKernel, SelfTestPassesOnTheKernelInUseAndRejectsAWrongProduct) {
  dln::blas::select_kernel();
  EXPECT_LE(dln::blas::self_test(), 1.0) << dln::blas::corename();
  // One entry off by 1e-9 (its rounding budget is ~1e-13) must fail; so must NaN.
  EXPECT_GT(dln::blas::self_test(1e-9), 100.0);
  EXPECT_GT(dln::blas::self_test(std::nan("")), 1.0);
}

TEST(BlasKernel, KernelNamesAndLevels) {
  dln::blas::Isa isa;
  ASSERT_TRUE(dln::blas::kernel_isa("skylakex", &isa));
  EXPECT_EQ(isa, dln::blas::Isa::kAvx512);
  ASSERT_TRUE(dln::blas::kernel_isa("Prescott", &isa));
  EXPECT_EQ(isa, dln::blas::Isa::kSse3);
  EXPECT_FALSE(dln::blas::kernel_isa("Pentium4000", &isa));
  const auto runnable = dln::blas::runnable_kernels();
  ASSERT_FALSE(runnable.empty());
  EXPECT_EQ(runnable.front(), "Prescott");
  EXPECT_EQ(runnable.back(), dln::blas::best_kernel(dln::blas::cpu_isa()));
}

TEST(BlasKernel, AutomaticChoiceIsTheBestTheCpuRuns) {
  if (std::getenv("OPENBLAS_CORETYPE") || std::getenv("DLN_BLAS_CORETYPE"))
    GTEST_SKIP() << "the environment chooses the kernel here";
  const json k = peak("");
  dln::blas::Isa have;
  ASSERT_TRUE(dln::blas::kernel_isa(k.at("corename"), &have)) << k.dump();
  EXPECT_GE(static_cast<int>(have), static_cast<int>(dln::blas::cpu_isa())) << k.dump();
  EXPECT_EQ(k.at("override"), "");
  EXPECT_LE(k.at("self_test_error").get<double>(), 1.0);
}

TEST(BlasKernel, GenericKernelIsReplacedByTheBestTheCpuRuns) {
  // As on CPUs OpenBLAS 0.3.21 does not recognize: it falls back to Prescott (SSE3).
  const json k = peak("DLN_BLAS_CORETYPE= DLN_BLAS_TEST_OPENBLAS_CHOICE=Prescott");
  const std::string best = dln::blas::best_kernel(dln::blas::cpu_isa());
  EXPECT_EQ(k.at("corename"), best);
  EXPECT_EQ(k.at("openblas_choice"), "Prescott");
  EXPECT_EQ(k.at("override"), "");
  if (best != "Prescott") {
    EXPECT_EQ(k.at("reason"), "OpenBLAS chose Prescott (sse3) on a CPU with " +
                                  k.at("cpu_isa").get<std::string>() + ": switched to " + best);
  }
  EXPECT_LE(k.at("self_test_error").get<double>(), 1.0);
  // The fall-back from a wrong best kernel returns to OpenBLAS's choice.
  if (best != "Prescott") {
    const Output o = run_dln(
        "DLN_BLAS_CORETYPE= DLN_BLAS_TEST_OPENBLAS_CHOICE=Prescott "
        "DLN_BLAS_SELFTEST_FAULT=" +
            best,
        "gemm-peak --size 8 --repeats 1");
    EXPECT_EQ(selected_line(o).at("corename"), "Prescott");
    EXPECT_EQ(o.err, "dln: warning: BLAS kernel " + best +
                         " failed dln's self-test (wrong products); using Prescott\n");
  }
}

TEST(BlasKernel, MachineSettingIsRespected) {
  const json k = peak("DLN_BLAS_CORETYPE= OPENBLAS_CORETYPE=Prescott");
  EXPECT_EQ(k.at("corename"), "Prescott");
  EXPECT_EQ(k.at("override"), "OPENBLAS_CORETYPE=Prescott");
  EXPECT_EQ(k.at("reason"), "OPENBLAS_CORETYPE set by the environment: respected");
}

TEST(BlasKernel, OverrideIsHonoured) {
  for (const std::string& name : dln::blas::runnable_kernels()) {
    const json k = peak("DLN_BLAS_CORETYPE=" + name);
    EXPECT_EQ(k.at("corename"), name);
    EXPECT_EQ(k.at("override"), "DLN_BLAS_CORETYPE=" + name);
    EXPECT_EQ(k.at("reason"), "set by DLN_BLAS_CORETYPE");
  }
  const Output bad = run_dln("DLN_BLAS_CORETYPE=Pentium4000", "gemm-peak --size 8");
  EXPECT_EQ(bad.code, 2);
  EXPECT_EQ(bad.err,
            "dln: error: DLN_BLAS_CORETYPE=Pentium4000: not an OpenBLAS kernel (e.g. Prescott, "
            "Sandybridge, Haswell, SkylakeX, or openblas for OpenBLAS's own choice)\n");
  if (dln::blas::cpu_isa() != dln::blas::Isa::kAvx512) {
    const Output too_new = run_dln("DLN_BLAS_CORETYPE=SkylakeX", "gemm-peak --size 8");
    EXPECT_EQ(too_new.code, 2);
    EXPECT_NE(too_new.err.find("needs avx512, this CPU has"), std::string::npos) << too_new.err;
  }
}

TEST(BlasKernel, WrongKernelFallsBackWithOneWarning) {
  const std::string chosen = auto_choice();
  if (chosen == "Prescott") {
    // Nothing lower to fall back to: every kernel fails, and dln says so.
    const Output o = run_dln("DLN_BLAS_SELFTEST_FAULT=all", "gemm-peak --size 8 --repeats 1");
    EXPECT_NE(o.err.find("no kernel passed"), std::string::npos) << o.err;
    return;
  }
  const Output o = run_dln("DLN_BLAS_SELFTEST_FAULT=" + chosen, "gemm-peak --size 8 --repeats 1");
  ASSERT_EQ(o.code, 0) << o.err;
  const json k = selected_line(o);
  EXPECT_NE(k.at("corename"), chosen);
  EXPECT_LE(k.at("self_test_error").get<double>(), 1.0);
  EXPECT_EQ(o.err, "dln: warning: BLAS kernel " + chosen +
                       " failed dln's self-test (wrong products); using " +
                       k.at("corename").get<std::string>() + "\n");
  // A run records the fall-back in summary.json.
  EXPECT_NE(k.at("reason").get<std::string>().find("failed dln's self-test"), std::string::npos);
}

TEST(BlasKernel, SameKernelSameBitsOtherKernelSameTrajectory) {
  const std::string chosen = auto_choice();
  const Mat automatic = train("", "auto");
  // However the same kernel is reached, the results are bit-identical.
  EXPECT_EQ(train("DLN_BLAS_CORETYPE=" + chosen, "forced"), automatic);
  if (!std::getenv("DLN_BLAS_CORETYPE")) {
    EXPECT_EQ(train("OPENBLAS_CORETYPE=" + chosen, "machine"), automatic);
  }
  // Another kernel rounds differently; the trajectory is the same to 1e-10 relative.
  for (const std::string& name : dln::blas::runnable_kernels()) {
    if (name == chosen) continue;
    const Mat other = train("DLN_BLAS_CORETYPE=" + name, "k_" + name);
    EXPECT_LE((other - automatic).norm(), 1e-10 * automatic.norm()) << name;
  }
}

TEST(BlasGemm, EveryPathMatchesAPlainLoopProduct) {
  // Shapes on both sides of the small-product path (every dimension <= 32), with tails that are
  // not multiples of the vector width, in every transpose form, with and without beta.
  const int shapes[][3] = {{1, 1, 1},    {3, 5, 7},    {20, 20, 20}, {32, 31, 29},
                           {33, 20, 20}, {20, 40, 20}, {17, 9, 64}};
  dln::Rng rng(9);
  for (const auto& s : shapes)
    for (int t = 0; t < 4; ++t)
      for (double beta : {0.0, 0.5}) {
        const int m = s[0], n = s[1], k = s[2];
        const bool ta = t & 1, tb = t & 2;
        const Mat a = ta ? rng.gaussian(k, m, 1.0) : rng.gaussian(m, k, 1.0);
        const Mat b = tb ? rng.gaussian(n, k, 1.0) : rng.gaussian(k, n, 1.0);
        const Mat c0 = rng.gaussian(m, n, 1.0);
        Mat c = c0;
        dln::blas::gemm(a, ta, b, tb, c, 2.0, beta);
        const Mat ref =
            2.0 * (ta ? Mat(a.transpose()) : a) * (tb ? Mat(b.transpose()) : b) + beta * c0;
        EXPECT_LE((c - ref).cwiseAbs().maxCoeff(), 1e-13 * k)
            << m << "x" << n << "x" << k << " ta=" << ta << " tb=" << tb << " beta=" << beta;
      }
}
