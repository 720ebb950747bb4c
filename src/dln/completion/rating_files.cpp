// Rating files: user,item,rating parsing (all layouts), --predict pairs, predictions and the
// `dln complete` output directory (docs/complete.md).
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
#include "dln/completion/ratings.hpp"
#include "dln/core/rng.hpp"
#include "dln/init/initializers.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"
#include "dln/losses/loss.hpp"

namespace dln::completion {

namespace {

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
