// Ctrl-C during training: the first SIGINT (or SIGTERM) only raises a flag the training loop
// polls after each step, so it can write a checkpoint and return cleanly; a second one ends the
// process at once (the default action), for a user who really wants out.
#pragma once

#include <exception>
#include <string>
#include <utility>

namespace cyclone::train {

// Installs the handlers for its lifetime (nesting is allowed) and clears the flag.
class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
};

// True once a SIGINT / SIGTERM arrived while a guard was installed.
bool interrupt_requested();
// The signal that raised the flag (SIGINT = 2, SIGTERM = 15), 0 if none.
int interrupt_signal();
// Raises the flag as a signal would (tests, and programs that stop a run themselves).
void request_interrupt(int signal = 2);
void clear_interrupt();

// "Ctrl-C" for SIGINT, "SIGTERM" for SIGTERM, "a signal" otherwise: how messages name the stop.
const char* interrupt_name(int signal);

// Thrown by a run that a signal stopped before there was anything to checkpoint (the range test):
// what it had is already written and said (message()), so it is no error. run_program (cli.h)
// ends the program with status 0, as after an interrupted training.
class Interrupted : public std::exception {
 public:
  explicit Interrupted(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }
  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

}  // namespace cyclone::train
