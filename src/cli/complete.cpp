// placeholder: being written
#include "cli/commands.hpp"
