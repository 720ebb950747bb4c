// Regression data from a CSV (problem.csv_file, io/table_csv.hpp) and problem.standardize: the
// exact X and Y, every error by its message, the memory guard, and `dln train` end to end.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dln/config/config.hpp"
#include "dln/core/memory.hpp"
#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"
#include "dln/io/table_csv.hpp"
#include "dln/problems/problem.hpp"
#include "dln/problems/standardize.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;

namespace dln {
namespace {

using testing::expect_error;

fs::path scratch() {
  static const fs::path dir = testing::scratch_dir("dln_csv_regression");
  return dir;
}

std::string write(const std::string& name, const std::string& text) {
  const fs::path p = scratch() / name;
  std::ofstream(p, std::ios::binary) << text;
  return p.string();
}

// A CSV of `data` (m x k: one line per row) under `header`, 17 significant digits.
std::string csv_text(const std::vector<std::string>& header, const Mat& data) {
  std::string s;
  for (std::size_t j = 0; j < header.size(); ++j) s += (j ? "," : "") + header[j];
  s += "\n";
  for (Index i = 0; i < data.rows(); ++i) {
    for (Index j = 0; j < data.cols(); ++j)
      fmt::format_to(std::back_inserter(s), "{}{:.17g}", j ? "," : "", data(i, j));
    s += "\n";
  }
  return s;
}

// Columns a, b, c (features) and y, z (targets) of 40 rows, on different scales.
Mat sample_data() {
  Rng rng(7);
  Mat d = rng.gaussian(40, 5, 1.0);
  d.col(0) = d.col(0) * 1e3 + Vec::Constant(40, 5e3);
  d.col(3) = d.col(3) * 0.01 - Vec::Constant(40, 2.0);
  return d;
}

const std::vector<std::string> kHeader = {"a", "b", "c", "y", "z"};

ProblemConfig csv_config(const std::string& file) {
  ProblemConfig c;
  c.kind = "regression";
  c.rows = 2;
  c.cols = 3;
  c.csv_file = file;
  c.target_columns = {"y", "z"};
  return c;
}

TEST(CsvTable, ParsesBomCrlfBlanksSpacesAndQuotes) {
  const std::string text =
      "\xEF\xBB\xBF \"a\" , \"b,\"\"q\"\"\",c\r\n"
      "1, 2.5 ,-3\r\n"
      "\r\n"
      "\t+4,5e-1,\" 6 \"\r\n"
      "  \n";
  expect_error([&] { io::parse_csv_table(text, "t.csv"); },
               "t.csv:4: malformed number ' 6 ' in column 'c'");
  const std::string ok = text.substr(0, text.find("\" 6 \"")) + "\"6\"\r\n\n\n";
  const io::CsvTable t = io::parse_csv_table(ok, "t.csv");
  ASSERT_EQ(t.header, (std::vector<std::string>{"a", "b,\"q\"", "c"}));
  ASSERT_EQ(t.values.rows(), 3);
  ASSERT_EQ(t.values.cols(), 2);
  EXPECT_EQ(t.values(0, 0), 1.0);
  EXPECT_EQ(t.values(1, 0), 2.5);
  EXPECT_EQ(t.values(2, 0), -3.0);
  EXPECT_EQ(t.values(0, 1), 4.0);
  EXPECT_EQ(t.values(1, 1), 0.5);
  EXPECT_EQ(t.values(2, 1), 6.0);
  EXPECT_EQ(t.line, (std::vector<long>{2, 4}));
  // A file without a final newline, one column.
  const io::CsvTable one = io::parse_csv_table("x\n7", "o.csv");
  EXPECT_EQ(one.values(0, 0), 7.0);
  EXPECT_EQ(one.line, (std::vector<long>{2}));
}

TEST(CsvTable, RoundTripToTheExactXAndY) {
  const Mat d = sample_data();
  const std::string file = write("round.csv", csv_text(kHeader, d));
  const io::CsvTable t = io::read_csv_table(file);
  EXPECT_EQ(t.header, kHeader);
  EXPECT_EQ(t.values, Mat(d.transpose()));
  // Features in the order given; default features: every column but the targets, file order.
  const io::CsvXY xy = io::select_csv_columns(t, {"c", "a"}, {"z"}, file);
  EXPECT_EQ(xy.x.row(0), d.col(2).transpose());
  EXPECT_EQ(xy.x.row(1), d.col(0).transpose());
  EXPECT_EQ(xy.y, Mat(d.col(4).transpose()));
  const Problem p = make_problem(csv_config(file));
  EXPECT_EQ(p.x, Mat(d.leftCols(3).transpose()));
  EXPECT_EQ(p.y, Mat(d.rightCols(2).transpose()));
  EXPECT_FALSE(p.ground_truth.has_value());
  EXPECT_FALSE(p.x_standardization.has_value());
}

TEST(CsvTable, EveryParseErrorByItsMessage) {
  const auto parse = [](const std::string& text) { io::parse_csv_table(text, "e.csv"); };
  expect_error([&] { parse(""); }, "e.csv: empty file (expected a header row naming the columns)");
  expect_error([&] { parse("\xEF\xBB\xBF\r\n \n"); },
               "e.csv: empty file (expected a header row naming the columns)");
  expect_error([&] { parse("a,b\n\n"); }, "e.csv: no data rows");
  expect_error([&] { parse("a,,b\n1,2,3\n"); }, "e.csv:1: empty column name (column 2)");
  expect_error([&] { parse("\n\"\"\n1\n"); }, "e.csv:2: empty column name (column 1)");
  expect_error([&] { parse("a,b,\"a\"\n1,2,3\n"); }, "e.csv:1: duplicate column name 'a'");
  expect_error([&] { parse("a,b\n1,2\n1,2,3\n"); }, "e.csv:3: expected 2 fields, got 3");
  expect_error([&] { parse("a,b\n\n1\n"); }, "e.csv:3: expected 2 fields, got 1");
  expect_error([&] { parse("a,b\n1,x2\n"); }, "e.csv:2: malformed number 'x2' in column 'b'");
  expect_error([&] { parse("a,b\n1,\n"); }, "e.csv:2: malformed number '' in column 'b'");
  expect_error([&] { parse("a,b\n1,2\n3,nan\n"); }, "e.csv:3: non-finite value in column 'b'");
  expect_error([&] { parse("a,b\n-inf,2\n"); }, "e.csv:2: non-finite value in column 'a'");
  expect_error([&] { parse("a,b\n1,1e400\n"); }, "e.csv:2: malformed number '1e400' in column 'b'");
  expect_error([&] { parse("\"a,b\n1\n"); }, "e.csv:1: unterminated quoted field");
  expect_error([&] { parse("\"a\"x,b\n1,2\n"); }, "e.csv:1: unexpected text after a closing quote");
}

TEST(CsvTable, EverySelectionErrorByItsMessage) {
  const std::string file = write("sel.csv", csv_text(kHeader, sample_data()));
  const io::CsvTable t = io::read_csv_table(file);
  const auto select = [&](const std::vector<std::string>& f, const std::vector<std::string>& y) {
    io::select_csv_columns(t, f, y, file);
  };
  expect_error([&] { select({}, {"foo"}); },
               "problem.target_columns: no column 'foo' in " + file + " (columns: a, b, c, y, z)");
  expect_error(
      [&] {
        select({"a", "q"}, {"y"});
      },
      "problem.feature_columns: no column 'q' in " + file + " (columns: a, b, c, y, z)");
  expect_error([&] { select({}, {"y", "y"}); }, "problem.target_columns: column 'y' listed twice");
  expect_error(
      [&] {
        select({"b", "a", "b"}, {"y"});
      },
      "problem.feature_columns: column 'b' listed twice");
  expect_error(
      [&] {
        select({"a", "y"}, {"y"});
      },
      "problem.feature_columns: column 'y' is also in problem.target_columns");
  expect_error([&] { select({}, kHeader); },
               "problem.feature_columns: every column of " + file + " is a target column");
  // A long header is listed in part.
  std::string wide;
  for (int j = 0; j < 25; ++j) wide += fmt::format("{}c{}", j ? "," : "", j);
  std::string zeros = "0";
  for (int j = 1; j < 25; ++j) zeros += ",0";
  const std::string wide_file = write("wide.csv", wide + "\n" + zeros + "\n");
  const io::CsvTable w = io::read_csv_table(wide_file);
  std::string first;
  for (int j = 0; j < 20; ++j) first += fmt::format("{}c{}", j ? ", " : "", j);
  expect_error([&] { io::select_csv_columns(w, {}, {"y"}, wide_file); },
               "problem.target_columns: no column 'y' in " + wide_file + " (columns: " + first +
                   ", ... (25 in all))");
}

TEST(CsvRegression, ConfigErrorsByTheirMessages) {
  const std::string file = write("cfg.csv", csv_text(kHeader, sample_data()));
  ProblemConfig c = csv_config(file);
  c.kind = "logistic";
  expect_error([&] { c.validate(); }, "problem.csv_file: not read by kind = \"logistic\"");
  c = csv_config(file);
  c.kind = "completion";
  c.csv_file.clear();
  c.target_columns.clear();
  c.feature_columns = {"a"};
  expect_error([&] { c.validate(); }, "problem.feature_columns: not read by kind = \"completion\"");
  c.feature_columns.clear();
  c.target_columns = {"y"};
  expect_error([&] { c.validate(); }, "problem.target_columns: not read by kind = \"completion\"");
  c.target_columns.clear();
  c.standardize = true;
  expect_error([&] { c.validate(); }, "problem.standardize: not read by kind = \"completion\"");
  c = csv_config(file);
  c.x_file = "X.npy";
  expect_error([&] { c.validate(); },
               "problem.csv_file: given with problem.x_file (the data come from one or the other)");
  c = csv_config(file);
  c.y_file = "Y.npy";
  expect_error([&] { c.validate(); },
               "problem.csv_file: given with problem.y_file (the data come from one or the other)");
  c = csv_config(file);
  c.target_columns.clear();
  expect_error([&] { c.validate(); }, "problem.target_columns: required with problem.csv_file");
  c = csv_config(file);
  c.csv_file.clear();
  expect_error([&] { c.validate(); }, "problem.target_columns: needs problem.csv_file");
  c.target_columns.clear();
  c.feature_columns = {"a"};
  expect_error([&] { c.validate(); }, "problem.feature_columns: needs problem.csv_file");
  // Shapes: d_0 = the feature columns, d_n = the target columns.
  c = csv_config(file);
  c.cols = 4;
  expect_error([&] { make_problem(c); },
               file + ": expected 4 feature columns (problem.cols = d_0), got 3");
  c = csv_config(file);
  c.feature_columns = {"a", "b"};
  expect_error([&] { make_problem(c); },
               file + ": expected 3 feature columns (problem.cols = d_0), got 2");
  c = csv_config(file);
  c.rows = 1;
  expect_error([&] { make_problem(c); },
               file + ": expected 1 target columns (problem.rows = d_n), got 2");
  c = csv_config((scratch() / "missing.csv").string());
  expect_error([&] { make_problem(c); }, (scratch() / "missing.csv").string() + ": cannot open");
}

TEST(CsvRegression, ConfigKeysRoundTrip) {
  const std::string toml = fmt::format(R"([problem]
kind = "lp_regression"
rows = 1
cols = 2
csv_file = "{}"
feature_columns = ["b", "a"]
target_columns = ["y"]
standardize = true
)",
                                       "d.csv");
  const Config c = parse_config(toml, "t.toml");
  EXPECT_EQ(c.problem.csv_file, "d.csv");
  EXPECT_EQ(c.problem.feature_columns, (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(c.problem.target_columns, (std::vector<std::string>{"y"}));
  EXPECT_TRUE(c.problem.standardize);
  const Config again = parse_config(c.to_toml(), "resolved");
  EXPECT_EQ(again.to_toml(), c.to_toml());
  EXPECT_EQ(again.problem.feature_columns, c.problem.feature_columns);
  EXPECT_EQ(again.problem.target_columns, c.problem.target_columns);
  EXPECT_TRUE(again.problem.standardize);
  expect_error([&] { parse_config(toml, "t.toml", {"problem.target_columns=3"}); },
               "problem.target_columns: expected an array of strings");
  expect_error([&] { parse_config(toml, "t.toml", {"problem.feature_columns=[\"a\", 1]"}); },
               "problem.feature_columns: expected an array of strings");
  expect_error([&] { parse_config(toml, "t.toml", {"problem.standardize=1"}); },
               "problem.standardize: expected true or false");
}

// Row means 0 and population variances 1 (to 1e-12), and original = standardized * scale + mean.
void expect_standardized(const Mat& s, const Mat& original, const Standardization& st) {
  const double m = static_cast<double>(s.cols());
  for (Index r = 0; r < s.rows(); ++r) {
    EXPECT_NEAR(s.row(r).mean(), 0.0, 1e-12) << "row " << r;
    EXPECT_NEAR(s.row(r).squaredNorm() / m, 1.0, 1e-12) << "row " << r;
    for (Index i = 0; i < s.cols(); ++i)
      EXPECT_NEAR(s(r, i) * st.scale(r) + st.mean(r), original(r, i),
                  1e-12 * std::max(1.0, std::abs(original(r, i))));
  }
}

TEST(CsvRegression, StandardizesCsvNpyAndSyntheticData) {
  const Mat d = sample_data();
  const Mat x = d.leftCols(3).transpose(), y = d.rightCols(2).transpose();
  ProblemConfig c = csv_config(write("std.csv", csv_text(kHeader, d)));
  c.standardize = true;
  const Problem p = make_problem(c);
  ASSERT_TRUE(p.x_standardization && p.y_standardization);
  expect_standardized(p.x, x, *p.x_standardization);
  expect_standardized(p.y, y, *p.y_standardization);
  EXPECT_NEAR(p.x_standardization->mean(0), x.row(0).mean(), 1e-9);
  // The same for x_file / y_file: the same numbers, the same result.
  io::write_npy((scratch() / "X.npy").string(), x);
  io::write_npy((scratch() / "Y.npy").string(), y);
  ProblemConfig n = c;
  n.csv_file.clear();
  n.target_columns.clear();
  n.x_file = (scratch() / "X.npy").string();
  n.y_file = (scratch() / "Y.npy").string();
  const Problem q = make_problem(n);
  EXPECT_EQ(q.x, p.x);
  EXPECT_EQ(q.y, p.y);
  // Synthetic data: standardized too; its W* (of the raw data) is not kept.
  ProblemConfig s;
  s.kind = "lp_regression";
  s.rows = 2;
  s.cols = 3;
  s.rank = 1;
  s.samples = 30;
  s.standardize = true;
  const Problem r = make_problem(s);
  EXPECT_FALSE(r.ground_truth.has_value());
  for (Index k = 0; k < r.x.rows(); ++k) EXPECT_NEAR(r.x.row(k).mean(), 0.0, 1e-12);
  // A constant column stays at zero, scale 1.
  ProblemConfig k = csv_config(write("const.csv", "a,b,c,y,z\n1,2,3,4,5\n1,0,3,4,6\n"));
  k.standardize = true;
  const Problem kp = make_problem(k);
  EXPECT_EQ(kp.x.row(0), Eigen::RowVector2d(0, 0));
  EXPECT_EQ(kp.x_standardization->scale(0), 1.0);
  EXPECT_EQ(kp.x_standardization->mean(0), 1.0);
}

TEST(CsvRegression, MemoryGuardCountsTheFile) {
  const fs::path big = scratch() / "big.csv";
  std::error_code ec;
  { std::ofstream(big) << "a,y\n"; }
  fs::resize_file(big, std::uintmax_t{1} << 40, ec);  // 1 TiB, sparse
  if (ec) GTEST_SKIP() << "cannot make a sparse 1 TiB file here: " << ec.message();
  if (io::csv_table_bytes(0x1p40) <= memory::available_bytes())
    GTEST_SKIP() << "this machine could read a 1 TiB CSV";
  ProblemConfig c = csv_config(big.string());
  const memory::Estimate e = c.memory_estimate();
  ASSERT_NE(e.largest(), nullptr);
  EXPECT_EQ(e.largest()->field, "problem.csv_file");
  EXPECT_EQ(e.largest()->what, "the 1.00 TiB CSV file and its values");
  EXPECT_EQ(e.largest()->bytes, 10 * 0x1p40);
  try {
    memory::require(e, 0, "run.max_memory");
    ADD_FAILURE() << "expected the guard to refuse";
  } catch (const Error& err) {
    EXPECT_EQ(std::string(err.what()).rfind("problem.csv_file: the run needs about 10.0 TiB", 0),
              0u)
        << err.what();
  }
  // The reader alone refuses it too, before reading.
  try {
    io::read_csv_table(big.string());
    ADD_FAILURE() << "expected read_csv_table to refuse";
  } catch (const Error& err) {
    const std::string m = err.what();
    const std::string head = big.string() + ": reading this 1.00 TiB file needs up to 10.0 TiB, ";
    EXPECT_EQ(m.rfind(head + "more than the ", 0), 0u) << m;
    EXPECT_EQ(m.substr(m.size() - 20), " of memory available") << m;
  }
  fs::remove(big);
}

const char* kTrain = R"([problem]
kind = "lp_regression"
p = 4
rows = 1
cols = 3
csv_file = "{}"
target_columns = ["y"]
standardize = true
[network]
depth = 2
width = 4
init_scale = 0.3
[optimizer]
name = "gd"
lr = 0.01
[stop]
max_iters = 40
[record]
every = 10
[run]
threads = 1
)";

TEST(CsvRegression, TrainFromCsv) {
  Mat d = sample_data().leftCols(4);
  d.col(3) = d.col(0) * 1e-3 - d.col(1) + 0.5 * d.col(2);  // y, in the fourth column
  const std::string file = write("train.csv", csv_text({"a", "b", "c", "y"}, d));
  const fs::path cfg = scratch() / "train.toml", out = scratch() / "run";
  std::ofstream(cfg) << fmt::format(fmt::runtime(kTrain), file);
  const auto r = testing::run_dln(
      "train --quiet --config " + cfg.string() + " --out " + out.string(), scratch());
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  // data/ holds the standardized X and Y, and what was removed.
  Mat x = d.leftCols(3).transpose(), y = d.col(3).transpose();
  const Standardization sx = standardize_rows(x), sy = standardize_rows(y);
  EXPECT_EQ(io::read_npy_matrix((out / "data" / "X.npy").string()), x);
  EXPECT_EQ(io::read_npy_matrix((out / "data" / "Y.npy").string()), y);
  EXPECT_EQ(io::read_npy_matrix((out / "data" / "X_mean.npy").string()), Mat(sx.mean));
  EXPECT_EQ(io::read_npy_matrix((out / "data" / "X_scale.npy").string()), Mat(sx.scale));
  EXPECT_EQ(io::read_npy_matrix((out / "data" / "Y_mean.npy").string()), Mat(sy.mean));
  EXPECT_EQ(io::read_npy_matrix((out / "data" / "Y_scale.npy").string()), Mat(sy.scale));
  // config.toml records the keys.
  const Config c = load_config((out / "config.toml").string());
  EXPECT_EQ(c.problem.csv_file, file);
  EXPECT_EQ(c.problem.target_columns, (std::vector<std::string>{"y"}));
  EXPECT_TRUE(c.problem.feature_columns.empty());
  EXPECT_TRUE(c.problem.standardize);

  // A malformed row: one line on stderr, exit code 2, nothing trained.
  const std::string bad = write("bad.csv", "a,b,c,y\n1,2,3,4\n1,2,oops,4\n");
  const fs::path out2 = scratch() / "run_bad";
  const auto f = testing::run_dln("train --quiet --config " + cfg.string() + " --out " +
                                      out2.string() + " --set problem.csv_file=" + bad,
                                  scratch());
  EXPECT_EQ(f.code, 2);
  EXPECT_EQ(f.err, "dln: error: " + bad + ":3: malformed number 'oops' in column 'c'\n");
  EXPECT_FALSE(fs::exists(out2 / "summary.json"));
}

}  // namespace
}  // namespace dln
