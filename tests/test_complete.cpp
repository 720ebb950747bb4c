// `dln complete`: rating files with arbitrary ids, the held-out split, the deep factorization with
// early stopping, predictions, and the binary end to end.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "dln/completion/ratings.hpp"
#include "dln/core/rng.hpp"
#include "dln/io/npy.hpp"
#include "test_support.hpp"

namespace fs = std::filesystem;
using dln::Index;
using dln::testing::expect_error;
using namespace dln::completion;

namespace {

// users x items ratings: mean 3 + rank-`rank` signal (entry std ~1) + noise, a `density` share of
// the cells, string ids like u7 / m12 listed in a shuffled order.
std::string synthetic_ratings(Index users, Index items, Index rank, double density, double noise,
                              std::uint64_t seed, bool header = true) {
  dln::Rng rng(seed);
  const dln::Mat u = rng.gaussian(users, rank, 1.0 / std::sqrt(std::sqrt(double(rank))));
  const dln::Mat v = rng.gaussian(items, rank, 1.0 / std::sqrt(std::sqrt(double(rank))));
  std::vector<std::string> lines;
  for (Index i = 0; i < users; ++i)
    for (Index j = 0; j < items; ++j)
      if (rng.uniform() < density) {
        const double x = 3.0 + u.row(i).dot(v.row(j)) + noise * rng.normal();
        lines.push_back(fmt::format("u{},m{},{:.4f}\n", i, j, x));
      }
  for (std::size_t k = lines.size(); k > 1; --k) std::swap(lines[k - 1], lines[rng.below(k)]);
  std::string s = header ? "user,item,rating\n" : "";
  for (const auto& l : lines) s += l;
  return s;
}

fs::path scratch() {
  static fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("dln_complete_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

fs::path write(const std::string& name, const std::string& text) {
  const fs::path p = scratch() / name;
  std::ofstream(p) << text;
  return p;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

struct Result {
  int code;
  std::string out, err;
};

Result run_dln(const std::string& args) {
  const char* bin = std::getenv("DLN_BIN");
  EXPECT_NE(bin, nullptr) << "DLN_BIN must point at the dln binary";
  const fs::path out = scratch() / "stdout.txt", err = scratch() / "stderr.txt";
  const std::string cmd =
      std::string(bin ? bin : "dln") + " " + args + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

CompleteOptions quick_options() {
  CompleteOptions o;
  o.split.val_fraction = 0.15;
  o.split.seed = 3;
  o.deep.width = 12;
  o.deep.max_iters = 3000;
  o.deep.eval_every = 10;
  o.deep.patience = 20;
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Parsing

TEST(RatingsParse, StringIdsInOrderOfFirstAppearance) {
  const auto d = parse_ratings("user,item,rating\nalice,m9,4\nbob,m2,3.5\nalice,m2,1\n", "r.csv");
  EXPECT_TRUE(d.header);
  ASSERT_EQ(d.users.size(), 2);
  ASSERT_EQ(d.items.size(), 2);
  EXPECT_EQ(d.users.id(0), "alice");
  EXPECT_EQ(d.users.id(1), "bob");
  EXPECT_EQ(d.items.id(0), "m9");
  EXPECT_EQ(d.items.id(1), "m2");
  ASSERT_EQ(d.size(), 3);
  EXPECT_EQ(d.ratings[2].user, 0);
  EXPECT_EQ(d.ratings[2].item, 1);
  EXPECT_EQ(d.ratings[2].value, 1.0);
  EXPECT_EQ(d.ratings[2].line, 4);
  EXPECT_EQ(d.users.find("bob"), 1);
  EXPECT_EQ(d.users.find("carol"), -1);
  EXPECT_DOUBLE_EQ(d.density(), 0.75);
  EXPECT_EQ(d.min_value, 1.0);
  EXPECT_EQ(d.max_value, 4.0);
}

TEST(RatingsParse, IntegerIdsAreStringsAndHeaderIsOptional) {
  // No header; ids compared as strings ("7" and "07" differ); blank lines and CRLF tolerated.
  const auto d = parse_ratings("7,100,5\r\n\n07,100,4\r\n7,3,2\n", "r.csv");
  EXPECT_FALSE(d.header);
  EXPECT_EQ(d.users.size(), 2);
  EXPECT_EQ(d.users.id(1), "07");
  EXPECT_EQ(d.items.id(1), "3");
  EXPECT_EQ(d.ratings[1].line, 3);
}

TEST(RatingsParse, MovieLensLayouts) {
  // ml-latest: header userId,movieId,rating,timestamp (extra column ignored).
  auto d = parse_ratings("userId,movieId,rating,timestamp\n1,31,2.5,1260759144\n", "a.csv");
  EXPECT_TRUE(d.header);
  EXPECT_EQ(d.max_fields, 4);
  EXPECT_EQ(d.ratings[0].value, 2.5);
  // ml-100k u.data: tab-separated, no header.
  d = parse_ratings("196\t242\t3\t881250949\n186\t302\t3\t891717742\n", "u.data");
  EXPECT_EQ(d.delimiter, "\t");
  EXPECT_EQ(d.size(), 2);
  EXPECT_EQ(d.items.id(1), "302");
  // ml-1m ratings.dat: "::".
  d = parse_ratings("1::1193::5::978300760\n1::661::3::978302109\n", "ratings.dat");
  EXPECT_EQ(d.delimiter, "::");
  EXPECT_EQ(d.ratings[1].value, 3.0);
  // Quoted ids.
  d = parse_ratings("\"u 1\",\"m2\",4\n", "q.csv");
  EXPECT_EQ(d.users.id(0), "u 1");
  EXPECT_EQ(d.items.id(0), "m2");
}

TEST(RatingsParse, MalformedFilesNameFileAndLine) {
  expect_error([] { parse_ratings("", "r.csv"); }, "r.csv: empty file");
  expect_error([] { parse_ratings("\n  \n", "r.csv"); }, "r.csv: empty file");
  expect_error([] { parse_ratings("user,item,rating\n", "r.csv"); }, "r.csv: no ratings");
  expect_error([] { parse_ratings("u1,m1,4\nu2,m1\n", "r.csv"); },
               "r.csv:2: expected 3 fields user,item,rating, got 2");
  expect_error([] { parse_ratings("u1,m1,4\nu2,m1,four\n", "r.csv"); },
               "r.csv:2: rating 'four' is not a number");
  // A non-numeric rating on line 1 is a header only when it says so.
  expect_error([] { parse_ratings("u1,m1,great\nu2,m1,4\n", "r.csv"); },
               "r.csv:1: rating 'great' is not a number");
  expect_error([] { parse_ratings("user,item,rating\nuser,item,rating\n", "r.csv"); },
               "r.csv:2: rating 'rating' is not a number");
  expect_error([] { parse_ratings("u1,m1,4\nu2,m1,\n", "r.csv"); },
               "r.csv:2: rating '' is not a number");
  expect_error([] { parse_ratings("u1,m1,4\n\nu2,m1,nan\n", "r.csv"); },
               "r.csv:3: rating 'nan' is not finite");
  expect_error([] { parse_ratings("u1,m1,-inf\n", "r.csv"); },
               "r.csv:1: rating '-inf' is not finite");
  expect_error([] { parse_ratings("u1,m1,4\n,m1,4\n", "r.csv"); }, "r.csv:2: empty user id");
  expect_error([] { parse_ratings("u1,\"\",4\n", "r.csv"); }, "r.csv:1: empty item id");
}

TEST(RatingsParse, DuplicatePairsReportBothLines) {
  expect_error([] { parse_ratings("h,i,rating\nu1,m1,4\nu2,m1,3\nu1,m1,5\n", "r.csv"); },
               "r.csv:4: duplicate rating for user 'u1' and item 'm1' (first at line 2)");
  // Several duplicates: the one whose repeat comes first; a third copy does not matter.
  expect_error([] { parse_ratings("a,x,1\nb,y,2\nb,y,2\na,x,1\na,x,3\n", "r.csv"); },
               "r.csv:3: duplicate rating for user 'b' and item 'y' (first at line 2)");
}

TEST(RatingsParse, PairsFile) {
  const auto d = parse_ratings("u1,m1,4\nu2,m2,3\n", "r.csv");
  auto p = parse_pairs("user,item\nu1,m2\nu9,m1\n", "p.csv", d);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].user, "u1");
  EXPECT_EQ(p[1].line, 3);
  p = parse_pairs("u2,m1\n", "p.csv", d);  // no header
  ASSERT_EQ(p.size(), 1u);
  expect_error([&] { parse_pairs("user,item\n", "p.csv", d); }, "p.csv: no pairs");
  expect_error([&] { parse_pairs("u1\n", "p.csv", d); },
               "p.csv:1: expected 2 fields user,item, got 1");
}

// ---------------------------------------------------------------------------------------------
// Split

TEST(RatingsSplit, DeterministicFromSeedAndKeepsEveryUserAndItemInTraining) {
  const auto d = parse_ratings(synthetic_ratings(40, 30, 2, 0.3, 0.1, 1), "r.csv");
  SplitOptions o;
  o.val_fraction = 0.1;
  o.test_fraction = 0.1;
  o.seed = 5;
  const Split a = split_ratings(d, o), b = split_ratings(d, o);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.test, b.test);
  const auto n = static_cast<std::size_t>(d.size());
  EXPECT_EQ(a.train.size() + a.val.size() + a.test.size(), n);
  EXPECT_EQ(a.val.size(), static_cast<std::size_t>(std::llround(0.1 * double(n))));
  EXPECT_EQ(a.test.size(), a.val.size());
  std::set<Index> users, items;
  for (Index k : a.train) {
    users.insert(d.ratings[static_cast<std::size_t>(k)].user);
    items.insert(d.ratings[static_cast<std::size_t>(k)].item);
  }
  EXPECT_EQ(static_cast<Index>(users.size()), d.users.size());
  EXPECT_EQ(static_cast<Index>(items.size()), d.items.size());
  o.seed = 6;
  EXPECT_NE(split_ratings(d, o).val, a.val);
  o.val_fraction = 0;
  expect_error([&] { split_ratings(d, o); },
               "--val-fraction: must be > 0 (validation picks the stopping point)");
}

// ---------------------------------------------------------------------------------------------
// Fitting

TEST(RatingsFit, DeepModelBeatsTheMeanByAWideMargin) {
  const auto d = parse_ratings(synthetic_ratings(120, 90, 3, 0.3, 0.05, 2), "r.csv");
  CompleteOptions o = quick_options();
  o.clip = false;
  const CompleteResult r = complete(d, o);
  const MethodResult* mean = r.find("mean");
  const MethodResult* deep = r.find("deep");
  ASSERT_NE(mean, nullptr);
  ASSERT_NE(deep, nullptr);
  EXPECT_GT(mean->val_rmse, 0.8);
  EXPECT_LT(deep->val_rmse, 0.25 * mean->val_rmse) << deep->termination;
  EXPECT_LT(deep->train_rmse, 0.25 * mean->train_rmse);
  // Factor shapes: W_1 width x items, W_n users x width.
  ASSERT_EQ(r.factors.size(), 3u);
  EXPECT_EQ(r.factors[0].rows(), 12);
  EXPECT_EQ(r.factors[0].cols(), d.items.size());
  EXPECT_EQ(r.factors[2].rows(), d.users.size());
}

TEST(RatingsFit, EarlyStoppingRestoresTheBestValidationRmse) {
  // Pure noise: fitting it only hurts validation, so the best point is early and the run stops.
  const auto d = parse_ratings(synthetic_ratings(60, 50, 1, 0.4, 1.0, 3), "r.csv");
  CompleteOptions o = quick_options();
  o.clip = false;
  o.deep.width = 30;
  o.deep.optimizer.lr = 0.01;
  o.deep.patience = 10;
  o.deep.max_iters = 20000;
  const CompleteResult r = complete(d, o);
  const MethodResult* deep = r.find("deep");
  ASSERT_NE(deep, nullptr);
  EXPECT_EQ(deep->termination, "early_stopping");
  ASSERT_GE(r.history.size(), 11u);
  const auto best = std::min_element(r.history.begin(), r.history.end(),
                                     [](auto& a, auto& b) { return a.val_rmse < b.val_rmse; });
  // Stopped exactly `patience` evaluations after the best, and the factors are the best ones.
  EXPECT_EQ(r.history.size() - 1 - static_cast<std::size_t>(best - r.history.begin()), 10u);
  EXPECT_EQ(deep->hyperparameters["best_iteration"].get<long>(), best->iteration);
  EXPECT_NEAR(deep->val_rmse, best->val_rmse, 1e-12);
  EXPECT_LT(best->val_rmse, r.history.back().val_rmse);
  EXPECT_LT(r.history.back().train_rmse, best->train_rmse);  // it was overfitting
}

TEST(RatingsFit, ClippingAndCentering) {
  const auto d = parse_ratings(synthetic_ratings(30, 20, 2, 0.5, 0.1, 4), "r.csv");
  CompleteOptions o = quick_options();
  o.deep.max_iters = 50;
  const CompleteResult r = complete(d, o);
  // The clip range and the mean are those of the training ratings.
  double lo = 1e300, hi = -1e300, sum = 0;
  for (Index k : r.split.train) {
    const double v = d.ratings[static_cast<std::size_t>(k)].value;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    sum += v;
  }
  EXPECT_EQ(r.output.lo, lo);
  EXPECT_EQ(r.output.hi, hi);
  EXPECT_NEAR(r.output.mean, sum / double(r.split.train.size()), 1e-12);
  EXPECT_EQ(r.find("mean")->hyperparameters["mean"].get<double>(), r.output.mean);
  EXPECT_EQ(r.output(1e9), hi);
  EXPECT_EQ(r.output(-1e9), lo);
  o.center = false;
  o.clip = false;
  const CompleteResult u = complete(d, o);
  EXPECT_EQ(u.output.mean, 0.0);
  EXPECT_EQ(u.output(1e9), 1e9);
  // The mean baseline is the same either way.
  EXPECT_DOUBLE_EQ(u.find("mean")->val_rmse, r.find("mean")->val_rmse);
}

// ---------------------------------------------------------------------------------------------
// Predictions

TEST(RatingsPredict, FormatAndUnknownIds) {
  const auto d = parse_ratings(synthetic_ratings(30, 20, 2, 0.5, 0.1, 5), "r.csv");
  CompleteOptions o = quick_options();
  o.deep.max_iters = 200;
  const CompleteResult r = complete(d, o);
  const auto pairs = parse_pairs("user,item\nu1,m2\nnobody,m2\nu1,nothing\n", "p.csv", d);
  expect_error([&] { predict_pairs(d, r, pairs, UnknownPolicy::kError, "p.csv"); },
               "p.csv:3: unknown user 'nobody'");
  const auto rows = predict_pairs(d, r, pairs, UnknownPolicy::kMean, "p.csv");
  ASSERT_EQ(rows.size(), 3u);
  const double mean = r.find("mean")->hyperparameters["mean"].get<double>();
  EXPECT_EQ(rows[0].note, "");
  EXPECT_EQ(rows[1].note, "unknown_user");
  EXPECT_EQ(rows[2].note, "unknown_item");
  EXPECT_EQ(rows[1].values, std::vector<double>(2, mean));
  // The deep column is mean + (W_n ... W_1)(u1, m2) of the best factors, clipped to [lo, hi].
  const Index u = d.users.find("u1"), i = d.items.find("m2");
  dln::Mat e2e = r.factors.front();
  for (std::size_t j = 1; j < r.factors.size(); ++j) e2e = r.factors[j] * e2e;
  ASSERT_EQ(e2e.rows(), d.users.size());
  const double raw = r.output.mean + e2e(u, i);
  EXPECT_GT(raw, r.output.lo);  // inside the range: the clip does not hide the model
  EXPECT_LT(raw, r.output.hi);
  EXPECT_NEAR(rows[0].values[1], raw, 1e-12 * std::abs(raw));
  const std::string csv = predictions_csv(r, rows);
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "user,item,mean,deep,note");
  std::getline(in, line);
  EXPECT_EQ(line.substr(0, 6), "u1,m2,");
  EXPECT_EQ(line.back(), ',');  // empty note
  std::getline(in, line);
  EXPECT_EQ(line, fmt::format("nobody,m2,{:.17g},{:.17g},unknown_user", mean, mean));
  expect_error([] { parse_unknown_policy("zero"); },
               "--unknown: must be error or mean, got 'zero'");
}

// ---------------------------------------------------------------------------------------------
// The binary

TEST(CompleteCli, WritesTheOutputDirectory) {
  const fs::path ratings = write("low_rank.csv", synthetic_ratings(50, 40, 2, 0.4, 0.05, 6));
  const fs::path pairs = write("pairs.csv", "user,item\nu3,m7\nu0,m0\n");
  const fs::path out = scratch() / "run";
  const Result r = run_dln(fmt::format(
      "complete {} --out {} --width 8 --depth 3 --seed 2 --test-fraction 0.1 --predict {} -q",
      ratings.string(), out.string(), pairs.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"summary.json", "options.json", "users.csv", "items.csv", "history.csv",
                        "predictions.csv", "factors/W1.npy", "factors/W2.npy", "factors/W3.npy"})
    EXPECT_TRUE(fs::exists(out / f)) << f;
  const auto s = nlohmann::json::parse(slurp(out / "summary.json"));
  EXPECT_EQ(s["data"]["users"], 50);
  EXPECT_EQ(s["data"]["items"], 40);
  EXPECT_EQ(s["data"]["duplicates"], 0);
  const double mean_val = s["methods"]["mean"]["val_rmse"];
  const double deep_val = s["methods"]["deep"]["val_rmse"];
  EXPECT_LT(deep_val, 0.5 * mean_val);
  EXPECT_TRUE(s["methods"]["deep"]["test_rmse"].is_number());
  const auto opts = nlohmann::json::parse(slurp(out / "options.json"));
  EXPECT_EQ(opts["seed"], 2);
  EXPECT_EQ(opts["deep"]["width"], 8);
  EXPECT_EQ(slurp(out / "users.csv").substr(0, 9), "index,id\n");
  EXPECT_EQ(slurp(out / "history.csv").substr(0, 37), "iteration,train_rmse,val_rmse,seconds");
  const dln::Mat w1 = dln::io::read_npy_matrix((out / "factors/W1.npy").string());
  EXPECT_EQ(w1.rows(), 8);
  EXPECT_EQ(w1.cols(), 40);
  const std::string pred = slurp(out / "predictions.csv");
  EXPECT_EQ(pred.substr(0, pred.find('\n')), "user,item,mean,deep,note");
  EXPECT_EQ(std::count(pred.begin(), pred.end(), '\n'), 3);
  // Each deep prediction is mean + W3 W2 W1 at (users.csv index, items.csv index), clipped.
  const dln::Mat e2e = dln::io::read_npy_matrix((out / "factors/W3.npy").string()) *
                       dln::io::read_npy_matrix((out / "factors/W2.npy").string()) * w1;
  auto index_of = [](const std::string& csv, const std::string& id) {
    const auto at = csv.find("," + id + "\n");
    const auto start = csv.rfind('\n', at) + 1;
    return std::stol(csv.substr(start, at - start));
  };
  const std::string users = slurp(out / "users.csv"), items = slurp(out / "items.csv");
  const double mean = s["output"]["mean"], lo = s["output"]["clip_range"][0],
               hi = s["output"]["clip_range"][1];
  std::istringstream lines(pred);
  std::string line;
  std::getline(lines, line);
  for (const auto& [user, item] : {std::pair{"u3", "m7"}, std::pair{"u0", "m0"}}) {
    std::getline(lines, line);
    ASSERT_EQ(line.substr(0, line.find(',', line.find(',') + 1)), std::string(user) + "," + item);
    const auto deep_at = line.find(',', line.find(',', line.find(',') + 1) + 1) + 1;
    const double deep = std::stod(line.substr(deep_at, line.rfind(',') - deep_at));
    const double want =
        std::clamp(mean + e2e(index_of(users, user), index_of(items, item)), lo, hi);
    EXPECT_NEAR(deep, want, 1e-12 * std::abs(want)) << line;
  }
  // Same seed, same numbers.
  const fs::path again = scratch() / "run2";
  ASSERT_EQ(run_dln(fmt::format("complete {} --out {} --width 8 --seed 2 --test-fraction 0.1 -q",
                                ratings.string(), again.string()))
                .code,
            0);
  const auto s2 = nlohmann::json::parse(slurp(again / "summary.json"));
  EXPECT_EQ(s2["methods"]["deep"]["val_rmse"], s["methods"]["deep"]["val_rmse"]);
}

TEST(CompleteCli, BadInputIsOneLineAndExitCode2) {
  const fs::path out = scratch() / "bad";
  const fs::path dup = write("dup.csv", "user,item,rating\nu1,m1,4\nu2,m1,3\nu1,m1,5\n");
  Result r = run_dln(fmt::format("complete {} --out {}", dup.string(), out.string()));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, fmt::format("dln: error: {}:4: duplicate rating for user 'u1' and item 'm1' "
                               "(first at line 2)\n",
                               dup.string()));
  const fs::path nan = write("nan.csv", "u1,m1,4\nu2,m2,NaN\n");
  r = run_dln(fmt::format("complete {} --out {}", nan.string(), out.string()));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, fmt::format("dln: error: {}:2: rating 'NaN' is not finite\n", nan.string()));
  const fs::path empty = write("empty.csv", "");
  r = run_dln(fmt::format("complete {} --out {}", empty.string(), out.string()));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, fmt::format("dln: error: {}: empty file\n", empty.string()));
  r = run_dln(
      fmt::format("complete {} --out {}", (scratch() / "missing.csv").string(), out.string()));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.substr(0, 11), "dln: error:");
  // Unknown ids in --predict.
  const fs::path ratings = write("ok.csv", synthetic_ratings(20, 15, 2, 0.5, 0.1, 7));
  const fs::path pairs = write("unknown.csv", "u1,m1\nu1,m999\n");
  r = run_dln(fmt::format("complete {} --out {} --max-iters 20 --predict {} -q", ratings.string(),
                          out.string(), pairs.string()));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, fmt::format("dln: error: {}:2: unknown item 'm999'\n", pairs.string()));
  r = run_dln(fmt::format("complete {} --out {} --max-iters 20 --predict {} --unknown mean -q",
                          ratings.string(), out.string(), pairs.string()));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(out / "predictions.csv").find(",unknown_item\n"), std::string::npos);
  r = run_dln(fmt::format("complete {} --out {} --depth 0", ratings.string(), out.string()));
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "dln: error: --depth: must be >= 1, got 0\n");
}
