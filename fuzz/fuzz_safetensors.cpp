// libFuzzer target: the safetensors reader (core/safetensors.h), which reads weights and
// checkpoints that someone else may have written. The contract under test: any bytes either parse
// or throw cyclone::Error (any other exception escapes and counts as a crash), nothing allocates
// more than the input justifies, and whatever parses survives a round trip through the writer with
// every name, dtype, shape, byte and metadata entry unchanged.
//   build-fuzz/fuzz/cyclone_fuzz_safetensors -max_total_time=60 tests/fuzz/safetensors/corpus
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "cyclone/core/error.h"
#include "cyclone/core/safetensors.h"
#include "fuzz_seeds.h"

namespace {

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "safetensors round trip: %s\n", what);
    std::abort();
  }
}

bool same_tensors(const cyclone::SafetensorsFile& a, const cyclone::SafetensorsFile& b) {
  if (a.tensors.size() != b.tensors.size() || a.metadata != b.metadata) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    const auto& [na, ta] = a.tensors[i];
    const auto& [nb, tb] = b.tensors[i];
    if (na != nb || ta.dtype() != tb.dtype() || !(ta.shape() == tb.shape())) return false;
    if (ta.nbytes() != tb.nbytes()) return false;
    if (ta.nbytes() > 0 && std::memcmp(ta.raw_data(), tb.raw_data(), ta.nbytes()) != 0)
      return false;
  }
  return true;
}

}  // namespace

namespace cyclone_fuzz {
int write_seeds(const std::string&) { return 0; }  // tests/fuzz/make_corpus.py writes them
}  // namespace cyclone_fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  cyclone::SafetensorsFile file;
  try {
    file = cyclone::parse_safetensors(bytes, "fuzz.safetensors");
  } catch (const cyclone::Error& e) {
    cyclone_fuzz::report(e.what());
    return 0;
  }
  // Accepted: the writer must reproduce it exactly. Tensors are in data-offset order and the
  // writer lays them out in the order given, so a second parse lists them the same way.
  const std::string again = cyclone::serialize_safetensors(file.tensors, file.metadata);
  cyclone::SafetensorsFile back = cyclone::parse_safetensors(again, "rewritten.safetensors");
  require(same_tensors(file, back), "what was read differs after writing and reading it again");
  return 0;
}
