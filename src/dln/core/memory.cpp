#include "dln/core/memory.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

#include "dln/core/types.hpp"

namespace dln::memory {

namespace {

// The first number in a file such as memory.max ("max" or unreadable: nullopt-like -1).
double read_number(const char* path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return -1;
  return std::strtod(s.c_str(), nullptr);
}

double mem_available() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (f >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024.0;
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : -1;
}

double mapped_now() {
  std::ifstream f("/proc/self/statm");
  double pages = 0;
  if (!(f >> pages)) return 0;
  return pages * static_cast<double>(sysconf(_SC_PAGESIZE));
}

}  // namespace

void Estimate::add(std::string field, std::string what, double bytes) {
  if (bytes > 0) items.push_back({std::move(field), std::move(what), bytes});
}

double Estimate::total() const {
  double t = 0;
  for (const auto& i : items) t += i.bytes;
  return t;
}

const Item* Estimate::largest() const {
  const Item* best = nullptr;
  for (const auto& i : items)
    if (!best || i.bytes > best->bytes) best = &i;
  return best;
}

double available_bytes() {
  double avail = std::numeric_limits<double>::max();
  if (const double m = mem_available(); m > 0) avail = m;
  const double max = read_number("/sys/fs/cgroup/memory.max");
  const double cur = read_number("/sys/fs/cgroup/memory.current");
  if (max > 0) avail = std::min(avail, std::max(0.0, max - std::max(cur, 0.0)));
  rlimit r{};
  if (getrlimit(RLIMIT_AS, &r) == 0 && r.rlim_cur != RLIM_INFINITY)
    avail = std::min(avail, std::max(0.0, static_cast<double>(r.rlim_cur) - mapped_now()));
  return avail;
}

std::string format_bytes(double b) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && b >= 1024.0) {
    b /= 1024.0;
    ++u;
  }
  if (u == 0) return fmt::format("{:.0f} B", b);
  if (b >= 1e6) return fmt::format("{:.2g} {}", b, units[u]);
  return fmt::format("{:.{}f} {}", b, b < 10 ? 2 : (b < 100 ? 1 : 0), units[u]);
}

double parse_bytes(const std::string& text, const std::string& field) {
  const auto bad = [&] {
    return Error(fmt::format(
        "{}: expected a size such as 8GiB, 512MB or a number of bytes, got '{}'", field, text));
  };
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::size_t end = i;
  while (end < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  if (end == i) throw bad();
  std::istringstream num(text.substr(i, end - i));
  double v = 0;
  if (!(num >> v) || !num.eof() || !std::isfinite(v)) throw bad();
  std::string unit;
  for (std::size_t k = end; k < text.size(); ++k)
    if (!std::isspace(static_cast<unsigned char>(text[k])))
      unit += static_cast<char>(std::tolower(static_cast<unsigned char>(text[k])));
  static const std::pair<const char*, double> units[] = {{"", 1},
                                                         {"b", 1},
                                                         {"k", 1024},
                                                         {"kb", 1e3},
                                                         {"kib", 1024},
                                                         {"m", 1048576},
                                                         {"mb", 1e6},
                                                         {"mib", 1048576},
                                                         {"g", 1073741824},
                                                         {"gb", 1e9},
                                                         {"gib", 1073741824},
                                                         {"t", 1099511627776.0},
                                                         {"tb", 1e12},
                                                         {"tib", 1099511627776.0}};
  for (const auto& [name, scale] : units)
    if (unit == name) {
      const double bytes = std::floor(v * scale);  // whole bytes: to_toml writes an integer
      if (bytes < 1) throw bad();
      if (bytes > 0x1p62)  // found by fuzz_config: 2e52 bytes overflowed the integer written back
        throw Error(fmt::format("{}: '{}' is more than 4 EiB", field, text));
      return bytes;
    }
  throw bad();
}

void require(const Estimate& e, double limit_bytes, const std::string& limit_field) {
  const double total = e.total();
  const bool set = limit_bytes > 0;
  const double limit = set ? limit_bytes : available_bytes();
  if (total <= limit) return;
  const Item* big = e.largest();
  const std::string limit_text =
      set ? fmt::format("{} = {}", limit_field, format_bytes(limit))
          : fmt::format("the {} of memory available (set {} to change the limit)",
                        format_bytes(limit), limit_field);
  const std::string part =
      e.items.size() == 1 ? big->what : fmt::format("{}: {}", big->what, format_bytes(big->bytes));
  throw Error(fmt::format("{}: the run needs about {} ({}), more than {}", big->field,
                          format_bytes(total), part, limit_text));
}

}  // namespace dln::memory
