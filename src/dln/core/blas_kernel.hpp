// Which BLAS kernel runs: OpenBLAS (DYNAMIC_ARCH) picks its kernel table once, at load time, from
// the CPU model or OPENBLAS_CORETYPE. On CPUs it does not recognize (common on cloud VMs) it falls
// back to generic SSE3 ("Prescott") kernels, 4-5x below what an AVX-512 CPU does. select_kernel()
// checks the CPU's instruction sets, switches to the best kernel the CPU can run when OpenBLAS's
// choice is below it, and verifies the kernel in use against a reference product before trusting
// it (docs/blas.md).
#pragma once

#include <string>
#include <vector>

namespace dln::blas {

// The vector ISA levels that matter for DGEMM kernels, lowest first.
enum class Isa { kSse3 = 0, kAvx = 1, kAvx2 = 2, kAvx512 = 3 };
const char* isa_name(Isa isa);  // "sse3", "avx", "avx2", "avx512"

// The CPU's best level (cpuid through __builtin_cpu_supports, which also checks that the OS saves
// the wider registers).
Isa cpu_isa();
// The CPU's instruction sets of interest, e.g. "sse3 ssse3 sse4.1 sse4.2 avx avx2 fma avx512f ...".
std::string cpu_features();

// The level an OpenBLAS kernel needs (case-insensitive name, e.g. "SkylakeX" -> kAvx512); false
// for a name OpenBLAS does not know.
bool kernel_isa(const std::string& corename, Isa* isa);
// The best kernel for each level: "Prescott", "Sandybridge", "Haswell", "SkylakeX".
const char* best_kernel(Isa isa);
// The kernels this CPU can run, one per level, lowest first.
std::vector<std::string> runnable_kernels();

// Switches OpenBLAS to `corename` (re-running its DYNAMIC_ARCH initialization). Returns false when
// this OpenBLAS cannot switch (not DYNAMIC_ARCH) or does not know the name. Not thread-safe: no
// BLAS call may run concurrently.
bool switch_kernel(const std::string& corename);

// The kernel self-test: DGEMM in its four transpose forms on odd sizes (edge kernels and full
// blocks), and DGEMV, against a plain-loop reference. Returns the largest error relative to
// k eps (|A| |B|) entrywise; <= 1 passes. `fault` > 0 adds that much to one entry of the BLAS
// result first (tests: a deliberately wrong kernel).
double self_test(double fault = 0.0);

struct KernelChoice {
  std::string corename;         // the kernel in use, as OpenBLAS names it
  std::string openblas_choice;  // what OpenBLAS picked by itself at load time
  std::string cpu_isa;          // isa_name(cpu_isa())
  std::string reason;           // one line: why this kernel
  std::string override_env;     // "DLN_BLAS_CORETYPE=..." or "OPENBLAS_CORETYPE=..." if either
                                // decided; "" when chosen automatically
  bool switched = false;        // dln changed OpenBLAS's choice
  bool self_test_passed = false;
  double self_test_error = 0.0;  // self_test() of the kernel in use
  std::string warning;           // non-empty after a fall-back (also printed once to stderr)
};

// Decides once per process (later calls return the first answer); call before any threads use
// BLAS. Reads DLN_BLAS_CORETYPE (a kernel name, or "openblas" to keep OpenBLAS's own choice),
// then OPENBLAS_CORETYPE (respected as set), else picks best_kernel(cpu_isa()) when OpenBLAS's
// choice is below it. The kernel in use must pass self_test(); otherwise dln falls back to
// OpenBLAS's own choice, then to Prescott, with a one-line warning. Throws dln::Error for a
// DLN_BLAS_CORETYPE that is unknown or needs instructions this CPU lacks.
// Tests only: DLN_BLAS_SELFTEST_FAULT=<name> or "all" makes the self-test of that kernel fail;
// DLN_BLAS_TEST_OPENBLAS_CHOICE=<name> starts as if OpenBLAS had picked <name> by itself.
const KernelChoice& select_kernel();

}  // namespace dln::blas
