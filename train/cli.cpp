#include "cyclone/train/cli.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <system_error>
#include <utility>
#include <variant>

#include "cyclone/core/resource_limits.h"
#include "cyclone/dist/world.h"
#include "cyclone/train/interrupt.h"

namespace cyclone::train {

namespace {

using detail::str_cat;

std::string dashed(std::string_view name) { return str_cat("--", name); }

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// from_chars rejects a leading '+'; people type it, so one is allowed before a digit or '.'.
std::string_view strip_plus(std::string_view s) {
  if (s.size() > 1 && s[0] == '+' &&
      (std::isdigit(static_cast<unsigned char>(s[1])) || s[1] == '.'))
    s.remove_prefix(1);
  return s;
}

double parse_double(std::string_view flag, std::string_view text) {
  const std::string_view s = strip_plus(text);
  double v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range)
    throw UsageError(str_cat(dashed(flag), ": '", text, "' is out of range"));
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty() || !std::isfinite(v))
    throw UsageError(str_cat(dashed(flag), ": '", text, "' is not a number"));
  return v;
}

template <class Int>
Int parse_integer(std::string_view flag, std::string_view text) {
  const std::string_view s = strip_plus(text);
  Int v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 10);
  if (ec == std::errc::result_out_of_range)
    throw UsageError(str_cat(dashed(flag), ": '", text, "' is out of range"));
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) {
    if constexpr (std::is_unsigned_v<Int>)
      throw UsageError(str_cat(dashed(flag), ": '", text, "' is not a non-negative integer"));
    else
      throw UsageError(str_cat(dashed(flag), ": '", text, "' is not an integer"));
  }
  return v;
}

bool parse_bool(std::string_view flag, std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  throw UsageError(str_cat(dashed(flag), ": '", text, "' is not a boolean (true|false|1|0)"));
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? std::string(sep) : "") + items[i];
  return out;
}

std::string format_list(const std::vector<double>& v) {
  std::vector<std::string> parts;
  for (double x : v) parts.push_back(format_number(x));
  return join(parts, ",");
}

}  // namespace

// ---- Bounds ------------------------------------------------------------------------------------

Bounds Bounds::greater_than(double lo) { return {lo, Bounds{}.hi, true, false}; }
Bounds Bounds::at_least(double lo) { return {lo, Bounds{}.hi, false, false}; }
Bounds Bounds::closed_open(double lo, double hi) { return {lo, hi, false, true}; }
Bounds Bounds::open_closed(double lo, double hi) { return {lo, hi, true, false}; }
Bounds Bounds::closed(double lo, double hi) { return {lo, hi, false, false}; }

bool Bounds::contains(double v) const {
  if (!std::isfinite(v)) return false;
  const bool above = lo_open ? v > lo : v >= lo;
  const bool below = hi_open ? v < hi : v <= hi;
  return above && below;
}

std::string Bounds::describe() const {
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi)
    return str_cat("in ", lo_open ? "(" : "[", format_number(lo), ", ", format_number(hi),
                   hi_open ? ")" : "]");
  if (has_lo) return str_cat(lo_open ? "> " : ">= ", format_number(lo));
  if (has_hi) return str_cat(hi_open ? "< " : "<= ", format_number(hi));
  return "finite";
}

void check_bounds(std::string_view flag, double value, const Bounds& bounds) {
  if (!bounds.contains(value))
    throw UsageError(
        str_cat(dashed(flag), " must be ", bounds.describe(), ", got ", format_number(value)));
}

void check_int_range(std::string_view flag, int64_t value, int64_t lo, int64_t hi) {
  if (value < lo || value > hi)
    throw UsageError(str_cat(dashed(flag), " must be in [", std::to_string(lo), ", ",
                             std::to_string(hi), "], got ", std::to_string(value)));
}

void check_choice(std::string_view flag, const std::string& value,
                  const std::vector<std::string>& choices) {
  if (std::find(choices.begin(), choices.end(), value) != choices.end()) return;
  std::string msg = str_cat(dashed(flag), ": '", value, "' is not one of ", join(choices, "|"));
  if (const std::string close = closest_match(value, choices); !close.empty())
    msg += str_cat(" (did you mean ", close, "?)");
  throw UsageError(msg);
}

std::string format_number(double value) {
  if (!std::isfinite(value)) return std::isnan(value) ? "nan" : value > 0 ? "inf" : "-inf";
  // The fewest significant digits that read back exactly, written plainly ("0.0005", "10") unless
  // the exponent is far from 0 ("1e-06"), where to_chars' shortest form would say "5e-04".
  char buf[64];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(buf, sizeof(buf), "%.*e", digits - 1, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  std::snprintf(buf, sizeof(buf), "%.*e", digits - 1, value);
  const int exponent = std::atoi(std::strchr(buf, 'e') + 1);
  if (exponent >= -5 && exponent < 16)
    std::snprintf(buf, sizeof(buf), "%.*f", std::max(0, digits - 1 - exponent), value);
  else
    std::snprintf(buf, sizeof(buf), "%.*g", digits, value);
  return buf;
}

// ---- ArgParser ---------------------------------------------------------------------------------

struct ArgParser::Flag {
  using Target = std::variant<std::string*, bool*, double*, int64_t*, int*, uint64_t*,
                              std::optional<double>*, std::vector<double>*>;
  Flag(std::string name, Target target, std::string help, std::string value_name = "",
       Bounds bounds = {}, std::vector<std::string> choices = {})
      : name(std::move(name)),
        target(target),
        help(std::move(help)),
        value_name(std::move(value_name)),
        bounds(bounds),
        choices(std::move(choices)) {}

  std::string name;
  Target target;
  std::string help;
  std::string value_name;
  Bounds bounds;
  std::vector<std::string> choices;
  std::string default_text;  // the target's value at registration, as help() shows it
  bool set = false;

  bool is_bool() const { return std::holds_alternative<bool*>(target); }
};

ArgParser::ArgParser(std::string program, std::string description)
    : program_(std::move(program)), description_(std::move(description)) {}
ArgParser::~ArgParser() = default;
ArgParser::ArgParser(ArgParser&&) noexcept = default;
ArgParser& ArgParser::operator=(ArgParser&&) noexcept = default;

ArgParser::Flag& ArgParser::add(Flag flag) {
  const bool valid_name =
      !flag.name.empty() && std::all_of(flag.name.begin(), flag.name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
      });
  CYCLONE_CHECK(valid_name, "ArgParser: flag name '", flag.name, "' must be [a-z0-9_]+");
  CYCLONE_CHECK(flag.name != "help" && flag.name != "h", "ArgParser: --help is built in");
  CYCLONE_CHECK(find(flag.name) == nullptr, "ArgParser: flag --", flag.name, " registered twice");
  flag.default_text = std::visit(
      [](auto* p) -> std::string {
        CYCLONE_CHECK(p != nullptr, "ArgParser: null target");
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::string>)
          return p->empty() ? "empty" : *p;
        else if constexpr (std::is_same_v<T, bool>)
          return *p ? "true" : "false";
        else if constexpr (std::is_same_v<T, double>)
          return format_number(*p);
        else if constexpr (std::is_same_v<T, std::optional<double>>)
          return *p ? format_number(**p) : "unset";
        else if constexpr (std::is_same_v<T, std::vector<double>>)
          return p->empty() ? "empty" : format_list(*p);
        else
          return std::to_string(*p);
      },
      flag.target);
  flags_.push_back(std::move(flag));
  return flags_.back();
}

ArgParser& ArgParser::add_flag(std::string name, std::string* target, std::string help,
                               std::string value_name) {
  add(Flag(std::move(name), target, std::move(help), std::move(value_name)));
  return *this;
}
ArgParser& ArgParser::add_flag(std::string name, bool* target, std::string help) {
  add(Flag(std::move(name), target, std::move(help)));
  return *this;
}
ArgParser& ArgParser::add_flag(std::string name, double* target, std::string help,
                               std::string value_name, Bounds bounds) {
  add(Flag(std::move(name), target, std::move(help), std::move(value_name), bounds));
  return *this;
}
ArgParser& ArgParser::add_flag(std::string name, int64_t* target, std::string help,
                               std::string value_name, Bounds bounds) {
  add(Flag(std::move(name), target, std::move(help), std::move(value_name), bounds));
  return *this;
}
ArgParser& ArgParser::add_flag(std::string name, int* target, std::string help,
                               std::string value_name, Bounds bounds) {
  add(Flag(std::move(name), target, std::move(help), std::move(value_name), bounds));
  return *this;
}
ArgParser& ArgParser::add_flag(std::string name, uint64_t* target, std::string help,
                               std::string value_name) {
  add(Flag(std::move(name), target, std::move(help), std::move(value_name)));
  return *this;
}
ArgParser& ArgParser::add_flag(std::string name, std::optional<double>* target, std::string help,
                               std::string value_name, Bounds bounds) {
  add(Flag(std::move(name), target, std::move(help), std::move(value_name), bounds));
  return *this;
}
ArgParser& ArgParser::add_flag(std::string name, std::vector<double>* target, std::string help,
                               std::string value_name, Bounds bounds) {
  add(Flag(std::move(name), target, std::move(help), std::move(value_name), bounds));
  return *this;
}
ArgParser& ArgParser::add_choice(std::string name, std::string* target,
                                 std::vector<std::string> choices, std::string help) {
  CYCLONE_CHECK(!choices.empty(), "ArgParser: --", name, " has no choices");
  add(Flag(std::move(name), target, std::move(help), "NAME", {}, std::move(choices)));
  return *this;
}

void ArgParser::set_epilog(std::string epilog) { epilog_ = std::move(epilog); }

ArgParser::Flag* ArgParser::find(std::string_view name) {
  for (auto& f : flags_)
    if (f.name == name) return &f;
  return nullptr;
}
const ArgParser::Flag* ArgParser::find(std::string_view name) const {
  return const_cast<ArgParser*>(this)->find(name);
}

bool ArgParser::was_set(std::string_view name) const {
  const Flag* f = find(name);
  CYCLONE_CHECK(f != nullptr, "ArgParser::was_set: no flag --", name);
  return f->set;
}

void ArgParser::assign(Flag& flag, const std::string& value) {
  const std::string& n = flag.name;
  const auto bounded = [&](double v) {
    check_bounds(n, v, flag.bounds);
    return v;
  };
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::string>) {
          if (!flag.choices.empty()) check_choice(n, value, flag.choices);
          *p = value;
        } else if constexpr (std::is_same_v<T, bool>) {
          *p = parse_bool(n, value);
        } else if constexpr (std::is_same_v<T, double>) {
          *p = bounded(parse_double(n, value));
        } else if constexpr (std::is_same_v<T, std::optional<double>>) {
          *p = bounded(parse_double(n, value));
        } else if constexpr (std::is_same_v<T, std::vector<double>>) {
          std::vector<double> list;
          if (!trim(value).empty()) {
            std::stringstream ss(value);
            for (std::string item; std::getline(ss, item, ',');)
              list.push_back(bounded(parse_double(n, trim(item))));
            if (value.back() == ',') parse_double(n, "");  // "0.9," has an empty last item
          }
          *p = std::move(list);
        } else {  // the integers
          const T v = parse_integer<T>(n, value);
          if constexpr (std::is_signed_v<T>) bounded(static_cast<double>(v));
          *p = v;
        }
      },
      flag.target);
}

std::vector<std::string> ArgParser::parse(int argc, const char* const* argv) {
  help_requested_ = false;
  for (auto& f : flags_) f.set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "-h" || a == "--help") {
      help_requested_ = true;
      return {};
    }
  }

  std::vector<std::string> names;
  for (const auto& f : flags_) names.push_back(f.name);
  const auto unknown = [&](std::string_view arg, std::string_view name) {
    std::string msg = str_cat("unknown flag '", arg, "'");
    if (const std::string close = closest_match(name, names); !close.empty())
      msg += str_cat(" (did you mean --", close, "?)");
    return UsageError(msg);
  };

  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") {
      for (++i; i < argc; ++i) positional.emplace_back(argv[i]);
      break;
    }
    if (arg.size() < 2 || arg[0] != '-') {
      positional.push_back(arg);
      continue;
    }
    if (arg.rfind("--help=", 0) == 0 || arg.rfind("-h=", 0) == 0)
      throw UsageError(str_cat(arg.substr(0, arg.find('=')), " takes no value (got '", arg, "')"));
    if (arg[1] != '-') {  // "-lr_min=1": single dashes are not flags here
      const std::string body = arg.substr(1);
      throw unknown(arg, body.substr(0, body.find('=')));
    }
    const std::string body = arg.substr(2);
    const size_t eq = body.find('=');
    const std::string name = body.substr(0, eq);
    const std::optional<std::string> inline_value =
        eq == std::string::npos ? std::nullopt : std::optional(body.substr(eq + 1));

    Flag* flag = find(name);
    if (flag == nullptr && name.rfind("no_", 0) == 0) {
      Flag* negated = find(name.substr(3));
      if (negated != nullptr && negated->is_bool()) {
        if (inline_value) throw UsageError(str_cat("--", name, " takes no value"));
        *std::get<bool*>(negated->target) = false;
        negated->set = true;
        continue;
      }
    }
    if (flag == nullptr)
      throw unknown(arg.substr(0, eq == std::string::npos ? arg.size() : eq + 2), name);

    if (flag->is_bool() && !inline_value) {
      *std::get<bool*>(flag->target) = true;
    } else if (inline_value) {
      assign(*flag, *inline_value);
    } else {
      if (i + 1 >= argc || std::string_view(argv[i + 1]).rfind("--", 0) == 0)
        throw UsageError(str_cat("--", name, " needs a value"));
      assign(*flag, argv[++i]);
    }
    flag->set = true;
  }
  return positional;
}

std::string ArgParser::help() const {
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& f : flags_) {
    // A boolean that defaults to true is turned off with --no_<name>.
    std::string left =
        f.is_bool() && f.default_text == "true" ? "  --[no_]" + f.name : "  --" + f.name;
    if (!f.is_bool()) left += "=" + f.value_name;
    std::string right = f.help;
    if (!f.choices.empty()) right += " {" + join(f.choices, "|") + "}";
    right += str_cat(" (default: ", f.default_text, ")");
    rows.emplace_back(std::move(left), std::move(right));
  }
  rows.emplace_back("  -h, --help", "print this help and exit");

  // Align the descriptions; a flag whose left column is unusually long gets its own line.
  constexpr size_t kMaxColumn = 36;
  size_t column = 0;
  for (const auto& [left, right] : rows)
    if (left.size() <= kMaxColumn) column = std::max(column, left.size());
  column += 2;

  std::ostringstream os;
  os << "usage: " << program_ << " [flags]\n";
  if (!description_.empty())
    os << "\n" << description_ << (description_.back() == '\n' ? "" : "\n");
  os << "\nflags:\n";
  for (const auto& [left, right] : rows) {
    if (left.size() + 2 > column)
      os << left << "\n" << std::string(column, ' ') << right << "\n";
    else
      os << left << std::string(column - left.size(), ' ') << right << "\n";
  }
  if (!epilog_.empty()) os << "\n" << epilog_ << (epilog_.back() == '\n' ? "" : "\n");
  return os.str();
}

namespace {
// "rank 1/4: " in a data-parallel job; "" alone, or when the world itself failed to start.
std::string rank_prefix_noexcept() {
  try {
    return dist::rank_prefix();
  } catch (const std::exception&) {
    return "";
  }
}
}  // namespace

void reject_positional(std::string_view program, const std::vector<std::string>& positional) {
  if (!positional.empty())
    throw UsageError(str_cat("unexpected argument '", positional.front(), "' (", program,
                             " takes only --flags)"));
}

namespace {
// The length of the well-formed UTF-8 sequence starting at s[i] (2-4; Unicode's table 3-7: no
// overlong forms, surrogates or code points past U+10FFFF), or 0 when there is none. The C1
// controls (U+0080-U+009F, which terminals act on, CSI among them) count as none.
size_t utf8_sequence(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char u = b(0);
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (u >= 0xC2 && u <= 0xDF) {
    n = 2;
    if (u == 0xC2) lo = 0xA0;  // C2 80-9F: the C1 controls
  } else if (u >= 0xE0 && u <= 0xEF) {
    n = 3;
    if (u == 0xE0) lo = 0xA0;
    if (u == 0xED) hi = 0x9F;
  } else if (u >= 0xF0 && u <= 0xF4) {
    n = 4;
    if (u == 0xF0) lo = 0x90;
    if (u == 0xF4) hi = 0x8F;
  }
  if (n == 0 || i + n > s.size() || b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if ((b(k) & 0xC0) != 0x80) return 0;
  return n;
}

// An error line as the terminal should show it: a value from the user's file may hold control
// bytes (a NUL in a JSON string cut the line short there) or bytes that are not UTF-8 (a damaged
// file quoted in the message), written as \xNN instead; valid UTF-8 is kept.
std::string printable(const std::string& message) {
  std::string out;
  out.reserve(message.size());
  for (size_t i = 0; i < message.size(); ++i) {
    const auto u = static_cast<unsigned char>(message[i]);
    if (u >= 0x80) {
      if (const size_t n = utf8_sequence(message, i); n > 0) {
        out.append(message, i, n);
        i += n - 1;
        continue;
      }
    }
    if ((u < 0x20 && u != '\t') || u >= 0x7F) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02X", u);
      out += esc;
    } else {
      out += static_cast<char>(u);
    }
  }
  return out;
}
}  // namespace

int run_program(const char* program, const std::function<int()>& body) {
  int code = 0;
  bool threw = true;
  try {
    code = body();
    threw = false;
  } catch (const Interrupted&) {
    // A clean stop every rank agreed on (train_step's stop), its message already printed.
    threw = false;
  } catch (const UsageError& e) {
    std::fflush(stdout);  // what the run printed comes before its error, even when both are piped
    const bool says_help = e.message().find("see --help") != std::string::npos;
    std::fprintf(stderr, "%s: %s%s%s\n", program, rank_prefix_noexcept().c_str(),
                 printable(e.message()).c_str(), says_help ? "" : " (see --help)");
    code = 2;
  } catch (const cyclone::Error& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: %s%s\n", program, rank_prefix_noexcept().c_str(),
                 printable(e.message()).c_str());
    code = 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    const std::string limit = address_space_note();
    std::fprintf(stderr, "%s: %sout of memory%s%s; %stry a smaller batch size\n", program,
                 rank_prefix_noexcept().c_str(), limit.empty() ? "" : ": ", limit.c_str(),
                 limit.empty() ? "" : "raise the limit (ulimit -v) or ");
    code = 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s: %s%s\n", program, rank_prefix_noexcept().c_str(), e.what());
    code = 1;
  }
  // A body that never used the world (--help) has none to end; one that failed to start was
  // reported when the body threw.
  if (dist::World* w = dist::started_world()) {
    // An error on one rank would leave the others waiting in a collective: end the whole job
    // (mpirun then names this rank). Outcomes every rank reached together end normally.
    if (threw && w->distributed()) {
      std::fflush(stdout);
      std::fflush(stderr);
      w->abort(code);
    }
    try {
      w->finalize();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: %s\n", program, e.what());
      if (code == 0) code = 1;
    }
  }
  return code;
}

}  // namespace cyclone::train
