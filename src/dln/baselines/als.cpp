// placeholder: being written
#include "dln/baselines/als.hpp"

namespace dln {}  // namespace dln
