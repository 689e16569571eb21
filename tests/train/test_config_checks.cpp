// What ./bin/train's config reader refuses before a run starts: phase names that are not one
// folder each, policies and optimizer options the run would refuse later (after the data load,
// the range test or the earlier phases), keys given twice in JSON, a missing file, half an image
// size. Each refusal is a UsageError naming the file and the key path.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/test_util.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/run_config.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;

template <class F>
std::string usage_error_of(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.message();
  }
  ADD_FAILURE() << "no UsageError";
  return "";
}

void expect_parts(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& p : parts)
    EXPECT_NE(message.find(p), std::string::npos) << "'" << p << "' not in: " << message;
}

const char* kData = R"("dataset": {"name": "mnist"})";

std::string with_phases(const std::string& phases) {
  return std::string("{") + kData + R"(, "trainer": {"phases": [)" + phases + "]}}";
}

std::string phase(const std::string& name_field) {
  return "{" + name_field + R"("epochs": 1, "policy": {"policy": "constant", "lr": 0.01}})";
}

TEST(ConfigChecks, PhaseNamesAreDistinctPlainFolderNames) {
  const RunSpec ok = parse_run_config(
      with_phases(phase(R"("name": "head-1.a_b", )") + "," + phase("")), "run.json");
  ASSERT_EQ(ok.phases.size(), 2u);
  EXPECT_EQ(ok.phases[0].name, "head-1.a_b");
  EXPECT_EQ(ok.phases[1].name, "phase2");

  expect_parts(usage_error_of([] {
                 parse_run_config(
                     with_phases(phase(R"("name": "a", )") + "," + phase(R"("name": "a", )")),
                     "run.json");
               }),
               {"run.json: trainer.phases[1].name", "\"a\"", "trainer.phases[0]", "must differ"});
  // A default name counts too.
  expect_parts(usage_error_of([] {
                 parse_run_config(with_phases(phase(R"("name": "phase2", )") + "," + phase("")),
                                  "run.json");
               }),
               {"run.json: trainer.phases[1].name", "\"phase2\""});
  for (const char* bad : {"../../escape", "a/b", "", ".", "..", "x y", "/abs"}) {
    SCOPED_TRACE(bad);
    const std::string name = std::string(R"("name": ")") + bad + "\", ";
    expect_parts(usage_error_of([&] { parse_run_config(with_phases(phase(name)), "run.json"); }),
                 {"run.json: trainer.phases[0].name", "plain folder name"});
  }
}

TEST(ConfigChecks, JsonKeysGivenTwiceAreErrorsNamingLineAndPath) {
  expect_parts(usage_error_of([] {
                 parse_run_config(
                     "{\"dataset\": {\"name\": \"mnist\"},\n\"trainer\": {\n"
                     "  \"max_epochs\": 1,\n  \"max_epochs\": 3}}",
                     "run.json");
               }),
               {"run.json:4: trainer.max_epochs is given twice"});
  // Inside a list, and a key spelt with an escape.
  expect_parts(usage_error_of([] {
                 parse_run_config(with_phases(phase("") + ",\n" +
                                              R"({"epochs": 1, "policy": {"policy": "constant",)"
                                              "\n\"lr\": 0.1, \"l\\u0072\": 0.2}})"),
                                  "run.json");
               }),
               {"run.json:3: trainer.phases[1].policy.lr is given twice"});
  // The same key in two objects is fine.
  EXPECT_NO_THROW(
      parse_run_config(std::string("{") + kData + R"(, "policy": {"policy": "constant", "lr": 0.1},
                                    "trainer": {"optimizer": {"name": "sgd"}}})",
                       "run.json"));
}

}  // namespace
}  // namespace cyclone::train
