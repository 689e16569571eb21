#include "cyclone/core/generator.h"

#include "cyclone/core/error.h"

namespace cyclone {

Generator::Generator(const Generator& other) {
  std::lock_guard lock(other.mutex_);
  seed_ = other.seed_;
  offset_ = other.offset_;
}

Generator& Generator::operator=(const Generator& other) {
  if (this == &other) return *this;
  uint64_t seed, offset;
  {
    std::lock_guard lock(other.mutex_);
    seed = other.seed_;
    offset = other.offset_;
  }
  set_state(seed, offset);
  return *this;
}

uint64_t Generator::seed() const {
  std::lock_guard lock(mutex_);
  return seed_;
}

uint64_t Generator::offset() const {
  std::lock_guard lock(mutex_);
  return offset_;
}

void Generator::set_state(uint64_t seed, uint64_t offset) {
  std::lock_guard lock(mutex_);
  seed_ = seed;
  offset_ = offset;
}

uint64_t Generator::reserve(uint64_t num_counters) {
  return reserve_with_seed(num_counters).offset;
}

namespace {
thread_local uint64_t t_reservations = 0;
}  // namespace

uint64_t thread_random_reservations() { return t_reservations; }

Generator::Reservation Generator::reserve_with_seed(uint64_t num_counters) {
  ++t_reservations;
  std::lock_guard lock(mutex_);
  const uint64_t start = offset_;
  CYCLONE_CHECK(num_counters <= UINT64_MAX - start, "Generator::reserve: ", num_counters,
                " counters from offset ", start, " overflow the 2^64 Philox counter space (seed ",
                seed_, ")");
  offset_ = start + num_counters;
  return {seed_, start};
}

Generator& default_generator() {
  // Function-local: constructed on first use, never by a static initializer of another file.
  static Generator generator;
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace cyclone
