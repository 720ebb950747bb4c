#include "dln/core/blas.hpp"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>

#include "dln/core/rng.hpp"

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
char* openblas_get_config(void);
void cblas_domatcopy(int order, int trans, int rows, int cols, double alpha, const double* a,
                     int lda, double* b, int ldb);
}
// dgemm_ itself is declared by Eigen's blas.h (EIGEN_USE_BLAS).

namespace dln::blas {

namespace {

// Products with every dimension <= kSmall: a dgemm call costs ~1 us of overhead (dispatch,
// packing) on 20 x 20 matrices, about 3x the arithmetic. C(:, j) accumulates op(A)(:, l) b_lj
// for l = 0..k-1 in registers, one fused multiply-add per term where the CPU has FMA.
constexpr int kSmall = 32;

void gemm_small(const double* a, int lda, bool trans_a, const double* b, int ldb, bool trans_b,
                double* c, int m, int n, int k, double alpha, double beta) {
  double at[kSmall * kSmall];  // op(A) column-major when A is transposed
  if (trans_a) {
    for (int l = 0; l < k; ++l)
      for (int i = 0; i < m; ++i) at[l * m + i] = a[i * lda + l];
    a = at;
    lda = m;
  }
  double acc[kSmall];
  for (int j = 0; j < n; ++j) {
    int i0 = 0;
#if defined(__AVX2__) && defined(__FMA__)
    __m256d v[kSmall / 4];
    const int vec = m / 4;
    for (int q = 0; q < vec; ++q) v[q] = _mm256_setzero_pd();
    for (int l = 0; l < k; ++l) {
      const __m256d blj = _mm256_set1_pd(trans_b ? b[l * ldb + j] : b[j * ldb + l]);
      const double* al = a + l * lda;
      for (int q = 0; q < vec; ++q) v[q] = _mm256_fmadd_pd(_mm256_loadu_pd(al + 4 * q), blj, v[q]);
    }
    for (int q = 0; q < vec; ++q) _mm256_storeu_pd(acc + 4 * q, v[q]);
    i0 = 4 * vec;
#endif
    for (int i = i0; i < m; ++i) acc[i] = 0.0;
    for (int l = 0; l < k; ++l) {
      const double blj = trans_b ? b[l * ldb + j] : b[j * ldb + l];
      for (int i = i0; i < m; ++i) acc[i] = std::fma(a[l * lda + i], blj, acc[i]);
    }
    double* cj = c + j * m;
    if (beta == 0.0) {
      for (int i = 0; i < m; ++i) cj[i] = alpha * acc[i];
    } else {
      for (int i = 0; i < m; ++i) cj[i] = alpha * acc[i] + beta * cj[i];
    }
  }
}

}  // namespace

void gemm(const Mat& a, bool trans_a, const Mat& b, bool trans_b, Mat& c, double alpha,
          double beta) {
  const int m = static_cast<int>(c.rows()), n = static_cast<int>(c.cols());
  const int k = static_cast<int>(trans_a ? a.rows() : a.cols());
  eigen_assert((trans_a ? a.cols() : a.rows()) == m && (trans_b ? b.rows() : b.cols()) == n &&
               (trans_b ? b.cols() : b.rows()) == k);
  if (m == 0 || n == 0) return;
  if (m <= kSmall && n <= kSmall && k <= kSmall) {
    gemm_small(a.data(), static_cast<int>(a.rows()), trans_a, b.data(), static_cast<int>(b.rows()),
               trans_b, c.data(), m, n, k, alpha, beta);
    return;
  }
  const char ta = trans_a ? 'T' : 'N', tb = trans_b ? 'T' : 'N';
  const int lda = std::max(1, static_cast<int>(a.rows())),
            ldb = std::max(1, static_cast<int>(b.rows()));
  dgemm_(&ta, &tb, &m, &n, &k, &alpha, a.data(), &lda, b.data(), &ldb, &beta, c.data(), &m);
}

void transpose(const Mat& a, Mat& out) {
  eigen_assert(out.rows() == a.cols() && out.cols() == a.rows());
  if (a.size() == 0) return;
  constexpr int kColMajor = 102, kTrans = 112;  // CBLAS_ORDER, CBLAS_TRANSPOSE
  cblas_domatcopy(kColMajor, kTrans, static_cast<int>(a.rows()), static_cast<int>(a.cols()), 1.0,
                  a.data(), static_cast<int>(a.rows()), out.data(), static_cast<int>(out.rows()));
}

void set_threads(int t) { openblas_set_num_threads(std::max(1, t)); }
int threads() { return openblas_get_num_threads(); }
std::string corename() { return openblas_get_corename(); }
std::string config() { return openblas_get_config(); }

double measure_dgemm_gflops(int size, int repeats) {
  Rng rng(1);
  const Mat a = rng.gaussian(size, size, 1.0);
  const Mat b = rng.gaussian(size, size, 1.0);
  Mat c(size, size);
  c.noalias() = a * b;  // warm-up
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    c.noalias() = a * b;
    const auto t1 = std::chrono::steady_clock::now();
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  const double flops = 2.0 * size * double(size) * size;
  return flops / best * 1e-9;
}

}  // namespace dln::blas
