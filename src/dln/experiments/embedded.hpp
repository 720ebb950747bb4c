// Files compiled into the dln binary (cmake/embed.cmake): the experiments' default configs and
// the plotting script, so `dln experiment` works from any directory.
#pragma once

#include <string_view>
#include <vector>

namespace dln::embedded {

struct File {
  std::string_view path;  // relative to the source tree, e.g. "experiments/fig2.toml"
  std::string_view text;
};
const std::vector<File>& files();

}  // namespace dln::embedded
