// The UCI gas-sensor drift data set's `.dat` format (Vergara et al. 2012), as used for Figure 1
// (left) and Claim 1: one measurement per line, `GAS;CONCENTRATION 1:F1 2:F2 ... 128:F128`.
#pragma once

#include <string>
#include <string_view>

#include "dln/core/types.hpp"

namespace dln::io {

struct GasSensorData {
  Mat features;            // 128 x m: column i = the i-th measurement's features F1..F128
  Vec concentration;       // m: the target (ppmv)
  std::vector<long> line;  // the file line of each measurement (1-based)
};

constexpr int kGasSensorFeatures = 128;

// Parses `text` (`source` names it in errors), keeping the rows of gas id `gas` (1 = ethanol).
// Errors (dln::Error, one line): "<source>:<line>: expected GAS;CONCENTRATION", "... malformed
// number '<x>'", "... non-finite value", "... expected feature <k>, got '<field>'", "... expected
// 128 features, got <n>", "<source>: no measurements of gas <gas>".
GasSensorData parse_gas_sensor(std::string_view text, const std::string& source, int gas = 1);
GasSensorData read_gas_sensor(const std::string& path, int gas = 1);

}  // namespace dln::io
