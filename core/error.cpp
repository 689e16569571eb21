#include "cyclone/core/error.h"

#include <cstring>

namespace cyclone::detail {

std::string where(const char* file, int line) {
  // Paths relative to the source root read better than the build machine's absolute ones.
  std::string f = file;
  const std::string root = CYCLONE_SOURCE_ROOT "/";
  if (f.compare(0, root.size(), root) == 0) f = f.substr(root.size());
  const size_t inc = f.find("include/cyclone/");
  if (inc != std::string::npos) f = f.substr(inc + std::strlen("include/cyclone/"));
  return f + ":" + std::to_string(line);
}

void throw_error(const std::string& message, const char* file, int line) {
  throw Error(message, where(file, line));
}

}  // namespace cyclone::detail
