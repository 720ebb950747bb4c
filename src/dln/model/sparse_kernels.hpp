// Kernels that keep the gradient of an entry-sparse loss sparse (Eq. 9 with A_i = e_r e_c^T).
// Raw column-major loops, cache-blocked over rows and split across OpenMP threads when large.
#pragma once

#include "dln/core/types.hpp"

namespace dln::sparse {

// out[i] = <a.col(ai[i]), b.col(bi[i])> - values[i]; a and b have the same number of rows.
void residuals(const Mat& a, const Mat& b, const Index* ai, const Index* bi, const double* values,
               Index m, double* out);

// For every i: t.col(target[i]) += g[i] * p.col(source[i]); t and p have the same number of rows.
// t is zeroed first.
void scatter_columns(Mat& t, const Mat& p, const Index* target, const Index* source,
                     const double* g, Index m);

}  // namespace dln::sparse
