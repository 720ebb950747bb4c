// Tensor completion and tensor sensing problems (Section 5): synthetic CP ground truths of a given
// rank and Frobenius norm, or the user's observations (CSV) and sensing tensors (.npy).
#pragma once

#include <optional>
#include <string>

#include "dln/losses/loss.hpp"
#include "dln/problems/problem.hpp"
#include "dln/tensors/objective.hpp"

namespace dln::tensors {

// Ground truths at most this large are kept dense (records of the reconstruction error,
// data/ground_truth.npy, end_to_end.npy).
constexpr double kDenseEntries = 1e6;

struct TensorProblem {
  std::string kind;  // tensor_completion | tensor_sensing
  Shape shape;
  Reduction reduction = Reduction::kHalfMean;
  Observations observations;  // completion
  Mat sensing_a;              // sensing: m x (d_1...d_N), row i = A_i in C order
  Vec sensing_b;
  std::optional<TensorTruth> truth;  // dense W*, when known and at most kDenseEntries
  Factors truth_factors;             // synthetic: W* = [U*_1, ..., U*_N], d_k x rank
};

// Synthetic (problem.seed): U*_k i.i.d. N(0, 1), scaled together so ||W*||_F =
// problem.ground_truth_norm; completion samples problem.observations distinct entries uniformly
// (seed + 1); sensing draws A_i with i.i.d. N(0, sensing_std^2) entries (0: 1/sqrt(d_1...d_N),
// seed + 2) and b_i = <A_i, W*>.
TensorProblem make_tensor_problem(const ProblemConfig& config);

// data/observations.csv (i1,...,iN,value) or data/sensing_A.npy (m x d_1 x ... x d_N) and
// data/sensing_b.npy; data/ground_truth.npy (d_1 x ... x d_N) when dense; the synthetic
// factors as data/ground_truth_U1.npy .. UN.npy.
void save_tensor_problem_data(const TensorProblem& problem, const std::string& data_dir);

// CP factors N(0, 1) of the given rank, scaled so the tensor has Frobenius norm `norm`.
Factors cp_ground_truth(const Shape& shape, Index rank, double norm, std::uint64_t seed);
// ||[U_1, ..., U_N]||_F from Gram matrices: sqrt(1^T (U_1^T U_1 * ... * U_N^T U_N) 1).
double cp_norm(const Factors& u);

// The objective of the problem over a network.
TensorObjective make_tensor_objective(const TensorProblem& problem, const TensorNetworkSpec& spec);

}  // namespace dln::tensors
