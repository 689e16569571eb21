// Bounded nesting for JSON read from outside (a spec, a manifest, a cache file). nlohmann's parser
// does not recurse, but the tree's copies, dumps and comparisons do: a file of a few hundred
// thousand '[' parsed fine and then overflowed the stack (SIGSEGV). Header-only and
// nlohmann-free here, so that core needs no JSON library: Json is nlohmann::json or ordered_json.
#pragma once

#include <string>
#include <utility>

#include "cyclone/core/error.h"

namespace cyclone {

// Levels a JSON input may nest (the train configs' limit too): far beyond any real file.
inline constexpr int kMaxJsonDepth = 64;

// A callback for Json::parse(text, callback) that throws Error("<what> is nested deeper than 64
// levels") as soon as the parser goes deeper, before any deep tree exists.
template <class Json>
auto json_depth_limit(std::string what) {
  return [what = std::move(what)](int depth, typename Json::parse_event_t, Json&) {
    if (depth > kMaxJsonDepth)
      throw Error(what + " is nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    return true;
  };
}

}  // namespace cyclone
