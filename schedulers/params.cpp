#include "cyclone/schedulers/params.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "cyclone/core/error.h"
#include "cyclone/core/json_depth.h"
#include "cyclone/core/spelling.h"

namespace cyclone::schedulers {

// ordered_json keeps the order fields were written in, so a printed policy reads "policy" first.
using Json = nlohmann::ordered_json;

struct Params::Impl {
  Json json = Json::object();
  std::string context = "spec";
  // Fields some reader read; mutable because reading is logically const.
  mutable std::set<std::string, std::less<>> used;
  // Fields some reader read or asked about with has(): every optional field is asked about even
  // when absent, so after a policy's constructor ran these are all the fields it knows.
  mutable std::set<std::string, std::less<>> known;
};

Params::Params() : impl_(std::make_unique<Impl>()) {}
Params::~Params() = default;
Params::Params(const Params& other) : impl_(std::make_unique<Impl>(*other.impl_)) {}
Params& Params::operator=(const Params& other) {
  if (this != &other) impl_ = std::make_unique<Impl>(*other.impl_);
  return *this;
}
Params::Params(Params&& other) noexcept = default;
Params& Params::operator=(Params&& other) noexcept = default;

std::string format_number(double value) {
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  return buf;
}

namespace {

std::string type_name(const Json& j) { return j.type_name(); }

}  // namespace

Params Params::parse(std::string_view text) {
  Params p;
  try {
    // Bounded nesting: a --spec file of 400000 '[' as a field's value crashed lr_schedule.
    p.impl_->json = Json::parse(text.begin(), text.end(), json_depth_limit<Json>("spec"));
  } catch (const Json::parse_error& e) {
    CYCLONE_THROW("spec is not valid JSON (byte ", e.byte, "): ", e.what());
  } catch (const Json::exception& e) {  // a number beyond double's range (out_of_range.406)
    CYCLONE_THROW("spec is not valid JSON: ", e.what());
  }
  CYCLONE_CHECK(p.impl_->json.is_object(), "spec must be a JSON object, got ",
                type_name(p.impl_->json));
  return p;
}

void Params::set_context(std::string context) { impl_->context = std::move(context); }
const std::string& Params::context() const { return impl_->context; }

bool Params::has(std::string_view key) const {
  impl_->known.emplace(key);
  return impl_->json.contains(key);
}

bool Params::has_number(std::string_view key) const {
  const auto it = impl_->json.find(key);
  return it != impl_->json.end() && it->is_number();
}

std::vector<std::string> Params::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : impl_->json.items()) out.push_back(k);
  return out;
}

void Params::require(bool ok, std::string_view key, std::string_view what) const {
  if (!ok)
    throw ValueError(detail::str_cat(impl_->context, ": field '", key, "' ", what),
                     detail::where(__FILE__, __LINE__));
}

namespace {

const Json& field(const Params::Impl& impl, std::string_view key) {
  const auto it = impl.json.find(key);
  if (it == impl.json.end()) {
    // A field no reader knows, spelt like the missing one, is the typo to name ("step_sz").
    const std::vector<std::string> wanted{std::string(key)};
    for (const auto& [k, v] : impl.json.items()) {
      if (impl.known.count(k) == 0 && !closest_match(k, wanted).empty())
        CYCLONE_THROW(impl.context, ": unknown field '", k, "': did you mean '", key, "'? ('", key,
                      "' is required)");
    }
    CYCLONE_THROW(impl.context, ": missing field '", key, "'");
  }
  impl.used.emplace(key);
  impl.known.emplace(key);
  return *it;
}

double as_number(const Params::Impl& impl, std::string_view key, const Json& j) {
  if (!j.is_number()) {
    CYCLONE_THROW(impl.context, ": field '", key, "' must be a number, got ", j.dump());
  }
  const double v = j.get<double>();
  if (!std::isfinite(v)) CYCLONE_THROW(impl.context, ": field '", key, "' must be finite");
  return v;
}

int64_t as_integer(const Params::Impl& impl, std::string_view key, const Json& j) {
  if (j.is_number_integer()) return j.get<int64_t>();
  const double v = as_number(impl, key, j);
  // 2^53: beyond it a double no longer holds every integer, and no schedule is that long.
  if (v != std::floor(v) || std::fabs(v) > 9007199254740992.0) {
    CYCLONE_THROW(impl.context, ": field '", key, "' must be an integer, got ", j.dump());
  }
  return static_cast<int64_t>(v);
}

}  // namespace

double Params::number(std::string_view key) const {
  return as_number(*impl_, key, field(*impl_, key));
}

int64_t Params::integer(std::string_view key) const {
  return as_integer(*impl_, key, field(*impl_, key));
}

std::string Params::text(std::string_view key) const {
  const Json& j = field(*impl_, key);
  if (!j.is_string()) {
    CYCLONE_THROW(impl_->context, ": field '", key, "' must be a string, got ", j.dump());
  }
  return j.get<std::string>();
}

std::vector<int64_t> Params::integers(std::string_view key) const {
  const Json& j = field(*impl_, key);
  if (!j.is_array()) {
    CYCLONE_THROW(impl_->context, ": field '", key, "' must be a list of integers, got ", j.dump());
  }
  std::vector<int64_t> out;
  for (const Json& e : j) out.push_back(as_integer(*impl_, key, e));
  return out;
}

std::vector<double> Params::numbers(std::string_view key) const {
  const Json& j = field(*impl_, key);
  if (!j.is_array()) {
    CYCLONE_THROW(impl_->context, ": field '", key, "' must be a list of numbers, got ", j.dump());
  }
  std::vector<double> out;
  for (const Json& e : j) out.push_back(as_number(*impl_, key, e));
  return out;
}

Params Params::object(std::string_view key) const {
  const Json& j = field(*impl_, key);
  if (!j.is_object()) {
    CYCLONE_THROW(impl_->context, ": field '", key, "' must be an object, got ", j.dump());
  }
  Params p;
  p.impl_->json = j;
  p.impl_->context = detail::str_cat(impl_->context, " ", key);
  return p;
}

std::vector<Params> Params::objects(std::string_view key) const {
  const Json& j = field(*impl_, key);
  if (!j.is_array()) {
    CYCLONE_THROW(impl_->context, ": field '", key, "' must be a list of objects, got ",
                  type_name(j));
  }
  std::vector<Params> out;
  for (size_t i = 0; i < j.size(); ++i) {
    if (!j[i].is_object()) {
      CYCLONE_THROW(impl_->context, ": field '", key, "' item ", i, " must be an object, got ",
                    j[i].dump());
    }
    Params p;
    p.impl_->json = j[i];
    p.impl_->context = detail::str_cat(impl_->context, " ", key, "[", i, "]");
    out.push_back(std::move(p));
  }
  return out;
}

double Params::number(std::string_view key, double fallback) const {
  return has(key) ? number(key) : fallback;
}
int64_t Params::integer(std::string_view key, int64_t fallback) const {
  return has(key) ? integer(key) : fallback;
}
bool Params::boolean(std::string_view key, bool fallback) const {
  if (!has(key)) return fallback;
  const Json& j = field(*impl_, key);
  if (!j.is_boolean()) {
    CYCLONE_THROW(impl_->context, ": field '", key, "' must be true or false, got ", j.dump());
  }
  return j.get<bool>();
}
std::string Params::text(std::string_view key, std::string_view fallback) const {
  return has(key) ? text(key) : std::string(fallback);
}

void Params::check_all_used() const {
  for (const auto& [k, v] : impl_->json.items()) {
    if (impl_->used.find(k) != impl_->used.end()) continue;
    std::string known;
    for (const auto& u : impl_->known) known += (known.empty() ? "" : ", ") + u;
    const std::string near =
        closest_match(k, std::vector<std::string>(impl_->known.begin(), impl_->known.end()));
    CYCLONE_THROW(impl_->context, ": unknown field '", k, "'",
                  near.empty() ? "" : ": did you mean '" + near + "'?", " (known: ", known, ")");
  }
}

Params& Params::set_number(std::string_view key, double value) {
  impl_->json[std::string(key)] = value;
  return *this;
}
Params& Params::set_integer(std::string_view key, int64_t value) {
  impl_->json[std::string(key)] = value;
  return *this;
}
Params& Params::set_boolean(std::string_view key, bool value) {
  impl_->json[std::string(key)] = value;
  return *this;
}
Params& Params::set_text(std::string_view key, std::string_view value) {
  impl_->json[std::string(key)] = std::string(value);
  return *this;
}
Params& Params::set_integers(std::string_view key, const std::vector<int64_t>& values) {
  impl_->json[std::string(key)] = values;
  return *this;
}
Params& Params::set_numbers(std::string_view key, const std::vector<double>& values) {
  impl_->json[std::string(key)] = values;
  return *this;
}
Params& Params::set_object(std::string_view key, const Params& value) {
  impl_->json[std::string(key)] = value.impl_->json;
  return *this;
}
Params& Params::set_objects(std::string_view key, const std::vector<Params>& values) {
  Json list = Json::array();
  for (const Params& p : values) list.push_back(p.impl_->json);
  impl_->json[std::string(key)] = std::move(list);
  return *this;
}
Params& Params::erase(std::string_view key) {
  const auto it = impl_->json.find(key);
  if (it != impl_->json.end()) impl_->json.erase(it);
  return *this;
}
Params& Params::merge(const Params& other) {
  for (const auto& [k, v] : other.impl_->json.items()) impl_->json[k] = v;
  return *this;
}

std::string Params::dump(int indent) const { return impl_->json.dump(indent); }

}  // namespace cyclone::schedulers
