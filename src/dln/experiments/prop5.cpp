#include "dln/experiments/common.hpp"

namespace dln::experiments {
int prop5(const Options&) { throw Error("prop5: not yet"); }
}  // namespace dln::experiments
