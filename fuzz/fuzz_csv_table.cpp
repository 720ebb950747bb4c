// Numeric CSV tables with a header (problem.csv_file, io/table_csv.hpp), then the last column
// taken as the target and the others as features. Property: on success the header names are
// distinct and non-empty, every value is finite, and the shapes agree (k x m table, one line per
// row, increasing; X and Y split the k columns over the same m rows).
#include <set>

#include "dln/io/table_csv.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  dln::fuzz::only_errors([&] {
    using dln::fuzz::require;
    const auto t = dln::io::parse_csv_table(dln::fuzz::text(data, size), "fuzz.csv");
    const auto k = static_cast<dln::Index>(t.header.size());
    const auto m = static_cast<dln::Index>(t.line.size());
    require(k > 0 && m > 0 && t.values.rows() == k && t.values.cols() == m, "k x m table");
    require(t.values.allFinite(), "finite values");
    require(std::set<std::string>(t.header.begin(), t.header.end()).size() == t.header.size(),
            "distinct names");
    for (const auto& name : t.header) require(!name.empty(), "non-empty names");
    for (dln::Index i = 0; i < m; ++i)
      require(t.line[i] >= 2 && (i == 0 || t.line[i] > t.line[i - 1]), "increasing lines");
    const auto xy = dln::io::select_csv_columns(t, {}, {t.header.back()}, "fuzz.csv");
    require(xy.x.rows() == k - 1 && xy.y.rows() == 1 && xy.x.cols() == m && xy.y.cols() == m,
            "X and Y split the columns");
    require(xy.x.allFinite() && xy.y.allFinite(), "finite X and Y");
  });
  return 0;
}
