#include "dln/experiments/common.hpp"

namespace dln::experiments {
int fig3(const Options&) { throw Error("fig3: not yet"); }
}  // namespace dln::experiments
