#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "dln/core/types.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"

namespace fs = std::filesystem;
using dln::Index;
using dln::Mat;

namespace {

fs::path temp_root() {
  return fs::temp_directory_path() / ("dln_test_io_" + std::to_string(::getpid()));
}

// Removes the scratch directories at exit.
struct TempRootCleanup {
  ~TempRootCleanup() {
    std::error_code ec;
    fs::remove_all(temp_root(), ec);
  }
} temp_root_cleanup;

// A fresh directory per test.
std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const fs::path dir = temp_root() / (std::string(info->test_suite_name()) + "." + info->name());
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A .npy file with the given header dict (padded, version 1.0) followed by raw bytes.
std::string npy_bytes(const std::string& dict, const std::string& data, char major = 1) {
  std::string header = dict;
  const std::size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0) header.push_back(' ');
  header.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(major);
  out.push_back('\0');
  const std::size_t len = header.size();
  for (std::size_t k = 0; k < prefix - 8; ++k)
    out.push_back(static_cast<char>((len >> (8 * k)) & 0xFF));
  return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

void expect_error(const std::function<void()>& fn, const std::string& message) {
  try {
    fn();
    ADD_FAILURE() << "expected dln::Error(\"" << message << "\"), nothing thrown";
  } catch (const dln::Error& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

Mat random_mat(Index rows, Index cols, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist;
  Mat m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i)
      m(i, j) = dist(gen) * std::pow(10.0, static_cast<double>(i % 7) - 3);
  return m;
}

}  // namespace

TEST(Npy, MatrixRoundTripIsBitExact) {
  const std::string dir = temp_dir();
  const Mat m = random_mat(7, 4, 1);
  const std::string path = dir + "/m.npy";
  dln::io::write_npy(path, m);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_EQ(fs::file_size(path) % 16, 0u);
  const Mat r = dln::io::read_npy_matrix(path);
  ASSERT_EQ(r.rows(), 7);
  ASSERT_EQ(r.cols(), 4);
  EXPECT_EQ(std::memcmp(r.data(), m.data(), sizeof(double) * 28), 0);

  // Header is padded to a multiple of 64 and ends with '\n'.
  std::ifstream in(path, std::ios::binary);
  std::string prefix(10, '\0');
  in.read(prefix.data(), 10);
  const std::size_t hlen =
      static_cast<unsigned char>(prefix[8]) | (static_cast<unsigned char>(prefix[9]) << 8);
  EXPECT_EQ((10 + hlen) % 64, 0u);
  std::string header(hlen, '\0');
  in.read(header.data(), static_cast<std::streamsize>(hlen));
  EXPECT_EQ(header.back(), '\n');
  EXPECT_NE(header.find("'fortran_order': True"), std::string::npos);
  EXPECT_NE(header.find("'shape': (7, 4)"), std::string::npos);

  // read_npy returns C order.
  const dln::io::NpyArray a = dln::io::read_npy(path);
  ASSERT_EQ(a.shape, (std::vector<Index>{7, 4}));
  for (Index i = 0; i < 7; ++i)
    for (Index j = 0; j < 4; ++j) EXPECT_EQ(a.data[i * 4 + j], m(i, j));
}

TEST(Npy, EmptyAndOverwrite) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/e.npy";
  dln::io::write_npy(path, Mat(0, 3));
  const Mat e = dln::io::read_npy_matrix(path);
  EXPECT_EQ(e.rows(), 0);
  EXPECT_EQ(e.cols(), 3);
  dln::io::write_npy(path, Mat::Constant(2, 2, 1.5));
  EXPECT_EQ(dln::io::read_npy_matrix(path), Mat::Constant(2, 2, 1.5));
}

TEST(Npy, GenericWriterCOrder) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/c.npy";
  std::vector<double> data(3 * 5);
  for (std::size_t k = 0; k < data.size(); ++k) data[k] = static_cast<double>(k) + 0.25;
  dln::io::write_npy(path, {3, 5}, data);
  const Mat m = dln::io::read_npy_matrix(path);
  ASSERT_EQ(m.rows(), 3);
  ASSERT_EQ(m.cols(), 5);
  for (Index i = 0; i < 3; ++i)
    for (Index j = 0; j < 5; ++j) EXPECT_EQ(m(i, j), static_cast<double>(i * 5 + j) + 0.25);

  // 3-D round trip through read_npy.
  std::vector<double> d3(2 * 3 * 4);
  for (std::size_t k = 0; k < d3.size(); ++k) d3[k] = static_cast<double>(k);
  dln::io::write_npy(path, {2, 3, 4}, d3);
  const dln::io::NpyArray a = dln::io::read_npy(path);
  EXPECT_EQ(a.shape, (std::vector<Index>{2, 3, 4}));
  EXPECT_EQ(a.data, d3);
  expect_error([&] { dln::io::read_npy_matrix(path); },
               path + ": expected a 1-D or 2-D array, got 3-D");

  // Scalar.
  dln::io::write_npy(path, std::vector<Index>{}, {42.0});
  const dln::io::NpyArray s = dln::io::read_npy(path);
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.data, std::vector<double>{42.0});
  expect_error([&] { dln::io::read_npy_matrix(path); },
               path + ": expected a 1-D or 2-D array, got 0-D");

  EXPECT_THROW(dln::io::write_npy(path, {2, 2}, {1.0, 2.0, 3.0}), dln::Error);
}

TEST(Npy, VectorWriterIsColumn) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/v.npy";
  dln::io::write_npy(path, std::vector<double>{1.0, -2.0, 3.5});
  const Mat m = dln::io::read_npy_matrix(path);
  ASSERT_EQ(m.rows(), 3);
  ASSERT_EQ(m.cols(), 1);
  EXPECT_EQ(m(1, 0), -2.0);
  EXPECT_EQ(dln::io::read_npy(path).shape, std::vector<Index>{3});
}

TEST(Npy, ReadsOtherDtypesOrdersAndVersions) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/x.npy";
  // Fortran-order int64 2x3: column-major values 0..5.
  write_bytes(path, npy_bytes("{'descr': '<i8', 'fortran_order': True, 'shape': (2, 3), }",
                              raw(std::vector<std::int64_t>{0, 1, 2, 3, 4, 5})));
  Mat m = dln::io::read_npy_matrix(path);
  EXPECT_EQ(m(1, 2), 5.0);
  EXPECT_EQ(m(0, 1), 2.0);
  const dln::io::NpyArray a = dln::io::read_npy(path);
  EXPECT_EQ(a.data, (std::vector<double>{0, 2, 4, 1, 3, 5}));

  // float32, int32, odd spacing, double quotes, version 2.0, no trailing comma.
  write_bytes(path, npy_bytes("{ \"descr\" :'<f4','shape':( 2 ,2 , ) ,'fortran_order':False}",
                              raw(std::vector<float>{1.5f, 2.f, 3.f, 4.f}), 2));
  m = dln::io::read_npy_matrix(path);
  EXPECT_EQ(m(0, 0), 1.5);
  EXPECT_EQ(m(0, 1), 2.0);
  write_bytes(path, npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
                              raw(std::vector<std::int32_t>{-1, 7, 9}), 3));
  m = dln::io::read_npy_matrix(path);
  ASSERT_EQ(m.rows(), 3);
  EXPECT_EQ(m(0, 0), -1.0);

  // Fortran-order 3-D.
  std::vector<double> f(2 * 3 * 4);
  for (std::size_t k = 0; k < f.size(); ++k) f[k] = static_cast<double>(k);
  write_bytes(path,
              npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3, 4), }", raw(f)));
  const dln::io::NpyArray b = dln::io::read_npy(path);
  // C index (i, j, k) = i*12 + j*4 + k ; F offset = i + 2*j + 6*k.
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) EXPECT_EQ(b.data[i * 12 + j * 4 + k], i + 2 * j + 6 * k);
}

TEST(Npy, Errors) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/bad.npy";
  const std::string good_dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }";
  const auto read = [&] { dln::io::read_npy(path); };

  expect_error([&] { dln::io::read_npy(dir + "/missing.npy"); }, dir + "/missing.npy: cannot open");

  write_bytes(path, "hello world, not numpy at all");
  expect_error(read, path + ": not a .npy file (bad magic)");
  write_bytes(path, "");
  expect_error(read, path + ": not a .npy file (bad magic)");

  write_bytes(path, npy_bytes(good_dict, raw(std::vector<double>{1, 2, 3})));
  expect_error(read, path + ": truncated data (expected 32 bytes)");

  write_bytes(path, npy_bytes("{'descr': '>f8', 'fortran_order': False, 'shape': (2, 2), }",
                              raw(std::vector<double>{1, 2, 3, 4})));
  expect_error(read, path + ": unsupported dtype '>f8'");
  write_bytes(path, npy_bytes("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }",
                              std::string(16, '\0')));
  expect_error(read, path + ": unsupported dtype '<c16'");

  write_bytes(path, npy_bytes("{'descr': '<f8', 'fortran_order': False}", ""));
  EXPECT_THROW(read(), dln::Error);
  write_bytes(path, npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, -1), }", ""));
  EXPECT_THROW(read(), dln::Error);

  const double nan = std::numeric_limits<double>::quiet_NaN();
  write_bytes(path, npy_bytes(good_dict, raw(std::vector<double>{1, 2, nan, 4})));
  expect_error(read, path + ": non-finite value at flat index 2");
  EXPECT_TRUE(std::isnan(dln::io::read_npy(path, false).data[2]));
  // Fortran order reports the C-order index: (0, 1) -> 1.
  write_bytes(path, npy_bytes("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }",
                              raw(std::vector<double>{1, 2, INFINITY, 4})));
  expect_error([&] { dln::io::read_npy_matrix(path); },
               path + ": non-finite value at flat index 1");

  expect_error([&] { dln::io::write_npy(dir + "/no/such/dir/x.npy", Mat::Zero(1, 1)); },
               dir + "/no/such/dir/x.npy: cannot write (No such file or directory)");
}

TEST(Files, WriteReadAtomic) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/a.txt";
  dln::io::write_file_atomic(path, "first");
  dln::io::write_file_atomic(path, std::string("second\0x", 8));
  EXPECT_EQ(dln::io::read_file(path), std::string("second\0x", 8));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  expect_error([&] { dln::io::read_file(dir + "/nope"); }, dir + "/nope: cannot open");
}

TEST(Files, EnsureWritableDirectory) {
  const std::string dir = temp_dir();
  const std::string sub = dir + "/a/b/c";
  dln::io::ensure_writable_directory(sub);
  EXPECT_TRUE(fs::is_directory(sub));
  dln::io::ensure_writable_directory(sub);  // already exists

  const std::string file = dir + "/file";
  write_bytes(file, "x");
  expect_error([&] { dln::io::ensure_writable_directory(file); }, file + ": not a directory");
  expect_error([&] { dln::io::ensure_writable_directory(file + "/sub"); },
               file + "/sub: cannot create directory (Not a directory)");
}

// Root passes access(W_OK) anywhere, so as root (CI) the check runs in a child that drops to
// uid/gid 65534 (nobody); the message comes back through a pipe.
TEST(Files, NotWritableDirectory) {
  const std::string dir = temp_dir();
  const std::string ro = dir + "/ro";
  fs::create_directories(ro);
  fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                          fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
  auto message = [&] {
    try {
      dln::io::ensure_writable_directory(ro);
      return std::string("no error");
    } catch (const dln::Error& e) {
      return std::string(e.what());
    }
  };
  std::string got;
  if (::geteuid() != 0) {
    got = message();
  } else {
    int fd[2];
    ASSERT_EQ(::pipe(fd), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(fd[0]);
      const std::string m =
          ::setresgid(65534, 65534, 65534) == 0 && ::setresuid(65534, 65534, 65534) == 0
              ? message()
              : "cannot drop root";
      [[maybe_unused]] const auto n = ::write(fd[1], m.data(), m.size());
      ::_exit(0);  // no static destructors: they would remove the parent's scratch files
    }
    ::close(fd[1]);
    char buf[512];
    ssize_t n;
    while ((n = ::read(fd[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
    ::close(fd[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
  EXPECT_EQ(got, ro + ": not writable");
  fs::permissions(ro, fs::perms::owner_all);
}

TEST(Csv, RoundTrip) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/obs.csv";
  std::vector<dln::io::Observation> obs = {
      {0, 0, 0.1}, {2, 3, -1.0 / 3.0}, {1, 1, 1e-300}, {4, 0, 123456789.123456789}};
  dln::io::write_observations_csv(path, obs);
  EXPECT_EQ(dln::io::read_file(path).substr(0, 14), "row,col,value\n");
  const auto r = dln::io::read_observations_csv(path, 5, 4);
  ASSERT_EQ(r.size(), obs.size());
  for (std::size_t k = 0; k < obs.size(); ++k) {
    EXPECT_EQ(r[k].row, obs[k].row);
    EXPECT_EQ(r[k].col, obs[k].col);
    EXPECT_EQ(r[k].value, obs[k].value);
  }
  // Unknown dimensions (0) skip the range check.
  EXPECT_EQ(dln::io::read_observations_csv(path, 0, 0).size(), 4u);
}

TEST(Csv, LenientFormatting) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/obs.csv";
  write_bytes(path, "\n 0 , 1 , 2.5\r\n\r\n1,0,-3e2\r\n  \n");
  const auto r = dln::io::read_observations_csv(path, 2, 2);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].row, 0);
  EXPECT_EQ(r[0].col, 1);
  EXPECT_EQ(r[0].value, 2.5);
  EXPECT_EQ(r[1].value, -300.0);
}

TEST(Csv, Errors) {
  const std::string dir = temp_dir();
  const std::string path = dir + "/obs.csv";
  const auto check = [&](const std::string& text, const std::string& message, Index rows = 3,
                         Index cols = 4) {
    write_bytes(path, text);
    expect_error([&] { dln::io::read_observations_csv(path, rows, cols); }, path + message);
  };
  check("row,col,value\n0,0,1\n1,2\n", ":3: expected 3 fields row,col,value");
  check("0,0,1,5\n", ":1: expected 3 fields row,col,value");
  check("row,col,value\n3,0,1\n", ":2: row index 3 out of range [0, 3)");
  check("0,4,1\n", ":1: col index 4 out of range [0, 4)");
  check("-1,0,1\n", ":1: row index -1 out of range [0, 3)");
  check("0,0,nan\n", ":1: non-finite value");
  check("0,0,inf\n", ":1: non-finite value");
  check("0,0,1\n1,1,2\n0,0,3\n", ":3: duplicate entry (0, 0)");
  check("0,0,abc\n", ":1: malformed number 'abc'");
  check("0,0,1x\n", ":1: malformed number '1x'");
  check("0,0,\n", ":1: malformed number ''");
  check("1.5,0,1\n", ":1: malformed index '1.5'");
  check("0,0,1\nfoo,0,1\n", ":2: malformed index 'foo'");
  check("", ": no observations");
  check("row,col,value\n\n", ": no observations");
  expect_error([&] { dln::io::read_observations_csv(dir + "/none.csv", 1, 1); },
               dir + "/none.csv: cannot open");
}
