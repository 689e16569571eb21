// Ctrl-C during training: the first SIGINT (or SIGTERM) only raises a flag the training loop
// polls after each step, so it can write a checkpoint and return cleanly; a second one ends the
// process at once (the default action), for a user who really wants out.
#pragma once

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

}  // namespace cyclone::train
