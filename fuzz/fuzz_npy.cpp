// .npy files (network.init_path factors, problem.*_file data, data/*.npy of a run directory).
// Property: an array that reads writes back and reads again to the same shape and values.
#include "dln/io/npy.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  const std::string& path = dln::fuzz::scratch_file(dln::fuzz::text(data, size), ".npy");
  dln::fuzz::only_errors([&] {
    const dln::io::NpyArray a = dln::io::read_npy(path, /*require_finite=*/false);
    std::size_t n = 1;
    for (auto d : a.shape) n *= static_cast<std::size_t>(d);
    dln::fuzz::require(n == a.data.size(), "shape matches the data");
    const std::string back = path + ".back.npy";
    dln::io::write_npy(back, a.shape, a.data);
    const dln::io::NpyArray b = dln::io::read_npy(back, false);
    dln::fuzz::require(b.shape == a.shape && b.data.size() == a.data.size(), "round trip shape");
    for (std::size_t i = 0; i < a.data.size(); ++i)
      dln::fuzz::require(std::isnan(a.data[i]) ? std::isnan(b.data[i]) : a.data[i] == b.data[i],
                         "round trip values");
  });
  dln::fuzz::only_errors([&] { (void)dln::io::read_npy_matrix(path); });
  return 0;
}
