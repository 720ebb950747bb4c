#include "dln/experiments/common.hpp"

namespace dln::experiments {}  // namespace dln::experiments
