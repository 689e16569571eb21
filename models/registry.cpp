#include "cyclone/models/registry.h"

#include <charconv>
#include <functional>
#include <utility>

#include "cyclone/core/spelling.h"
#include "cyclone/models/lenet.h"
#include "cyclone/models/mlp.h"
#include "cyclone/models/resnet_cifar.h"
#include "cyclone/models/wide_resnet.h"

namespace cyclone {

namespace {

using Factory = std::function<std::shared_ptr<Module>(const ModelOptions&)>;

// The whole of `s` as a positive int, or 0.
int parse_positive(const std::string& s) {
  int v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  return (ec == std::errc() && p == end && !s.empty() && v > 0) ? v : 0;
}

// "a-b-c" -> {"a", "b", "c"}.
std::vector<std::string> split_dashes(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t dash = s.find('-', start);
    out.push_back(s.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
    if (dash == std::string::npos) return out;
    start = dash + 1;
  }
}

Factory wrn(int depth, int k) {
  return [depth, k](const ModelOptions& o) { return std::make_shared<WideResNet>(depth, k, o); };
}
Factory resnet(int depth) {
  return [depth](const ModelOptions& o) { return std::make_shared<CifarResNet>(depth, o); };
}

const std::vector<std::pair<std::string, Factory>>& table() {
  static const std::vector<std::pair<std::string, Factory>> t = {
      {"lenet5", [](const ModelOptions& o) { return std::make_shared<LeNet5>(o); }},
      {"mlp",
       [](const ModelOptions& o) {
         return make_mlp({512, 256}, o);
       }},
      {"wrn-16-4", wrn(16, 4)},
      {"wrn-16-8", wrn(16, 8)},
      {"wrn-28-10", wrn(28, 10)},
      {"wrn-40-4", wrn(40, 4)},
      {"resnet20", resnet(20)},
      {"resnet32", resnet(32)},
      {"resnet44", resnet(44)},
      {"resnet56", resnet(56)},
      {"resnet110", resnet(110)},
  };
  return t;
}

[[noreturn]] void unknown(const std::string& name) {
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  CYCLONE_THROW("unknown model '", name, "'", did_you_mean(name, model_names()), " (known: ", known,
                "; patterns: ", model_patterns(), ")");
}

}  // namespace

std::vector<std::string> model_names() {
  std::vector<std::string> out;
  for (const auto& [n, f] : table()) out.push_back(n);
  return out;
}

std::string model_patterns() {
  return "wrn-D-K (D = 6n + 4, K >= 1), resnetN (N = 6n + 2), mlp-H1-H2-... (hidden sizes)";
}

std::shared_ptr<Module> make_model(const std::string& name, const ModelOptions& o) {
  for (const auto& [n, f] : table())
    if (n == name) return f(o);
  // Patterns: the constructors check the depth and name it in their Error.
  const std::vector<std::string> parts = split_dashes(name);
  if (parts.size() == 3 && parts[0] == "wrn") {
    const int d = parse_positive(parts[1]), k = parse_positive(parts[2]);
    if (d > 0 && k > 0) return std::make_shared<WideResNet>(d, k, o);
  }
  if (parts.size() == 1 && name.rfind("resnet", 0) == 0) {
    const int d = parse_positive(name.substr(6));
    if (d > 0) return std::make_shared<CifarResNet>(d, o);
  }
  if (parts.size() >= 2 && parts[0] == "mlp") {
    std::vector<int64_t> hidden;
    for (size_t i = 1; i < parts.size(); ++i) {
      const int h = parse_positive(parts[i]);
      if (h == 0) unknown(name);
      hidden.push_back(h);
    }
    return make_mlp(hidden, o);
  }
  unknown(name);
}

}  // namespace cyclone
