// Command-line driver for the minimum nuclear norm baseline, used by tests/nuclear_norm_cvxopt.py
// to cross-check dln against an SDP solver:
//   dln_nuclear_norm_driver completion OBS.csv ROWS COLS TOL OUT.npy [REL_GAP]
//   dln_nuclear_norm_driver sensing A.npy B.npy ROWS COLS TOL OUT.npy [REL_GAP]
// OBS.csv: row,col,value (0-based); A.npy: m x (ROWS*COLS), row i = vec(A_i) column-first;
// B.npy: m values. Writes the solution to OUT.npy and prints `key value` lines (nuclear_norm,
// dual_bound, rel_gap, max_violation, iterations, termination, seconds). Exit 1 on dln::Error,
// 2 on bad usage.
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "dln/baselines/nuclear_norm.hpp"
#include "dln/io/files.hpp"
#include "dln/io/npy.hpp"

namespace {

int usage() {
  std::fputs(
      "usage: dln_nuclear_norm_driver completion OBS.csv ROWS COLS TOL OUT.npy [REL_GAP]\n"
      "       dln_nuclear_norm_driver sensing A.npy B.npy ROWS COLS TOL OUT.npy [REL_GAP]\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return usage();
  const bool sensing = args[0] == "sensing";
  if (!sensing && args[0] != "completion") return usage();
  const std::size_t base = sensing ? 3 : 2;  // index of ROWS
  if (args.size() != base + 4 && args.size() != base + 5) return usage();
  try {
    const dln::Index rows = std::stol(args[base]), cols = std::stol(args[base + 1]);
    dln::NuclearNormOptions options;
    options.tol = std::stod(args[base + 2]);
    const std::string out_path = args[base + 3];
    if (args.size() == base + 5) options.rel_gap = std::stod(args[base + 4]);

    dln::NuclearNormResult res;
    if (sensing) {
      const dln::Mat a = dln::io::read_npy_matrix(args[1]);
      const dln::Mat b = dln::io::read_npy_matrix(args[2]);
      if (b.cols() != 1) throw dln::Error(args[2] + ": expected a 1-D array");
      res = dln::min_nuclear_norm_sensing(rows, cols, a, b.col(0), options);
    } else {
      std::vector<dln::Index> r, c;
      std::vector<double> b;
      for (const auto& o : dln::io::read_observations_csv(args[1], rows, cols)) {
        r.push_back(o.row);
        c.push_back(o.col);
        b.push_back(o.value);
      }
      res = dln::min_nuclear_norm_completion(rows, cols, r, c, b, options);
    }
    dln::io::write_npy(out_path, res.x);
    fmt::print("nuclear_norm {:.17g}\ndual_bound {:.17g}\nrel_gap {:.17g}\n", res.nuclear_norm,
               res.dual_bound, res.rel_gap);
    fmt::print("max_violation {:.17g}\niterations {}\ntermination {}\nseconds {:.6f}\n",
               res.max_violation, res.iterations, res.termination, res.seconds);
    return 0;
  } catch (const dln::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // std::stol / std::stod on a malformed number
    std::fprintf(stderr, "error: bad argument: %s\n", e.what());
    return 2;
  }
}
