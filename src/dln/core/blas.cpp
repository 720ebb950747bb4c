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
// for l = 0..k-1 in registers, one fused multiply-add per term; NC columns at a time so that
// 4 NC Q independent accumulation chains hide the FMA latency.
constexpr int kSmall = 32;

// C(i, j) = alpha sum_l op(A)(i, l) op(B)(l, j) + beta C(i, j) (beta = 0: C is not read).
inline void store(double* cij, double sum, double alpha, double beta) {
  *cij = beta == 0.0 ? alpha * sum : alpha * sum + beta * *cij;
}

#if defined(__AVX2__) && defined(__FMA__)
// Rows [0, 4Q) of C(:, j0..j0+NC).
template <int Q, int NC>
inline void small_block(const double* a, int lda, const double* b, int ldb, bool trans_b, double* c,
                        int ldc, int k, int j0, double alpha, double beta) {
  __m256d v[NC][Q];
  for (int cc = 0; cc < NC; ++cc)
    for (int q = 0; q < Q; ++q) v[cc][q] = _mm256_setzero_pd();
  for (int l = 0; l < k; ++l) {
    const double* al = a + l * lda;
    __m256d x[Q];
    for (int q = 0; q < Q; ++q) x[q] = _mm256_loadu_pd(al + 4 * q);
    for (int cc = 0; cc < NC; ++cc) {
      const int j = j0 + cc;
      const __m256d blj = _mm256_set1_pd(trans_b ? b[l * ldb + j] : b[j * ldb + l]);
      for (int q = 0; q < Q; ++q) v[cc][q] = _mm256_fmadd_pd(x[q], blj, v[cc][q]);
    }
  }
  const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta);
  for (int cc = 0; cc < NC; ++cc)
    for (int q = 0; q < Q; ++q) {
      double* cj = c + (j0 + cc) * ldc + 4 * q;
      const __m256d r = _mm256_mul_pd(va, v[cc][q]);
      _mm256_storeu_pd(cj, beta == 0.0 ? r : _mm256_fmadd_pd(vb, _mm256_loadu_pd(cj), r));
    }
}

template <int Q>
void small_columns(const double* a, int lda, const double* b, int ldb, bool trans_b, double* c,
                   int ldc, int n, int k, double alpha, double beta) {
  constexpr int kCols = Q <= 3 ? 4 : Q <= 6 ? 2 : 1;  // NC Q <= 12 accumulators
  int j = 0;
  for (; j + kCols <= n; j += kCols)
    small_block<Q, kCols>(a, lda, b, ldb, trans_b, c, ldc, k, j, alpha, beta);
  for (; j < n; ++j) small_block<Q, 1>(a, lda, b, ldb, trans_b, c, ldc, k, j, alpha, beta);
}

using SmallColumns = void (*)(const double*, int, const double*, int, bool, double*, int, int, int,
                              double, double);
constexpr SmallColumns kSmallColumns[] = {nullptr,          small_columns<1>, small_columns<2>,
                                          small_columns<3>, small_columns<4>, small_columns<5>,
                                          small_columns<6>, small_columns<7>, small_columns<8>};
#endif

void gemm_small(const double* a, int lda, bool trans_a, const double* b, int ldb, bool trans_b,
                double* c, int m, int n, int k, double alpha, double beta) {
  double at[kSmall * kSmall];  // op(A) column-major when A is transposed
  if (trans_a) {
    for (int l = 0; l < k; ++l)
      for (int i = 0; i < m; ++i) at[l * m + i] = a[i * lda + l];
    a = at;
    lda = m;
  }
  int i0 = 0;
#if defined(__AVX2__) && defined(__FMA__)
  if (m >= 4) kSmallColumns[m / 4](a, lda, b, ldb, trans_b, c, m, n, k, alpha, beta);
  i0 = 4 * (m / 4);
#endif
  if (i0 == m) return;
  for (int j = 0; j < n; ++j)
    for (int i = i0; i < m; ++i) {
      double sum = 0.0;
      for (int l = 0; l < k; ++l)
        sum = std::fma(a[l * lda + i], trans_b ? b[l * ldb + j] : b[j * ldb + l], sum);
      store(c + j * m + i, sum, alpha, beta);
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
