// placeholder: being written
#include "dln/completion/ratings.hpp"

namespace dln {}  // namespace dln
