#include "cyclone/train/config_tree.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

#include "cyclone/core/json_depth.h"
#include "cyclone/train/cli.h"

namespace cyclone::train {

using json = nlohmann::json;

namespace {

// Offset of the first byte that does not start or continue a well-formed UTF-8 sequence (RFC 3629:
// no overlong forms, no surrogates, nothing past U+10FFFF); npos when the text is valid.
size_t first_invalid_utf8(std::string_view t) {
  size_t i = 0;
  while (i < t.size()) {
    const auto b = static_cast<unsigned char>(t[i]);
    if (b < 0x80) {
      ++i;
      continue;
    }
    int n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      n = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      n = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      n = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    } else {
      return i;
    }
    if (i + n >= t.size()) return i;  // truncated at the end
    for (int k = 1; k <= n; ++k) {
      const auto c = static_cast<unsigned char>(t[i + k]);
      if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) return i;
    }
    i += n + 1;
  }
  return std::string_view::npos;
}

bool is_one_of(const std::string& s, std::initializer_list<const char*> words) {
  for (const char* w : words)
    if (s == w) return true;
  return false;
}

// [-+]?[0-9]+ (std::regex would recurse once per character: a long scalar would overflow the
// stack).
size_t skip_digits(const std::string& s, size_t i) {
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  return i;
}
size_t skip_sign(const std::string& s, size_t i) {
  return i < s.size() && (s[i] == '+' || s[i] == '-') ? i + 1 : i;
}
bool is_integer(const std::string& s) {
  const size_t b = skip_sign(s, 0), e = skip_digits(s, b);
  return e > b && e == s.size();
}
// PyYAML's float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool is_real(const std::string& s) {
  size_t i = skip_sign(s, 0);
  const size_t int_end = skip_digits(s, i);
  if (int_end > i) {
    i = int_end;
    if (i < s.size() && s[i] == '.') i = skip_digits(s, i + 1);
  } else {
    if (i >= s.size() || s[i] != '.') return false;
    const size_t frac_end = skip_digits(s, i + 1);
    if (frac_end == i + 1) return false;
    i = frac_end;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    const size_t b = skip_sign(s, i + 1), e = skip_digits(s, b);
    if (e == b) return false;
    i = e;
  }
  return i == s.size();
}

json typed_scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: a string, whatever it looks like
  if (s.empty() || is_one_of(s, {"~", "null", "Null", "NULL"})) return nullptr;
  if (is_one_of(s, {"true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON"})) return true;
  if (is_one_of(s, {"false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF"}))
    return false;
  // strtod, not stod: a value out of double's range becomes inf (refused by to_json with the
  // key's name) or rounds to 0 instead of throwing std::out_of_range.
  if (is_integer(s)) {
    try {
      return static_cast<int64_t>(std::stoll(s));
    } catch (const std::out_of_range&) {
      return std::strtod(s.c_str(), nullptr);
    }
  }
  if (is_real(s)) return std::strtod(s.c_str(), nullptr);
  if (is_one_of(s, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) return INFINITY;
  if (is_one_of(s, {"-.inf", "-.Inf", "-.INF"})) return -INFINITY;
  if (is_one_of(s, {".nan", ".NaN", ".NAN"})) return NAN;  // both refused by to_json
  return s;
}

// A config's values once its aliases are expanded: a real one has hundreds. yaml-cpp shares an
// aliased node, but the tree copies it at every use, so a few lines of aliases of aliases ("x2:
// [*x1, *x1]", ...) would expand to billions of values (gigabytes and minutes, then an unknown-key
// error): refused past this count instead.
constexpr int64_t kMaxYamlValues = 100000;

json to_json(const YAML::Node& n, const std::string& origin, const std::string& path, int depth,
             int64_t& values) {
  auto where = [&] { return origin + ":" + std::to_string(n.Mark().line + 1) + ": "; };
  if (depth > kMaxJsonDepth)
    throw UsageError(where() + "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  if (++values > kMaxYamlValues)
    throw UsageError(origin + ": more than " + std::to_string(kMaxYamlValues) +
                     " values once its aliases are expanded (aliases of aliases?): write the "
                     "config out without them");
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar: {
      // Escapes ("\xF7") can make bytes that are not UTF-8 out of a valid file.
      if (first_invalid_utf8(n.Scalar()) != std::string_view::npos)
        throw UsageError(where() + (path.empty() ? "a value" : path) +
                         " is not valid UTF-8 (check its escapes)");
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
        out.push_back(
            to_json(e, origin, path + "[" + std::to_string(i++) + "]", depth + 1, values));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : n) {
        if (!kv.first.IsScalar())
          throw UsageError(where() + (path.empty() ? "a key" : "a key under " + path) +
                           " is not a plain name");
        const std::string key = kv.first.Scalar();
        if (first_invalid_utf8(key) != std::string_view::npos)
          throw UsageError(where() + "a key under " + (path.empty() ? "the top" : path) +
                           " is not valid UTF-8 (check its escapes)");
        const std::string kpath = path.empty() ? key : path + "." + key;
        if (out.contains(key))
          throw UsageError(origin + ":" + std::to_string(kv.first.Mark().line + 1) + ": " + kpath +
                           " is given twice");
        out[key] = to_json(kv.second, origin, kpath, depth + 1, values);
      }
      return out;
    }
  }
  return nullptr;
}

// Byte offset of the n-th object key (0-based, in document order) of JSON text that is valid up
// to it: a string followed by ':' is a key.
size_t json_key_offset(const std::string& text, size_t n) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '"') continue;
    const size_t start = i;
    for (++i; i < text.size() && text[i] != '"'; ++i)
      if (text[i] == '\\') ++i;
    size_t j = i + 1;
    while (j < text.size() &&
           (text[j] == ' ' || text[j] == '\t' || text[j] == '\n' || text[j] == '\r'))
      ++j;
    if (j < text.size() && text[j] == ':' && n-- == 0) return start;
  }
  return text.size();
}

// nlohmann parses without recursion, but dumping, copying and reading the tree recurse: a file of
// 100000 '[' overflowed the default 8 MiB stack. Brackets outside strings are counted first.
void check_json_depth(const std::string& text, const std::string& origin) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        const int64_t line = 1 + std::count(text.begin(), text.begin() + i, '\n');
        throw UsageError(origin + ":" + std::to_string(line) + ": nested deeper than " +
                         std::to_string(kMaxJsonDepth) + " levels");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// nlohmann keeps the last of two equal keys silently; as for YAML, a key given twice is an error
// (it hides typos and pasted blocks). The parser's callback tracks the keys of each open object.
json parse_json_rejecting_duplicates(const std::string& text, const std::string& origin) {
  struct Frame {
    bool object;
    std::set<std::string> keys;
    std::string key;     // objects: the key whose value is being read
    int64_t index = -1;  // arrays: the element being read
  };
  std::vector<Frame> stack;
  size_t keys_seen = 0;
  auto element_begins = [&] {
    if (!stack.empty() && !stack.back().object) ++stack.back().index;
  };
  json::parser_callback_t cb = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        element_begins();
        stack.push_back({event == json::parse_event_t::object_start, {}, {}, -1});
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        stack.pop_back();
        break;
      case json::parse_event_t::value:
        element_begins();
        break;
      case json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        Frame& top = stack.back();
        if (!top.keys.insert(key).second) {
          std::string path;
          // Appended piece by piece: g++ 12 warns (-Wrestrict, falsely) on "[" + std::string.
          auto add_key = [&path](const std::string& k) {
            if (!path.empty()) path += '.';
            path += k;
          };
          for (size_t i = 0; i + 1 < stack.size(); ++i) {
            if (stack[i].object) {
              add_key(stack[i].key);
            } else {
              path += '[';
              path += std::to_string(stack[i].index);
              path += ']';
            }
          }
          add_key(key);
          const size_t at = json_key_offset(text, keys_seen);
          const int64_t line = 1 + std::count(text.begin(), text.begin() + at, '\n');
          throw UsageError(origin + ":" + std::to_string(line) + ": " + path + " is given twice");
        }
        top.key = key;
        ++keys_seen;
        break;
      }
    }
    return true;
  };
  return json::parse(text, cb);
}

// Notes where each document starts; builds nothing.
struct DocumentStarts final : YAML::EventHandler {
  std::vector<YAML::Mark> starts;
  void OnDocumentStart(const YAML::Mark& mark) override { starts.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// A config is one document, as PyYAML's safe_load demands: a second after "---" would be dropped
// unread (its typos unchecked). Not YAML::LoadAll: on a token no rule takes (a lone ',') yaml-cpp
// 0.7 hands back an empty document without consuming it, forever (jbeder/yaml-cpp#1319), and
// YAML::Load reads that text as an empty config. A document that starts where the last one did
// is that stuck token.
void check_one_yaml_document(const std::string& text, const std::string& origin) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts seen;
  while (parser.HandleNextDocument(seen)) {
    const size_t n = seen.starts.size();
    if (n >= 2 && seen.starts[n - 1].pos == seen.starts[n - 2].pos) {
      const YAML::Mark& at = seen.starts.back();
      const size_t pos = static_cast<size_t>(at.pos);
      const unsigned char c = pos < text.size() ? static_cast<unsigned char>(text[pos]) : 0;
      throw UsageError(origin + ":" + std::to_string(at.line + 1) + ": invalid YAML: unexpected " +
                       (c >= 0x21 && c < 0x7f ? "'" + std::string(1, static_cast<char>(c)) + "'"
                                              : std::string("text")) +
                       " at column " + std::to_string(at.column + 1));
    }
  }
  const size_t documents = seen.starts.size();
  if (documents > 1)
    throw UsageError(origin + ": holds " + std::to_string(documents) +
                     " YAML documents (separated by ---); a config is one: merge them or split "
                     "the file");
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
    check_json_depth(text, origin);
    try {
      tree = parse_json_rejecting_duplicates(text, origin);
    } catch (const json::parse_error& e) {
      // e.byte is the offset of the error: turn it into a line a person can find.
      const size_t at = std::min<size_t>(e.byte > 0 ? e.byte - 1 : 0, text.size());
      const int64_t line = 1 + std::count(text.begin(), text.begin() + at, '\n');
      std::string what = e.what();
      const size_t p = what.find("syntax error");
      throw UsageError(origin + ":" + std::to_string(line) +
                       ": invalid JSON: " + (p == std::string::npos ? what : what.substr(p)));
    } catch (const json::exception& e) {  // a number out of range (out_of_range.406)
      std::string what = e.what();
      const size_t p = what.find("] ");
      throw UsageError(origin + ": invalid JSON: " +
                       (p == std::string::npos ? what : what.substr(p + 2)).substr(0, 200));
    }
  } else {
    // YAML text must be UTF-8 (as JSON's parser demands): the tree's strings are written back
    // as JSON, which cannot hold other bytes.
    if (const size_t bad = first_invalid_utf8(text); bad != std::string::npos) {
      const int64_t line = 1 + std::count(text.begin(), text.begin() + bad, '\n');
      throw UsageError(origin + ":" + std::to_string(line) + ": byte " + std::to_string(bad) +
                       " is not valid UTF-8 (save the file as UTF-8)");
    }
    YAML::Node root;
    try {
      root = YAML::Load(text);
      check_one_yaml_document(text, origin);
    } catch (const YAML::DeepRecursion& e) {  // yaml-cpp's own bound (500), its message "bad file"
      throw UsageError(origin + ":" + std::to_string(e.mark.line + 1) + ": nested deeper than " +
                       std::to_string(kMaxJsonDepth) + " levels");
    } catch (const YAML::Exception& e) {
      throw UsageError(origin + ":" + std::to_string(e.mark.line + 1) + ": invalid YAML: " + e.msg);
    }
    int64_t values = 0;
    tree = to_json(root, origin, "", 0, values);
    if (tree.is_null()) tree = json::object();  // an empty file: an empty config
  }
  return tree.dump();  // nlohmann's object keeps keys sorted: one canonical form
}

}  // namespace cyclone::train
