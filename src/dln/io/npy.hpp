// NumPy .npy files (format version 1.0/2.0), little-endian float64 / int64, C or Fortran order.
#pragma once

#include <string>
#include <vector>

#include "dln/core/types.hpp"

namespace dln::io {

// A dense array read from a .npy file, values converted to double, stored in C (row-major) order.
struct NpyArray {
  std::vector<Index> shape;
  std::vector<double> data;  // row-major (C order), size = product of shape
};

// Reads float64 ('<f8'), float32 ('<f4'), int64 ('<i8') or int32 ('<i4') arrays, either order.
// Throws dln::Error("<path>: <reason>") for malformed headers, unsupported dtypes, truncated data,
// and (when require_finite) NaN/Inf values ("<path>: non-finite value at flat index K").
NpyArray read_npy(const std::string& path, bool require_finite = true);

// Reads a 2-D array as a matrix (a 1-D array of length k becomes k x 1).
Mat read_npy_matrix(const std::string& path, bool require_finite = true);

// Writes a float64 matrix as a 2-D '<f8' array in Fortran order (no copy). Atomic: writes
// path + ".tmp" then renames. Throws dln::Error naming the path when it cannot be written.
void write_npy(const std::string& path, const Mat& m);
// Writes a 1-D float64 array.
void write_npy(const std::string& path, const std::vector<double>& v);
// Writes an arbitrary-rank float64 array given in C order.
void write_npy(const std::string& path, const std::vector<Index>& shape,
               const std::vector<double>& c_order_data);

}  // namespace dln::io
