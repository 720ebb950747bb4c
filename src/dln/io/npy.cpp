#include "dln/io/npy.hpp"

#include <fmt/format.h>

#include <bit>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <string_view>

#include "dln/io/files.hpp"

namespace dln::io {

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicLen = 6;
constexpr std::size_t kAlign = 64;

static_assert(std::endian::native == std::endian::little, "dln .npy I/O assumes little-endian");

enum class DType { F8, F4, I8, I4 };

struct Header {
  DType dtype = DType::F8;
  std::size_t item_size = 8;
  bool fortran = false;
  std::vector<Index> shape;
  std::size_t count = 1;
};

[[noreturn]] void fail(const std::string& path, const std::string& reason) {
  throw Error(fmt::format("{}: {}", path, reason));
}

// Minimal parser for the Python dict literal of a .npy header.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& path) : s_(text), path_(path) {}

  Header parse() {
    Header h;
    bool have_descr = false, have_order = false, have_shape = false;
    skip_ws();
    expect('{');
    while (true) {
      skip_ws();
      if (peek() == '}') {
        ++i_;
        break;
      }
      const std::string key = parse_string();
      skip_ws();
      expect(':');
      skip_ws();
      if (key == "descr") {
        if (peek() == '[') fail(path_, "unsupported dtype (structured array)");
        const std::string d = parse_string();
        if (d == "<f8") {
          h.dtype = DType::F8, h.item_size = 8;
        } else if (d == "<f4") {
          h.dtype = DType::F4, h.item_size = 4;
        } else if (d == "<i8") {
          h.dtype = DType::I8, h.item_size = 8;
        } else if (d == "<i4") {
          h.dtype = DType::I4, h.item_size = 4;
        } else {
          fail(path_, fmt::format("unsupported dtype '{}'", d));
        }
        have_descr = true;
      } else if (key == "fortran_order") {
        const std::string_view word = parse_word();
        if (word == "True") {
          h.fortran = true;
        } else if (word == "False") {
          h.fortran = false;
        } else {
          malformed(fmt::format("fortran_order must be True or False, got '{}'", word));
        }
        have_order = true;
      } else if (key == "shape") {
        h.shape = parse_shape();
        have_shape = true;
      } else {
        malformed(fmt::format("unexpected key '{}'", key));
      }
      skip_ws();
      if (peek() == ',') {
        ++i_;
      } else if (peek() != '}') {
        malformed("expected ',' or '}'");
      }
    }
    skip_ws();
    if (i_ != s_.size()) malformed("trailing characters after dict");
    if (!have_descr) malformed("missing 'descr'");
    if (!have_order) malformed("missing 'fortran_order'");
    if (!have_shape) malformed("missing 'shape'");
    std::size_t count = 1;
    for (const Index d : h.shape) {
      const auto ud = static_cast<std::size_t>(d);
      if (ud != 0 && count > std::numeric_limits<std::size_t>::max() / h.item_size / ud)
        malformed("shape too large");
      count *= ud;
    }
    h.count = count;
    return h;
  }

 private:
  [[noreturn]] void malformed(const std::string& what) const {
    fail(path_, fmt::format("malformed .npy header ({})", what));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  void expect(char c) {
    if (peek() != c) malformed(fmt::format("expected '{}'", c));
    ++i_;
  }
  std::string parse_string() {
    const char q = peek();
    if (q != '\'' && q != '"') malformed("expected a quoted string");
    const std::size_t end = s_.find(q, i_ + 1);
    if (end == std::string_view::npos) malformed("unterminated string");
    std::string out(s_.substr(i_ + 1, end - i_ - 1));
    i_ = end + 1;
    return out;
  }
  std::string_view parse_word() {
    const std::size_t start = i_;
    while (i_ < s_.size() &&
           (std::isalnum(static_cast<unsigned char>(s_[i_])) != 0 || s_[i_] == '_'))
      ++i_;
    return s_.substr(start, i_ - start);
  }
  std::vector<Index> parse_shape() {
    std::vector<Index> shape;
    expect('(');
    while (true) {
      skip_ws();
      if (peek() == ')') {
        ++i_;
        break;
      }
      const std::size_t start = i_;
      Index v = 0;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
        if (v > (std::numeric_limits<Index>::max() - 9) / 10) malformed("shape too large");
        v = v * 10 + (s_[i_] - '0');
        ++i_;
      }
      if (i_ == start) malformed("shape must be a tuple of non-negative integers");
      shape.push_back(v);
      skip_ws();
      if (peek() == ',') {
        ++i_;
      } else if (peek() != ')') {
        malformed("shape must be a tuple of non-negative integers");
      }
    }
    return shape;
  }

  std::string_view s_;
  const std::string& path_;
  std::size_t i_ = 0;
};

std::uint32_t read_le(const unsigned char* p, int n) {
  std::uint32_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

// Data as stored in the file (file order), converted to double.
struct RawArray {
  Header header;
  std::vector<double> data;
};

template <typename T>
void convert(const std::vector<char>& bytes, std::vector<double>& out) {
  for (std::size_t k = 0; k < out.size(); ++k) {
    T v;
    std::memcpy(&v, bytes.data() + k * sizeof(T), sizeof(T));
    out[k] = static_cast<double>(v);
  }
}

// Flat C-order index of the element at flat file-order index p of a Fortran-order array.
std::size_t fortran_to_c_index(std::size_t p, const std::vector<Index>& shape) {
  std::size_t c = 0;
  std::size_t c_stride = 1;
  std::vector<std::size_t> idx(shape.size());
  for (std::size_t k = 0; k < shape.size(); ++k) {
    const auto d = static_cast<std::size_t>(shape[k]);
    idx[k] = p % d;
    p /= d;
  }
  for (std::size_t k = shape.size(); k-- > 0;) {
    c += idx[k] * c_stride;
    c_stride *= static_cast<std::size_t>(shape[k]);
  }
  return c;
}

RawArray read_raw(const std::string& path, bool require_finite) {
  std::ifstream in = open_input(path);
  in.seekg(0, std::ios::end);
  const std::streamoff file_size = in.tellg();
  in.seekg(0, std::ios::beg);
  if (file_size < 0) fail(path, "cannot read");

  unsigned char pre[12] = {};
  in.read(reinterpret_cast<char*>(pre), 8);
  if (in.gcount() < static_cast<std::streamsize>(kMagicLen) ||
      std::memcmp(pre, kMagic, kMagicLen) != 0)
    fail(path, "not a .npy file (bad magic)");
  if (in.gcount() < 8) fail(path, "truncated header");
  const int major = pre[6], minor = pre[7];
  std::size_t prefix = 0;
  std::size_t header_len = 0;
  if (major == 1) {
    in.read(reinterpret_cast<char*>(pre + 8), 2);
    if (in.gcount() < 2) fail(path, "truncated header");
    prefix = 10;
    header_len = read_le(pre + 8, 2);
  } else if (major == 2 || major == 3) {
    in.read(reinterpret_cast<char*>(pre + 8), 4);
    if (in.gcount() < 4) fail(path, "truncated header");
    prefix = 12;
    header_len = read_le(pre + 8, 4);
  } else {
    fail(path, fmt::format("unsupported .npy version {}.{}", major, minor));
  }
  if (static_cast<std::uintmax_t>(file_size) < prefix + header_len) fail(path, "truncated header");
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (static_cast<std::size_t>(in.gcount()) != header_len) fail(path, "truncated header");

  RawArray raw;
  raw.header = HeaderParser(text, path).parse();
  const Header& h = raw.header;
  const std::size_t nbytes = h.count * h.item_size;
  const auto available = static_cast<std::uintmax_t>(file_size) - prefix - header_len;
  if (available < nbytes) fail(path, fmt::format("truncated data (expected {} bytes)", nbytes));
  if (available > nbytes)
    fail(path, fmt::format("unexpected trailing data (expected {} bytes)", nbytes));

  raw.data.resize(h.count);
  if (h.dtype == DType::F8) {
    in.read(reinterpret_cast<char*>(raw.data.data()), static_cast<std::streamsize>(nbytes));
    if (static_cast<std::size_t>(in.gcount()) != nbytes) fail(path, "cannot read");
  } else {
    std::vector<char> bytes(nbytes);
    in.read(bytes.data(), static_cast<std::streamsize>(nbytes));
    if (static_cast<std::size_t>(in.gcount()) != nbytes) fail(path, "cannot read");
    switch (h.dtype) {
      case DType::F4:
        convert<float>(bytes, raw.data);
        break;
      case DType::I8:
        convert<std::int64_t>(bytes, raw.data);
        break;
      case DType::I4:
        convert<std::int32_t>(bytes, raw.data);
        break;
      case DType::F8:
        break;
    }
  }

  if (require_finite && (h.dtype == DType::F8 || h.dtype == DType::F4)) {
    for (std::size_t p = 0; p < raw.data.size(); ++p) {
      if (!std::isfinite(raw.data[p])) {
        const std::size_t k = h.fortran ? fortran_to_c_index(p, h.shape) : p;
        fail(path, fmt::format("non-finite value at flat index {}", k));
      }
    }
  }
  return raw;
}

std::string shape_str(const std::vector<Index>& shape) {
  std::string out = "(";
  for (std::size_t k = 0; k < shape.size(); ++k)
    out += fmt::format("{}{}", k ? ", " : "", shape[k]);
  return out + (shape.size() == 1 ? ",)" : ")");
}

// Full .npy prefix + header for a '<f8' array, padded to a multiple of 64 bytes.
std::string make_header(const std::vector<Index>& shape, bool fortran) {
  std::string dict = fmt::format("{{'descr': '<f8', 'fortran_order': {}, 'shape': {}, }}",
                                 fortran ? "True" : "False", shape_str(shape));
  std::size_t prefix = 10;
  std::size_t total = prefix + dict.size() + 1;
  total = (total + kAlign - 1) / kAlign * kAlign;
  if (total - prefix > 0xFFFF) {
    prefix = 12;
    total = (prefix + dict.size() + 1 + kAlign - 1) / kAlign * kAlign;
  }
  const std::size_t header_len = total - prefix;
  dict.append(header_len - dict.size() - 1, ' ');
  dict.push_back('\n');

  std::string out(kMagic, kMagicLen);
  out.push_back(static_cast<char>(prefix == 10 ? 1 : 2));
  out.push_back('\0');
  const int len_bytes = prefix == 10 ? 2 : 4;
  for (int k = 0; k < len_bytes; ++k)
    out.push_back(static_cast<char>((header_len >> (8 * k)) & 0xFF));
  return out + dict;
}

void write_f8(const std::string& path, const std::vector<Index>& shape, bool fortran,
              const double* data, std::size_t count) {
  const std::string header = make_header(shape, fortran);
  detail::write_buffers_atomic(
      path, {std::string_view(header),
             std::string_view(reinterpret_cast<const char*>(data), count * sizeof(double))});
}

}  // namespace

NpyArray read_npy(const std::string& path, bool require_finite) {
  RawArray raw = read_raw(path, require_finite);
  NpyArray out;
  out.shape = raw.header.shape;
  if (!raw.header.fortran || out.shape.size() <= 1) {
    out.data = std::move(raw.data);
    return out;
  }
  // Walk the file (first axis fastest) and scatter into C order.
  const std::size_t rank = out.shape.size();
  std::vector<std::size_t> c_stride(rank, 1), idx(rank, 0);
  for (std::size_t k = rank - 1; k-- > 0;)
    c_stride[k] = c_stride[k + 1] * static_cast<std::size_t>(out.shape[k + 1]);
  out.data.resize(raw.data.size());
  std::size_t c = 0;
  for (std::size_t p = 0; p < raw.data.size(); ++p) {
    out.data[c] = raw.data[p];
    for (std::size_t k = 0; k < rank; ++k) {
      c += c_stride[k];
      if (++idx[k] < static_cast<std::size_t>(out.shape[k])) break;
      c -= c_stride[k] * idx[k];
      idx[k] = 0;
    }
  }
  return out;
}

Mat read_npy_matrix(const std::string& path, bool require_finite) {
  const RawArray raw = read_raw(path, require_finite);
  const std::vector<Index>& shape = raw.header.shape;
  if (shape.size() == 1) return Eigen::Map<const Mat>(raw.data.data(), shape[0], 1);
  if (shape.size() != 2)
    fail(path, fmt::format("expected a 1-D or 2-D array, got {}-D", shape.size()));
  if (raw.header.fortran) return Eigen::Map<const Mat>(raw.data.data(), shape[0], shape[1]);
  using RowMajor = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  return Eigen::Map<const RowMajor>(raw.data.data(), shape[0], shape[1]);
}

void write_npy(const std::string& path, const Mat& m) {
  write_f8(path, {m.rows(), m.cols()}, true, m.data(), static_cast<std::size_t>(m.size()));
}

void write_npy(const std::string& path, const std::vector<double>& v) {
  write_f8(path, {static_cast<Index>(v.size())}, false, v.data(), v.size());
}

void write_npy(const std::string& path, const std::vector<Index>& shape,
               const std::vector<double>& c_order_data) {
  std::size_t count = 1;
  for (const Index d : shape) {
    if (d < 0)
      fail(path, fmt::format("cannot write: negative dimension in shape {}", shape_str(shape)));
    count *= static_cast<std::size_t>(d);
  }
  if (count != c_order_data.size())
    fail(path, fmt::format("cannot write: shape {} needs {} values, got {}", shape_str(shape),
                           count, c_order_data.size()));
  write_f8(path, shape, false, c_order_data.data(), count);
}

}  // namespace dln::io
