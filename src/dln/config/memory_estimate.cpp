// Config::memory_estimate: what dln::run allocates, by the input that sets each size.
#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "dln/config/config.hpp"

namespace dln {

namespace {

// "30x32x32x24", or "30x32x...x32x24 (depth 1000000)" for deep networks: no d_0..d_n vector,
// which alone would not fit for an impossible depth.
std::string dims_text(const std::function<Index(int)>& d, int n) {
  std::string s;
  for (int j = n; j >= 0; --j) {
    if (n > 8 && j == n - 2) {
      s += "...x";
      j = 2;
    }
    s += fmt::format("{}{}", d(j), j ? "x" : "");
  }
  return n > 8 ? fmt::format("{} (depth {})", s, n) : s;
}

// Arrays the size of all factors that a run holds at once: init, factors, gradients, the
// objective's prefix/suffix products and scratch, plus the optimizer's state.
double factor_copies(const OptimizerOptions& o) {
  double state = 0;
  switch (o.kind) {
    case OptimizerKind::kMomentum:
      state = 1;
      break;
    case OptimizerKind::kAdam:
      state = 2;
      break;
    case OptimizerKind::kGradientFlow:
      state = 8;
      break;  // the ODE solver's history
    case OptimizerKind::kEndToEnd:
      state = o.continuous() ? 8 : 1;
      break;
    default:
      break;
  }
  return 6 + state;
}

}  // namespace

memory::Estimate Config::memory_estimate() const {
  if (problem.tensor()) return tensor_memory_estimate();
  memory::Estimate e;
  const auto& p = problem;
  const double rows = static_cast<double>(p.rows), cols = static_cast<double>(p.cols);
  const double entries = rows * cols;
  const int n = network.depth;
  const Index width = network.width > 0 ? network.width : std::max(p.rows, p.cols);
  const auto d = [&](int j) -> Index {  // d_j as in dims()
    if (j == 0) return p.cols;
    if (j == n) return p.rows;
    return network.widths.empty() ? width : network.widths[static_cast<std::size_t>(j - 1)];
  };
  const double w = static_cast<double>(width);
  double factor_entries =
      n == 1 ? entries : (cols + rows) * w + (n - 2.0) * w * w;  // one width for all
  if (!network.widths.empty()) {
    factor_entries = 0;
    for (int j = 0; j < n; ++j)
      factor_entries += static_cast<double>(d(j)) * static_cast<double>(d(j + 1));
  }
  const bool hidden_dominant = network.depth >= 2 && factor_entries > 2 * entries;
  const std::string factor_field = !hidden_dominant          ? "problem.rows, problem.cols"
                                   : !network.widths.empty() ? "network.widths"
                                   : network.width > 0       ? "network.width"
                                                             : "problem.rows, problem.cols";
  e.add(factor_field,
        fmt::format("factors, gradients and optimizer state of the {} network", dims_text(d, n)),
        8.0 * factor_copies(optimizer) * factor_entries);
  // W_{n:1}, the dense loss gradient, record-time SVDs; then the problem's data.
  e.add("problem.rows, problem.cols", fmt::format("{}x{} end-to-end matrices", p.rows, p.cols),
        8.0 * 3 * entries);
  for (auto& item : p.memory_estimate().items) e.items.push_back(std::move(item));
  const double records =
      static_cast<double>(stop.max_iters) / static_cast<double>(std::max<long>(record.every, 1)) +
      2;
  e.add("record.every", fmt::format("{:.0f} history records", records),
        records * (128.0 + 16.0 * std::min<double>(record.singular_values, std::min(rows, cols))));
  return e;
}

}  // namespace dln
