#include "cyclone/kernels/algo_cache.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"

namespace cyclone::kernels {

namespace {

using json = nlohmann::json;
// 2: keys gained the layout; 3: the operands' alignment.
constexpr int kVersion = 3;
constexpr uint64_t kMaxFileBytes = uint64_t{64} << 20;  // thousands of entries fit in far less

}  // namespace

int64_t pointer_alignment(const void* p) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  int64_t a = 1;
  while (a < 16 && address % static_cast<uintptr_t>(a * 2) == 0) a *= 2;
  return a;
}

AlgoKey conv_algo_key(int64_t pass, int64_t device, DType dtype, int64_t math,
                      const Conv2dGeometry& g, const void* x, const void* w, const void* y) {
  const Conv2dParams& p = g.p;
  return {pass,
          device,
          static_cast<int64_t>(dtype),
          math,
          g.n,
          g.c_in,
          g.h,
          g.w,
          g.c_out,
          g.kh,
          g.kw,
          g.h_out,
          p.stride_h,
          p.stride_w,
          p.pad_h,
          p.pad_w,
          p.dil_h,
          p.dil_w,
          p.channels_last ? 1 : 0,
          pointer_alignment(x),
          pointer_alignment(w),
          pointer_alignment(y)};
}

AlgoCache::AlgoCache(std::string path, std::string fingerprint)
    : path_(std::move(path)), fingerprint_(std::move(fingerprint)) {
  if (!path_.empty()) load();
}

void AlgoCache::warn(const std::string& what) {
  note_ = "cuDNN algorithm cache " + path_ + ": " + what;
  if (!warned_) std::fprintf(stderr, "cyclone: warning: %s\n", note_.c_str());
  warned_ = true;
}

void AlgoCache::load() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return;  // the first run: nothing stored yet
  std::map<AlgoKey, AlgoChoice> table;
  try {
    const json j = json::parse(read_file(path_, kMaxFileBytes));
    if (!j.is_object() || !j.contains("version") || !j["version"].is_number_integer())
      return warn("not a cuDNN algorithm cache file; searching again (it will be rewritten)");
    if (const int64_t v = j["version"].get<int64_t>(); v != kVersion)
      return warn("written in format version " + std::to_string(v) + ", this build uses " +
                  std::to_string(kVersion) + "; searching again (it will be rewritten)");
    const std::string fp = j.value("fingerprint", "");
    if (fp != fingerprint_)
      return warn("written for '" + fp + "', this process is '" + fingerprint_ +
                  "'; searching again (it will be rewritten)");
    for (const json& e : j.at("entries")) {
      const json& k = e.at("key");
      if (!k.is_array() || k.size() != AlgoKey{}.size())
        return warn("an entry's key does not have " + std::to_string(AlgoKey{}.size()) +
                    " integers; searching again");
      AlgoKey key{};
      for (size_t i = 0; i < key.size(); ++i) key[i] = k[i].get<int64_t>();
      AlgoChoice c;
      c.algo = e.at("algo").get<int>();
      c.math = e.at("math").get<int>();
      c.workspace = e.at("workspace").get<uint64_t>();
      if (c.algo < 0) return warn("an entry has a negative algorithm; searching again");
      table[key] = c;
    }
  } catch (const std::exception& e) {  // unreadable, not JSON, a field missing or mistyped
    return warn(std::string(e.what()) + "; searching again (it will be rewritten)");
  }
  table_ = std::move(table);
}

std::optional<AlgoChoice> AlgoCache::find(const AlgoKey& key) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = table_.find(key);
  if (it == table_.end()) return std::nullopt;
  return it->second;
}

void AlgoCache::insert(const AlgoKey& key, const AlgoChoice& choice) {
  std::lock_guard<std::mutex> lock(mutex_);
  table_[key] = choice;
  if (path_.empty()) return;
  json entries = json::array();
  for (const auto& [k, c] : table_)
    entries.push_back({{"key", k}, {"algo", c.algo}, {"math", c.math}, {"workspace", c.workspace}});
  const json j = {{"version", kVersion}, {"fingerprint", fingerprint_}, {"entries", entries}};
  try {
    write_file_atomic(path_, j.dump() + "\n");
  } catch (const Error& e) {  // never fail a training over the cache: carry on in memory
    warn("cannot write it (" + e.message() + "); the choices stay in memory");
  }
}

size_t AlgoCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return table_.size();
}

std::string AlgoCache::note() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return note_;
}

}  // namespace cyclone::kernels
