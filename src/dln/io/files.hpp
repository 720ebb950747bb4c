// Small file utilities: atomic writes, directories, CSV observation files.
#pragma once

#include <fstream>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "dln/core/types.hpp"

namespace dln::io {

// Writes `contents` to path atomically (path + ".tmp", fsync, rename). Throws dln::Error naming
// the path on failure.
void write_file_atomic(const std::string& path, const std::string& contents);

namespace detail {
// Writes the concatenation of `parts` atomically (used by write_file_atomic and write_npy).
void write_buffers_atomic(const std::string& path, std::initializer_list<std::string_view> parts);
}  // namespace detail

// Creates a directory and its parents; throws dln::Error("<path>: cannot create directory ...")
// or ("<path>: not writable") when it cannot be used for output.
void ensure_writable_directory(const std::string& path);

// A whole field as a double (an optional leading '+'; from_chars otherwise): false if malformed.
bool parse_double(std::string_view s, double& out);

// A binary input stream; Error "<path>: is a directory, not a file" or "<path>: cannot open".
std::ifstream open_input(const std::string& path);
std::string read_file(const std::string& path);

// One observed entry of a matrix (Eq. 9 with A_i = e_row e_col^T).
struct Observation {
  Index row;
  Index col;
  double value;
};

// Reads `row,col,value` CSV (0-based indices). An optional header line whose first field is not a
// number is skipped. Blank lines are skipped. Errors name the file and 1-based line:
//   "<path>:<line>: expected 3 fields row,col,value"
//   "<path>:<line>: row index R out of range [0, ROWS)"   (when rows > 0; same for col)
//   "<path>:<line>: non-finite value"
//   "<path>:<line>: malformed number 'x'"  (value field) / "malformed index 'x'" (row, col)
//   "<path>:<line>: duplicate entry (R, C)"
//   "<path>: no observations"
std::vector<Observation> read_observations_csv(const std::string& path, Index rows, Index cols);

// Writes observations as CSV with header `row,col,value`, values printed with 17 significant
// digits (exact round trip). Atomic.
void write_observations_csv(const std::string& path, const std::vector<Observation>& obs);

}  // namespace dln::io
