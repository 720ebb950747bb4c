#include "dln/model/sparse_kernels.hpp"

#include <algorithm>
#include <numeric>
#include <type_traits>

namespace dln::sparse {

namespace {

// Four doubles in one vector register (GCC/Clang vector extension: AVX2 where built for it,
// two SSE2 registers otherwise).
typedef double v4d __attribute__((vector_size(32)));

inline v4d load4(const double* p) {
  v4d v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(double* p, v4d v) { __builtin_memcpy(p, &v, sizeof v); }

// out.col(t)[r0, r0+N) = sum_p g[gpos(p)] * src.col(idx[p])[r0, r0+N) for t in [t0, t1), the
// N sums held in N/4 vector registers (N is a compile-time constant, so the loops unroll).
template <Index N, class GPos>
inline void accumulate_chunk(const double* src, Index ld, double* out, const Index* ptr,
                             const Index* idx, const double* g, const GPos& gpos, Index r0,
                             Index t0, Index t1) {
  static_assert(N % 4 == 0);
  for (Index t = t0; t < t1; ++t) {
    v4d acc[N / 4] = {};
    for (Index p = ptr[t]; p < ptr[t + 1]; ++p) {
      const double gs = g[gpos(p)];
      const v4d gv = {gs, gs, gs, gs};
      const double* s = src + idx[p] * ld + r0;
      for (Index q = 0; q < N / 4; ++q) acc[q] += gv * load4(s + 4 * q);
    }
    double* o = out + t * ld + r0;
    for (Index q = 0; q < N / 4; ++q) store4(o + 4 * q, acc[q]);
  }
}

// The same for a final chunk of len < 4 rows.
template <class GPos>
inline void accumulate_tail(const double* src, Index ld, double* out, const Index* ptr,
                            const Index* idx, const double* g, const GPos& gpos, Index r0,
                            Index len, Index t0, Index t1) {
  for (Index t = t0; t < t1; ++t) {
    double acc[4] = {};
    for (Index p = ptr[t]; p < ptr[t + 1]; ++p) {
      const double gs = g[gpos(p)];
      const double* s = src + idx[p] * ld + r0;
      for (Index r = 0; r < len; ++r) acc[r] += gs * s[r];
    }
    double* o = out + t * ld + r0;
    for (Index r = 0; r < len; ++r) o[r] = acc[r];
  }
}

// Row chunks of a k-row column: 32 while they fit, then 16, 8, 4, then the last 0-3 rows.
template <class F>
inline void for_each_chunk(Index k, const F& f) {
  Index r0 = 0;
  for (; r0 + 32 <= k; r0 += 32) f(std::integral_constant<Index, 32>{}, r0);
  if (r0 + 16 <= k) f(std::integral_constant<Index, 16>{}, r0), r0 += 16;
  if (r0 + 8 <= k) f(std::integral_constant<Index, 8>{}, r0), r0 += 8;
  if (r0 + 4 <= k) f(std::integral_constant<Index, 4>{}, r0), r0 += 4;
  if (r0 < k) f(std::integral_constant<Index, 0>{}, r0);
}

template <class GPos>
void gather_sum(const Mat& src, Index targets, const Index* ptr, const Index* idx, const double* g,
                const GPos& gpos, Mat& out) {
  const Index k = src.rows();
  const double* ps = src.data();
  double* po = out.data();
  for_each_chunk(k, [&](auto n, Index r0) {
    if constexpr (n() > 0)
      accumulate_chunk<n()>(ps, k, po, ptr, idx, g, gpos, r0, 0, targets);
    else
      accumulate_tail(ps, k, po, ptr, idx, g, gpos, r0, k - r0, 0, targets);
  });
}

}  // namespace

Pattern make_pattern(Index rows, Index cols, const std::vector<Index>& r,
                     const std::vector<Index>& c, const std::vector<double>& b) {
  Pattern p;
  p.rows = rows;
  p.cols = cols;
  const std::size_t m = b.size();
  std::vector<std::size_t> order(m);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    return c[x] != c[y] ? c[x] < c[y] : r[x] < r[y];
  });
  p.col_ptr.assign(static_cast<std::size_t>(cols) + 1, 0);
  p.row_ptr.assign(static_cast<std::size_t>(rows) + 1, 0);
  for (std::size_t q = 0; q < m; ++q) {
    const std::size_t i = order[q];
    p.row_idx.push_back(r[i]);
    p.values.push_back(b[i]);
    ++p.col_ptr[static_cast<std::size_t>(c[i]) + 1];
    ++p.row_ptr[static_cast<std::size_t>(r[i]) + 1];
  }
  std::partial_sum(p.col_ptr.begin(), p.col_ptr.end(), p.col_ptr.begin());
  std::partial_sum(p.row_ptr.begin(), p.row_ptr.end(), p.row_ptr.begin());
  p.col_idx.resize(m);
  p.csc_pos.resize(m);
  std::vector<Index> next(p.row_ptr.begin(), p.row_ptr.end() - 1);
  for (Index col = 0; col < cols; ++col)
    for (Index q = p.col_ptr[col]; q < p.col_ptr[col + 1]; ++q) {
      const Index slot = next[p.row_idx[q]]++;
      p.col_idx[slot] = col;
      p.csc_pos[slot] = q;
    }
  return p;
}

Index balanced_split(const std::vector<Index>& ptr) {
  const Index half = ptr.back() / 2;
  return static_cast<Index>(std::lower_bound(ptr.begin(), ptr.end(), half) - ptr.begin());
}

void residuals(const Mat& a, const Mat& b, const Pattern& pat, double* res, Index c0, Index c1) {
  const Index k = a.rows();
  const double* pa = a.data();
  const double* pb = b.data();
  const Index* ptr = pat.col_ptr.data();
  const Index* idx = pat.row_idx.data();
  if (c1 < 0) c1 = pat.cols;
  for (Index p = ptr[c0]; p < ptr[c1]; ++p) res[p] = -pat.values[static_cast<std::size_t>(p)];
  for_each_chunk(k, [&](auto n, Index r0) {
    constexpr Index N = n();
    for (Index c = c0; c < c1; ++c) {
      const double* y = pb + c * k + r0;
      if constexpr (N > 0) {
        // b's chunk stays in N/4 registers while a's columns stream by.
        v4d yv[N / 4];
        for (Index q = 0; q < N / 4; ++q) yv[q] = load4(y + 4 * q);
        for (Index p = ptr[c]; p < ptr[c + 1]; ++p) {
          const double* x = pa + idx[p] * k + r0;
          v4d sum = load4(x) * yv[0];
          for (Index q = 1; q < N / 4; ++q) sum += load4(x + 4 * q) * yv[q];
          res[p] += (sum[0] + sum[1]) + (sum[2] + sum[3]);
        }
      } else {
        const Index len = k - r0;
        for (Index p = ptr[c]; p < ptr[c + 1]; ++p) {
          const double* x = pa + idx[p] * k + r0;
          double sum = 0.0;
          for (Index r = 0; r < len; ++r) sum += x[r] * y[r];
          res[p] += sum;
        }
      }
    }
  });
}

void times_sparse(const Mat& src, const Pattern& pat, const double* g, Mat& out) {
  gather_sum(
      src, pat.cols, pat.col_ptr.data(), pat.row_idx.data(), g, [](Index p) { return p; }, out);
}

void times_sparse_transpose(const Mat& src, const Pattern& pat, const double* g, Mat& out) {
  const Index* pos = pat.csc_pos.data();
  gather_sum(
      src, pat.rows, pat.row_ptr.data(), pat.col_idx.data(), g, [pos](Index p) { return pos[p]; },
      out);
}

void to_row_order(const Pattern& pat, const double* g, double* g_rows) {
  const Index* pos = pat.csc_pos.data();
  for (Index p = 0; p < pat.size(); ++p) g_rows[p] = g[pos[p]];
}

void times_sparse_transpose_rows(const Mat& src, const Pattern& pat, const double* g_rows,
                                 Mat& out) {
  gather_sum(
      src, pat.rows, pat.row_ptr.data(), pat.col_idx.data(), g_rows, [](Index p) { return p; },
      out);
}

}  // namespace dln::sparse
