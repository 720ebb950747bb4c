#include "dln/model/sparse_kernels.hpp"

#include <algorithm>
#include <thread>
#include <vector>

#include "dln/core/blas.hpp"

namespace dln::sparse {

namespace {

// Work (m * rows) below which a single thread is faster than waking the pool.
constexpr double kParallelWork = 2e6;
// Bytes of the two matrices' row-block that should stay in L2 while the observations stream by.
constexpr double kBlockBytes = 384 * 1024;

// Runs body(begin, end) over [0, n) split evenly across the configured threads (plain threads:
// no second runtime spinning beside OpenBLAS's). Small work runs on the caller alone.
template <class Body>
void parallel_for(Index n, double work, const Body& body) {
  const Index threads = std::min<Index>(blas::threads(), n);
  if (threads <= 1 || work < kParallelWork) {
    body(Index{0}, n);
    return;
  }
  std::vector<std::jthread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  for (Index t = 1; t < threads; ++t)
    pool.emplace_back([&, t] { body(n * t / threads, n * (t + 1) / threads); });
  body(Index{0}, n / threads);
}

}  // namespace

void residuals(const Mat& a, const Mat& b, const Index* ai, const Index* bi, const double* values,
               Index m, double* out) {
  const Index k = a.rows();
  const double* pa = a.data();
  const double* pb = b.data();
  parallel_for(m, static_cast<double>(m) * static_cast<double>(k), [&](Index i0, Index i1) {
    for (Index i = i0; i < i1; ++i) {
      const double* x = pa + ai[i] * k;
      const double* y = pb + bi[i] * k;
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (Index r = 0; r < k; ++r) s += x[r] * y[r];
      out[i] = s - values[i];
    }
  });
}

void scatter_columns(Mat& t, const Mat& p, const Index* target, const Index* source,
                     const double* g, Index m) {
  const Index k = t.rows();
  double* pt = t.data();
  const double* pp = p.data();
  // Row blocks: each block of t and p (k_b x cols) stays cache resident across all observations,
  // and blocks are independent, so threads never write the same entry.
  const double bytes_per_row = 8.0 * static_cast<double>(t.cols() + p.cols());
  Index block = static_cast<Index>(kBlockBytes / bytes_per_row);
  block = std::clamp<Index>(block - block % 8, 32, std::max<Index>(k, 32));
  const Index blocks = (k + block - 1) / block;
  const Index cols = t.cols();
  parallel_for(blocks, static_cast<double>(m) * static_cast<double>(k), [&](Index b0, Index b1) {
    for (Index bidx = b0; bidx < b1; ++bidx) {
      const Index r0 = bidx * block, r1 = std::min(k, r0 + block);
      for (Index c = 0; c < cols; ++c) std::fill(pt + c * k + r0, pt + c * k + r1, 0.0);
      for (Index i = 0; i < m; ++i) {
        double* x = pt + target[i] * k;
        const double* y = pp + source[i] * k;
        const double gi = g[i];
#pragma omp simd
        for (Index r = r0; r < r1; ++r) x[r] += gi * y[r];
      }
    }
  });
}

}  // namespace dln::sparse
