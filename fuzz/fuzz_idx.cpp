// The IDX reader (io/idx.hpp; Fashion-MNIST for fig1-nonlinear), raw and gzip. Property: a
// parsed array holds exactly prod(dims) entries, and its labels check never reads past them.
#include "dln/io/idx.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  dln::fuzz::only_errors([&] {
    const auto a = dln::io::parse_idx(dln::fuzz::text(data, size), "fuzz.idx", 64.0 * (1 << 20));
    std::size_t n = 1;
    for (auto d : a.dims) n *= d;
    dln::fuzz::require(n == a.size() && !a.dims.empty(), "prod(dims) entries");
    if (a.dims.size() == 1) {
      dln::io::IdxArray images;
      images.dims = {a.dims[0], 1, 1};
      images.data = a.data;
      dln::io::check_labelled_images(images, a, "fuzz.img", "fuzz.idx", 10);
    }
  });
  return 0;
}
