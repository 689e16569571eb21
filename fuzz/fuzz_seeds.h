// A fuzz target may write its own seed inputs (valid files made by Cyclone's writers, so that the
// corpus follows the format when it changes): `cyclone_fuzz_<target> --write-seeds DIR` in the
// replay build. Returns how many it wrote; 0 when the target has none of its own.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

namespace cyclone_fuzz {
int write_seeds(const std::string& dir);

// With CYCLONE_FUZZ_VERBOSE set, the error an input was refused with (to check that seeds reach
// past the first check, and which check a crash input now meets).
inline void report(const char* message) {
  static const bool verbose = std::getenv("CYCLONE_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "  refused: %s\n", message);
}
}  // namespace cyclone_fuzz
