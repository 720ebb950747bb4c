#include "dln/tensors/entries.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <unordered_map>
#include <unordered_set>

#include "dln/core/rng.hpp"
#include "dln/io/files.hpp"

namespace dln::tensors {

void validate_shape(const Shape& shape, const std::string& field) {
  if (shape.empty()) throw Error(field + ": the shape is empty (a tensor needs order >= 2)");
  if (shape.size() < 2)
    throw Error(
        fmt::format("{}: order {} < 2 (a tensor needs at least two modes)", field, shape.size()));
  for (std::size_t k = 0; k < shape.size(); ++k)
    if (shape[k] <= 0)
      throw Error(
          fmt::format("{}: mode {} has dimension {} (must be >= 1)", field, k + 1, shape[k]));
  if (entry_count(shape) > 0x1p62)
    throw Error(fmt::format("{}: {:.3g} entries exceed 2^62", field, entry_count(shape)));
}

double entry_count(const Shape& shape) {
  double n = 1;
  for (Index d : shape) n *= static_cast<double>(d);
  return n;
}

Index offset(const Shape& shape, const Index* idx) {
  Index o = 0;
  for (std::size_t k = 0; k < shape.size(); ++k) o = o * shape[k] + idx[k];
  return o;
}

namespace {
void append_index(const Shape& shape, Index flat, std::vector<Index>& out) {
  const std::size_t n = shape.size(), base = out.size();
  out.resize(base + n);
  for (std::size_t k = n; k-- > 0;) {
    out[base + k] = flat % shape[k];
    flat /= shape[k];
  }
}
}  // namespace

Entries all_entries(const Shape& shape) {
  Entries e;
  e.shape = shape;
  const auto total = static_cast<Index>(entry_count(shape));
  e.index.reserve(static_cast<std::size_t>(total) * shape.size());
  for (Index f = 0; f < total; ++f) append_index(shape, f, e.index);
  return e;
}

Entries sample_entries(const Shape& shape, Index m, std::uint64_t seed) {
  const double total = entry_count(shape);
  if (m < 0 || static_cast<double>(m) > total)
    throw Error(fmt::format("problem.observations: {} entries requested but the tensor has {:.0f}",
                            m, total));
  const auto n = static_cast<std::uint64_t>(total);
  // Floyd's algorithm: m distinct offsets in O(m) expected time.
  Rng rng(seed);
  std::unordered_set<std::uint64_t> chosen;
  chosen.reserve(static_cast<std::size_t>(m) * 2);
  for (std::uint64_t j = n - static_cast<std::uint64_t>(m); j < n; ++j) {
    const std::uint64_t t = rng.below(j + 1);
    if (!chosen.insert(t).second) chosen.insert(j);
  }
  std::vector<std::uint64_t> flat(chosen.begin(), chosen.end());
  std::sort(flat.begin(), flat.end());
  Entries e;
  e.shape = shape;
  e.index.reserve(flat.size() * shape.size());
  for (auto f : flat) append_index(shape, static_cast<Index>(f), e.index);
  return e;
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}
bool parse_index(std::string_view s, long long& out) {
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}
}  // namespace

Observations read_observations_csv(const std::string& path, const Shape& shape) {
  const std::string text = io::read_file(path);
  const std::size_t n = shape.size();
  Observations obs;
  obs.entries.shape = shape;
  std::unordered_map<Index, long long> seen;  // C-order offset -> line
  std::vector<std::string_view> fields;
  std::vector<Index> idx(n);
  bool first = true;
  std::size_t pos = 0;
  long long line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = trim(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;
    fields.clear();
    for (std::size_t start = 0;;) {
      const std::size_t comma = line.find(',', start);
      fields.push_back(trim(line.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    const bool header_candidate = first;
    first = false;
    double tmp = 0;
    if (header_candidate && !io::parse_double(fields[0], tmp)) continue;
    const std::string where = fmt::format("{}:{}", path, line_no);
    if (fields.size() != n + 1)
      throw Error(fmt::format("{}: expected {} fields i1,...,i{},value, got {}", where, n + 1, n,
                              fields.size()));
    for (std::size_t k = 0; k < n; ++k) {
      long long v = 0;
      if (!parse_index(fields[k], v))
        throw Error(fmt::format("{}: malformed index '{}'", where, fields[k]));
      if (v < 0 || v >= shape[k])
        throw Error(
            fmt::format("{}: index i{} = {} out of range [0, {})", where, k + 1, v, shape[k]));
      idx[k] = static_cast<Index>(v);
    }
    double value = 0;
    if (!io::parse_double(fields[n], value))
      throw Error(fmt::format("{}: malformed number '{}'", where, fields[n]));
    if (!std::isfinite(value)) throw Error(fmt::format("{}: non-finite value", where));
    const auto [it, fresh] = seen.emplace(offset(shape, idx.data()), line_no);
    if (!fresh)
      throw Error(fmt::format("{}: duplicate entry ({}) (first at line {})", where,
                              fmt::join(idx, ", "), it->second));
    obs.entries.index.insert(obs.entries.index.end(), idx.begin(), idx.end());
    obs.values.push_back(value);
  }
  if (obs.values.empty()) throw Error(path + ": no observations");
  return obs;
}

void check_observations(const Observations& obs, const std::string& where) {
  const Shape& shape = obs.entries.shape;
  const int n = obs.entries.order();
  if (obs.entries.index.size() != obs.values.size() * shape.size())
    throw Error(fmt::format("{}: {} values for {} index tuples", where, obs.values.size(),
                            obs.entries.size()));
  std::unordered_map<Index, Index> seen;
  for (Index e = 0; e < obs.entries.size(); ++e) {
    const Index* i = obs.entries.at(e);
    for (int k = 0; k < n; ++k)
      if (i[k] < 0 || i[k] >= shape[static_cast<std::size_t>(k)])
        throw Error(fmt::format("{}: entry {}: index i{} = {} out of range [0, {})", where, e,
                                k + 1, i[k], shape[static_cast<std::size_t>(k)]));
    if (!std::isfinite(obs.values[static_cast<std::size_t>(e)]))
      throw Error(fmt::format("{}: entry {}: non-finite value", where, e));
    const auto [it, fresh] = seen.emplace(offset(shape, i), e);
    if (!fresh)
      throw Error(fmt::format("{}: entry {}: duplicate of entry {} ({})", where, e, it->second,
                              fmt::join(i, i + n, ", ")));
  }
  if (obs.values.empty()) throw Error(where + ": no observations");
}

void write_observations_csv(const std::string& path, const Observations& obs) {
  const int n = obs.entries.order();
  std::string out;
  for (int k = 0; k < n; ++k) out += fmt::format("i{},", k + 1);
  out += "value\n";
  for (Index e = 0; e < obs.entries.size(); ++e) {
    const Index* i = obs.entries.at(e);
    for (int k = 0; k < n; ++k) out += fmt::format("{},", i[k]);
    out += fmt::format("{:.17g}\n", obs.values[static_cast<std::size_t>(e)]);
  }
  io::write_file_atomic(path, out);
}

}  // namespace dln::tensors
