#include "dln/experiments/common.hpp"

namespace dln::experiments {
int compression(const Options&) { throw Error("compression: not yet"); }
}  // namespace dln::experiments
