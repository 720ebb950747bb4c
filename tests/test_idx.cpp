// IDX files (io/idx.hpp), raw and gzip: round trips, Debian's Fashion-MNIST when installed, and
// the exact error of each malformed file.
#include <zlib.h>

#include <filesystem>

#include "dln/io/idx.hpp"
#include "test_support.hpp"

namespace {

using dln::io::parse_idx;
using dln::testing::expect_error;

std::string idx(std::uint8_t type, const std::vector<std::uint32_t>& dims, std::size_t entries) {
  std::string b = {'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (std::uint32_t d : dims)
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<char>((d >> s) & 0xff));
  for (std::size_t i = 0; i < entries; ++i) b.push_back(static_cast<char>(i % 251));
  return b;
}

std::string gzip(const std::string& raw) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&z, raw.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

TEST(Idx, RawAndGzipRoundTrip) {
  const std::string raw = idx(0x08, {3, 4, 5}, 60);
  for (const std::string& bytes : {raw, gzip(raw)}) {
    const auto a = parse_idx(bytes, "x.idx");
    EXPECT_EQ(a.dims, (std::vector<std::size_t>{3, 4, 5}));
    ASSERT_EQ(a.size(), 60u);
    EXPECT_EQ(a.data[59], 59);
  }
  // Entries past one inflate chunk (64 KiB).
  const auto big = parse_idx(gzip(idx(0x08, {300, 300}, 90000)), "big.gz");
  EXPECT_EQ(big.data[89999], 89999 % 251);
}

TEST(Idx, MalformedFilesGetTheirErrors) {
  expect_error([] { parse_idx("\x01\x02\x08\x01", "a"); },
               "a: not an IDX file (magic 01 02, expected 00 00)");
  expect_error([] { parse_idx(idx(0x0D, {2}, 8), "a"); },
               "a: IDX type 0x0D (float) is not supported; expected 0x08 (unsigned byte)");
  expect_error([] { parse_idx(idx(0x08, {}, 0), "a"); }, "a: IDX rank is 0 (no dimensions)");
  expect_error([] { parse_idx(idx(0x08, {2, 0}, 0), "a"); }, "a: IDX dimension 2 is 0");
  expect_error(
      [] {
        parse_idx(idx(0x08, {2, 3}, 5), "a");
      },
      "a: truncated: the dimensions 2 x 3 need 6 entries, the file has 5");
  expect_error(
      [] {
        parse_idx(idx(0x08, {2, 3}, 7), "a");
      },
      "a: more bytes than the 6 entries the dimensions 2 x 3 declare");
  expect_error([] { parse_idx(std::string("\0\0\x08", 3), "a"); },
               "a: truncated: 3 bytes, shorter than an IDX header");
  const std::string gz = gzip(idx(0x08, {100, 100}, 10000));
  expect_error([&] { parse_idx(gz.substr(0, gz.size() / 2), "b.gz"); },
               "b.gz: gzip: truncated stream");
  std::string corrupt = gz;
  corrupt[12] = static_cast<char>(corrupt[12] ^ 0x55);
  corrupt[13] = static_cast<char>(corrupt[13] ^ 0x55);
  try {
    parse_idx(corrupt, "c.gz");
    ADD_FAILURE() << "a corrupt stream was accepted";
  } catch (const dln::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("c.gz: ", 0), 0u) << e.what();
  }
  expect_error([&] { parse_idx(gz + "xyz", "d.gz"); },
               "d.gz: gzip: 3 bytes after the end of the stream");
  expect_error(
      [] {
        parse_idx(gzip(idx(0x08, {2, 3}, 9)), "e.gz");
      },
      "e.gz: more bytes than the 6 entries the dimensions 2 x 3 declare");
}

TEST(Idx, SizesBeyondMemoryAreRefusedBeforeAllocation) {
  // 4 x 2^32 - 1 entries per dimension: ~3e38 bytes declared by a 20-byte file (and by 40 gzip
  // bytes: the stream is not inflated past the header).
  const std::string huge = idx(0x08, {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0);
  for (const std::string& bytes : {huge, gzip(huge)}) try {
      parse_idx(bytes, "h");
      ADD_FAILURE() << "accepted";
    } catch (const dln::Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind("h: the dimensions 4294967295 x 4294967295 x "
                                            "4294967295 x 4294967295 declare ",
                                            0),
                0u)
          << e.what();
    }
  expect_error([] { parse_idx(idx(0x08, {1000}, 1000), "m", 100.0); },
               "m: the dimensions 1000 declare 1000 B of entries, more than the 100 B allowed");
}

TEST(Idx, LabelledImagesAreChecked) {
  using dln::io::check_labelled_images;
  const auto images = parse_idx(idx(0x08, {3, 2, 2}, 12), "img");
  auto labels = parse_idx(idx(0x08, {3}, 3), "lab");
  const auto ok = check_labelled_images(images, labels, "img", "lab");
  EXPECT_EQ(ok.count, 3u);
  EXPECT_EQ(ok.rows, 2u);
  labels.data[1] = 10;
  expect_error([&] { check_labelled_images(images, labels, "img", "lab"); },
               "lab: label 10 of item 1 is out of range 0..9");
  expect_error(
      [&] { check_labelled_images(images, parse_idx(idx(0x08, {4}, 4), "l"), "img", "l"); },
      "l: 4 labels for the 3 images of img");
  expect_error([&] { check_labelled_images(labels, labels, "lab", "lab"); },
               "lab: expected images (count x rows x cols), got dimensions 3");
  expect_error([&] { check_labelled_images(images, images, "img", "img"); },
               "img: expected labels (one dimension), got dimensions 3 x 2 x 2");
}

TEST(Idx, DebianFashionMnist) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(dir + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const auto d = dln::io::read_labelled_images(dir + "/t10k-images-idx3-ubyte.gz",
                                               dir + "/t10k-labels-idx1-ubyte.gz");
  EXPECT_EQ(d.count, 10000u);
  EXPECT_EQ(d.rows, 28u);
  EXPECT_EQ(d.cols, 28u);
  std::vector<int> per_class(10);
  for (auto l : d.labels.data) ++per_class[l];
  for (int c : per_class) EXPECT_EQ(c, 1000);  // the test split is balanced
}

}  // namespace
