// Standardization of regression data, as published for Figure 1 (left): every feature (a row
// of X, d_0 x m) and every target (a row of Y) shifted to zero mean and scaled to unit variance
// (population variance, 1/m).
#pragma once

#include "dln/core/types.hpp"

namespace dln {

struct Standardization {
  Vec mean;   // per row, before
  Vec scale;  // per row: the standard deviation, or 1 for a constant row (left at zero)
};

// Standardizes the rows of `data` in place and returns what was removed, so that
// original = standardized * scale + mean, row by row.
Standardization standardize_rows(Mat& data);

}  // namespace dln
