// The C++ side of tests/interop/safetensors_interop.py:
//   safetensors_peer write <path>   writes the tensors below with Cyclone
//   safetensors_peer check <path>   loads a file the Python package wrote and checks its values
// Exit 0 on success; a message and exit 1 otherwise.
#include <cstdio>
#include <cstring>
#include <string>

#include "cyclone/core/safetensors.h"

using namespace cyclone;

namespace {
// Values both sides compute the same way: element i of "w" is i * 0.5 - 3, "ids" is i * 7 - 10.
NamedTensors expected() {
  std::vector<float> w(2 * 3 * 4);
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i) * 0.5f - 3.0f;
  std::vector<int32_t> ids(5);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>(i) * 7 - 10;
  std::vector<double> d = {3.141592653589793, -2.718281828459045};
  return {{"layer.weight", Tensor::from_vector<float>(w, {2, 3, 4}, Device::cpu())},
          {"ids", Tensor::from_vector<int32_t>(ids, {5}, Device::cpu())},
          {"consts", Tensor::from_vector<double>(d, {2}, Device::cpu())}};
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: safetensors_peer write|check <path>\n");
    return 2;
  }
  const std::string mode = argv[1], path = argv[2];
  try {
    if (mode == "write") {
      save_safetensors(path, expected(), {{"producer", "cyclone"}});
      return 0;
    }
    const SafetensorsFile f = load_safetensors(path);
    for (const auto& [name, want] : expected()) {
      bool found = false;
      for (const auto& [n, t] : f.tensors) {
        if (n != name) continue;
        found = true;
        if (t.shape() != want.shape() || t.dtype() != want.dtype() ||
            std::memcmp(t.raw_data(), want.raw_data(), want.nbytes()) != 0) {
          std::fprintf(stderr, "tensor %s differs (shape %s)\n", n.c_str(),
                       t.shape().str().c_str());
          return 1;
        }
      }
      if (!found) {
        std::fprintf(stderr, "tensor %s missing\n", name.c_str());
        return 1;
      }
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
