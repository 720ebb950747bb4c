// row,col,value observation CSVs (problem.observations_file, dln baseline --observations).
// The first two bytes bound the rows and columns (0: unbounded). Property: every observation
// read is in range, finite and distinct.
#include <set>

#include "dln/io/files.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  if (size < 2) return 0;
  const dln::Index rows = data[0] % 64, cols = data[1] % 64;
  const std::string& path = dln::fuzz::scratch_file(dln::fuzz::text(data + 2, size - 2), ".csv");
  dln::fuzz::only_errors([&] {
    const auto obs = dln::io::read_observations_csv(path, rows, cols);
    std::set<std::pair<dln::Index, dln::Index>> seen;
    for (const auto& o : obs) {
      dln::fuzz::require(o.row >= 0 && (rows == 0 || o.row < rows), "row in range");
      dln::fuzz::require(o.col >= 0 && (cols == 0 || o.col < cols), "col in range");
      dln::fuzz::require(std::isfinite(o.value), "finite value");
      dln::fuzz::require(seen.emplace(o.row, o.col).second, "distinct entries");
    }
  });
  return 0;
}
