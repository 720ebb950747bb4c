// Seeded random numbers with a portable normal sampler, so a seed fixes a run on every platform
// (std::normal_distribution is implementation-defined).
#pragma once

#include <cstdint>
#include <random>

#include "dln/core/types.hpp"

namespace dln {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  double uniform();                      // in [0, 1)
  double normal();                       // N(0, 1), Box-Muller
  std::uint64_t below(std::uint64_t n);  // uniform integer in [0, n)
  Mat gaussian(Index rows, Index cols, double stddev);

 private:
  std::mt19937_64 engine_;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace dln
