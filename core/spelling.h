// "Did you mean ...?" for a misspelt flag, config key, policy field or optimizer option: the one
// rule every layer uses, so the apps and the library suggest the same names.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace cyclone {

// Optimal string alignment distance: Levenshtein plus adjacent transpositions.
size_t edit_distance(std::string_view a, std::string_view b);
// The candidate closest to `word` by edit distance (transpositions count 1), or a candidate that
// `word` is a unique prefix of; empty when none is close enough to be a plausible typo.
std::string closest_match(std::string_view word, const std::vector<std::string>& candidates);
// " (did you mean 'x'?)" for closest_match's x, or "" when there is none: the end of an
// "unknown ..." message.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);
// `s` with ASCII letters in lower case: names the user may write in any case ("SGD", "FP16").
std::string ascii_lower(std::string_view s);

}  // namespace cyclone
