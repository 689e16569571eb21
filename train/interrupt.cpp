#include "cyclone/train/interrupt.h"

#include <atomic>
#include <csignal>
#include <mutex>

namespace cyclone::train {

namespace {

std::atomic<int> g_signal{0};
std::mutex g_mutex;
int g_depth = 0;
struct sigaction g_old_int, g_old_term;

extern "C" void on_signal(int sig) {
  if (g_signal.exchange(sig) != 0) {
    // Second signal: give the default action back and let it end the process.
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

}  // namespace

InterruptGuard::InterruptGuard() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_depth++ == 0) {
    g_signal = 0;
    struct sigaction sa = {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &g_old_int);
    sigaction(SIGTERM, &sa, &g_old_term);
  }
}

InterruptGuard::~InterruptGuard() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (--g_depth == 0) {
    sigaction(SIGINT, &g_old_int, nullptr);
    sigaction(SIGTERM, &g_old_term, nullptr);
  }
}

bool interrupt_requested() { return g_signal.load() != 0; }
int interrupt_signal() { return g_signal.load(); }
void request_interrupt(int signal) { g_signal = signal; }
void clear_interrupt() { g_signal = 0; }

const char* interrupt_name(int signal) {
  if (signal == SIGINT) return "Ctrl-C";
  if (signal == SIGTERM) return "SIGTERM";
  return "a signal";
}

}  // namespace cyclone::train
