// `dln complete`: the held-out split, the deep model and the baselines fitted on it.
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

void check_fraction(double f, const char* name, std::string* error, bool& ok) {
  if (ok && !(std::isfinite(f) && f >= 0 && f < 1)) {
    if (error) *error = fmt::format("{}: must be in [0, 1), got {}", name, f);
    ok = false;
  }
}

}  // namespace

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

}  // namespace dln::completion
