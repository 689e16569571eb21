// The one error vocabulary of Cyclone: library code throws cyclone::Error (never exits); apps catch
// it at main, print one line and exit non-zero.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace cyclone {

class Error : public std::runtime_error {
 public:
  // `message` says what failed and the offending value; `where` is "file:line" of the check.
  Error(std::string message, std::string where)
      : std::runtime_error(message + " (" + where + ")"),
        message_(std::move(message)),
        where_(std::move(where)) {}
  explicit Error(std::string message) : std::runtime_error(message), message_(std::move(message)) {}

  // The message alone, for the one line an app prints to a user.
  const std::string& message() const { return message_; }
  const std::string& where() const { return where_; }

 private:
  std::string message_;
  std::string where_;
};

// Memory that cannot be had (host or device): the message says how much was asked and how much
// is free. A separate type so that callers that turn errors into usage errors (a bad model name)
// let it through: the input may be valid for a larger machine.
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  ((os << args), ...);
  return os.str();
}
std::string where(const char* file, int line);
[[noreturn]] void throw_error(const std::string& message, const char* file, int line);
}  // namespace detail

}  // namespace cyclone

// CYCLONE_CHECK(cond, parts...): throws cyclone::Error whose message concatenates parts.
#define CYCLONE_CHECK(cond, ...)                                                                   \
  do {                                                                                             \
    if (!(cond)) [[unlikely]]                                                                      \
      ::cyclone::detail::throw_error(::cyclone::detail::str_cat(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)

#define CYCLONE_THROW(...) \
  ::cyclone::detail::throw_error(::cyclone::detail::str_cat(__VA_ARGS__), __FILE__, __LINE__)
