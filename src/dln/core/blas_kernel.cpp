#include "dln/core/blas_kernel.hpp"

#include <strings.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <mutex>

#include "dln/core/blas.hpp"
#include "dln/core/types.hpp"

// OpenBLAS DYNAMIC_ARCH entry points (driver/others/dynamic.c): quit forgets the kernel table,
// init picks one again, honouring OPENBLAS_CORETYPE. Weak: absent from single-target builds.
extern "C" {
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));
}
// dgemm_ and dgemv_ are declared by Eigen's blas.h (EIGEN_USE_BLAS).

namespace dln::blas {

namespace {

struct KernelLevel {
  const char* name;
  Isa isa;
};
// OpenBLAS 0.3.21's x86-64 kernel names (dynamic.c corename[]) by the ISA their DGEMM needs.
constexpr KernelLevel kKernels[] = {
    {"Katmai", Isa::kSse3},       {"Coppermine", Isa::kSse3},
    {"Northwood", Isa::kSse3},    {"Prescott", Isa::kSse3},
    {"Banias", Isa::kSse3},       {"Atom", Isa::kSse3},
    {"Core2", Isa::kSse3},        {"Penryn", Isa::kSse3},
    {"Dunnington", Isa::kSse3},   {"Nehalem", Isa::kSse3},
    {"Athlon", Isa::kSse3},       {"Opteron", Isa::kSse3},
    {"Opteron_SSE3", Isa::kSse3}, {"Barcelona", Isa::kSse3},
    {"Nano", Isa::kSse3},         {"Bobcat", Isa::kSse3},
    {"Sandybridge", Isa::kAvx},   {"Bulldozer", Isa::kAvx},
    {"Piledriver", Isa::kAvx},    {"Steamroller", Isa::kAvx},
    {"Haswell", Isa::kAvx2},      {"Excavator", Isa::kAvx2},
    {"Zen", Isa::kAvx2},          {"SkylakeX", Isa::kAvx512},
    {"Cooperlake", Isa::kAvx512}, {"SapphireRapids", Isa::kAvx512},
};

bool same_name(const std::string& a, const char* b) { return strcasecmp(a.c_str(), b) == 0; }

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// A fixed pseudo-random fill in [-1, 1) (no dependence on the library's Rng streams).
void fill(std::vector<double>& v, unsigned long long seed) {
  for (double& x : v) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    x = static_cast<double>(seed >> 11) * 0x1.0p-52 - 1.0;
  }
}

// |computed - ref| in units of `unit` |terms| (the rounding budget of a length-k sum); NaN and
// Inf count as infinitely wrong.
double entry_error(double computed, double ref, double mag, double unit) {
  const double e = std::abs(computed - ref) / (unit * mag + 1e-300);
  return std::isnan(e) ? std::numeric_limits<double>::infinity() : e;
}

// Error of one C = op(A) op(B) (m x n, inner k) relative to k eps (|op A| |op B|), entrywise.
double gemm_error(int m, int n, int k, bool ta, bool tb, double fault) {
  std::vector<double> a(static_cast<std::size_t>(m) * k), b(static_cast<std::size_t>(k) * n),
      c(static_cast<std::size_t>(m) * n, 0.0);
  fill(a, 1000u * m + k + (ta ? 7 : 0));
  fill(b, 1000u * n + k + (tb ? 11 : 0));
  const int lda = ta ? k : m, ldb = tb ? n : k;
  const char ca = ta ? 'T' : 'N', cb = tb ? 'T' : 'N';
  const double one = 1.0, zero = 0.0;
  dgemm_(&ca, &cb, &m, &n, &k, &one, a.data(), &lda, b.data(), &ldb, &zero, c.data(), &m);
  c[c.size() / 2] += fault;
  auto at = [&](int i, int l) { return ta ? a[i * lda + l] : a[l * lda + i]; };
  auto bt = [&](int l, int j) { return tb ? b[l * ldb + j] : b[j * ldb + l]; };
  double worst = 0.0;
  const double unit = k * std::numeric_limits<double>::epsilon();
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double ref = 0.0, mag = 0.0;
      for (int l = 0; l < k; ++l) {
        ref += at(i, l) * bt(l, j);
        mag += std::abs(at(i, l) * bt(l, j));
      }
      worst = std::max(worst, entry_error(c[j * m + i], ref, mag, unit));
    }
  return worst;
}

double gemv_error(int m, int n, bool trans) {
  std::vector<double> a(static_cast<std::size_t>(m) * n), x(trans ? m : n), y(trans ? n : m, 0.0);
  fill(a, 77u * m + n);
  fill(x, 5u * n + m);
  const char t = trans ? 'T' : 'N';
  const int inc = 1;
  const double one = 1.0, zero = 0.0;
  dgemv_(&t, &m, &n, &one, a.data(), &m, x.data(), &inc, &zero, y.data(), &inc);
  const int len = trans ? m : n;
  const double unit = len * std::numeric_limits<double>::epsilon();
  double worst = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    double ref = 0.0, mag = 0.0;
    for (int l = 0; l < len; ++l) {
      const double p = trans ? a[i * m + l] * x[l] : a[l * m + i] * x[l];
      ref += p;
      mag += std::abs(p);
    }
    worst = std::max(worst, entry_error(y[i], ref, mag, unit));
  }
  return worst;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx:
      return "avx";
    default:
      return "sse3";
  }
}

Isa cpu_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return Isa::kAvx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::kAvx2;
  if (__builtin_cpu_supports("avx")) return Isa::kAvx;
#endif
  return Isa::kSse3;
}

std::string cpu_features() {
  std::string out;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  auto add = [&](const char* name, bool has) {
    if (!has) return;
    if (!out.empty()) out += ' ';
    out += name;
  };
  add("sse3", __builtin_cpu_supports("sse3"));
  add("ssse3", __builtin_cpu_supports("ssse3"));
  add("sse4.1", __builtin_cpu_supports("sse4.1"));
  add("sse4.2", __builtin_cpu_supports("sse4.2"));
  add("avx", __builtin_cpu_supports("avx"));
  add("avx2", __builtin_cpu_supports("avx2"));
  add("fma", __builtin_cpu_supports("fma"));
  add("avx512f", __builtin_cpu_supports("avx512f"));
  add("avx512cd", __builtin_cpu_supports("avx512cd"));
  add("avx512bw", __builtin_cpu_supports("avx512bw"));
  add("avx512dq", __builtin_cpu_supports("avx512dq"));
  add("avx512vl", __builtin_cpu_supports("avx512vl"));
#endif
  return out;
}

bool kernel_isa(const std::string& corename, Isa* isa) {
  for (const auto& k : kKernels)
    if (same_name(corename, k.name)) {
      if (isa) *isa = k.isa;
      return true;
    }
  return false;
}

const char* best_kernel(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "SkylakeX";
    case Isa::kAvx2:
      return "Haswell";
    case Isa::kAvx:
      return "Sandybridge";
    default:
      return "Prescott";
  }
}

std::vector<std::string> runnable_kernels() {
  std::vector<std::string> out;
  for (int l = 0; l <= static_cast<int>(cpu_isa()); ++l)
    out.emplace_back(best_kernel(static_cast<Isa>(l)));
  return out;
}

bool switch_kernel(const std::string& name) {
  if (!gotoblas_dynamic_init || !gotoblas_dynamic_quit || !kernel_isa(name, nullptr)) return false;
  if (same_name(corename(), name.c_str())) return true;
  // gotoblas_dynamic_init reads OPENBLAS_CORETYPE; the caller's environment is restored after,
  // so child processes make their own choice.
  const char* before = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = before ? before : "";
  setenv("OPENBLAS_CORETYPE", name.c_str(), 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  if (before)
    setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
  else
    unsetenv("OPENBLAS_CORETYPE");
  return same_name(corename(), name.c_str());
}

double self_test(double fault) {
  double worst = 0.0;
  // Small edge cases, then sizes past OpenBLAS's register and cache blocks in every dimension.
  const int sizes[][3] = {{3, 5, 7}, {67, 45, 131}, {130, 9, 400}};
  for (const auto& s : sizes)
    for (int t = 0; t < 4; ++t)
      worst = std::max(
          worst, gemm_error(s[0], s[1], s[2], t & 1, t & 2, s[1] == 45 && t == 0 ? fault : 0.0));
  worst = std::max({worst, gemv_error(97, 61, false), gemv_error(97, 61, true)});
  return worst;
}

namespace {

KernelChoice decide() {
  KernelChoice k;
  // Tests only: start as if OpenBLAS had picked this kernel by itself (OPENBLAS_CORETYPE unset).
  const std::string simulated = env("DLN_BLAS_TEST_OPENBLAS_CHOICE");
  if (!simulated.empty() && !switch_kernel(simulated))
    throw Error("DLN_BLAS_TEST_OPENBLAS_CHOICE=" + simulated + ": cannot switch to it");
  k.openblas_choice = corename();
  const Isa isa = cpu_isa();
  k.cpu_isa = isa_name(isa);
  const std::string forced = env("DLN_BLAS_CORETYPE");
  const std::string machine = simulated.empty() ? env("OPENBLAS_CORETYPE") : "";
  const std::string fault = env("DLN_BLAS_SELFTEST_FAULT");

  std::string want = k.openblas_choice;
  if (!forced.empty() && !same_name(forced, "openblas")) {
    Isa need;
    if (!kernel_isa(forced, &need))
      throw Error("DLN_BLAS_CORETYPE=" + forced +
                  ": not an OpenBLAS kernel (e.g. Prescott, Sandybridge, Haswell, SkylakeX, or "
                  "openblas for OpenBLAS's own choice)");
    if (need > isa)
      throw Error("DLN_BLAS_CORETYPE=" + forced + ": needs " + isa_name(need) + ", this CPU has " +
                  k.cpu_isa);
    want = forced;
    k.override_env = "DLN_BLAS_CORETYPE=" + forced;
    k.reason = "set by DLN_BLAS_CORETYPE";
  } else if (!forced.empty()) {
    k.override_env = "DLN_BLAS_CORETYPE=" + forced;
    k.reason = "OpenBLAS's own choice, kept by DLN_BLAS_CORETYPE=openblas";
  } else if (!machine.empty()) {
    k.override_env = "OPENBLAS_CORETYPE=" + machine;
    k.reason = "OPENBLAS_CORETYPE set by the environment: respected";
  } else {
    Isa have = Isa::kSse3;
    const bool known = kernel_isa(k.openblas_choice, &have);
    if (known && have < isa) {
      want = best_kernel(isa);
      k.reason = "OpenBLAS chose " + k.openblas_choice + " (" + isa_name(have) +
                 ") on a CPU with " + k.cpu_isa + ": switched to " + want;
    } else {
      k.reason = "OpenBLAS's own choice matches the CPU (" + k.cpu_isa + ")";
    }
  }

  // The kernel to use, then the fall-backs: OpenBLAS's own choice, then generic SSE3.
  std::vector<std::string> candidates{want, k.openblas_choice, "Prescott"};
  std::vector<std::string> tried;
  std::string failed;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const std::string& c = candidates[i];
    if (std::any_of(tried.begin(), tried.end(),
                    [&](const std::string& t) { return same_name(t, c.c_str()); }))
      continue;
    tried.push_back(c);
    if (!same_name(corename(), c.c_str()) && !switch_kernel(c)) {
      if (i == 0 && !same_name(want, k.openblas_choice.c_str()))
        k.reason += " (OpenBLAS could not switch; kept " + corename() + ")";
      continue;
    }
    const bool inject =
        !fault.empty() && (same_name(fault, "all") || same_name(fault, corename().c_str()));
    k.self_test_error = self_test(inject ? 1e-3 : 0.0);
    k.self_test_passed = k.self_test_error <= 1.0;
    if (k.self_test_passed) break;
    failed += (failed.empty() ? "" : ", ") + corename();
  }
  k.corename = corename();
  k.switched = !same_name(k.corename, k.openblas_choice.c_str());
  if (!failed.empty()) {
    k.warning =
        "BLAS kernel " + failed + " failed dln's self-test (wrong products); " +
        (k.self_test_passed ? "using " + k.corename : "no kernel passed, results may be wrong");
    k.reason += "; " + k.warning;
    std::fprintf(stderr, "dln: warning: %s\n", k.warning.c_str());
  }
  return k;
}

}  // namespace

const KernelChoice& select_kernel() {
  static KernelChoice choice;
  static std::once_flag once;
  static std::string error;
  std::call_once(once, [] {
    try {
      choice = decide();
    } catch (const Error& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw Error(error);
  return choice;
}

}  // namespace dln::blas
