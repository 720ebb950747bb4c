// Practical completion of rating matrices (`dln complete`, docs/complete.md): a `user,item,rating`
// file with arbitrary ids, a deterministic held-out split, a deep factorization
// X = mean + W_n ... W_1 trained by the sparse completion Objective with early stopping on
// validation RMSE, the SoftImpute / ALS baselines with lambda chosen on the same validation set,
// and predictions for requested (user, item) pairs. The CLI is a thin layer over this file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dln/model/network.hpp"
#include "dln/optimizers/optimizer.hpp"
#include "dln/optimizers/train.hpp"

namespace dln::completion {

// Ids (any string) to 0-based indices, in order of first appearance.
class IdMap {
 public:
  Index size() const { return static_cast<Index>(ids_.size()); }
  const std::string& id(Index i) const { return ids_[static_cast<std::size_t>(i)]; }
  const std::vector<std::string>& ids() const { return ids_; }
  Index find(std::string_view id) const;  // -1 when unknown
  Index insert(std::string_view id);      // the existing index, or the next one

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> ids_;
  std::unordered_map<std::string, Index, Hash, std::equal_to<>> index_;
};

struct Rating {
  Index user = 0, item = 0;
  double value = 0;
  long line = 0;  // 1-based line of the file
};

struct RatingsData {
  std::string source;  // the file name used in messages
  IdMap users, items;
  std::vector<Rating> ratings;  // in file order
  bool header = false;          // the first line was a header (skipped)
  std::string delimiter = ",";  // ",", "\t" or "::" (detected from the first line)
  Index max_fields = 3;         // most fields on a line; fields after the third are ignored
  double min_value = 0, max_value = 0;
  Index size() const { return static_cast<Index>(ratings.size()); }
  double density() const;  // ratings / (users * items)
};

// Parses `user,item,rating[,ignored...]` text. The delimiter is detected from the first non-blank
// line: "," if it has one, else a tab, else "::" (MovieLens .dat), else ",". Fields are trimmed of
// blanks; one pair of surrounding double quotes is removed from an id. Blank lines are skipped.
// The first line is a header (skipped) when its rating field is not a number and is, in any
// case, `rating`, `ratings`, `value`, `score` or `stars`. Errors (dln::Error, one line):
//   "<source>: empty file"
//   "<source>: no ratings"                       (a header alone)
//   "<source>:<line>: expected 3 fields user,item,rating, got N"
//   "<source>:<line>: empty user id" / "empty item id"
//   "<source>:<line>: rating 'x' is not a number"
//   "<source>:<line>: rating 'x' is not finite"  (nan, inf)
//   "<source>:<line>: duplicate rating for user 'u' and item 'i' (first at line L)"
// With several duplicates the one whose second occurrence comes first is reported.
RatingsData parse_ratings(std::string_view text, const std::string& source);
RatingsData read_ratings_csv(const std::string& path);  // "<path>: cannot read ..." if unreadable

// A `user,item` pair to predict (more fields are ignored).
struct PredictPair {
  std::string user, item;
  long line = 0;
};
// The first line is a header (skipped) when its user field is, in any case, `user`, `userid`,
// `user_id` or the ratings file's first header field, and it is not a known user id.
// Errors: "<source>: no pairs", "<source>:<line>: expected 2 fields user,item, got N",
// "<source>:<line>: empty user id" / "empty item id".
std::vector<PredictPair> parse_pairs(std::string_view text, const std::string& source,
                                     const RatingsData& data);
std::vector<PredictPair> read_pairs_csv(const std::string& path, const RatingsData& data);

// Held-out split. Ratings are visited in an order shuffled by `seed`; each goes to the test set
// (until test_fraction * N), then the validation set (until val_fraction * N), but only while its
// user and its item keep at least one other training rating, so every user and item stays in
// training. The sets can end up smaller than asked on very sparse data (summary.json says).
struct SplitOptions {
  double val_fraction = 0.1;
  double test_fraction = 0.0;
  std::uint64_t seed = 0;
  bool IsValid(std::string* error) const;
};
struct Split {
  std::vector<Index> train, val, test;  // positions into RatingsData::ratings, ascending
};
Split split_ratings(const RatingsData& data, const SplitOptions& options);

// Predictions are mean + model(user, item), clipped to [lo, hi] when clip is set.
struct Output {
  double mean = 0;  // training mean when centering, else 0
  bool clip = true;
  double lo = 0, hi = 0;  // the training ratings' range
  double operator()(double model) const {
    const double p = mean + model;
    return clip ? (p < lo ? lo : (p > hi ? hi : p)) : p;
  }
};

// sqrt(mean over `which` of (out(model(u, i)) - rating)^2); NaN for an empty set.
double rmse(const RatingsData& data, const std::vector<Index>& which, const Output& out,
            const std::function<double(Index, Index)>& model);

// The centered model of factors W_1 (d_1 x items) .. W_n (users x d_{n-1}) at (user, item):
// <(W_n ... W_2)^T e_user, W_1 e_item>, with (W_n ... W_2)^T formed once (O(users d^2 n)).
class FactorModel {
 public:
  explicit FactorModel(const Factors& w) { reset(w); }
  void reset(const Factors& w);
  double operator()(Index user, Index item) const {
    return depth1_ ? right_(user, item) : left_.col(user).dot(right_.col(item));
  }

 private:
  bool depth1_ = false;
  Mat left_;   // (W_n ... W_2)^T: d_1 x users
  Mat right_;  // W_1: d_1 x items (depth 1: the users x items matrix)
};

// The deep factorization: dims {items, width, ..., width, users}, Gaussian init with entry std
// init_scale, trained on the centered training ratings by `optimizer` on the half-mean square
// loss (Eq. 9), validation RMSE evaluated every eval_every steps; stops after `patience`
// evaluations without a new best (0: never) and returns the best factors.
struct DeepOptions {
  int depth = 3;
  Index width = 32;
  double init_scale = 0.001;
  OptimizerOptions optimizer = default_optimizer();  // adam, lr 0.003
  long max_iters = 5000;
  long eval_every = 10;
  long patience = 30;
  double max_seconds = 0;  // wall-time limit of training (0: none)
  std::uint64_t seed = 0;  // the initial factors
  bool IsValid(std::string* error) const;
  static OptimizerOptions default_optimizer();
};

struct HistoryPoint {
  long iteration = 0;
  double train_rmse = 0, val_rmse = 0, seconds = 0;
};

// One fitted method ("mean", "deep", "soft_impute", "als").
struct MethodResult {
  std::string name;
  double train_rmse = 0, val_rmse = 0, test_rmse = 0;  // test: NaN without a test set
  long iterations = 0;
  double seconds = 0;
  std::string termination;
  nlohmann::ordered_json hyperparameters = nlohmann::ordered_json::object();
  nlohmann::ordered_json details = nlohmann::ordered_json::object();  // e.g. the lambda path
  std::function<double(Index, Index)> model;  // centered prediction; Output adds the mean
};

struct BaselineOptions {
  std::vector<std::string> methods;  // "als", "soft_impute" (also accepted: "soft-impute")
  // SoftImpute: lambda path of `si_points` values from lambda_max down to si_min_ratio lambda_max,
  // rank capped at si_max_rank; the lambda with the best validation RMSE wins.
  Index si_points = 12;
  double si_min_ratio = 0.01;
  Index si_max_rank = 100;
  long si_max_iters = 100;
  // ALS-WR (weighted lambda) of rank als_rank for each lambda of als_lambdas.
  Index als_rank = 10;
  std::vector<double> als_lambdas = {0.01, 0.03, 0.1, 0.3, 1.0};
  long als_max_iters = 50;
  std::uint64_t seed = 1;
  bool IsValid(std::string* error) const;
};

struct CompleteOptions {
  SplitOptions split;
  bool center = true;  // subtract the training mean (predictions add it back)
  bool clip = true;    // clip predictions to the training ratings' range
  DeepOptions deep;
  bool run_deep = true;
  BaselineOptions baselines;
  bool IsValid(std::string* error) const;
  nlohmann::ordered_json to_json() const;
};

struct CompleteResult {
  Split split;
  Output output;
  std::vector<MethodResult> methods;  // "mean" first, then "deep", then the baselines
  Factors factors;                    // the deep model's best factors
  std::vector<HistoryPoint> history;  // the deep model's evaluations
  double seconds = 0;
  const MethodResult* find(const std::string& name) const;
};

// Splits, fits every method and scores them. `callbacks` run inside the deep model's train().
CompleteResult complete(const RatingsData& data, const CompleteOptions& options,
                        const std::vector<Callback*>& callbacks = {});

// Unknown ids in the pairs: kError throws "<source>:<line>: unknown user 'u'" (or item);
// kMean predicts the training mean for every method and notes unknown_user / unknown_item /
// unknown_user_item in the `note` column.
enum class UnknownPolicy { kError, kMean };
UnknownPolicy parse_unknown_policy(const std::string& s);  // "error" | "mean"

// Throws "<source>:<line>: unknown user 'u'" (or item) for the first pair with an unknown id.
void check_known_ids(const RatingsData& data, const std::vector<PredictPair>& pairs,
                     const std::string& source);

struct PredictionRow {
  std::string user, item;
  std::vector<double> values;  // one per method of CompleteResult::methods
  std::string note;
};
std::vector<PredictionRow> predict_pairs(const RatingsData& data, const CompleteResult& result,
                                         const std::vector<PredictPair>& pairs,
                                         UnknownPolicy unknown, const std::string& source);
// `user,item,<method>...,note` with 17 significant digits (ids written as read).
std::string predictions_csv(const CompleteResult& result, const std::vector<PredictionRow>& rows);

// The output directory (docs/complete.md): users.csv, items.csv, options.json, history.csv,
// factors/W*.npy, predictions.csv (when rows is given), summary.json last. Every file atomic.
void write_complete_directory(const std::string& dir, const RatingsData& data,
                              const CompleteOptions& options, const CompleteResult& result,
                              const std::vector<PredictionRow>* predictions);
std::string summary_json(const RatingsData& data, const CompleteOptions& options,
                         const CompleteResult& result);

}  // namespace dln::completion
