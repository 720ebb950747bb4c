// Quantities the notes reason about, computed from factors or the end-to-end matrix.
#pragma once

#include <optional>

#include "dln/model/network.hpp"

namespace dln {

// Definition 1: max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F (0 for depth 1).
double unbalancedness(const Factors& w);

// Singular values in descending order (LAPACK dgesdd, values only).
Vec singular_values(const Mat& m);

// Roy & Vetterli 2007: exp(H(p)), p_i = sigma_i / sum sigma (0 for the zero matrix).
double effective_rank(const Vec& sigma);

// Everything recorded about an end-to-end matrix at one point of training.
struct EndToEndMetrics {
  double fro_norm = 0, nuclear_norm = 0, spectral_norm = 0, effective_rank = 0;
  // Against a ground truth W*: mean((W - W*)^2) and ||W - W*||_F / ||W*||_F.
  std::optional<double> recon_mse, recon_rel_error;
  Vec singular_values;
};
EndToEndMetrics end_to_end_metrics(const Mat& w, const Mat* ground_truth);

}  // namespace dln
