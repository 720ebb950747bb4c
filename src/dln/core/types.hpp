// Basic types shared by every module of dln.
#pragma once

#include <Eigen/Dense>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dln {

using Mat = Eigen::MatrixXd;  // column-major, float64
using Vec = Eigen::VectorXd;
using Index = Eigen::Index;

// Every user-facing failure (bad config, bad data file, impossible option) is an Error whose
// what() is one line naming the field or file (and line) at fault.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace dln
