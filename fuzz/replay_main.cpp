// The main() of a fuzz target in a build without libFuzzer: runs LLVMFuzzerTestOneInput over each
// file named on the command line, or each file in each directory named (sorted, not recursive), so
// that the committed seed corpora and crash inputs (tests/fuzz/<target>/) are replayed by the
// ordinary test suite on every build, under ASan and UBSan in the sanitizer build.
//   cyclone_fuzz_safetensors tests/fuzz/safetensors/corpus tests/fuzz/safetensors/regressions
// A target that writes its own seeds (fuzz_seeds.h) does so with --write-seeds DIR.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_seeds.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

std::vector<uint8_t> read_all(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc == 3 && std::strcmp(argv[1], "--write-seeds") == 0) {
    const int n = cyclone_fuzz::write_seeds(argv[2]);
    std::printf("wrote %d seed inputs to %s\n", n, argv[2]);
    return n > 0 ? 0 : 1;
  }
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_DIR... | --write-seeds DIR\n", argv[0]);
    return 2;
  }
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    std::error_code ec;
    if (fs::is_directory(argv[i], ec)) {
      std::vector<fs::path> in_dir;
      for (const auto& e : fs::directory_iterator(argv[i]))
        if (e.is_regular_file()) in_dir.push_back(e.path());
      std::sort(in_dir.begin(), in_dir.end());
      inputs.insert(inputs.end(), in_dir.begin(), in_dir.end());
    } else if (fs::is_regular_file(argv[i], ec)) {
      inputs.emplace_back(argv[i]);
    } else {
      std::fprintf(stderr, "%s: '%s' is neither a file nor a directory\n", argv[0], argv[i]);
      return 2;
    }
  }
  for (const fs::path& p : inputs) {
    const std::vector<uint8_t> bytes = read_all(p);
    std::fprintf(stderr, "replay %s (%zu bytes)\n", p.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::printf("replayed %zu inputs, none crashed\n", inputs.size());
  return inputs.empty() ? 1 : 0;
}
