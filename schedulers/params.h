// Params: the JSON object a policy is built from and printed as, behind a std-only interface.
//
// Policies are data (DESIGN.md): each is built from one JSON object and prints itself back as one.
// The JSON library stays inside schedulers/*.cpp (pimpl), so installed headers need nothing but
// the standard library. Reading a field marks it used; check_all_used() then rejects any name a
// policy does not know, so a typo ("gama") is an error instead of a silently ignored default.
// Every error names the policy and the field.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cyclone/core/error.h"

namespace cyclone::schedulers {

// A field present with the right type whose value a policy refuses (out of range, or at odds with
// another field): what require() throws. A missing, mistyped or unknown field, or an unknown
// policy, is a plain Error. A caller checking a spec whose numbers are stand-ins (a config read
// before the range test ran) can tell the two apart.
class ValueError : public Error {
 public:
  using Error::Error;
};

class Params {
 public:
  Params();  // an empty object
  ~Params();
  Params(const Params& other);
  Params& operator=(const Params& other);
  Params(Params&& other) noexcept;
  Params& operator=(Params&& other) noexcept;

  // Parses `text`, which must hold one JSON object; errors give the byte offset.
  static Params parse(std::string_view text);

  // What errors say the object is, e.g. "policy 'step'"; set by the registry.
  void set_context(std::string context);
  const std::string& context() const;

  bool has(std::string_view key) const;
  bool has_number(std::string_view key) const;  // present and a JSON number
  std::vector<std::string> keys() const;

  // Required fields: a missing or mistyped field is an error naming it. Numbers must be finite;
  // integers may be written 10 or 10.0 but not 10.5.
  double number(std::string_view key) const;
  int64_t integer(std::string_view key) const;
  std::string text(std::string_view key) const;
  std::vector<int64_t> integers(std::string_view key) const;
  std::vector<double> numbers(std::string_view key) const;
  Params object(std::string_view key) const;
  std::vector<Params> objects(std::string_view key) const;
  // Optional fields with a default.
  double number(std::string_view key, double fallback) const;
  int64_t integer(std::string_view key, int64_t fallback) const;
  bool boolean(std::string_view key, bool fallback) const;
  std::string text(std::string_view key, std::string_view fallback) const;

  // Throws "<context>: unknown field 'x': did you mean 'y'? (known: a, b, c)" for a field no
  // reader asked for; the known fields are every field read or asked about with has().
  void check_all_used() const;
  // Throws "<context>: field '<key>' <what>" unless `ok`.
  void require(bool ok, std::string_view key, std::string_view what) const;

  // Writing (for printing a policy back). Insertion order is kept.
  Params& set_number(std::string_view key, double value);
  Params& set_integer(std::string_view key, int64_t value);
  Params& set_boolean(std::string_view key, bool value);
  Params& set_text(std::string_view key, std::string_view value);
  Params& set_integers(std::string_view key, const std::vector<int64_t>& values);
  Params& set_numbers(std::string_view key, const std::vector<double>& values);
  Params& set_object(std::string_view key, const Params& value);
  Params& set_objects(std::string_view key, const std::vector<Params>& values);
  // Removes `key` if present.
  Params& erase(std::string_view key);
  // Copies every field of `other` into this object (a sequence part = policy fields + "steps").
  Params& merge(const Params& other);

  // JSON text; indent < 0 gives one line. Doubles are printed with 17 significant digits, so
  // parse(dump()) gives back the same bits.
  std::string dump(int indent = -1) const;

  struct Impl;  // opaque: holds the JSON value (params.cpp)

 private:
  std::unique_ptr<Impl> impl_;
};

// Formats a double for messages (shortest form that reads back the same value).
std::string format_number(double value);

}  // namespace cyclone::schedulers
