#include "dln/io/gas_sensor.hpp"

#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "dln/io/files.hpp"

namespace dln::io {

GasSensorData parse_gas_sensor(std::string_view text, const std::string& source, int gas) {
  std::vector<double> values;  // column-major 128 x m
  std::vector<double> target;
  GasSensorData d;
  long line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    const auto where = [&] { return fmt::format("{}:{}", source, line_no); };
    const std::size_t semi = line.find(';');
    const std::size_t space = line.find(' ');
    if (semi == std::string_view::npos || space == std::string_view::npos || space < semi)
      throw Error(fmt::format("{}: expected GAS;CONCENTRATION", where()));
    double g = 0, c = 0;
    const std::string_view gs = line.substr(0, semi), cs = line.substr(semi + 1, space - semi - 1);
    if (!parse_double(gs, g)) throw Error(fmt::format("{}: malformed number '{}'", where(), gs));
    if (!parse_double(cs, c)) throw Error(fmt::format("{}: malformed number '{}'", where(), cs));
    if (!std::isfinite(c)) throw Error(fmt::format("{}: non-finite value", where()));
    std::size_t p = space + 1;
    int k = 0;
    const std::size_t start = values.size();
    while (p < line.size()) {
      std::size_t q = line.find(' ', p);
      if (q == std::string_view::npos) q = line.size();
      const std::string_view field = line.substr(p, q - p);
      p = q + 1;
      if (field.empty()) continue;
      ++k;
      const std::string prefix = fmt::format("{}:", k);
      if (k > kGasSensorFeatures || field.substr(0, prefix.size()) != prefix)
        throw Error(fmt::format("{}: expected feature {}, got '{}'", where(), k, field));
      double v = 0;
      const std::string_view vs = field.substr(prefix.size());
      if (!parse_double(vs, v)) throw Error(fmt::format("{}: malformed number '{}'", where(), vs));
      if (!std::isfinite(v)) throw Error(fmt::format("{}: non-finite value", where()));
      values.push_back(v);
    }
    if (k != kGasSensorFeatures)
      throw Error(fmt::format("{}: expected {} features, got {}", where(), kGasSensorFeatures, k));
    if (g != gas) {  // another gas: dropped
      values.resize(start);
      continue;
    }
    target.push_back(c);
    d.line.push_back(line_no);
  }
  if (target.empty()) throw Error(fmt::format("{}: no measurements of gas {}", source, gas));
  const auto m = static_cast<Index>(target.size());
  d.features = Eigen::Map<const Mat>(values.data(), kGasSensorFeatures, m);
  d.concentration = Eigen::Map<const Vec>(target.data(), m);
  return d;
}

GasSensorData read_gas_sensor(const std::string& path, int gas) {
  return parse_gas_sensor(read_file(path), path, gas);
}

}  // namespace dln::io
