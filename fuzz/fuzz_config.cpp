// libFuzzer target: the run-config loader (train/run_config.h: YAML or JSON, microDL's schema and
// its aliases) and the schedule JSON (schedulers/policy.h), both of which users copy from others.
// The contract under test: any text either gives a RunSpec / a Policy or throws cyclone::Error
// (UsageError for configs; any other exception escapes and counts as a crash). A config that is
// accepted has its policy resolved and built as ./bin/train would, and the policy answers for a
// few steps.
//
// The first byte picks the reader: even -> the text as YAML, odd -> as JSON; and when it is 'P',
// the text is a schedule (make_policy) instead of a config.
//   build-fuzz/fuzz/cyclone_fuzz_config -max_total_time=60 tests/fuzz/config/corpus
#include <cstdint>
#include <string>

#include "cyclone/core/error.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/run.h"
#include "cyclone/train/run_config.h"
#include "fuzz_seeds.h"

using namespace cyclone;

namespace cyclone_fuzz {
int write_seeds(const std::string&) { return 0; }  // tests/fuzz/make_corpus.py writes them
}  // namespace cyclone_fuzz

namespace {

void exercise(const schedulers::Policy& p) {
  volatile double sink = 0;
  for (int64_t step : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{1000}, int64_t{1} << 40}) {
    sink = sink + p.lr(step);
    if (auto m = p.momentum(step)) sink = sink + *m;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] == 'P') {
    try {
      exercise(*schedulers::make_policy(text));
    } catch (const Error& e) {
      cyclone_fuzz::report(e.what());
    }
    return 0;
  }
  const char* origin = data[0] % 2 == 0 ? "fuzz.yml" : "fuzz.json";
  train::RunSpec spec;
  try {
    spec = train::parse_run_config(text, origin);
  } catch (const Error& e) {
    cyclone_fuzz::report(e.what());
    return 0;
  }
  try {
    const std::string policy = train::resolve_policy_json(spec.policy_json, 0.01, 100);
    exercise(*schedulers::make_policy(policy));
  } catch (const Error& e) {
    cyclone_fuzz::report(e.what());
  }
  return 0;
}
