#include "dln/io/files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <sstream>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace dln::io {

namespace detail {

// Writes the concatenation of `parts` to path atomically. Also used by npy.cpp.
void write_buffers_atomic(const std::string& path, std::initializer_list<std::string_view> parts);

}  // namespace detail

namespace {

[[noreturn]] void throw_write_error(const std::string& path, int err) {
  throw Error(fmt::format("{}: cannot write ({})", path, std::strerror(err)));
}

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Optional leading '+' (from_chars rejects it), then the whole field must be consumed.
std::string_view strip_plus(std::string_view s) {
  if (s.size() > 1 && s.front() == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  return s;
}

bool parse_index(std::string_view s, long long& out) {
  s = strip_plus(s);
  const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size();
}

struct PairHash {
  std::size_t operator()(const std::pair<Index, Index>& p) const noexcept {
    const auto a = static_cast<std::uint64_t>(p.first);
    const auto b = static_cast<std::uint64_t>(p.second);
    std::uint64_t h = a * 0x9E3779B97F4A7C15ULL ^ (b + 0x632BE59BD9B4E019ULL + (a << 6) + (a >> 2));
    h ^= h >> 31;
    return static_cast<std::size_t>(h);
  }
};

}  // namespace

bool parse_double(std::string_view s, double& out) {
  s = strip_plus(s);
  const auto res = std::from_chars(s.data(), s.data() + s.size(), out);
  return !s.empty() && res.ec == std::errc() && res.ptr == s.data() + s.size();
}

void detail::write_buffers_atomic(const std::string& path,
                                  std::initializer_list<std::string_view> parts) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw_write_error(path, errno);
  bool ok = true;
  for (const std::string_view part : parts) {
    if (!write_all(fd, part.data(), part.size())) {
      ok = false;
      break;
    }
  }
  if (ok && ::fsync(fd) != 0) ok = false;
  int err = ok ? 0 : errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && std::rename(tmp.c_str(), path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    throw_write_error(path, err);
  }
  // Best effort: persist the rename itself.
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  detail::write_buffers_atomic(path, {std::string_view(contents)});
}

void ensure_writable_directory(const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) throw Error("\"\": cannot create directory (empty path)");
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (fs::exists(st) && !fs::is_directory(st))
    throw Error(fmt::format("{}: not a directory", path));
  if (!fs::exists(st)) {
    fs::create_directories(path, ec);
    if (ec) throw Error(fmt::format("{}: cannot create directory ({})", path, ec.message()));
    if (!fs::is_directory(path, ec)) throw Error(fmt::format("{}: not a directory", path));
  }
  if (::access(path.c_str(), W_OK | X_OK) != 0) throw Error(fmt::format("{}: not writable", path));
}

std::ifstream open_input(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw Error(fmt::format("{}: is a directory, not a file", path));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(fmt::format("{}: cannot open", path));
  return in;
}

std::string read_file(const std::string& path) {
  std::ifstream in = open_input(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(fmt::format("{}: cannot read", path));
  return std::move(ss).str();
}

std::vector<Observation> read_observations_csv(const std::string& path, Index rows, Index cols) {
  const std::string text = read_file(path);
  std::vector<Observation> obs;
  std::unordered_set<std::pair<Index, Index>, PairHash> seen;
  bool first_content_line = true;
  std::size_t pos = 0;
  long long line_no = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view line = trim(std::string_view(text).substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty()) continue;

    std::string_view fields[3];
    std::size_t nfields = 0;
    std::size_t start = 0;
    bool too_many = false;
    while (true) {
      const std::size_t comma = line.find(',', start);
      const std::string_view f = trim(line.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
      if (nfields == 3) {
        too_many = true;
        break;
      }
      fields[nfields++] = f;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }

    const bool header_candidate = first_content_line;
    first_content_line = false;
    if (header_candidate) {
      double tmp = 0.0;
      if (!parse_double(fields[0], tmp)) continue;  // header line
    }
    const auto where = [&] { return fmt::format("{}:{}", path, line_no); };
    if (too_many || nfields != 3)
      throw Error(fmt::format("{}: expected 3 fields row,col,value", where()));

    Index idx[2] = {0, 0};
    const char* names[2] = {"row", "col"};
    const Index limits[2] = {rows, cols};
    for (int k = 0; k < 2; ++k) {
      long long v = 0;
      if (!parse_index(fields[k], v))
        throw Error(fmt::format("{}: malformed index '{}'", where(), fields[k]));
      if (limits[k] > 0 && (v < 0 || v >= limits[k]))
        throw Error(
            fmt::format("{}: {} index {} out of range [0, {})", where(), names[k], v, limits[k]));
      if (v < 0) throw Error(fmt::format("{}: negative {} index {}", where(), names[k], v));
      idx[k] = static_cast<Index>(v);
    }
    double value = 0.0;
    if (!parse_double(fields[2], value))
      throw Error(fmt::format("{}: malformed number '{}'", where(), fields[2]));
    if (!std::isfinite(value)) throw Error(fmt::format("{}: non-finite value", where()));
    if (!seen.emplace(idx[0], idx[1]).second)
      throw Error(fmt::format("{}: duplicate entry ({}, {})", where(), idx[0], idx[1]));
    obs.push_back({idx[0], idx[1], value});
  }
  if (obs.empty()) throw Error(fmt::format("{}: no observations", path));
  return obs;
}

void write_observations_csv(const std::string& path, const std::vector<Observation>& obs) {
  fmt::memory_buffer buf;
  fmt::format_to(std::back_inserter(buf), "row,col,value\n");
  for (const Observation& o : obs)
    fmt::format_to(std::back_inserter(buf), "{},{},{:.17g}\n", o.row, o.col, o.value);
  detail::write_buffers_atomic(path, {std::string_view(buf.data(), buf.size())});
}

}  // namespace dln::io
