// Where a tensor lives. The device is chosen at run time: the same binary runs on a machine with
// no GPU (or no driver) using the CPU backend, silently and correctly.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

namespace cyclone {

enum class DeviceType : uint8_t { kCPU, kCUDA };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;

  static constexpr Device cpu() { return {DeviceType::kCPU, 0}; }
  static constexpr Device cuda(int i = 0) { return {DeviceType::kCUDA, i}; }
  constexpr bool is_cpu() const { return type == DeviceType::kCPU; }
  constexpr bool is_cuda() const { return type == DeviceType::kCUDA; }
  constexpr bool operator==(const Device& o) const {
    return type == o.type && (type == DeviceType::kCPU || index == o.index);
  }
  std::string str() const;  // "cpu", "cuda:0"
};

std::ostream& operator<<(std::ostream& os, const Device& d);

// True when this binary was built with the CUDA backend.
bool built_with_cuda();
// Number of usable CUDA devices: 0 when built without CUDA, with no driver, or with no GPU.
// Never throws; the first call probes the driver once.
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }

// Parses "auto" | "cpu" | "cuda" | "cuda:N" (what --device and CYCLONE_DEVICE accept).
// "auto" is cuda:0 when a GPU is usable, else cpu. Asking for a CUDA device that does not exist is
// an error naming the device and how many there are.
Device resolve_device(std::string_view spec);
// Whether `spec` is spelt as resolve_device accepts (whether or not this machine has the device):
// apps refuse a misspelt --device as a usage error before any work.
bool device_spec_well_formed(std::string_view spec);

// The device that tensor factories, modules, models and data loaders use when none is given (so
// that, on a GPU host, a model built and a batch made without naming one meet on the same device):
// CYCLONE_DEVICE (default "auto") on first use, or what set_default_device() chose (apps call it
// with --device).
Device default_device();
void set_default_device(Device d);

}  // namespace cyclone
