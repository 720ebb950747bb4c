// `dln check`: every result of Sections 2-4.3 of the notes measured on seeded random instances.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dln {

struct CheckResult {
  std::string result;    // the notes' name, e.g. "Theorem 1"
  std::string compared;  // what is measured against what
  double error = 0;      // the measured quantity (see `compared`)
  double tolerance = 0;  // pass when error <= tolerance (or >= it when at_least)
  bool at_least = false;
  bool pass = false;
  std::string detail;  // numbers behind the verdict
};

// Runs every check (seeded; under a minute on 2 cores). `only` filters by result name prefix.
std::vector<CheckResult> run_checks(std::uint64_t seed, const std::string& only = "");

// Proposition 5's bound |w_11| >= 1/sqrt(6 l) - 2 along the Eq. 15 flow for n = 2 and 3 up to
// the given times. Fails when a trajectory never reaches loss < 1/6, where the bound is vacuous.
CheckResult proposition5(double time_n2 = 60.0, double time_n3 = 4000.0);

// One row per check; JSON for --json.
std::string checks_table(const std::vector<CheckResult>& results);
std::string checks_json(const std::vector<CheckResult>& results);

}  // namespace dln
