// Problems read from files (problem.*_file): what is loaded, and each error with its message.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "dln/io/npy.hpp"
#include "dln/problems/problem.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace dln {
namespace {

using dln::testing::expect_error;

std::string path(const std::string& name) {
  static const fs::path dir = [] {
    const fs::path d =
        fs::temp_directory_path() / ("dln_problem_files_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return (dir / name).string();
}

// 3 sensing matrices of 2x3, entry A_i(r, c) = 100 i + 10 r + c, in C order (i, r, c).
std::vector<double> sensing_data() {
  std::vector<double> a;
  for (int i = 0; i < 3; ++i)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c) a.push_back(100.0 * i + 10.0 * r + c);
  return a;
}

ProblemConfig sensing_config() {
  ProblemConfig c;
  c.kind = "sensing";
  c.rows = 2;
  c.cols = 3;
  io::write_npy(path("A.npy"), {3, 2, 3}, sensing_data());
  io::write_npy(path("b.npy"), std::vector<double>{1.0, -2.0, 0.5});
  c.sensing_file = path("A.npy");
  c.measurements_file = path("b.npy");
  return c;
}

TEST(ProblemFiles, Sensing) {
  const ProblemConfig c = sensing_config();
  const Problem p = make_problem(c);
  ASSERT_EQ(p.sensing_a.rows(), 3);
  ASSERT_EQ(p.sensing_a.cols(), 6);
  // Row i is vec(A_i), column-first: index c * rows + r.
  for (int i = 0; i < 3; ++i)
    for (int r = 0; r < 2; ++r)
      for (int col = 0; col < 3; ++col)
        EXPECT_EQ(p.sensing_a(i, col * 2 + r), 100.0 * i + 10.0 * r + col);
  EXPECT_EQ(p.sensing_b, (Vec(3) << 1.0, -2.0, 0.5).finished());
  EXPECT_FALSE(p.ground_truth.has_value());
  // l(W) = 1/(2m) sum_i (<A_i, W> - b_i)^2 (half_mean), by hand at W = all ones.
  const Mat w = Mat::Ones(2, 3);
  double expect = 0;
  for (int i = 0; i < 3; ++i) {
    double ip = 0;
    for (int r = 0; r < 2; ++r)
      for (int col = 0; col < 3; ++col) ip += 100.0 * i + 10.0 * r + col;
    const double res = ip - p.sensing_b(i);
    expect += res * res / 6.0;
  }
  EXPECT_NEAR(p.loss->value(w), expect, 1e-12 * expect);
  // The (m, rows * cols) layout with C-order rows gives the same matrices.
  ProblemConfig flat = c;
  io::write_npy(path("A2.npy"), {3, 6}, sensing_data());
  flat.sensing_file = path("A2.npy");
  EXPECT_EQ(make_problem(flat).sensing_a, p.sensing_a);
}

TEST(ProblemFiles, SensingErrors) {
  ProblemConfig c = sensing_config();
  c.measurements_file.clear();
  expect_error([&] { make_problem(c); },
               "problem.sensing_file: sensing from files needs sensing_file and measurements_file");
  c = sensing_config();
  c.sensing_file.clear();
  expect_error([&] { make_problem(c); },
               "problem.sensing_file: sensing from files needs sensing_file and measurements_file");
  c = sensing_config();
  c.cols = 2;
  expect_error([&] { make_problem(c); },
               path("A.npy") + ": expected shape (m, 2, 2) for the sensing matrices");
  c = sensing_config();
  io::write_npy(path("b4.npy"), std::vector<double>{1, 2, 3, 4});
  c.measurements_file = path("b4.npy");
  expect_error([&] { make_problem(c); }, path("b4.npy") + ": expected 3 measurements");
  c = sensing_config();
  c.measurements_file = path("missing.npy");
  expect_error([&] { make_problem(c); }, path("missing.npy") + ": cannot open");
}

ProblemConfig regression_config(const std::string& kind) {
  ProblemConfig c;
  c.kind = kind;
  c.rows = 2;  // d_n (classes for logistic)
  c.cols = 3;  // d_0
  io::write_npy(path("X.npy"), (Mat(3, 4) << 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12).finished());
  io::write_npy(path("Y.npy"), (Mat(2, 4) << 1, 0, -1, 2, 0.5, 0.25, 3, 1).finished());
  io::write_npy(path("labels.npy"), std::vector<double>{0, 1, 1, 0});
  c.x_file = path("X.npy");
  if (kind == "logistic")
    c.labels_file = path("labels.npy");
  else
    c.y_file = path("Y.npy");
  return c;
}

TEST(ProblemFiles, RegressionAndLogistic) {
  const Problem r = make_problem(regression_config("regression"));
  EXPECT_EQ(r.x, io::read_npy_matrix(path("X.npy")));
  EXPECT_EQ(r.y, io::read_npy_matrix(path("Y.npy")));
  // 1/(2m) ||W X - Y||_F^2 at W = 0 is ||Y||^2 / 8.
  EXPECT_NEAR(r.loss->value(Mat::Zero(2, 3)), r.y.squaredNorm() / 8.0, 1e-15);
  const Problem l = make_problem(regression_config("logistic"));
  EXPECT_EQ(l.labels, (std::vector<Index>{0, 1, 1, 0}));
  // Cross-entropy at W = 0: every class has probability 1/2.
  EXPECT_NEAR(l.loss->value(Mat::Zero(2, 3)), std::log(2.0), 1e-15);
  ProblemConfig g = regression_config("regression");
  const Mat truth = (Mat(2, 3) << 1, 2, 3, 4, 5, 6).finished();
  io::write_npy(path("G.npy"), truth);
  g.ground_truth_file = path("G.npy");
  EXPECT_EQ(*make_problem(g).ground_truth, truth);
}

TEST(ProblemFiles, RegressionErrors) {
  ProblemConfig c = regression_config("regression");
  c.x_file.clear();
  expect_error([&] { make_problem(c); }, "problem.x_file: required for regression from files");
  c = regression_config("regression");
  c.cols = 4;
  expect_error([&] { make_problem(c); },
               path("X.npy") + ": expected 4 rows (problem.cols = d_0), got 3");
  c = regression_config("lp_regression");
  c.y_file.clear();  // still "from files" (x_file), but no y
  expect_error([&] { make_problem(c); }, "problem.y_file: required for lp_regression from files");
  c.labels_file = path("labels.npy");  // another kind's file: refused, not ignored
  expect_error([&] { make_problem(c); },
               "problem.labels_file: not read by kind = \"lp_regression\"");
  c.labels_file.clear();
  c = regression_config("regression");
  c.rows = 3;
  expect_error([&] { make_problem(c); }, path("Y.npy") + ": expected shape 3x4");
  c = regression_config("regression");
  io::write_npy(path("Y5.npy"), Mat::Zero(2, 5));  // 5 examples, X has 4
  c.y_file = path("Y5.npy");
  expect_error([&] { make_problem(c); }, path("Y5.npy") + ": expected shape 2x4");
  c = regression_config("regression");
  io::write_npy(path("G.npy"), Mat::Zero(3, 2));
  c.ground_truth_file = path("G.npy");
  expect_error([&] { make_problem(c); }, path("G.npy") + ": expected shape 2x3, got 3x2");
}

TEST(ProblemFiles, LogisticErrors) {
  ProblemConfig c = regression_config("logistic");
  c.labels_file.clear();  // from files (x_file), but no labels
  expect_error([&] { make_problem(c); }, "problem.labels_file: required for logistic from files");
  c.y_file = path("Y.npy");
  expect_error([&] { make_problem(c); }, "problem.y_file: not read by kind = \"logistic\"");
  c.y_file.clear();
  c = regression_config("logistic");
  io::write_npy(path("l3.npy"), std::vector<double>{0, 1, 1});
  c.labels_file = path("l3.npy");
  expect_error([&] { make_problem(c); }, path("l3.npy") + ": expected 4 labels");
  for (const auto& [bad, shown] :
       std::vector<std::pair<double, std::string>>{{0.5, "0.5"}, {2, "2"}, {-1, "-1"}}) {
    io::write_npy(path("lbad.npy"), std::vector<double>{0, 1, bad, 0});
    c.labels_file = path("lbad.npy");
    expect_error([&] { make_problem(c); },
                 path("lbad.npy") + ": label " + shown + " at index 2 is not an integer in [0, 2)");
  }
}

}  // namespace
}  // namespace dln
