// IDX files (LeCun's MNIST format, also Fashion-MNIST's), raw or gzip-compressed: a magic
// 00 00 <type> <rank>, `rank` big-endian uint32 dimensions, then the entries in row-major order.
// Only unsigned bytes (type 0x08) are read: the images and labels of both data sets.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dln::io {

struct IdxArray {
  std::vector<std::size_t> dims;   // e.g. {60000, 28, 28} for images, {60000} for labels
  std::vector<std::uint8_t> data;  // prod(dims) entries, row-major
  std::size_t size() const { return data.size(); }
};

// Parses the bytes of an IDX file; gzip input (magic 1f 8b) is inflated with zlib. `source`
// names the file in errors (dln::Error, one line, "<source>: ..."): not gzip and not IDX, a
// corrupt or truncated gzip stream, an unsupported type, a zero dimension, fewer or more entries
// than the dimensions say. A declared size over `max_bytes` (0: what the machine can allocate)
// is refused before it is allocated.
IdxArray parse_idx(std::string_view bytes, const std::string& source, double max_bytes = 0);
IdxArray read_idx(const std::string& path, double max_bytes = 0);

// An image file (count x rows x cols) and its label file (count), as MNIST and Fashion-MNIST
// ship them. Errors name the file: a rank other than 3 / 1, counts that differ, a label >=
// `classes`.
struct LabelledImages {
  IdxArray images, labels;
  std::size_t count = 0, rows = 0, cols = 0;
};
LabelledImages check_labelled_images(IdxArray images, IdxArray labels,
                                     const std::string& images_source,
                                     const std::string& labels_source, int classes = 10);
LabelledImages read_labelled_images(const std::string& images_path, const std::string& labels_path,
                                    int classes = 10);

}  // namespace dln::io
