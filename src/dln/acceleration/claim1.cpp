#include "dln/acceleration/claim1.hpp"

#include <fmt/format.h>

#include <cmath>
#include <map>

namespace dln::acceleration {

long iterations_to_epsilon(const std::vector<long>& iterations, const std::vector<double>& losses,
                           double l_star, double epsilon) {
  if (iterations.size() != losses.size())
    throw Error(fmt::format("iterations_to_epsilon: {} iterations but {} losses", iterations.size(),
                            losses.size()));
  if (!(epsilon > 0))
    throw Error(fmt::format("iterations_to_epsilon: epsilon must be > 0, got {}", epsilon));
  for (std::size_t i = 0; i < losses.size(); ++i)
    if (std::isfinite(losses[i]) && losses[i] - l_star <= epsilon) return iterations[i];
  return kNever;
}

long iterations_to_epsilon(const std::vector<HistoryRow>& history, double l_star, double epsilon) {
  std::vector<long> it;
  std::vector<double> loss;
  for (const auto& row : history) it.push_back(row.iteration), loss.push_back(row.loss);
  return iterations_to_epsilon(it, loss, l_star, epsilon);
}

bool RateSearchOptions::IsValid(std::string* error) const {
  if (!(start > 0) || !std::isfinite(start))
    return *error = fmt::format("rate search: start must be finite and > 0, got {}", start), false;
  if (!(factor > 1) || !std::isfinite(factor))
    return *error = fmt::format("rate search: factor must be finite and > 1, got {}", factor),
           false;
  if (patience < 1)
    return *error = fmt::format("rate search: patience must be >= 1, got {}", patience), false;
  if (max_points < 1)
    return *error = fmt::format("rate search: max_points must be >= 1, got {}", max_points), false;
  if (!(min_rate <= start && start <= max_rate))
    return *error = fmt::format("rate search: start {} outside [min_rate, max_rate] = [{}, {}]",
                                start, min_rate, max_rate),
           false;
  return true;
}

namespace {
bool better(const RatePoint& a, const RatePoint& b) {  // a strictly better than b
  if (a.diverged) return false;
  if (b.diverged) return true;
  return a.final_loss < b.final_loss;
}

void pick_best(RateSearch& s) {
  s.best = -1;
  for (std::size_t i = 0; i < s.points.size(); ++i)
    if (!s.points[i].diverged && std::isfinite(s.points[i].final_loss) &&
        (s.best < 0 || better(s.points[i], s.points[static_cast<std::size_t>(s.best)])))
      s.best = static_cast<int>(i);
  if (s.best < 0) return;
  const double r = s.points[static_cast<std::size_t>(s.best)].rate;
  bool below = false, above = false;
  for (const auto& p : s.points) {
    if (p.rate < r) below = true;
    if (p.rate > r) above = true;
  }
  s.interior = below && above;
}
}  // namespace

long grid_index(double rate, double start, double factor) {
  return std::lround(std::log(rate / start) / std::log(factor));
}

RateSearch search_best_rate(const std::function<RatePoint(double)>& run,
                            const RateSearchOptions& options) {
  std::string error;
  if (!options.IsValid(&error)) throw Error(error);
  RateSearch s;
  std::map<long, RatePoint> seen;
  auto at = [&](long k) -> const RatePoint& {
    auto it = seen.find(k);
    if (it != seen.end()) return it->second;
    RatePoint p = run(options.start * std::pow(options.factor, static_cast<double>(k)));
    s.points.push_back(p);
    return seen.emplace(k, p).first->second;
  };
  auto in_range = [&](long k) {
    const double r = options.start * std::pow(options.factor, static_cast<double>(k));
    return r >= options.min_rate * (1 - 1e-12) && r <= options.max_rate * (1 + 1e-12);
  };
  RatePoint best = at(0);
  for (int dir : {+1, -1}) {
    if (dir > 0 && best.diverged) continue;  // larger rates diverge too
    int worse = 0;
    for (long k = dir; worse < options.patience && in_range(k) &&
                       static_cast<int>(s.points.size()) < options.max_points;
         k += dir) {
      const RatePoint& p = at(k);
      if (better(p, best)) {
        best = p;
        worse = 0;
      } else if (!best.diverged) {  // downward past divergence: keep going until stable
        ++worse;
      }
    }
  }
  pick_best(s);
  return s;
}

RateSearch best_rate_on_grid(const std::function<RatePoint(double)>& run,
                             const std::vector<double>& grid) {
  if (grid.empty()) throw Error("rate search: the grid is empty");
  RateSearch s;
  for (double r : grid) {
    if (!(r > 0) || !std::isfinite(r))
      throw Error(fmt::format("rate search: rate {} is not > 0", r));
    s.points.push_back(run(r));
  }
  pick_best(s);
  return s;
}

}  // namespace dln::acceleration
