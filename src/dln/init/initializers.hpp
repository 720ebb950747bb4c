// Initial factors W_1(0)..W_n(0).
#pragma once

#include <cstdint>
#include <string>

#include "dln/model/network.hpp"

namespace dln {

enum class InitKind { kGaussian, kBalanced, kIdentity, kOrthogonal, kFile };
InitKind parse_init(const std::string& s);  // throws Error naming network.init
std::string to_string(InitKind k);

struct InitOptions {
  InitKind kind = InitKind::kGaussian;
  // gaussian: entry std of every factor; balanced: entry std of the sampled end-to-end matrix;
  // identity: W_j = scale * I (rectangular); orthogonal: W_j = scale * Q, Q (semi-)orthogonal.
  double scale = 0.1;
  std::uint64_t seed = 0;
  std::string path;  // file: directory holding W1.npy .. Wn.npy
};

// Throws Error on shapes that the kind cannot produce or files that do not match dims.
Factors initialize(const std::vector<Index>& dims, const InitOptions& options);

// Procedure 1 of Arora et al. 2019a: split the SVD of `target` (d_n x d_0) evenly across the
// layers: W_1 = S^{1/n} V^T, W_j = S^{1/n}, W_n = U S^{1/n}, zero-padded to the hidden widths.
// Unbalancedness (Def. 1) is zero to rounding. With a hidden width below min(d_0, d_n) the
// product is the best approximation of `target` of that rank.
Factors balanced_factors(const std::vector<Index>& dims, const Mat& target);

}  // namespace dln
