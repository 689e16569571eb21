#include "cyclone/kernels/flops.h"

namespace cyclone::kernels {

namespace {
thread_local FlopCounter* t_innermost = nullptr;
}  // namespace

FlopCounter::FlopCounter() : outer_(t_innermost) { t_innermost = this; }

FlopCounter::~FlopCounter() { t_innermost = outer_; }

void count_flops(double flops) {
  for (FlopCounter* c = t_innermost; c; c = c->outer_) c->flops_ += flops;
}

}  // namespace cyclone::kernels
