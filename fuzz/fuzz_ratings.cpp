// Rating files in all their layouts (",", tab, "::", headers, quotes; docs/complete.md), the
// --predict pairs read against them, and the held-out split. Input: the ratings text, then
// optionally a NUL byte and the pairs text.
#include "dln/completion/ratings.hpp"
#include "fuzz_support.hpp"

DLN_FUZZ_TARGET(data, size) {
  const std::string_view in = dln::fuzz::text(data, size);
  const std::size_t nul = in.find('\0');
  dln::fuzz::only_errors([&] {
    const auto r = dln::completion::parse_ratings(in.substr(0, nul), "fuzz.csv");
    dln::fuzz::require(r.size() > 0, "at least one rating");
    for (const auto& x : r.ratings)
      dln::fuzz::require(x.user < r.users.size() && x.item < r.items.size() &&
                             std::isfinite(x.value) && x.value >= r.min_value &&
                             x.value <= r.max_value,
                         "rating indices and range");
    dln::completion::SplitOptions so;
    const auto split = dln::completion::split_ratings(r, so);
    dln::fuzz::require(static_cast<dln::Index>(split.train.size() + split.val.size() +
                                               split.test.size()) == r.size(),
                       "split covers every rating once");
    if (nul != std::string_view::npos) {
      const auto pairs = dln::completion::parse_pairs(in.substr(nul + 1), "pairs.csv", r);
      dln::completion::check_known_ids(r, pairs, "pairs.csv");
    }
  });
  return 0;
}
