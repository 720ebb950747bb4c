// Where one completion step's time goes: dgemm vs the sparse kernels, at a given size and depth.
// Usage: dln_breakdown D DEPTH M [THREADS]. Prints milliseconds per call and GFLOP/s.
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "dln/core/blas.hpp"
#include "dln/core/rng.hpp"
#include "dln/model/network.hpp"
#include "dln/model/sparse_kernels.hpp"
#include "dln/problems/problem.hpp"

using namespace dln;

template <class F>
double time_ms(int reps, const F& f) {
  f();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
         reps;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s D DEPTH M [THREADS]\n", argv[0]);
    return 2;
  }
  const Index d = std::atol(argv[1]);
  const int depth = std::atoi(argv[2]);
  const Index m = std::atol(argv[3]);
  blas::set_threads(argc > 4 ? std::atoi(argv[4]) : 2);
  ProblemConfig pc;
  pc.rows = pc.cols = d;
  pc.rank = 5;
  pc.observations = m;
  pc.seed = 1;
  Problem p = make_problem(pc);
  const auto& c = *p.loss->as_completion();
  std::vector<Index> dims(static_cast<std::size_t>(depth) + 1, d);
  Objective obj(dims, *p.loss);
  Rng rng(2);
  Factors w;
  for (int j = 0; j < depth; ++j) w.push_back(rng.gaussian(d, d, 1.0 / std::sqrt(double(d))));
  Factors g = obj.make_like();
  const int reps = d >= 500 ? 5 : 200;
  const double step = time_ms(reps, [&] { obj.evaluate_with_gradient(w, g); });
  Mat out(d, d);
  const double gemm = time_ms(reps, [&] { blas::gemm(w[0], false, w[1], false, out); });
  const sparse::Pattern pat =
      sparse::make_pattern(d, d, c.obs_rows(), c.obs_cols(), c.obs_values());
  std::vector<double> res(static_cast<std::size_t>(m)), gv(static_cast<std::size_t>(m), 0.5);
  const double resid = time_ms(reps, [&] { sparse::residuals(w[0], w[1], pat, res.data()); });
  const double scatter = time_ms(reps, [&] { sparse::times_sparse(w[0], pat, gv.data(), out); });
  const double scatter_t =
      time_ms(reps, [&] { sparse::times_sparse_transpose(w[0], pat, gv.data(), out); });
  const double g_flops = 2.0 * double(d) * double(d) * double(d);
  std::printf(
      "d=%ld depth=%d m=%ld threads=%d corename=%s\n step %.3f ms (%.1f GFLOP/s on GEMM flops)\n"
      " one dgemm %.3f ms (%.1f GFLOP/s)\n residuals %.3f ms\n src*G %.3f ms\n src*G^T %.3f ms\n",
      long(d), depth, long(m), blas::threads(), blas::corename().c_str(), step,
      obj.gemm_flops() / step * 1e-6, gemm, g_flops / gemm * 1e-6, resid, scatter, scatter_t);
  return 0;
}
