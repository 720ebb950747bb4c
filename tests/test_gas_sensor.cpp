// The UCI gas-sensor reader (io/gas_sensor.hpp): the shipped ethanol rows, and each malformed
// line's exact error.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <iterator>

#include "dln/io/gas_sensor.hpp"
#include "test_support.hpp"

namespace dln::io {
namespace {

using testing::expect_error;

std::string row(const std::string& head, int features = kGasSensorFeatures) {
  std::string s = head;
  for (int k = 1; k <= features; ++k)
    fmt::format_to(std::back_inserter(s), " {}:{:.6f}", k, k * 0.5);
  return s;
}

TEST(GasSensor, ShippedEthanolRows) {
  const auto d =
      read_gas_sensor(std::string(DLN_SOURCE_DIR) + "/data/uci-gas-sensor-ethanol/ethanol.dat");
  ASSERT_EQ(d.features.rows(), 128);
  EXPECT_EQ(d.features.cols(), 1316);  // batches 1-6, 8, 9 (data/.../README.md)
  EXPECT_EQ(d.concentration.size(), 1316);
  // The first line, as in the file: 1;10.000000 1:15596.162100 2:1.868245 ... 9:15326.691400
  EXPECT_EQ(d.concentration(0), 10.0);
  EXPECT_EQ(d.features(0, 0), 15596.1621);
  EXPECT_EQ(d.features(1, 0), 1.868245);
  EXPECT_EQ(d.features(8, 0), 15326.6914);
  EXPECT_EQ(d.line.front(), 1);
  EXPECT_EQ(d.line.back(), 1316);
}

TEST(GasSensor, KeepsOneGasAndNamesEachBadLine) {
  const std::string text = fmt::format("{}\n\n{}\r\n", row("2;50.0"), row("1;12.5"));
  const auto d = parse_gas_sensor(text, "g.dat");
  ASSERT_EQ(d.concentration.size(), 1);
  EXPECT_EQ(d.concentration(0), 12.5);
  EXPECT_EQ(d.features(127, 0), 64.0);
  EXPECT_EQ(d.line[0], 3);
  EXPECT_EQ(parse_gas_sensor(text, "g.dat", 2).concentration(0), 50.0);
  expect_error([&] { parse_gas_sensor(text, "g.dat", 3); }, "g.dat: no measurements of gas 3");
  expect_error([] { parse_gas_sensor("", "e.dat"); }, "e.dat: no measurements of gas 1");
  expect_error([] { parse_gas_sensor("1 10 1:2\n", "b.dat"); },
               "b.dat:1: expected GAS;CONCENTRATION");
  expect_error([] { parse_gas_sensor(row("x;10"), "b.dat"); }, "b.dat:1: malformed number 'x'");
  expect_error([] { parse_gas_sensor(row("1;ten"), "b.dat"); }, "b.dat:1: malformed number 'ten'");
  expect_error([] { parse_gas_sensor(row("1;inf"), "b.dat"); }, "b.dat:1: non-finite value");
  expect_error([] { parse_gas_sensor(fmt::format("\n{}", row("1;1", 127)), "b.dat"); },
               "b.dat:2: expected 128 features, got 127");
  expect_error([] { parse_gas_sensor(row("1;1", 129), "b.dat"); },
               "b.dat:1: expected feature 129, got '129:64.500000'");
  expect_error([] { parse_gas_sensor("1;1 2:3", "b.dat"); },
               "b.dat:1: expected feature 1, got '2:3'");
  expect_error([] { parse_gas_sensor("1;1 1:nan", "b.dat"); }, "b.dat:1: non-finite value");
  expect_error([] { parse_gas_sensor("1;1 1:4e", "b.dat"); }, "b.dat:1: malformed number '4e'");
}

}  // namespace
}  // namespace dln::io
