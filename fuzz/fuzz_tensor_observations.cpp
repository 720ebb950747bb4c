// i1,...,iN,value tensor observation CSVs (problem.observations_file of tensor_completion). The
// first byte sets the order N = 2..5, the next N bytes the mode dimensions 1..16. Property: every
// observation read has N indices in range, a finite value, and no two are the same entry.
#include <set>
#include <vector>

#include "dln/tensors/entries.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  if (size < 1) return 0;
  const std::size_t order = 2 + data[0] % 4;
  if (size < 1 + order) return 0;
  dln::tensors::Shape shape;
  for (std::size_t k = 0; k < order; ++k) shape.push_back(1 + data[1 + k] % 16);
  const std::string& path =
      dln::fuzz::scratch_file(dln::fuzz::text(data + 1 + order, size - 1 - order), ".csv");
  dln::fuzz::only_errors([&] {
    const auto obs = dln::tensors::read_observations_csv(path, shape);
    dln::fuzz::require(obs.entries.index.size() == obs.values.size() * order, "N indices each");
    std::set<std::vector<dln::Index>> seen;
    for (dln::Index e = 0; e < obs.entries.size(); ++e) {
      const dln::Index* i = obs.entries.at(e);
      for (std::size_t k = 0; k < order; ++k)
        dln::fuzz::require(i[k] >= 0 && i[k] < shape[k], "index in range");
      dln::fuzz::require(std::isfinite(obs.values[static_cast<std::size_t>(e)]), "finite value");
      dln::fuzz::require(seen.emplace(i, i + order).second, "distinct entries");
    }
  });
  return 0;
}
