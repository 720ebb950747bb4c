// The UCI gas-sensor `.dat` reader (io/gas_sensor.hpp; Figure 1 left, Claim 1). Property: every
// kept measurement has 128 finite features and a finite concentration.
#include "dln/io/gas_sensor.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  dln::fuzz::only_errors([&] {
    const auto d = dln::io::parse_gas_sensor(dln::fuzz::text(data, size), "fuzz.dat");
    dln::fuzz::require(d.features.rows() == dln::io::kGasSensorFeatures &&
                           d.features.cols() == d.concentration.size() && d.features.allFinite() &&
                           d.concentration.allFinite(),
                       "128 finite features per measurement");
  });
  return 0;
}
