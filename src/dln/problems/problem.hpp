// Training problems: a loss over d_n x d_0 matrices, its data, and (when synthetic) the ground
// truth.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "dln/core/memory.hpp"
#include "dln/io/files.hpp"
#include "dln/losses/loss.hpp"

namespace dln {

// [problem] section of a config. rows = d_n (outputs / classes), cols = d_0 (inputs).
struct ProblemConfig {
  std::string kind = "completion";  // completion | sensing | regression | lp_regression | logistic
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
};

Problem make_problem(const ProblemConfig& config);

// Writes data/observations.csv, data/sensing_A.npy + data/sensing_b.npy, data/X.npy + data/Y.npy
// or data/labels.npy, and data/ground_truth.npy when known.
void save_problem_data(const Problem& problem, const std::string& data_dir);

// Synthetic ground truth: U V^T, U (rows x rank), V (cols x rank) i.i.d. N(0, 1), scaled so that
// ||W*||_F = sqrt(rows * cols).
Mat low_rank_ground_truth(Index rows, Index cols, Index rank, std::uint64_t seed);

// m distinct entries of a rows x cols matrix, uniform without replacement (Floyd), sorted by
// (col, row).
std::vector<std::pair<Index, Index>> sample_entries(Index rows, Index cols, Index m,
                                                    std::uint64_t seed);

}  // namespace dln
