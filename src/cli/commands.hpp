#pragma once

namespace dln::cli {
// `dln demo`: depth 1, 2, 3 on a synthetic rank-5 completion problem; prints a table.
int demo(bool quiet);
}  // namespace dln::cli
