// Command-line flags for the apps (./bin/best_lr, ./bin/train), as library code so that every
// accepted and rejected spelling is unit-tested.
//
//   ArgParser p("best_lr", "Finds a learning rate, then trains with it.");
//   p.add_flag("batch_size", &opts.batch_size, "examples per step", "N", Bounds::greater_than(0));
//   p.add_choice("optimizer", &opts.optimizer, {"sgd", "adam", "rmsprop"}, "update rule");
//   p.add_flag("cycle", &opts.cycle, "cycle the rate");
//   p.parse(argc, argv);                  // throws UsageError
//   if (p.help_requested()) { std::cout << p.help(); return 0; }
//
// Syntax: `--name=value` and `--name value` (the second only when the next argument does not
// start with "--"); booleans as `--name` (true), `--name=true|false|1|0` and `--no_name` (false);
// comma lists as `--name=0.85,0.9,0.95` (`--name=` is the empty list). `--` ends the flags; `-h`
// and `--help` anywhere before it ask for help and nothing else is parsed. A flag given twice
// keeps its last value. Numbers are parsed strictly: the whole string, finite, integers without a
// fraction or exponent and within their type's range.
//
// Every mistake is a UsageError with a one-line message naming the flag and the value:
//   --batch_size: 'abc' is not an integer
//   unknown flag '--lr_mn' (did you mean --lr_min?)
//   --lr_min needs a value
//   --optimizer: 'adma' is not one of sgd|adam|rmsprop (did you mean adam?)
//   --momentum must be in [0, 1), got 1.5
// Apps catch it at main, print the message and exit 2 (DESIGN.md, "Errors are values").
// Registering the same flag twice, or asking was_set about an unknown one, is a programming error:
// a plain cyclone::Error.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cyclone/core/error.h"
#include "cyclone/core/spelling.h"

namespace cyclone::train {

// A mistake on the command line (or in the options it fills): the app prints message() and exits 2.
class UsageError : public cyclone::Error {
 public:
  explicit UsageError(std::string message) : Error(std::move(message)) {}
};

// The interval a numeric flag must lie in. Default-constructed: every finite value.
struct Bounds {
  double lo = -std::numeric_limits<double>::infinity();
  double hi = std::numeric_limits<double>::infinity();
  bool lo_open = false;
  bool hi_open = false;

  static Bounds greater_than(double lo);            // (lo, inf)
  static Bounds at_least(double lo);                // [lo, inf)
  static Bounds closed_open(double lo, double hi);  // [lo, hi)
  static Bounds open_closed(double lo, double hi);  // (lo, hi]
  static Bounds closed(double lo, double hi);       // [lo, hi]

  bool contains(double value) const;
  // "> 0", ">= 1", "in [0, 1)", "< 5", or "finite".
  std::string describe() const;
};

// Throws UsageError "--<flag> must be <bounds>, got <value>" when value lies outside bounds.
void check_bounds(std::string_view flag, double value, const Bounds& bounds);
// The same for an integer flag, exactly as typed: "--<flag> must be in [lo, hi], got <value>".
void check_int_range(std::string_view flag, int64_t value, int64_t lo, int64_t hi);
// Throws UsageError "--<flag>: '<value>' is not one of a|b|c" (with a suggestion when one is
// close) unless value is one of choices.
void check_choice(std::string_view flag, const std::string& value,
                  const std::vector<std::string>& choices);

// The fewest digits that read back as the same double, plainly written unless the exponent is
// far from 0: "0.0001", "10", "0.99994", "1e-06".
std::string format_number(double value);
// closest_match(word, candidates): core/spelling.h, shared with the library's own messages.
using ::cyclone::closest_match;

// Throws UsageError "unexpected argument '<first>' (<program> takes only --flags)" unless
// `positional` (what ArgParser::parse returned) is empty: for programs that take no operands.
void reject_positional(std::string_view program, const std::vector<std::string>& positional);

// The main() of a program: runs `body` and turns what escapes it into one line on stderr,
// "<program>: <message>", and the exit status: UsageError 2 (with "(see --help)" once),
// cyclone::Error and other exceptions 1, out of memory 1 with a hint; Interrupted (interrupt.h: a
// stop the run already reported) 0, silently. body's own return value otherwise.
int run_program(const char* program, const std::function<int()>& body);

class ArgParser {
 public:
  // `program` names the usage line; `description` is printed under it by help().
  ArgParser(std::string program, std::string description);
  ~ArgParser();
  ArgParser(ArgParser&&) noexcept;
  ArgParser& operator=(ArgParser&&) noexcept;

  // Each target's value at registration is the flag's default, shown by help(); parse writes the
  // parsed value through the pointer, which must outlive the parser. `name` is given without
  // dashes, in [a-z0-9_]. `value_name` is the placeholder help() shows ("N", "PATH", ...).
  ArgParser& add_flag(std::string name, std::string* target, std::string help,
                      std::string value_name = "STR");
  ArgParser& add_flag(std::string name, bool* target, std::string help);
  ArgParser& add_flag(std::string name, double* target, std::string help,
                      std::string value_name = "X", Bounds bounds = {});
  ArgParser& add_flag(std::string name, int64_t* target, std::string help,
                      std::string value_name = "N", Bounds bounds = {});
  ArgParser& add_flag(std::string name, int* target, std::string help, std::string value_name = "N",
                      Bounds bounds = {});
  ArgParser& add_flag(std::string name, uint64_t* target, std::string help,
                      std::string value_name = "N");
  // Left empty unless the flag is given.
  ArgParser& add_flag(std::string name, std::optional<double>* target, std::string help,
                      std::string value_name = "X", Bounds bounds = {});
  // A comma-separated list; `bounds` applies to every element.
  ArgParser& add_flag(std::string name, std::vector<double>* target, std::string help,
                      std::string value_name = "X,Y,...", Bounds bounds = {});
  // A string that must be one of `choices`; help() lists them after the description.
  ArgParser& add_choice(std::string name, std::string* target, std::vector<std::string> choices,
                        std::string help);

  // Text printed after the flag table (semantics, examples, exit status).
  void set_epilog(std::string epilog);

  // Parses argv[1..argc); returns the positional arguments in order. Throws UsageError. With
  // -h/--help it returns at once, nothing written, and help_requested() is true.
  std::vector<std::string> parse(int argc, const char* const* argv);
  bool help_requested() const { return help_requested_; }
  // Whether the last parse saw the flag (as --name, --name=..., or --no_name).
  bool was_set(std::string_view name) const;

  // "usage: <program> [flags]", the description, one aligned line per flag with its default, the
  // epilog.
  std::string help() const;
  const std::string& program() const { return program_; }

 private:
  struct Flag;
  Flag& add(Flag flag);
  Flag* find(std::string_view name);
  const Flag* find(std::string_view name) const;
  void assign(Flag& flag, const std::string& value);

  std::string program_;
  std::string description_;
  std::string epilog_;
  std::vector<Flag> flags_;
  bool help_requested_ = false;
};

}  // namespace cyclone::train
