#include "cyclone/train/config_tree.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "cyclone/train/cli.h"

namespace cyclone::train {

using json = nlohmann::json;

namespace {

// Deeper than any config; bounds the recursion on hostile input.
constexpr int kMaxDepth = 64;

bool is_one_of(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words)
    if (s == w) return true;
  return false;
}

json typed_scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: a string, whatever it looks like
  if (s.empty() || is_one_of(s, {"~", "null", "Null", "NULL"})) return nullptr;
  if (is_one_of(s, {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})) return true;
  if (is_one_of(s, {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"}))
    return false;
  static const std::regex integer(R"([-+]?[0-9]+)");
  static const std::regex real(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (std::regex_match(s, integer)) {
    try {
      return static_cast<int64_t>(std::stoll(s));
    } catch (const std::out_of_range&) {
      return std::stod(s);
    }
  }
  if (std::regex_match(s, real)) return std::stod(s);
  if (is_one_of(s, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) return INFINITY;
  if (is_one_of(s, {"-.inf", "-.Inf", "-.INF"})) return -INFINITY;
  if (is_one_of(s, {".nan", ".NaN", ".NAN"})) return NAN;  // both refused by to_json
  return s;
}

json to_json(const YAML::Node& n, const std::string& origin, const std::string& path, int depth) {
  auto where = [&] { return origin + ":" + std::to_string(n.Mark().line + 1) + ": "; };
  if (depth > kMaxDepth)
    throw UsageError(where() + "nested deeper than " + std::to_string(kMaxDepth) + " levels");
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar: {
      json v = typed_scalar(n);
      if (v.is_number_float() && !std::isfinite(v.get<double>()))
        throw UsageError(where() + path + " = " + n.Scalar() +
                         ": config numbers must be finite (JSON has no infinity either)");
      return v;
    }
    case YAML::NodeType::Sequence: {
      json out = json::array();
      size_t i = 0;
      for (const YAML::Node& e : n)
        out.push_back(to_json(e, origin, path + "[" + std::to_string(i++) + "]", depth + 1));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar())
          throw UsageError(where() + (path.empty() ? "a key" : "a key under " + path) +
                           " is not a plain name");
        const std::string key = kv.first.Scalar();
        const std::string kpath = path.empty() ? key : path + "." + key;
        if (out.contains(key))
          throw UsageError(origin + ":" + std::to_string(kv.first.Mark().line + 1) + ": " + kpath +
                           " is given twice");
        out[key] = to_json(kv.second, origin, kpath, depth + 1);
      }
      return out;
    }
  }
  return nullptr;
}

}  // namespace

ConfigSyntax config_syntax_of(const std::string& path) {
  auto ends_with = [&](const char* ext) {
    const std::string e(ext);
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  return ends_with(".yml") || ends_with(".yaml") || ends_with(".YML") || ends_with(".YAML")
             ? ConfigSyntax::kYaml
             : ConfigSyntax::kJson;
}

std::string config_text_to_json(const std::string& text, ConfigSyntax syntax,
                                const std::string& origin) {
  json tree;
  if (syntax == ConfigSyntax::kJson) {
    try {
      tree = json::parse(text);
    } catch (const json::parse_error& e) {
      // e.byte is the offset of the error: turn it into a line a person can find.
      const size_t at = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
      const int64_t line = 1 + std::count(text.begin(), text.begin() + at, '\n');
      std::string what = e.what();
      const size_t p = what.find("syntax error");
      throw UsageError(origin + ":" + std::to_string(line) +
                       ": invalid JSON: " + (p == std::string::npos ? what : what.substr(p)));
    }
  } else {
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      throw UsageError(origin + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
    }
    tree = to_json(root, origin, "", 0);
    if (tree.is_null()) tree = json::object();  // an empty file: an empty config
  }
  return tree.dump();  // nlohmann's object keeps keys sorted: one canonical form
}

}  // namespace cyclone::train
