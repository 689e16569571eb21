// The policy constructors the registry (registry.cpp) calls, one per policy name. Each reads its
// fields from `p`, validates them (errors name the field) and returns the policy; the registry
// then rejects any field the constructor did not read. A library user calls make_policy instead.
#pragma once

#include <memory>

#include "cyclone/schedulers/params.h"
#include "cyclone/schedulers/policy.h"

namespace cyclone::schedulers::factories {

std::unique_ptr<Policy> constant(const Params& p);      // decay.cpp
std::unique_ptr<Policy> step(const Params& p);          // decay.cpp
std::unique_ptr<Policy> multistep(const Params& p);     // decay.cpp
std::unique_ptr<Policy> exponential(const Params& p);   // decay.cpp
std::unique_ptr<Policy> inverse_time(const Params& p);  // decay.cpp
std::unique_ptr<Policy> polynomial(const Params& p);    // polynomial.cpp
std::unique_ptr<Policy> linear(const Params& p);        // polynomial.cpp
std::unique_ptr<Policy> cosine(const Params& p);        // cosine.cpp
std::unique_ptr<Policy> sgdr(const Params& p);          // cosine.cpp
std::unique_ptr<Policy> triangular(const Params& p);    // cyclic.cpp
std::unique_ptr<Policy> triangular2(const Params& p);   // cyclic.cpp
std::unique_ptr<Policy> exp_range(const Params& p);     // cyclic.cpp
std::unique_ptr<Policy> one_cycle(const Params& p);     // one_cycle.cpp
std::unique_ptr<Policy> range_test(const Params& p);    // range_test.cpp
std::unique_ptr<Policy> sequence(const Params& p);      // sequence.cpp
std::unique_ptr<Policy> plateau(const Params& p);       // plateau.cpp

// Shared validation: a learning rate (>= 0) and a positive step count.
double rate(const Params& p, std::string_view key);
double rate(const Params& p, std::string_view key, double fallback);
int64_t positive_steps(const Params& p, std::string_view key);

}  // namespace cyclone::schedulers::factories
