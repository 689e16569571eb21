// Generator: the state of a Philox stream (core/philox.h), a seed (the Philox key) and a 64-bit
// offset (the next unused counter index). A random fill asks the generator for the counters it
// will consume (reserve) and computes its values as a pure function of (seed, counter), so the
// result does not depend on the device, the launch shape or the thread count; it depends only on
// the order in which fills reserve their counters.
//
// Thread-safety: every Generator guards its state with a mutex, so threads may reserve from the
// same one concurrently (each gets a disjoint range; which range goes to which thread then
// depends on scheduling, so reproducible programs draw from one thread or one generator per
// thread). The process-wide default generator is such a Generator.
#pragma once

#include <cstdint>
#include <mutex>

namespace cyclone {

class Generator {
 public:
  // The seed the default generator starts from when nothing calls manual_seed (PyTorch's default
  // CPU seed, so "unseeded" runs are still reproducible).
  static constexpr uint64_t kDefaultSeed = 67280421310721ull;

  explicit Generator(uint64_t seed = kDefaultSeed) : seed_(seed) {}
  // Copies carry the state (a fork that replays the same stream), not the mutex.
  Generator(const Generator& other);
  Generator& operator=(const Generator& other);

  uint64_t seed() const;
  uint64_t offset() const;
  void set_state(uint64_t seed, uint64_t offset);
  void manual_seed(uint64_t seed) { set_state(seed, 0); }

  // Returns the current offset and advances it by num_counters: the caller owns counters
  // [returned, returned + num_counters). Throws when the 2^64 counter space would wrap (after
  // ~7e19 values, in practice a corrupted offset).
  uint64_t reserve(uint64_t num_counters);

  // reserve() and seed() under one lock, so a concurrent set_state cannot pair the counters of
  // one seed with another seed. What random fills use.
  struct Reservation {
    uint64_t seed;
    uint64_t offset;
  };
  Reservation reserve_with_seed(uint64_t num_counters);

 private:
  mutable std::mutex mutex_;
  uint64_t seed_;
  uint64_t offset_ = 0;
};

// The process-wide generator that initializers, dropout, shuffling and augmentation use unless
// handed another; apps call manual_seed(--seed) once so that one seed determines a whole run.
Generator& default_generator();
// Reseeds the default generator and rewinds its offset to 0.
void manual_seed(uint64_t seed);

// How many reservations the calling thread has made so far, from any generator: how a caller
// tells whether some code (a model's dropout, whatever generator it owns) drew random numbers on
// the host (train/step_runner.h: a graph replay would repeat them).
uint64_t thread_random_reservations();

}  // namespace cyclone
