#include "cyclone/core/device.h"

#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/error.h"

namespace cyclone {

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

std::ostream& operator<<(std::ostream& os, const Device& d) { return os << d.str(); }

bool built_with_cuda() { return CYCLONE_CUDA != 0; }

int cuda_device_count() {
  static const int count = gpu::device_count_noexcept();
  return count;
}

Device resolve_device(std::string_view spec) {
  if (spec == "cpu") return Device::cpu();
  if (spec == "auto" || spec.empty()) return cuda_available() ? Device::cuda(0) : Device::cpu();
  if (spec.substr(0, 4) == "cuda") {
    int index = 0;
    if (spec.size() > 4) {
      CYCLONE_CHECK(spec[4] == ':' && spec.size() > 5, "bad device '", spec,
                    "' (expected auto, cpu, cuda or cuda:N)");
      const std::string digits(spec.substr(5));
      char* end = nullptr;
      const long v = std::strtol(digits.c_str(), &end, 10);
      CYCLONE_CHECK(*end == '\0' && v >= 0 && v < 1024, "bad device '", spec,
                    "' (expected auto, cpu, cuda or cuda:N)");
      index = static_cast<int>(v);
    }
    const int n = cuda_device_count();
    CYCLONE_CHECK(built_with_cuda(), "device '", spec,
                  "' asked for, but this build has no CUDA backend (use --device=cpu)");
    CYCLONE_CHECK(index < n, "device '", spec, "' asked for, but ", n,
                  " CUDA device(s) are usable here (use --device=cpu or a smaller index)");
    return Device::cuda(index);
  }
  CYCLONE_THROW("bad device '", spec, "' (expected auto, cpu, cuda or cuda:N)");
}

bool device_spec_well_formed(std::string_view spec) {
  if (spec.empty() || spec == "auto" || spec == "cpu" || spec == "cuda") return true;
  return spec.substr(0, 5) == "cuda:" && spec.size() > 5 && spec.size() < 10 &&
         spec.find_first_not_of("0123456789", 5) == std::string_view::npos &&
         std::stoi(std::string(spec.substr(5))) < 1024;
}

namespace {
std::mutex g_default_mutex;
std::optional<Device> g_default;
}  // namespace

Device default_device() {
  std::lock_guard<std::mutex> lock(g_default_mutex);
  if (!g_default) {
    const char* env = std::getenv("CYCLONE_DEVICE");
    g_default = resolve_device(env ? env : "auto");
  }
  return *g_default;
}

void set_default_device(Device d) {
  std::lock_guard<std::mutex> lock(g_default_mutex);
  g_default = d;
}

}  // namespace cyclone
