// The BLAS behind every product (OpenBLAS): threads and which kernel runs.
#pragma once

#include <string>

#include "dln/core/types.hpp"

namespace dln::blas {

// C = alpha op(A) op(B) + beta C through dgemm (no Eigen temporaries, no zero-fill pass), or,
// when every dimension is <= 32, dln's own register-blocked FMA kernel (dgemm's call overhead
// is ~3x the arithmetic there); C must already have the result's shape.
void gemm(const Mat& a, bool trans_a, const Mat& b, bool trans_b, Mat& c, double alpha = 1.0,
          double beta = 0.0);

// out = a^T (OpenBLAS domatcopy: cache-blocked); out must already be a.cols() x a.rows().
void transpose(const Mat& a, Mat& out);

void set_threads(int threads);
int threads();
std::string corename();  // e.g. "Haswell" (honours OPENBLAS_CORETYPE)
std::string config();    // OpenBLAS build configuration string
// Measured DGEMM rate (GFLOP/s) for size x size x size, best of `repeats`.
double measure_dgemm_gflops(int size, int repeats);

}  // namespace dln::blas
