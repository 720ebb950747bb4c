#include "dln/problems/problem.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <unordered_set>

#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"
#include "dln/io/table_csv.hpp"
#include "dln/tensors/entries.hpp"

namespace dln {

namespace {

const char* const kKinds[] = {"completion", "sensing",           "regression",    "lp_regression",
                              "logistic",   "tensor_completion", "tensor_sensing"};

Mat scaled_low_rank(Rng& rng, Index rows, Index cols, Index rank) {
  const Mat u = rng.gaussian(rows, rank, 1.0);
  const Mat v = rng.gaussian(cols, rank, 1.0);
  Mat w = u * v.transpose();
  const double norm = w.norm();
  if (norm > 0) w *= std::sqrt(static_cast<double>(rows) * static_cast<double>(cols)) / norm;
  return w;
}

std::string path_in(const std::string& dir, const char* name) {
  return (std::filesystem::path(dir) / name).string();
}

// Tensor kinds (Section 5): the shape, the synthetic setup, and which files they read.
void validate_tensor(const ProblemConfig& c) {
  tensors::validate_shape(c.shape, "problem.shape");
  parse_reduction(c.reduction);
  if (!std::isfinite(c.sensing_std) || c.sensing_std < 0)
    throw Error("problem.sensing_std: must be finite and >= 0");
  const bool completion = c.kind == "tensor_completion";
  const std::pair<const char*, bool> keys[] = {{"observations_file", !c.observations_file.empty()},
                                               {"sensing_file", !c.sensing_file.empty()},
                                               {"measurements_file", !c.measurements_file.empty()},
                                               {"x_file", !c.x_file.empty()},
                                               {"y_file", !c.y_file.empty()},
                                               {"labels_file", !c.labels_file.empty()},
                                               {"csv_file", !c.csv_file.empty()},
                                               {"feature_columns", !c.feature_columns.empty()},
                                               {"target_columns", !c.target_columns.empty()},
                                               {"standardize", c.standardize}};
  for (const auto& [key, set] : keys) {
    const std::string k = key;
    const bool used =
        completion ? k == "observations_file" : (k == "sensing_file" || k == "measurements_file");
    if (set && !used)
      throw Error(fmt::format("problem.{}: not read by kind = \"{}\"", key, c.kind));
  }
  if (c.sensing_file.empty() && !c.measurements_file.empty())
    throw Error("problem.sensing_file: required with problem.measurements_file");
  if (!c.sensing_file.empty() && c.measurements_file.empty())
    throw Error("problem.measurements_file: required with problem.sensing_file");
  if (!c.from_files() && !c.ground_truth_file.empty())
    throw Error("problem.ground_truth_file: only read with observations or sensing files");
  const double entries = tensors::entry_count(c.shape);
  if (c.from_files()) return;
  if (c.rank <= 0) throw Error(fmt::format("problem.rank: must be > 0, got {}", c.rank));
  if (!std::isfinite(c.ground_truth_norm) || c.ground_truth_norm <= 0)
    throw Error("problem.ground_truth_norm: must be finite and > 0");
  if (c.observations <= 0)
    throw Error(fmt::format("problem.observations: must be > 0, got {}", c.observations));
  if (completion && static_cast<double>(c.observations) > entries)
    throw Error(fmt::format("problem.observations: {} exceeds the {:.0f} entries of the tensor",
                            c.observations, entries));
}

}  // namespace

bool ProblemConfig::from_files() const {
  return !observations_file.empty() || !sensing_file.empty() || !measurements_file.empty() ||
         !x_file.empty() || !y_file.empty() || !labels_file.empty() || !csv_file.empty();
}

void ProblemConfig::validate() const {
  if (std::find(std::begin(kKinds), std::end(kKinds), kind) == std::end(kKinds))
    throw Error(fmt::format(
        "problem.kind: expected one of completion, sensing, regression, lp_regression, logistic, "
        "tensor_completion, tensor_sensing; got \"{}\"",
        kind));
  if (tensor()) return validate_tensor(*this);
  if (rows <= 0) throw Error(fmt::format("problem.rows: must be > 0, got {}", rows));
  if (cols <= 0) throw Error(fmt::format("problem.cols: must be > 0, got {}", cols));
  parse_reduction(reduction);
  if (kind == "lp_regression" && (p < 2 || p % 2 != 0))
    throw Error(fmt::format("problem.p: must be an even integer >= 2, got {}", p));
  if (!std::isfinite(noise) || noise < 0) throw Error("problem.noise: must be finite and >= 0");
  if (!std::isfinite(sensing_std) || sensing_std < 0)
    throw Error("problem.sensing_std: must be finite and >= 0");
  // A data file (or key) of another kind would be ignored and the data made up: refuse it.
  const std::pair<const char*, bool> keys[] = {{"observations_file", !observations_file.empty()},
                                               {"sensing_file", !sensing_file.empty()},
                                               {"measurements_file", !measurements_file.empty()},
                                               {"x_file", !x_file.empty()},
                                               {"y_file", !y_file.empty()},
                                               {"labels_file", !labels_file.empty()},
                                               {"csv_file", !csv_file.empty()},
                                               {"feature_columns", !feature_columns.empty()},
                                               {"target_columns", !target_columns.empty()},
                                               {"standardize", standardize}};
  for (const auto& [key, set] : keys) {
    const std::string k = key;
    const bool used = kind == "completion" ? k == "observations_file"
                      : kind == "sensing"  ? (k == "sensing_file" || k == "measurements_file")
                      : kind == "logistic"
                          ? (k == "x_file" || k == "labels_file")
                          : (k == "x_file" || k == "y_file" || k == "csv_file" ||
                             k == "feature_columns" || k == "target_columns" || k == "standardize");
    if (set && !used) throw Error(fmt::format("problem.{}: not read by kind = \"{}\"", key, kind));
  }
  if (!csv_file.empty()) {
    for (const auto& [key, file] : {std::pair{"x_file", &x_file}, std::pair{"y_file", &y_file}})
      if (!file->empty())
        throw Error(fmt::format(
            "problem.csv_file: given with problem.{} (the data come from one or the other)", key));
    if (target_columns.empty())
      throw Error("problem.target_columns: required with problem.csv_file");
  } else {
    for (const auto& [key, names] : {std::pair{"feature_columns", &feature_columns},
                                     std::pair{"target_columns", &target_columns}})
      if (!names->empty()) throw Error(fmt::format("problem.{}: needs problem.csv_file", key));
  }
  if (from_files()) return;
  if (rank <= 0) throw Error(fmt::format("problem.rank: must be > 0, got {}", rank));
  if (rank > std::min(rows, cols))
    throw Error(
        fmt::format("problem.rank: {} exceeds min(rows, cols) = {}", rank, std::min(rows, cols)));
  if (kind == "completion" || kind == "sensing") {
    if (observations <= 0)
      throw Error(fmt::format("problem.observations: must be > 0, got {}", observations));
    const double entries = static_cast<double>(rows) * static_cast<double>(cols);  // no overflow
    if (kind == "completion" && static_cast<double>(observations) > entries)
      throw Error(
          fmt::format("problem.observations: {} exceeds the {:.0f} entries of a {}x{} matrix",
                      observations, entries, rows, cols));
  } else if (samples <= 0) {
    throw Error(fmt::format("problem.samples: must be > 0, got {}", samples));
  }
}

memory::Estimate ProblemConfig::memory_estimate() const {
  memory::Estimate e;
  const double r = static_cast<double>(rows), c = static_cast<double>(cols);
  // The ground truth and, when synthetic, its U V^T.
  e.add("problem.rows, problem.cols", fmt::format("{}x{} ground truth", rows, cols),
        8.0 * 2 * r * c);
  if (!csv_file.empty()) {  // the text and its values; .npy files are bounded by their sizes
    std::error_code ec;
    const auto size = std::filesystem::file_size(csv_file, ec);
    if (!ec)
      e.add("problem.csv_file",
            fmt::format("the {} CSV file and its values",
                        memory::format_bytes(static_cast<double>(size))),
            io::csv_table_bytes(static_cast<double>(size)));
  }
  if (from_files()) return e;
  const double m = static_cast<double>(observations), n = static_cast<double>(samples);
  if (kind == "completion")  // entries, the loss's copies and CSR order, the sampler's set
    e.add("problem.observations", fmt::format("{} observed entries", observations), 160.0 * m);
  else if (kind == "sensing")  // A (m x rows*cols) and its C-order copy in data/
    e.add("problem.observations",
          fmt::format("{} sensing matrices of {}x{}", observations, rows, cols),
          8.0 * 2 * m * r * c);
  else
    e.add("problem.samples", fmt::format("{} samples", samples), 8.0 * 3 * (r + c) * n);
  return e;
}

Mat low_rank_ground_truth(Index rows, Index cols, Index rank, std::uint64_t seed) {
  Rng rng(seed);
  return scaled_low_rank(rng, rows, cols, rank);
}

std::vector<std::pair<Index, Index>> sample_entries(Index rows, Index cols, Index m,
                                                    std::uint64_t seed) {
  Rng rng(seed);
  const auto total = static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols);
  std::unordered_set<std::uint64_t> chosen;
  chosen.reserve(static_cast<std::size_t>(m) * 2);
  // Floyd's algorithm: a uniform m-subset of [0, total).
  for (std::uint64_t j = total - static_cast<std::uint64_t>(m); j < total; ++j) {
    const std::uint64_t t = rng.below(j + 1);
    if (!chosen.insert(t).second) chosen.insert(j);
  }
  std::vector<std::uint64_t> flat(chosen.begin(), chosen.end());
  std::sort(flat.begin(), flat.end());  // flat = col * rows + row: sorted by (col, row)
  std::vector<std::pair<Index, Index>> out;
  out.reserve(flat.size());
  for (auto f : flat)
    out.emplace_back(static_cast<Index>(f % static_cast<std::uint64_t>(rows)),
                     static_cast<Index>(f / static_cast<std::uint64_t>(rows)));
  return out;
}

namespace {

void make_completion(const ProblemConfig& c, Problem& p, Rng& rng) {
  if (!c.observations_file.empty()) {
    p.observations = io::read_observations_csv(c.observations_file, c.rows, c.cols);
  } else {
    p.ground_truth = scaled_low_rank(rng, c.rows, c.cols, c.rank);
    for (auto [r, col] : sample_entries(c.rows, c.cols, c.observations, rng.below(UINT64_MAX)))
      p.observations.push_back({r, col, (*p.ground_truth)(r, col)});
  }
  std::vector<Index> r, cc;
  std::vector<double> b;
  for (const auto& o : p.observations) {
    r.push_back(o.row);
    cc.push_back(o.col);
    b.push_back(o.value);
  }
  p.loss = std::make_unique<CompletionLoss>(c.rows, c.cols, std::move(r), std::move(cc),
                                            std::move(b), parse_reduction(c.reduction));
}

void make_sensing(const ProblemConfig& c, Problem& p, Rng& rng) {
  const Index d = c.rows * c.cols;
  if (c.from_files()) {
    if (c.sensing_file.empty() || c.measurements_file.empty())
      throw Error(
          "problem.sensing_file: sensing from files needs sensing_file and measurements_file");
    const io::NpyArray a = io::read_npy(c.sensing_file);
    const bool shape_ok = (a.shape.size() == 3 && a.shape[1] == c.rows && a.shape[2] == c.cols) ||
                          (a.shape.size() == 2 && a.shape[1] == d);
    if (!shape_ok)
      throw Error(fmt::format("{}: expected shape (m, {}, {}) for the sensing matrices",
                              c.sensing_file, c.rows, c.cols));
    const Index m = a.shape[0];
    p.sensing_a.resize(m, d);
    // C order [i][r][c] -> row i, column-first vec index c*rows + r.
    for (Index i = 0; i < m; ++i)
      for (Index r = 0; r < c.rows; ++r)
        for (Index col = 0; col < c.cols; ++col)
          p.sensing_a(i, col * c.rows + r) =
              a.data[static_cast<std::size_t>((i * c.rows + r) * c.cols + col)];
    const Mat b = io::read_npy_matrix(c.measurements_file);
    if (b.cols() != 1 || b.rows() != m)
      throw Error(fmt::format("{}: expected {} measurements", c.measurements_file, m));
    p.sensing_b = b.col(0);
  } else {
    p.ground_truth = scaled_low_rank(rng, c.rows, c.cols, c.rank);
    const double std = c.sensing_std > 0 ? c.sensing_std : 1.0 / std::sqrt(static_cast<double>(d));
    p.sensing_a = rng.gaussian(c.observations, d, std);
    const Eigen::Map<const Vec> vw(p.ground_truth->data(), d);
    p.sensing_b = p.sensing_a * vw;
  }
  p.loss = std::make_unique<SensingLoss>(c.rows, c.cols, p.sensing_a, p.sensing_b,
                                         parse_reduction(c.reduction));
}

void make_regression(const ProblemConfig& c, Problem& p, Rng& rng) {
  const bool logistic = c.kind == "logistic";
  if (!c.csv_file.empty()) {
    io::CsvXY xy = io::select_csv_columns(io::read_csv_table(c.csv_file), c.feature_columns,
                                          c.target_columns, c.csv_file);
    if (xy.x.rows() != c.cols)
      throw Error(fmt::format("{}: expected {} feature columns (problem.cols = d_0), got {}",
                              c.csv_file, c.cols, xy.x.rows()));
    if (xy.y.rows() != c.rows)
      throw Error(fmt::format("{}: expected {} target columns (problem.rows = d_n), got {}",
                              c.csv_file, c.rows, xy.y.rows()));
    p.x = std::move(xy.x);
    p.y = std::move(xy.y);
  } else if (c.from_files()) {
    if (c.x_file.empty()) throw Error("problem.x_file: required for " + c.kind + " from files");
    p.x = io::read_npy_matrix(c.x_file);
    if (p.x.rows() != c.cols)
      throw Error(fmt::format("{}: expected {} rows (problem.cols = d_0), got {}", c.x_file, c.cols,
                              p.x.rows()));
    if (logistic) {
      if (c.labels_file.empty())
        throw Error("problem.labels_file: required for logistic from files");
      const Mat l = io::read_npy_matrix(c.labels_file);
      if (l.cols() != 1 || l.rows() != p.x.cols())
        throw Error(fmt::format("{}: expected {} labels", c.labels_file, p.x.cols()));
      for (Index i = 0; i < l.rows(); ++i) {
        const double v = l(i, 0);
        if (v != std::floor(v) || v < 0 || v >= static_cast<double>(c.rows))
          throw Error(fmt::format("{}: label {} at index {} is not an integer in [0, {})",
                                  c.labels_file, v, i, c.rows));
        p.labels.push_back(static_cast<Index>(v));
      }
    } else {
      if (c.y_file.empty()) throw Error("problem.y_file: required for " + c.kind + " from files");
      p.y = io::read_npy_matrix(c.y_file);
      if (p.y.rows() != c.rows || p.y.cols() != p.x.cols())
        throw Error(fmt::format("{}: expected shape {}x{}", c.y_file, c.rows, p.x.cols()));
    }
  } else {
    p.ground_truth = scaled_low_rank(rng, c.rows, c.cols, c.rank);
    p.x = rng.gaussian(c.cols, c.samples, 1.0);
    if (logistic) {
      const Mat z = *p.ground_truth * p.x;
      for (Index i = 0; i < z.cols(); ++i) {
        Index best = 0;
        z.col(i).maxCoeff(&best);
        p.labels.push_back(best);
      }
    } else {
      p.y = *p.ground_truth * p.x;
      if (c.noise > 0) p.y += rng.gaussian(c.rows, c.samples, c.noise);
    }
  }
  if (c.standardize) {  // validate() allows it for regression kinds only
    p.x_standardization = standardize_rows(p.x);
    p.y_standardization = standardize_rows(p.y);
    p.ground_truth.reset();  // a synthetic W* maps the data before standardization
  }
  if (logistic)
    p.loss = std::make_unique<LogisticLoss>(p.x, p.labels, c.rows);
  else if (c.kind == "lp_regression")
    p.loss = std::make_unique<LpRegressionLoss>(p.x, p.y, c.p);
  else
    p.loss = std::make_unique<SquareRegressionLoss>(p.x, p.y);
}

}  // namespace

Problem make_problem(const ProblemConfig& c) {
  c.validate();
  if (c.tensor())
    throw Error(
        fmt::format("problem.kind: \"{}\" is a tensor problem (dln::tensors::run_tensor)", c.kind));
  Problem p;
  p.kind = c.kind;
  p.rows = c.rows;
  p.cols = c.cols;
  Rng rng(c.seed);
  if (c.kind == "completion")
    make_completion(c, p, rng);
  else if (c.kind == "sensing")
    make_sensing(c, p, rng);
  else
    make_regression(c, p, rng);
  if (!c.ground_truth_file.empty()) {
    Mat g = io::read_npy_matrix(c.ground_truth_file);
    if (g.rows() != c.rows || g.cols() != c.cols)
      throw Error(fmt::format("{}: expected shape {}x{}, got {}x{}", c.ground_truth_file, c.rows,
                              c.cols, g.rows(), g.cols()));
    p.ground_truth = std::move(g);
  }
  return p;
}

void save_problem_data(const Problem& p, const std::string& dir) {
  io::ensure_writable_directory(dir);
  if (p.kind == "completion")
    io::write_observations_csv(path_in(dir, "observations.csv"), p.observations);
  if (p.kind == "sensing") {
    const Index m = p.sensing_a.rows();
    std::vector<double> c_order(static_cast<std::size_t>(p.sensing_a.size()));
    for (Index i = 0; i < m; ++i)
      for (Index r = 0; r < p.rows; ++r)
        for (Index col = 0; col < p.cols; ++col)
          c_order[static_cast<std::size_t>((i * p.rows + r) * p.cols + col)] =
              p.sensing_a(i, col * p.rows + r);
    io::write_npy(path_in(dir, "sensing_A.npy"), {m, p.rows, p.cols}, c_order);
    io::write_npy(path_in(dir, "sensing_b.npy"),
                  std::vector<double>(p.sensing_b.data(), p.sensing_b.data() + p.sensing_b.size()));
  }
  if (p.x.size()) io::write_npy(path_in(dir, "X.npy"), p.x);
  if (p.y.size()) io::write_npy(path_in(dir, "Y.npy"), p.y);
  if (!p.labels.empty()) {
    std::vector<double> l(p.labels.begin(), p.labels.end());
    io::write_npy(path_in(dir, "labels.npy"), l);
  }
  if (p.ground_truth) io::write_npy(path_in(dir, "ground_truth.npy"), *p.ground_truth);
  const auto vec = [](const Vec& v) { return std::vector<double>(v.data(), v.data() + v.size()); };
  for (const auto& [name, s] :
       {std::pair{"X", &p.x_standardization}, std::pair{"Y", &p.y_standardization}}) {
    if (!*s) continue;
    io::write_npy(path_in(dir, (std::string(name) + "_mean.npy").c_str()), vec((*s)->mean));
    io::write_npy(path_in(dir, (std::string(name) + "_scale.npy").c_str()), vec((*s)->scale));
  }
}

}  // namespace dln
