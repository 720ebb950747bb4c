#include "dln/completion/ratings.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>

#include "dln/baselines/als.hpp"
#include "dln/baselines/soft_impute.hpp"
#include "dln/core/rng.hpp"
#include "dln/init/initializers.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"
#include "dln/losses/loss.hpp"

namespace dln::completion {

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view unquote(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool parse_double(std::string_view s, double& out) {
  if (s.size() > 1 && s.front() == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size();
}

// Calls f(line_number, line) for every non-blank line (trimmed, a UTF-8 BOM removed).
template <class F>
void for_each_line(std::string_view text, F&& f) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  long number = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    ++number;
    const std::string_view line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    if (!line.empty()) f(number, line);
  }
}

std::string detect_delimiter(std::string_view line) {
  if (line.find(',') != std::string_view::npos) return ",";
  if (line.find('\t') != std::string_view::npos) return "\t";
  if (line.find("::") != std::string_view::npos) return "::";
  return ",";
}

void split_fields(std::string_view line, const std::string& delim,
                  std::vector<std::string_view>& fields) {
  fields.clear();
  std::size_t pos = 0;
  for (;;) {
    const std::size_t end = line.find(delim, pos);
    fields.push_back(trim(line.substr(pos, end == std::string_view::npos ? end : end - pos)));
    if (end == std::string_view::npos) break;
    pos = end + delim.size();
  }
}

bool is_rating_header(std::string_view field) {
  const std::string f = lower(unquote(field));
  return f == "rating" || f == "ratings" || f == "value" || f == "score" || f == "stars";
}

void check_fraction(double f, const char* name, std::string* error, bool& ok) {
  if (ok && !(std::isfinite(f) && f >= 0 && f < 1)) {
    if (error) *error = fmt::format("{}: must be in [0, 1), got {}", name, f);
    ok = false;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Ids and parsing

Index IdMap::find(std::string_view id) const {
  const auto it = index_.find(id);
  return it == index_.end() ? -1 : it->second;
}

Index IdMap::insert(std::string_view id) {
  const auto it = index_.find(id);
  if (it != index_.end()) return it->second;
  const Index i = size();
  ids_.emplace_back(id);
  index_.emplace(ids_.back(), i);
  return i;
}

double RatingsData::density() const {
  const double cells = static_cast<double>(users.size()) * static_cast<double>(items.size());
  return cells > 0 ? static_cast<double>(ratings.size()) / cells : 0.0;
}

RatingsData parse_ratings(std::string_view text, const std::string& source) {
  RatingsData data;
  data.source = source;
  data.ratings.reserve(text.size() / 16);
  std::vector<std::string_view> fields;
  bool first = true;
  for_each_line(text, [&](long line, std::string_view s) {
    if (first) data.delimiter = detect_delimiter(s);
    split_fields(s, data.delimiter, fields);
    const bool is_first = first;
    first = false;
    if (fields.size() < 3)
      throw Error(fmt::format("{}:{}: expected 3 fields user,item,rating, got {}", source, line,
                              fields.size()));
    data.max_fields = std::max(data.max_fields, static_cast<Index>(fields.size()));
    double value = 0;
    if (!parse_double(fields[2], value)) {
      if (is_first && is_rating_header(fields[2])) {
        data.header = true;
        return;
      }
      throw Error(fmt::format("{}:{}: rating '{}' is not a number", source, line, fields[2]));
    }
    if (!std::isfinite(value))
      throw Error(fmt::format("{}:{}: rating '{}' is not finite", source, line, fields[2]));
    const std::string_view user = unquote(fields[0]), item = unquote(fields[1]);
    if (user.empty()) throw Error(fmt::format("{}:{}: empty user id", source, line));
    if (item.empty()) throw Error(fmt::format("{}:{}: empty item id", source, line));
    data.ratings.push_back({data.users.insert(user), data.items.insert(item), value, line});
  });
  if (first) throw Error(fmt::format("{}: empty file", source));
  if (data.ratings.empty()) throw Error(fmt::format("{}: no ratings", source));

  // Duplicates: sort (user, item, line) and report the pair whose second line comes first.
  std::vector<std::pair<std::uint64_t, long>> keys(data.ratings.size());
  const auto items = static_cast<std::uint64_t>(data.items.size());
  for (std::size_t k = 0; k < keys.size(); ++k) {
    const auto& r = data.ratings[k];
    keys[k] = {static_cast<std::uint64_t>(r.user) * items + static_cast<std::uint64_t>(r.item),
               static_cast<long>(k)};
  }
  std::sort(keys.begin(), keys.end());
  long dup_first = -1, dup_second = -1;
  for (std::size_t k = 1; k < keys.size(); ++k) {
    if (keys[k].first != keys[k - 1].first) continue;
    // keys[k - 1] is an earlier occurrence of the same pair (positions ascend within a key).
    if (dup_second < 0 || keys[k].second < dup_second) {
      dup_second = keys[k].second;
      std::size_t j = k - 1;
      while (j > 0 && keys[j - 1].first == keys[k].first) --j;
      dup_first = keys[j].second;
    }
  }
  if (dup_second >= 0) {
    const auto& a = data.ratings[static_cast<std::size_t>(dup_first)];
    const auto& b = data.ratings[static_cast<std::size_t>(dup_second)];
    throw Error(
        fmt::format("{}:{}: duplicate rating for user '{}' and item '{}' (first at line {})",
                    source, b.line, data.users.id(b.user), data.items.id(b.item), a.line));
  }
  data.min_value = data.max_value = data.ratings[0].value;
  for (const auto& r : data.ratings) {
    data.min_value = std::min(data.min_value, r.value);
    data.max_value = std::max(data.max_value, r.value);
  }
  return data;
}

RatingsData read_ratings_csv(const std::string& path) {
  return parse_ratings(io::read_file(path), path);
}

std::vector<PredictPair> parse_pairs(std::string_view text, const std::string& source,
                                     const RatingsData& data) {
  std::vector<PredictPair> pairs;
  std::vector<std::string_view> fields;
  bool first = true;
  std::string delim = ",";
  for_each_line(text, [&](long line, std::string_view s) {
    if (first) delim = detect_delimiter(s);
    split_fields(s, delim, fields);
    const bool is_first = first;
    first = false;
    if (fields.size() < 2)
      throw Error(
          fmt::format("{}:{}: expected 2 fields user,item, got {}", source, line, fields.size()));
    const std::string_view user = unquote(fields[0]), item = unquote(fields[1]);
    if (is_first && data.users.find(user) < 0) {
      const std::string u = lower(user);
      if (u == "user" || u == "userid" || u == "user_id") return;
    }
    if (user.empty()) throw Error(fmt::format("{}:{}: empty user id", source, line));
    if (item.empty()) throw Error(fmt::format("{}:{}: empty item id", source, line));
    pairs.push_back({std::string(user), std::string(item), line});
  });
  if (pairs.empty()) throw Error(fmt::format("{}: no pairs", source));
  return pairs;
}

std::vector<PredictPair> read_pairs_csv(const std::string& path, const RatingsData& data) {
  return parse_pairs(io::read_file(path), path, data);
}

// ---------------------------------------------------------------------------------------------
// Split

bool SplitOptions::IsValid(std::string* error) const {
  bool ok = true;
  check_fraction(val_fraction, "--val-fraction", error, ok);
  check_fraction(test_fraction, "--test-fraction", error, ok);
  if (ok && !(val_fraction > 0)) {
    if (error) *error = "--val-fraction: must be > 0 (validation picks the stopping point)";
    ok = false;
  }
  if (ok && val_fraction + test_fraction > 0.5) {
    if (error)
      *error = fmt::format("--val-fraction + --test-fraction: must be <= 0.5, got {}",
                           val_fraction + test_fraction);
    ok = false;
  }
  return ok;
}

Split split_ratings(const RatingsData& data, const SplitOptions& options) {
  std::string err;
  if (!options.IsValid(&err)) throw Error(err);
  const Index n = data.size();
  std::vector<Index> order(static_cast<std::size_t>(n));
  for (Index k = 0; k < n; ++k) order[static_cast<std::size_t>(k)] = k;
  Rng rng(options.seed);
  for (Index k = n - 1; k > 0; --k)  // Fisher-Yates
    std::swap(order[static_cast<std::size_t>(k)],
              order[rng.below(static_cast<std::uint64_t>(k) + 1)]);
  std::vector<Index> user_count(static_cast<std::size_t>(data.users.size()), 0);
  std::vector<Index> item_count(static_cast<std::size_t>(data.items.size()), 0);
  for (const auto& r : data.ratings) {
    ++user_count[static_cast<std::size_t>(r.user)];
    ++item_count[static_cast<std::size_t>(r.item)];
  }
  const auto want_test = static_cast<Index>(std::llround(options.test_fraction * double(n)));
  const auto want_val = static_cast<Index>(std::llround(options.val_fraction * double(n)));
  std::vector<char> part(static_cast<std::size_t>(n), 0);  // 0 train, 1 val, 2 test
  Index got_test = 0, got_val = 0;
  for (Index k : order) {
    if (got_test >= want_test && got_val >= want_val) break;
    const auto& r = data.ratings[static_cast<std::size_t>(k)];
    auto& uc = user_count[static_cast<std::size_t>(r.user)];
    auto& ic = item_count[static_cast<std::size_t>(r.item)];
    if (uc <= 1 || ic <= 1) continue;
    --uc;
    --ic;
    if (got_test < want_test) {
      part[static_cast<std::size_t>(k)] = 2;
      ++got_test;
    } else {
      part[static_cast<std::size_t>(k)] = 1;
      ++got_val;
    }
  }
  Split s;
  for (Index k = 0; k < n; ++k) {
    const char p = part[static_cast<std::size_t>(k)];
    (p == 0 ? s.train : p == 1 ? s.val : s.test).push_back(k);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Models

double rmse(const RatingsData& data, const std::vector<Index>& which, const Output& out,
            const std::function<double(Index, Index)>& model) {
  if (which.empty()) return kNaN;
  double sq = 0;
  for (Index k : which) {
    const auto& r = data.ratings[static_cast<std::size_t>(k)];
    const double e = out(model(r.user, r.item)) - r.value;
    sq += e * e;
  }
  return std::sqrt(sq / static_cast<double>(which.size()));
}

void FactorModel::reset(const Factors& w) {
  const std::size_t n = w.size();
  depth1_ = (n == 1);
  right_ = w[0];
  if (depth1_) return;
  Mat prod = w[n - 1];  // users x d_{n-1}
  for (std::size_t j = n - 1; j-- > 1;) {
    Mat next(prod.rows(), w[j].cols());
    next.noalias() = prod * w[j];
    prod.swap(next);
  }
  left_ = prod.transpose();
}

namespace {

// rmse() for a factor model without std::function overhead.
double factor_rmse(const RatingsData& data, const std::vector<Index>& which, const Output& out,
                   const FactorModel& m) {
  if (which.empty()) return kNaN;
  double sq = 0;
  for (Index k : which) {
    const auto& r = data.ratings[static_cast<std::size_t>(k)];
    const double e = out(m(r.user, r.item)) - r.value;
    sq += e * e;
  }
  return std::sqrt(sq / static_cast<double>(which.size()));
}

// Evaluates every eval_every steps, keeps the best factors, stops after `patience` evaluations
// without improvement.
class EarlyStopping final : public Callback {
 public:
  EarlyStopping(const RatingsData& data, const Split& split, const Output& out,
                const DeepOptions& options, const Factors& w)
      : data_(data), split_(split), out_(out), options_(options), w_(w), model_(w) {
    start_ = now_seconds();
  }
  bool on_step(long iteration, double /*loss*/) override {
    if (iteration % options_.eval_every != 0) return true;
    return evaluate(iteration);
  }
  bool evaluate(long iteration) {
    if (!history.empty() && history.back().iteration == iteration) return true;
    model_.reset(w_);
    HistoryPoint p;
    p.iteration = iteration;
    p.train_rmse = factor_rmse(data_, split_.train, out_, model_);
    p.val_rmse = factor_rmse(data_, split_.val, out_, model_);
    p.seconds = now_seconds() - start_;
    history.push_back(p);
    // Patience starts once training RMSE is 1% below its initial value: from a small init the
    // factors first linger near the saddle at zero, where validation RMSE barely moves.
    if (!escaped && p.train_rmse <= 0.99 * history.front().train_rmse) escaped = true;
    if (best_iteration < 0 || p.val_rmse < best_val) {
      best_val = p.val_rmse;
      best_iteration = iteration;
      best = w_;
      since_best = 0;
      return true;
    }
    if (escaped) ++since_best;
    if (options_.patience > 0 && since_best >= options_.patience) {
      patience_exhausted = true;
      return false;
    }
    return true;
  }

  std::vector<HistoryPoint> history;
  Factors best;
  long best_iteration = -1;
  double best_val = kNaN;
  long since_best = 0;
  bool escaped = false;
  bool patience_exhausted = false;

 private:
  const RatingsData& data_;
  const Split& split_;
  const Output& out_;
  const DeepOptions& options_;
  const Factors& w_;
  FactorModel model_;
  double start_ = 0;
};

// The training entries as (row, col, rating - mean) triples: the input of every method.
struct Entries {
  std::vector<Index> r, c;
  std::vector<double> b;
};
Entries centered_train(const RatingsData& d, const Split& split, double mean) {
  Entries e;
  e.r.reserve(split.train.size());
  e.c.reserve(split.train.size());
  e.b.reserve(split.train.size());
  for (Index k : split.train) {
    const auto& rating = d.ratings[static_cast<std::size_t>(k)];
    e.r.push_back(rating.user);
    e.c.push_back(rating.item);
    e.b.push_back(rating.value - mean);
  }
  return e;
}

void score(MethodResult& m, const RatingsData& data, const Split& split, const Output& out) {
  m.train_rmse = rmse(data, split.train, out, m.model);
  m.val_rmse = rmse(data, split.val, out, m.model);
  m.test_rmse = rmse(data, split.test, out, m.model);
}

std::function<double(Index, Index)> low_rank_model(const LowRank& x) {
  auto p = std::make_shared<LowRank>(x);
  // Scale U's columns by d once: at(r, c) = sum_j u(r, j) d_j v(c, j).
  auto ud = std::make_shared<Mat>((p->u * p->d.asDiagonal()).transpose());  // k x rows
  auto vt = std::make_shared<Mat>(p->v.transpose());                        // k x cols
  return [ud, vt](Index r, Index c) { return ud->rows() == 0 ? 0.0 : ud->col(r).dot(vt->col(c)); };
}

MethodResult fit_deep(const RatingsData& data, const Split& split, const Output& out,
                      const DeepOptions& o, const std::vector<Callback*>& extra,
                      Factors& best_factors, std::vector<HistoryPoint>& history) {
  const double t0 = now_seconds();
  const Index users = data.users.size(), items = data.items.size();
  Entries e = centered_train(data, split, out.mean);
  CompletionLoss loss(users, items, std::move(e.r), std::move(e.c), std::move(e.b),
                      Reduction::kHalfMean);
  std::vector<Index> dims{items};
  for (int j = 1; j < o.depth; ++j) dims.push_back(o.width);
  dims.push_back(users);
  Objective objective(dims, loss);
  InitOptions init;
  init.kind = InitKind::kGaussian;
  init.scale = o.init_scale;
  init.seed = o.seed;
  Factors w = initialize(dims, init);
  auto optimizer = Optimizer::create(o.optimizer, w);
  StopOptions stop;
  stop.max_iters = o.max_iters;
  stop.max_seconds = o.max_seconds;
  RecordOptions record;
  record.every = std::max<long>(o.max_iters, 1);
  record.singular_values = 0;
  record.end_to_end = false;  // never form the users x items matrix
  EarlyStopping early(data, split, out, o, w);
  std::vector<Callback*> callbacks{&early};
  callbacks.insert(callbacks.end(), extra.begin(), extra.end());
  const Summary summary = train(objective, w, *optimizer, stop, record, nullptr, callbacks);
  if (summary.termination != Termination::kDiverged) early.evaluate(summary.iterations);

  MethodResult m;
  m.name = "deep";
  m.iterations = summary.iterations;
  m.termination = early.patience_exhausted ? "early_stopping" : to_string(summary.termination);
  best_factors = early.best;
  history = early.history;
  auto model = std::make_shared<FactorModel>(best_factors);
  m.model = [model](Index u, Index i) { return (*model)(u, i); };
  m.hyperparameters = {{"depth", o.depth},           {"width", o.width},
                       {"init_scale", o.init_scale}, {"optimizer", to_string(o.optimizer.kind)},
                       {"lr", o.optimizer.lr},       {"best_iteration", early.best_iteration}};
  m.details = {{"eval_every", o.eval_every},
               {"patience", o.patience},
               {"parameters",
                [&] {
                  Index p = 0;
                  for (const auto& f : w) p += f.size();
                  return p;
                }()},
               {"seconds_per_step",
                summary.iterations > 0 ? summary.wall_seconds / double(summary.iterations) : 0.0}};
  if (summary.termination == Termination::kDiverged) m.details["message"] = summary.message;
  m.seconds = now_seconds() - t0;
  return m;
}

MethodResult fit_soft_impute(const RatingsData& data, const Split& split, const Output& out,
                             const BaselineOptions& o) {
  const double t0 = now_seconds();
  const Entries e = centered_train(data, split, out.mean);
  const std::vector<Index>& r = e.r;
  const std::vector<Index>& c = e.c;
  const std::vector<double>& b = e.b;
  SoftImputeOptions si;
  si.max_rank = o.si_max_rank;
  si.max_iters = o.si_max_iters;
  si.seed = o.seed;
  SoftImputePathOptions path;
  path.points = o.si_points;
  path.min_ratio = o.si_min_ratio;
  // The path from lambda_max down, each solve warm-started from the previous one; it ends once
  // validation RMSE has risen at two lambdas in a row (smaller lambdas only overfit more).
  const Index users = data.users.size(), items = data.items.size();
  const std::vector<double> lambdas = soft_impute_lambdas(users, items, r, c, b, path);
  MethodResult best;
  best.name = "soft_impute";
  nlohmann::ordered_json trail = nlohmann::ordered_json::array();
  long total_iters = 0, rises = 0;
  double previous_val = kNaN;
  SoftImputeResult res;
  for (std::size_t k = 0; k < lambdas.size() && rises < 2; ++k) {
    si.lambda = lambdas[k];
    res = soft_impute(users, items, r, c, b, si, k > 0 ? &res.x : nullptr);
    MethodResult m;
    m.model = low_rank_model(res.x);
    const double val = rmse(data, split.val, out, m.model);
    rises = val > previous_val ? rises + 1 : 0;
    previous_val = val;
    total_iters += res.iterations;
    trail.push_back({{"lambda", res.lambda},
                     {"val_rmse", val},
                     {"rank", res.x.rank()},
                     {"iterations", res.iterations},
                     {"termination", res.termination},
                     {"rank_capped", res.rank_capped}});
    if (!best.model || val < best.val_rmse) {
      best.model = m.model;
      best.val_rmse = val;
      best.termination = res.termination;
      best.hyperparameters = {{"lambda", res.lambda},
                              {"rank", res.x.rank()},
                              {"max_rank", o.si_max_rank},
                              {"method", res.method},
                              {"rank_capped", res.rank_capped}};
    }
  }
  best.iterations = total_iters;
  best.details = {{"path", trail}};
  score(best, data, split, out);
  best.seconds = now_seconds() - t0;
  return best;
}

MethodResult fit_als(const RatingsData& data, const Split& split, const Output& out,
                     const BaselineOptions& o) {
  const double t0 = now_seconds();
  const Entries e = centered_train(data, split, out.mean);
  const std::vector<Index>& r = e.r;
  const std::vector<Index>& c = e.c;
  const std::vector<double>& b = e.b;
  MethodResult best;
  best.name = "als";
  nlohmann::ordered_json trail = nlohmann::ordered_json::array();
  long total_iters = 0;
  for (double lambda : o.als_lambdas) {
    AlsOptions a;
    a.rank = o.als_rank;
    a.lambda = lambda;
    a.weighted_lambda = true;
    a.max_iters = o.als_max_iters;
    a.tol = 1e-6;
    a.seed = o.seed;
    const AlsResult res = als(data.users.size(), data.items.size(), r, c, b, a);
    MethodResult m;
    m.model = low_rank_model(res.x);
    const double val = rmse(data, split.val, out, m.model);
    total_iters += res.iterations;
    trail.push_back({{"lambda", lambda},
                     {"val_rmse", val},
                     {"iterations", res.iterations},
                     {"termination", res.termination}});
    if (!best.model || val < best.val_rmse) {
      best.model = m.model;
      best.val_rmse = val;
      best.termination = res.termination;
      best.hyperparameters = {{"lambda", lambda}, {"rank", o.als_rank}, {"weighted_lambda", true}};
    }
  }
  best.iterations = total_iters;
  best.details = {{"path", trail}};
  score(best, data, split, out);
  best.seconds = now_seconds() - t0;
  return best;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Options

OptimizerOptions DeepOptions::default_optimizer() {
  OptimizerOptions o;
  o.kind = OptimizerKind::kAdam;
  o.lr = 0.003;
  return o;
}

bool DeepOptions::IsValid(std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (depth < 1) return fail(fmt::format("--depth: must be >= 1, got {}", depth));
  if (width < 1) return fail(fmt::format("--width: must be >= 1, got {}", width));
  if (!(std::isfinite(init_scale) && init_scale > 0))
    return fail(fmt::format("--init-scale: must be finite and > 0, got {}", init_scale));
  if (optimizer.kind != OptimizerKind::kGd && optimizer.kind != OptimizerKind::kGroupRmsprop &&
      optimizer.kind != OptimizerKind::kAdam && optimizer.kind != OptimizerKind::kMomentum)
    return fail(fmt::format("--optimizer: must be gd, momentum, group_rmsprop or adam, got {}",
                            to_string(optimizer.kind)));
  if (!(std::isfinite(optimizer.lr) && optimizer.lr > 0))
    return fail(fmt::format("--lr: must be finite and > 0, got {}", optimizer.lr));
  if (max_iters < 0) return fail(fmt::format("--max-iters: must be >= 0, got {}", max_iters));
  if (eval_every < 1) return fail(fmt::format("--eval-every: must be >= 1, got {}", eval_every));
  if (patience < 0) return fail(fmt::format("--patience: must be >= 0, got {}", patience));
  if (!(std::isfinite(max_seconds) && max_seconds >= 0))
    return fail(fmt::format("--max-seconds: must be finite and >= 0, got {}", max_seconds));
  std::string e;
  if (!optimizer.IsValid(&e)) return fail(e);
  return true;
}

bool BaselineOptions::IsValid(std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  for (const auto& m : methods)
    if (m != "als" && m != "soft_impute")
      return fail(fmt::format("--baselines: unknown method '{}' (known: als, soft-impute)", m));
  if (si_points < 1) return fail("--si-points: must be >= 1");
  if (!(si_min_ratio > 0 && si_min_ratio <= 1)) return fail("--si-min-ratio: must be in (0, 1]");
  if (si_max_rank < 1) return fail("--si-max-rank: must be >= 1");
  if (als_rank < 1) return fail("--als-rank: must be >= 1");
  if (als_lambdas.empty()) return fail("--als-lambdas: needs at least one value");
  for (double l : als_lambdas)
    if (!(std::isfinite(l) && l > 0))
      return fail(fmt::format("--als-lambdas: every lambda must be finite and > 0, got {}", l));
  return true;
}

bool CompleteOptions::IsValid(std::string* error) const {
  return split.IsValid(error) && (!run_deep || deep.IsValid(error)) && baselines.IsValid(error);
}

nlohmann::ordered_json CompleteOptions::to_json() const {
  return {{"val_fraction", split.val_fraction},
          {"test_fraction", split.test_fraction},
          {"seed", split.seed},
          {"center", center},
          {"clip", clip},
          {"deep",
           {{"enabled", run_deep},
            {"depth", deep.depth},
            {"width", deep.width},
            {"init", "gaussian"},
            {"init_scale", deep.init_scale},
            {"init_seed", deep.seed},
            {"optimizer", to_string(deep.optimizer.kind)},
            {"lr", deep.optimizer.lr},
            {"eps", deep.optimizer.resolved_eps()},
            {"loss", "half_mean square over training ratings"},
            {"max_iters", deep.max_iters},
            {"eval_every", deep.eval_every},
            {"patience", deep.patience},
            {"max_seconds", deep.max_seconds}}},
          {"baselines",
           {{"methods", baselines.methods},
            {"soft_impute",
             {{"points", baselines.si_points},
              {"min_ratio", baselines.si_min_ratio},
              {"max_rank", baselines.si_max_rank},
              {"max_iters", baselines.si_max_iters}}},
            {"als",
             {{"rank", baselines.als_rank},
              {"lambdas", baselines.als_lambdas},
              {"weighted_lambda", true},
              {"max_iters", baselines.als_max_iters}}},
            {"seed", baselines.seed}}}};
}

// ---------------------------------------------------------------------------------------------
// The whole fit

const MethodResult* CompleteResult::find(const std::string& name) const {
  for (const auto& m : methods)
    if (m.name == name) return &m;
  return nullptr;
}

CompleteResult complete(const RatingsData& data, const CompleteOptions& options,
                        const std::vector<Callback*>& callbacks) {
  std::string err;
  if (!options.IsValid(&err)) throw Error(err);
  const double t0 = now_seconds();
  CompleteResult res;
  res.split = split_ratings(data, options.split);
  if (res.split.val.empty())
    throw Error(fmt::format("{}: too few ratings to hold out a validation set", data.source));
  Output& out = res.output;
  out.clip = options.clip;
  out.lo = out.hi = data.ratings[static_cast<std::size_t>(res.split.train.front())].value;
  double sum = 0;
  for (Index k : res.split.train) {
    const double v = data.ratings[static_cast<std::size_t>(k)].value;
    sum += v;
    out.lo = std::min(out.lo, v);
    out.hi = std::max(out.hi, v);
  }
  const double global = sum / static_cast<double>(res.split.train.size());
  out.mean = options.center ? global : 0.0;

  MethodResult mean;  // the training mean for every pair
  mean.name = "mean";
  const double offset = global - out.mean;
  mean.model = [offset](Index, Index) { return offset; };
  score(mean, data, res.split, out);
  mean.termination = "closed_form";
  mean.hyperparameters = {{"mean", global}};
  res.methods.push_back(mean);

  if (options.run_deep)
    res.methods.push_back(
        fit_deep(data, res.split, out, options.deep, callbacks, res.factors, res.history));
  for (const auto& name : options.baselines.methods) {
    if (name == "soft_impute")
      res.methods.push_back(fit_soft_impute(data, res.split, out, options.baselines));
    else if (name == "als")
      res.methods.push_back(fit_als(data, res.split, out, options.baselines));
  }
  for (auto& m : res.methods)
    if (m.name == "deep") score(m, data, res.split, out);
  res.seconds = now_seconds() - t0;
  return res;
}

// ---------------------------------------------------------------------------------------------
// Predictions and outputs

UnknownPolicy parse_unknown_policy(const std::string& s) {
  if (s == "error") return UnknownPolicy::kError;
  if (s == "mean") return UnknownPolicy::kMean;
  throw Error(fmt::format("--unknown: must be error or mean, got '{}'", s));
}

void check_known_ids(const RatingsData& data, const std::vector<PredictPair>& pairs,
                     const std::string& source) {
  for (const auto& p : pairs) {
    if (data.users.find(p.user) < 0)
      throw Error(fmt::format("{}:{}: unknown user '{}'", source, p.line, p.user));
    if (data.items.find(p.item) < 0)
      throw Error(fmt::format("{}:{}: unknown item '{}'", source, p.line, p.item));
  }
}

std::vector<PredictionRow> predict_pairs(const RatingsData& data, const CompleteResult& result,
                                         const std::vector<PredictPair>& pairs,
                                         UnknownPolicy unknown, const std::string& source) {
  std::vector<PredictionRow> rows;
  rows.reserve(pairs.size());
  const double global = result.methods.front().hyperparameters.value("mean", 0.0);
  for (const auto& p : pairs) {
    const Index u = data.users.find(p.user), i = data.items.find(p.item);
    PredictionRow row{p.user, p.item, {}, ""};
    if (u < 0 || i < 0) {
      if (unknown == UnknownPolicy::kError) check_known_ids(data, {p}, source);
      row.note = u < 0 && i < 0 ? "unknown_user_item" : u < 0 ? "unknown_user" : "unknown_item";
      row.values.assign(result.methods.size(), global);
    } else {
      for (const auto& m : result.methods) row.values.push_back(result.output(m.model(u, i)));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string predictions_csv(const CompleteResult& result, const std::vector<PredictionRow>& rows) {
  std::string s = "user,item";
  for (const auto& m : result.methods) s += "," + m.name;
  s += ",note\n";
  for (const auto& r : rows) {
    s += r.user;
    s += ',';
    s += r.item;
    for (double v : r.values) s += fmt::format(",{:.17g}", v);
    s += ',';
    s += r.note;
    s += '\n';
  }
  return s;
}

namespace {
nlohmann::ordered_json number_or_null(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}
}  // namespace

std::string summary_json(const RatingsData& data, const CompleteOptions& options,
                         const CompleteResult& result) {
  using json = nlohmann::ordered_json;
  json j;
  j["version"] = DLN_VERSION;
  j["input"] = data.source;
  j["data"] = {{"users", data.users.size()},
               {"items", data.items.size()},
               {"ratings", data.size()},
               {"density", data.density()},
               {"duplicates", 0},
               {"header", data.header},
               {"delimiter", data.delimiter == "\t" ? "tab" : data.delimiter},
               {"ignored_columns", data.max_fields - 3},
               {"min_rating", data.min_value},
               {"max_rating", data.max_value},
               {"train", result.split.train.size()},
               {"val", result.split.val.size()},
               {"test", result.split.test.size()},
               {"val_fraction_asked", options.split.val_fraction},
               {"test_fraction_asked", options.split.test_fraction},
               {"seed", options.split.seed}};
  j["output"] = {{"mean", result.output.mean},
                 {"clip", result.output.clip},
                 {"clip_range", {result.output.lo, result.output.hi}}};
  json methods = json::object();
  for (const auto& m : result.methods) {
    json e = {{"train_rmse", number_or_null(m.train_rmse)},
              {"val_rmse", number_or_null(m.val_rmse)},
              {"test_rmse", number_or_null(m.test_rmse)},
              {"iterations", m.iterations},
              {"seconds", m.seconds},
              {"termination", m.termination},
              {"hyperparameters", m.hyperparameters}};
    for (const auto& [k, v] : m.details.items()) e[k] = v;
    methods[m.name] = e;
  }
  j["methods"] = methods;
  std::string best;
  double best_val = kNaN;
  for (const auto& m : result.methods)
    if (best.empty() || m.val_rmse < best_val) {
      best = m.name;
      best_val = m.val_rmse;
    }
  j["best_by_val_rmse"] = best;
  j["seconds"] = result.seconds;
  return j.dump(2) + "\n";
}

void write_complete_directory(const std::string& dir, const RatingsData& data,
                              const CompleteOptions& options, const CompleteResult& result,
                              const std::vector<PredictionRow>* predictions) {
  namespace fs = std::filesystem;
  io::ensure_writable_directory(dir);
  const fs::path d(dir);
  auto id_csv = [](const IdMap& m) {
    std::string s = "index,id\n";
    for (Index i = 0; i < m.size(); ++i) s += fmt::format("{},{}\n", i, m.id(i));
    return s;
  };
  io::write_file_atomic((d / "users.csv").string(), id_csv(data.users));
  io::write_file_atomic((d / "items.csv").string(), id_csv(data.items));
  nlohmann::ordered_json opts = {{"version", DLN_VERSION}, {"input", data.source}};
  const nlohmann::ordered_json resolved = options.to_json();
  for (const auto& [k, v] : resolved.items()) opts[k] = v;
  io::write_file_atomic((d / "options.json").string(), opts.dump(2) + "\n");
  if (options.run_deep) {
    std::string h = "iteration,train_rmse,val_rmse,seconds\n";
    for (const auto& p : result.history)
      h += fmt::format("{},{:.10g},{:.10g},{:.6g}\n", p.iteration, p.train_rmse, p.val_rmse,
                       p.seconds);
    io::write_file_atomic((d / "history.csv").string(), h);
    io::ensure_writable_directory((d / "factors").string());
    for (std::size_t j = 0; j < result.factors.size(); ++j)
      io::write_npy((d / "factors" / fmt::format("W{}.npy", j + 1)).string(), result.factors[j]);
  }
  if (predictions)
    io::write_file_atomic((d / "predictions.csv").string(), predictions_csv(result, *predictions));
  io::write_file_atomic((d / "summary.json").string(), summary_json(data, options, result));
}

}  // namespace dln::completion
