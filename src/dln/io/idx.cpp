#include "dln/io/idx.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "dln/core/memory.hpp"
#include "dln/core/types.hpp"
#include "dln/io/files.hpp"

namespace dln::io {
namespace {

constexpr std::uint8_t kUnsignedByte = 0x08;

std::string type_name(std::uint8_t t) {
  switch (t) {
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "short";
    case 0x0C:
      return "int";
    case 0x0D:
      return "float";
    case 0x0E:
      return "double";
    default:
      return "unknown";
  }
}

struct Header {
  std::vector<std::size_t> dims;
  std::size_t header_bytes = 0;
  double entries = 1;  // a double: 255 dimensions of 2^32 cannot overflow
};

// The header once `b` holds it, else nullopt; throws on a bad magic, type or dimension.
std::optional<Header> parse_header(std::string_view b, const std::string& source) {
  if (b.size() < 4) return std::nullopt;
  const auto u = [&](std::size_t i) { return static_cast<std::uint8_t>(b[i]); };
  if (u(0) != 0 || u(1) != 0)
    throw Error(fmt::format("{}: not an IDX file (magic {:02x} {:02x}, expected 00 00)", source,
                            u(0), u(1)));
  if (u(2) != kUnsignedByte)
    throw Error(
        fmt::format("{}: IDX type 0x{:02X} ({}) is not supported; expected 0x08 "
                    "(unsigned byte)",
                    source, u(2), type_name(u(2))));
  const std::size_t rank = u(3);
  if (rank == 0) throw Error(fmt::format("{}: IDX rank is 0 (no dimensions)", source));
  Header h;
  h.header_bytes = 4 + 4 * rank;
  if (b.size() < h.header_bytes) return std::nullopt;
  for (std::size_t k = 0; k < rank; ++k) {
    const std::size_t i = 4 + 4 * k;
    const std::size_t d = (std::size_t{u(i)} << 24) | (std::size_t{u(i + 1)} << 16) |
                          (std::size_t{u(i + 2)} << 8) | std::size_t{u(i + 3)};
    if (d == 0) throw Error(fmt::format("{}: IDX dimension {} is 0", source, k + 1));
    h.dims.push_back(d);
    h.entries *= static_cast<double>(d);
  }
  return h;
}

// A declared size is checked against memory before anything of that size is allocated.
void require_memory(const Header& h, const std::string& source, double max_bytes) {
  const double limit = max_bytes > 0 ? max_bytes : memory::available_bytes();
  if (h.entries + static_cast<double>(h.header_bytes) > limit)
    throw Error(fmt::format("{}: the dimensions {} declare {} of entries, more than the {} {}",
                            source, fmt::join(h.dims, " x "), memory::format_bytes(h.entries),
                            memory::format_bytes(limit),
                            max_bytes > 0 ? "allowed" : "of memory available"));
}

// Copies the entries after the header, checking that there are exactly as many as declared.
IdxArray take_entries(const Header& h, std::string_view b, const std::string& source) {
  const double have = static_cast<double>(b.size() - h.header_bytes);
  if (have < h.entries)
    throw Error(fmt::format("{}: truncated: the dimensions {} need {} entries, the file has {}",
                            source, fmt::join(h.dims, " x "), h.entries, have));
  if (have > h.entries)
    throw Error(fmt::format("{}: more bytes than the {} entries the dimensions {} declare", source,
                            h.entries, fmt::join(h.dims, " x ")));
  IdxArray a;
  a.dims = h.dims;
  a.data.assign(b.begin() + static_cast<std::ptrdiff_t>(h.header_bytes), b.end());
  return a;
}

// Inflates a gzip stream. The header is parsed as soon as it is out, and the output is never
// allowed past the size it declares: a small file that inflates to more than memory is refused,
// not allocated.
std::string gunzip(std::string_view in, const std::string& source, double max_bytes) {
  struct Stream {
    z_stream z{};
    ~Stream() { inflateEnd(&z); }
  } s;
  if (inflateInit2(&s.z, 16 + MAX_WBITS) != Z_OK)
    throw Error(fmt::format("{}: gzip: cannot initialise zlib", source));
  std::size_t fed = 0;
  std::string out;
  std::optional<Header> header;
  double cap = 4 + 4 * 255;  // the largest header, until the header is known
  std::vector<char> chunk(1 << 16);
  while (true) {
    if (s.z.avail_in == 0 && fed < in.size()) {
      const std::size_t n = std::min<std::size_t>(in.size() - fed, 1u << 30);
      s.z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data() + fed));
      s.z.avail_in = static_cast<uInt>(n);
      fed += n;
    }
    s.z.next_out = reinterpret_cast<Bytef*>(chunk.data());
    s.z.avail_out = static_cast<uInt>(chunk.size());
    const int rc = inflate(&s.z, Z_NO_FLUSH);
    const std::size_t produced = chunk.size() - s.z.avail_out;
    if (rc == Z_BUF_ERROR || (rc == Z_OK && produced == 0 && s.z.avail_in == 0 && fed == in.size()))
      throw Error(fmt::format("{}: gzip: truncated stream", source));
    if (rc != Z_OK && rc != Z_STREAM_END)
      throw Error(fmt::format("{}: gzip: {}", source, s.z.msg ? s.z.msg : "corrupt stream"));
    out.append(chunk.data(), produced);  // at most one chunk past the cap
    if (!header && (header = parse_header(out, source))) {
      require_memory(*header, source, max_bytes);
      // No reserve: memory grows with the bytes that actually inflate, never past the cap.
      cap = static_cast<double>(header->header_bytes) + header->entries;
    }
    if (static_cast<double>(out.size()) > cap) {
      if (!header) throw Error(fmt::format("{}: not an IDX file (no header)", source));
      throw Error(fmt::format("{}: more bytes than the {} entries the dimensions {} declare",
                              source, header->entries, fmt::join(header->dims, " x ")));
    }
    if (rc == Z_STREAM_END) break;
  }
  const std::size_t left = s.z.avail_in + (in.size() - fed);
  if (left > 0)
    throw Error(fmt::format("{}: gzip: {} bytes after the end of the stream", source, left));
  return out;
}

}  // namespace

IdxArray parse_idx(std::string_view bytes, const std::string& source, double max_bytes) {
  std::string inflated;
  if (bytes.size() >= 2 && static_cast<std::uint8_t>(bytes[0]) == 0x1f &&
      static_cast<std::uint8_t>(bytes[1]) == 0x8b) {
    inflated = gunzip(bytes, source, max_bytes);
    bytes = inflated;
  }
  const auto header = parse_header(bytes, source);
  if (!header)
    throw Error(
        fmt::format("{}: truncated: {} bytes, shorter than an IDX header", source, bytes.size()));
  require_memory(*header, source, max_bytes);
  return take_entries(*header, bytes, source);
}

IdxArray read_idx(const std::string& path, double max_bytes) {
  return parse_idx(read_file(path), path, max_bytes);
}

LabelledImages check_labelled_images(IdxArray images, IdxArray labels,
                                     const std::string& images_source,
                                     const std::string& labels_source, int classes) {
  if (images.dims.size() != 3)
    throw Error(fmt::format("{}: expected images (count x rows x cols), got dimensions {}",
                            images_source, fmt::join(images.dims, " x ")));
  if (labels.dims.size() != 1)
    throw Error(fmt::format("{}: expected labels (one dimension), got dimensions {}", labels_source,
                            fmt::join(labels.dims, " x ")));
  if (images.dims[0] != labels.dims[0])
    throw Error(fmt::format("{}: {} labels for the {} images of {}", labels_source, labels.dims[0],
                            images.dims[0], images_source));
  for (std::size_t i = 0; i < labels.size(); ++i)
    if (labels.data[i] >= classes)
      throw Error(fmt::format("{}: label {} of item {} is out of range 0..{}", labels_source,
                              labels.data[i], i, classes - 1));
  LabelledImages d;
  d.count = images.dims[0];
  d.rows = images.dims[1];
  d.cols = images.dims[2];
  d.images = std::move(images);
  d.labels = std::move(labels);
  return d;
}

LabelledImages read_labelled_images(const std::string& images_path, const std::string& labels_path,
                                    int classes) {
  return check_labelled_images(read_idx(images_path), read_idx(labels_path), images_path,
                               labels_path, classes);
}

}  // namespace dln::io
