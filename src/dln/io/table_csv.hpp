// Numeric CSV tables with a header row naming the columns ([problem] csv_file, docs/config.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dln/core/types.hpp"

namespace dln::io {

struct CsvTable {
  std::vector<std::string> header;  // the column names, in file order
  Mat values;                       // k x m (k = header.size()): values(j, i) = column j of row i
  std::vector<long> line;           // the file line of each data row (1-based)
};

// Parses `text` (`source` names it in errors). The first non-blank line is the header; every
// later non-blank line is a data row of header.size() numbers (io::parse_double), all finite.
// Accepted: a UTF-8 BOM, CRLF, blank lines, spaces or tabs around fields, and double-quoted
// fields ("a,b", "" for a quote). Errors (dln::Error, one line):
//   "<source>: empty file (expected a header row naming the columns)", "<source>: no data rows",
//   "<source>:<line>: empty column name (column <k>)", "... duplicate column name '<name>'",
//   "... expected <k> fields, got <n>", "... malformed number '<x>' in column '<name>'",
//   "... non-finite value in column '<name>'", "... unterminated quoted field",
//   "... unexpected text after a closing quote".
CsvTable parse_csv_table(std::string_view text, const std::string& source);

// Reads and parses `path`. Before reading, refuses a file whose csv_table_bytes exceed the memory
// available: "<path>: reading this <size> file needs up to <bytes>, more than the <avail> of
// memory available".
CsvTable read_csv_table(const std::string& path);

// What reading a CSV of `file_bytes` may hold at once: the text (up to twice, while it is read)
// and at most file_bytes / 2 values (each takes two bytes, "0,"), parsed and then in the table.
double csv_table_bytes(double file_bytes);

struct CsvXY {
  Mat x;  // d_0 x m: one row per feature column
  Mat y;  // d_n x m: one row per target column
};

// The named columns of `t` (read from `source`) as X and Y, in the order given. `features` empty:
// every column that is not a target, in file order. Errors name the config keys:
//   "problem.target_columns: no column 'foo' in <source> (columns: a, b, c)" (same for features),
//   "problem.target_columns: column '<name>' listed twice",
//   "problem.feature_columns: column '<name>' is also in problem.target_columns",
//   "problem.feature_columns: every column of <source> is a target column".
CsvXY select_csv_columns(const CsvTable& t, const std::vector<std::string>& features,
                         const std::vector<std::string>& targets, const std::string& source);

}  // namespace dln::io
