// Entries of an order-N tensor with modes d_1..d_N (Section 5): index sets, observations and the
// CSV / .npy forms users give them in. Indices are 0-based; dense tensors are in C order.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dln/core/types.hpp"

namespace dln::tensors {

using Shape = std::vector<Index>;

// Throws Error "<field>: ..." when the order is below 2, a mode dimension is <= 0, or the entry
// count d_1 * ... * d_N exceeds 2^62.
void validate_shape(const Shape& shape, const std::string& field);
// d_1 * ... * d_N as a double (never overflows).
double entry_count(const Shape& shape);

// A list of entries; entry e's index along mode k is index[e * order + k].
struct Entries {
  Shape shape;
  std::vector<Index> index;
  int order() const { return static_cast<int>(shape.size()); }
  Index size() const { return order() ? static_cast<Index>(index.size()) / order() : 0; }
  const Index* at(Index e) const { return index.data() + e * order(); }
};

// The C-order offset of an index tuple.
Index offset(const Shape& shape, const Index* idx);
// Every entry, in C order (entry e has offset e).
Entries all_entries(const Shape& shape);
// m distinct entries, uniform without replacement (Floyd), in C order; throws Error naming
// problem.observations when m exceeds the entry count.
Entries sample_entries(const Shape& shape, Index m, std::uint64_t seed);

// Observed values b_e at entries.
struct Observations {
  Entries entries;
  std::vector<double> values;
};

// Reads `i1,...,iN,value` CSV (0-based). An optional header line whose first field is not a
// number is skipped, and blank lines. Errors name "<path>:<line>": the field count, a malformed
// index or number, an index out of range, a non-finite value, a duplicate entry; and
// "<path>: no observations".
Observations read_observations_csv(const std::string& path, const Shape& shape);
// Observations from a library caller (Python arrays): every index in range, entries distinct,
// values finite; throws Error "<where>: entry E: ..." naming the first bad one.
void check_observations(const Observations& obs, const std::string& where);
// Header `i1,...,iN,value`, values with 17 significant digits. Atomic.
void write_observations_csv(const std::string& path, const Observations& obs);

}  // namespace dln::tensors
