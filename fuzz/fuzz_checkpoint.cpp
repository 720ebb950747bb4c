// `dln train --resume DIR`: DIR/checkpoint/state.json (iteration, factor and buffer counts,
// scalars, history) read with the factors W*.npy / B*.npy beside it. The input is state.json;
// W1, W2 (factors) and B1, B2 (momentum buffers) are valid 2x2 .npy files.
#include <filesystem>

#include "dln/io/npy.hpp"
#include "dln/run/run_dir.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  namespace fs = std::filesystem;
  static const fs::path dir = [] {
    const fs::path d = fs::path(dln::fuzz::scratch_file("", ".run"));
    fs::remove(d);
    fs::create_directories(d / "checkpoint");
    for (const char* w : {"W1.npy", "W2.npy", "B1.npy", "B2.npy"})
      dln::io::write_npy((d / "checkpoint" / w).string(), dln::Mat::Identity(2, 2));
    return d;
  }();
  {
    std::FILE* f = std::fopen((dir / "checkpoint" / "state.json").c_str(), "wb");
    if (!f) std::abort();
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
  }
  dln::fuzz::only_errors([&] {
    const dln::Checkpoint c = dln::read_checkpoint(dir.string());
    // As --resume does for a depth-2 network of 2x2 factors under momentum (one buffer each).
    const dln::Factors like{dln::Mat::Zero(2, 2), dln::Mat::Zero(2, 2)};
    dln::check_checkpoint(c, like, like, 0, 100, dir.string());
    dln::fuzz::require(c.iteration >= 0 && c.iteration <= 100, "iteration checked");
  });
  return 0;
}
