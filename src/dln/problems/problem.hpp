// Training problems: a loss over d_n x d_0 matrices, its data, and (when synthetic) the ground
// truth.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dln/core/memory.hpp"
#include "dln/io/files.hpp"
#include "dln/losses/loss.hpp"
#include "dln/problems/standardize.hpp"

namespace dln {

// [problem] section of a config. rows = d_n (outputs / classes), cols = d_0 (inputs).
struct ProblemConfig {
  // completion | sensing | regression | lp_regression | logistic | tensor_completion |
  // tensor_sensing
  std::string kind = "completion";
  Index rows = 30, cols = 24, rank = 3;
  Index observations = 300;  // completion entries / sensing measurements
  Index samples = 100;       // regression / logistic examples
  std::uint64_t seed = 0;
  int p = 4;                            // lp_regression exponent (even)
  double noise = 0.0;                   // std of Gaussian label noise (regression kinds)
  double sensing_std = 0.0;             // entry std of sensing matrices; 0 = 1/sqrt(rows*cols)
  std::string reduction = "half_mean";  // Eq. 9 "half_mean" 1/(2m) or "mean" 1/m
  // Data from files instead of synthetic (any one set switches the problem to files).
  std::string observations_file;  // completion: row,col,value CSV (0-based)
  std::string sensing_file;       // sensing: .npy, m x rows x cols
  std::string measurements_file;  // sensing: .npy, m
  std::string x_file, y_file;     // regression: .npy d_0 x m and d_n x m
  std::string labels_file;        // logistic: .npy of m integer labels
  std::string ground_truth_file;  // optional .npy rows x cols
  // regression kinds: a CSV with a header row (io/table_csv.hpp) instead of x_file / y_file.
  std::string csv_file;
  std::vector<std::string> feature_columns;  // d_0 of them; empty: every column but the targets
  std::vector<std::string> target_columns;   // d_n of them, required with csv_file
  bool standardize = false;  // regression kinds: every row of X and Y to mean 0, variance 1
  // Tensor kinds (tensor_completion | tensor_sensing, dln/tensors): modes d_1..d_N, and the
  // Frobenius norm of the synthetic CP ground truth of rank `rank`.
  std::vector<Index> shape;
  double ground_truth_norm = 1.0;
  bool tensor() const { return kind == "tensor_completion" || kind == "tensor_sensing"; }
  bool from_files() const;
  void validate() const;  // throws Error naming problem.<key>
  // What make_problem allocates (the memory guard; Config::memory_estimate adds the network).
  memory::Estimate memory_estimate() const;
};

struct Problem {
  std::string kind;
  Index rows = 0, cols = 0;
  std::unique_ptr<Loss> loss;
  std::optional<Mat> ground_truth;
  // The data behind the loss, as written to the run directory.
  std::vector<io::Observation> observations;
  Mat sensing_a;  // m x (rows*cols), row i = vec(A_i) column-first
  Vec sensing_b;
  Mat x, y;
  std::vector<Index> labels;
  // problem.standardize: what was removed from the rows of x and y (data/X_mean.npy, ...).
  std::optional<Standardization> x_standardization, y_standardization;
};

Problem make_problem(const ProblemConfig& config);

// Writes data/observations.csv, data/sensing_A.npy + data/sensing_b.npy, data/X.npy + data/Y.npy
// or data/labels.npy, data/ground_truth.npy when known, and when standardized data/X_mean.npy,
// X_scale.npy, Y_mean.npy, Y_scale.npy.
void save_problem_data(const Problem& problem, const std::string& data_dir);

// Synthetic ground truth: U V^T, U (rows x rank), V (cols x rank) i.i.d. N(0, 1), scaled so that
// ||W*||_F = sqrt(rows * cols).
Mat low_rank_ground_truth(Index rows, Index cols, Index rank, std::uint64_t seed);

// m distinct entries of a rows x cols matrix, uniform without replacement (Floyd), sorted by
// (col, row).
std::vector<std::pair<Index, Index>> sample_entries(Index rows, Index cols, Index m,
                                                    std::uint64_t seed);

}  // namespace dln
