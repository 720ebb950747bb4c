#include "dln/problems/standardize.hpp"

#include <cmath>

namespace dln {

Standardization standardize_rows(Mat& data) {
  const Index m = data.cols();
  Standardization s;
  s.mean = Vec::Zero(data.rows());
  s.scale = Vec::Ones(data.rows());
  if (m == 0) return s;
  for (Index r = 0; r < data.rows(); ++r) {
    const double mean = data.row(r).mean();
    data.row(r).array() -= mean;
    const double sd = std::sqrt(data.row(r).squaredNorm() / static_cast<double>(m));
    s.mean(r) = mean;
    if (sd > 0) {
      data.row(r) /= sd;
      s.scale(r) = sd;
    }
  }
  return s;
}

}  // namespace dln
