// Kernels that keep the gradient of an entry-sparse loss sparse (Eq. 9 with A_i = e_r e_c^T).
// Observations are held twice: by column (CSC, the residual order) and by row (CSR, with a
// permutation into CSC order). Each kernel accumulates 32-row chunks in registers while the
// chunk's source block stays in cache. residuals() can work on a range of columns, so that two
// threads split the pass with bit-identical results (Objective's two-thread step).
#pragma once

#include <vector>

#include "dln/core/types.hpp"

namespace dln::sparse {

// The observed pattern of a rows x cols matrix in both orders.
struct Pattern {
  Index rows = 0, cols = 0;
  std::vector<Index> col_ptr, row_idx;  // CSC: entries of column c are [col_ptr[c], col_ptr[c+1])
  std::vector<double> values;           // b in CSC order
  std::vector<Index> row_ptr, col_idx, csc_pos;  // CSR: column and CSC position of each entry
  Index size() const { return static_cast<Index>(row_idx.size()); }
};
Pattern make_pattern(Index rows, Index cols, const std::vector<Index>& r,
                     const std::vector<Index>& c, const std::vector<double>& b);

// The index s that splits [0, ptr.size() - 1) into two ranges with about half the entries each
// (ptr: col_ptr or row_ptr).
Index balanced_split(const std::vector<Index>& ptr);

// res[p] = <a.col(row_idx[p]), b.col(c)> - values[p] for every entry p (CSC order) of columns
// c in [c0, c1) (c1 < 0: all), where a is k x rows and b is k x cols.
void residuals(const Mat& a, const Mat& b, const Pattern& pat, double* res, Index c0 = 0,
               Index c1 = -1);

// out.col(c) = sum_{p in column c} g[p] * src.col(row_idx[p])   (out = src G, G sparse rows x cols)
void times_sparse(const Mat& src, const Pattern& pat, const double* g, Mat& out);

// out.col(r) = sum_{p in row r} g[csc_pos[p]] * src.col(col_idx[p])   (out = src G^T)
void times_sparse_transpose(const Mat& src, const Pattern& pat, const double* g, Mat& out);

// g_rows[p] = g[csc_pos[p]]: an entry vector in CSC order rearranged into CSR order, so that
// repeated src G^T products read it contiguously (times_sparse_transpose_rows).
void to_row_order(const Pattern& pat, const double* g, double* g_rows);
// out.col(r) = sum_{p in row r} g_rows[p] * src.col(col_idx[p])   (out = src G^T)
void times_sparse_transpose_rows(const Mat& src, const Pattern& pat, const double* g_rows,
                                 Mat& out);

}  // namespace dln::sparse
