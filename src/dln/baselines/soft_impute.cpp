// placeholder: being written
#include "dln/baselines/soft_impute.hpp"

namespace dln {}  // namespace dln
