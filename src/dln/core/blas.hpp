// The BLAS behind every product (OpenBLAS): threads and which kernel runs.
#pragma once

#include <string>

namespace dln::blas {

void set_threads(int threads);
int threads();
std::string corename();  // e.g. "Haswell" (honours OPENBLAS_CORETYPE)
std::string config();    // OpenBLAS build configuration string
// Measured DGEMM rate (GFLOP/s) for size x size x size, best of `repeats`.
double measure_dgemm_gflops(int size, int repeats);

}  // namespace dln::blas
