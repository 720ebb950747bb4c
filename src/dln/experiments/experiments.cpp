// placeholder: being written
#include "dln/experiments/experiments.hpp"

namespace dln {}  // namespace dln
