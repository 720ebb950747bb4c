#include "dln/io/table_csv.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include "dln/core/memory.hpp"
#include "dln/io/files.hpp"

namespace dln::io {

namespace {

constexpr auto npos = std::string_view::npos;

bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// Splits one line into trimmed fields; a quoted field loses its quotes, and "" in it becomes "
// (such fields are copied into `store`, which must outlive `out`).
template <class Where>
void split_fields(std::string_view line, std::vector<std::string_view>& out,
                  std::deque<std::string>& store, const Where& where) {
  out.clear();
  store.clear();
  std::size_t p = 0;
  while (true) {
    while (p < line.size() && is_blank(line[p])) ++p;
    if (p < line.size() && line[p] == '"') {
      const std::size_t open = ++p;
      bool escaped = false;
      while (true) {
        const std::size_t q = line.find('"', p);
        if (q == npos) throw Error(fmt::format("{}: unterminated quoted field", where()));
        if (q + 1 < line.size() && line[q + 1] == '"') {
          escaped = true;
          p = q + 2;
          continue;
        }
        p = q;
        break;
      }
      std::string_view field = line.substr(open, p - open);
      if (escaped) {
        std::string s;
        for (std::size_t i = 0; i < field.size(); ++i) {
          s += field[i];
          if (field[i] == '"') ++i;  // the second quote of ""
        }
        store.push_back(std::move(s));
        field = store.back();
      }
      out.push_back(field);
      ++p;
      while (p < line.size() && is_blank(line[p])) ++p;
      if (p == line.size()) return;
      if (line[p] != ',')
        throw Error(fmt::format("{}: unexpected text after a closing quote", where()));
      ++p;
    } else {
      const std::size_t comma = line.find(',', p);
      const std::size_t end = comma == npos ? line.size() : comma;
      out.push_back(trim(line.substr(p, end - p)));
      if (comma == npos) return;
      p = comma + 1;
    }
  }
}

std::string column_list(const std::vector<std::string>& header) {
  const std::size_t shown = std::min<std::size_t>(header.size(), 20);
  std::string s;
  for (std::size_t j = 0; j < shown; ++j) s += (j ? ", " : "") + header[j];
  if (header.size() > shown) s += fmt::format(", ... ({} in all)", header.size());
  return s;
}

std::vector<Index> lookup(const CsvTable& t, const std::unordered_map<std::string_view, Index>& at,
                          const std::vector<std::string>& names, const char* key,
                          const std::string& source) {
  std::vector<Index> out;
  std::unordered_set<std::string_view> seen;
  for (const std::string& name : names) {
    const auto it = at.find(name);
    if (it == at.end())
      throw Error(fmt::format("{}: no column '{}' in {} (columns: {})", key, name, source,
                              column_list(t.header)));
    if (!seen.insert(name).second)
      throw Error(fmt::format("{}: column '{}' listed twice", key, name));
    out.push_back(it->second);
  }
  return out;
}

Mat rows_of(const Mat& values, const std::vector<Index>& rows) {
  Mat out(static_cast<Index>(rows.size()), values.cols());
  for (std::size_t i = 0; i < rows.size(); ++i)
    out.row(static_cast<Index>(i)) = values.row(rows[i]);
  return out;
}

}  // namespace

CsvTable parse_csv_table(std::string_view text, const std::string& source) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  CsvTable t;
  std::vector<double> values;  // column-major k x m: row after row of the file
  std::vector<std::string_view> fields;
  std::deque<std::string> store;
  std::size_t k = 0;
  long line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) continue;
    const auto where = [&] { return fmt::format("{}:{}", source, line_no); };
    split_fields(line, fields, store, where);
    if (k == 0) {  // the header
      std::unordered_set<std::string_view> seen;
      for (std::size_t j = 0; j < fields.size(); ++j) {
        if (fields[j].empty())
          throw Error(fmt::format("{}: empty column name (column {})", where(), j + 1));
        if (!seen.insert(fields[j]).second)
          throw Error(fmt::format("{}: duplicate column name '{}'", where(), fields[j]));
        t.header.emplace_back(fields[j]);
      }
      k = t.header.size();
      // At most one value per two bytes ("0,"): reserved once, no reallocation peaks.
      const std::size_t rest = pos < text.size() ? text.size() - pos : 0;
      const auto lines = static_cast<std::size_t>(
          std::count(text.end() - static_cast<std::ptrdiff_t>(rest), text.end(), '\n') + 1);
      const std::size_t bound = rest / 2 + 1;
      values.reserve(lines > bound / k ? bound : lines * k);
      continue;
    }
    if (fields.size() != k)
      throw Error(fmt::format("{}: expected {} fields, got {}", where(), k, fields.size()));
    for (std::size_t j = 0; j < k; ++j) {
      double v = 0;
      if (!parse_double(fields[j], v))
        throw Error(fmt::format("{}: malformed number '{}' in column '{}'", where(), fields[j],
                                t.header[j]));
      if (!std::isfinite(v))
        throw Error(fmt::format("{}: non-finite value in column '{}'", where(), t.header[j]));
      values.push_back(v);
    }
    t.line.push_back(line_no);
  }
  if (k == 0)
    throw Error(fmt::format("{}: empty file (expected a header row naming the columns)", source));
  if (t.line.empty()) throw Error(fmt::format("{}: no data rows", source));
  t.values = Eigen::Map<const Mat>(values.data(), static_cast<Index>(k),
                                   static_cast<Index>(t.line.size()));
  return t;
}

double csv_table_bytes(double file_bytes) { return 2 * file_bytes + 2 * 4 * file_bytes; }

CsvTable read_csv_table(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);  // fails for directories: read_file says
  if (!ec) {
    const double need = csv_table_bytes(static_cast<double>(size));
    const double available = memory::available_bytes();
    if (need > available)
      throw Error(fmt::format(
          "{}: reading this {} file needs up to {}, more than the {} of memory available", path,
          memory::format_bytes(static_cast<double>(size)), memory::format_bytes(need),
          memory::format_bytes(available)));
  }
  return parse_csv_table(read_file(path), path);
}

CsvXY select_csv_columns(const CsvTable& t, const std::vector<std::string>& features,
                         const std::vector<std::string>& targets, const std::string& source) {
  std::unordered_map<std::string_view, Index> at;
  for (std::size_t j = 0; j < t.header.size(); ++j) at.emplace(t.header[j], static_cast<Index>(j));
  const std::vector<Index> y = lookup(t, at, targets, "problem.target_columns", source);
  std::vector<bool> is_target(t.header.size(), false);
  for (const Index j : y) is_target[static_cast<std::size_t>(j)] = true;
  std::vector<Index> x;
  if (features.empty()) {
    for (std::size_t j = 0; j < t.header.size(); ++j)
      if (!is_target[j]) x.push_back(static_cast<Index>(j));
    if (x.empty())
      throw Error(
          fmt::format("problem.feature_columns: every column of {} is a target column", source));
  } else {
    x = lookup(t, at, features, "problem.feature_columns", source);
    for (const Index j : x)
      if (is_target[static_cast<std::size_t>(j)])
        throw Error(
            fmt::format("problem.feature_columns: column '{}' is also in problem.target_columns",
                        t.header[static_cast<std::size_t>(j)]));
  }
  return {rows_of(t.values, x), rows_of(t.values, y)};
}

}  // namespace dln::io
