#include "cyclone/data/remote_file.h"

namespace cyclone::data {

bool RemoteFile::is_archive() const {
  auto ends = [&](const char* s) {
    const std::string suffix(s);
    return name.size() >= suffix.size() &&
           name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends(".tar") || ends(".tar.gz") || ends(".tgz");
}

}  // namespace cyclone::data
