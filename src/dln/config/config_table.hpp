// parse_config() for a TOML table built in memory (the Python package's dict configs).
#pragma once

#include <toml++/toml.h>

#include <string>
#include <vector>

#include "dln/config/config.hpp"

namespace dln {

// Applies `section.key=value` overrides and validates exactly as parse_config() does: the same
// checks, the same error messages.
Config parse_config_table(toml::table table, const std::vector<std::string>& overrides = {});

}  // namespace dln
