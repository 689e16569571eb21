// ArgParser: every accepted spelling of every flag type, and the one-line message of every
// rejected one.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cyclone/train/cli.h"

namespace cyclone::train {
namespace {

// argv for a parse: "prog" followed by `args`.
class Args {
 public:
  Args(std::initializer_list<std::string> args) : strings_{"prog"} {
    strings_.insert(strings_.end(), args.begin(), args.end());
    for (const auto& s : strings_) ptrs_.push_back(s.c_str());
  }
  int argc() const { return static_cast<int>(ptrs_.size()); }
  const char* const* argv() const { return ptrs_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<const char*> ptrs_;
};

// The message of the UsageError `f` throws; a test failure when it throws none.
std::string usage_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const UsageError& e) {
    EXPECT_EQ(e.message().find('\n'), std::string::npos) << "not one line: " << e.message();
    return e.message();
  }
  ADD_FAILURE() << "expected a UsageError";
  return "";
}

struct Targets {
  std::string name = "default";
  bool flag = false;
  bool on = true;
  double rate = 0.5;
  int64_t count = 7;
  int small = 3;
  uint64_t seed = 42;
  std::optional<double> maybe;
  std::vector<double> list;
  std::string mode = "sgd";
};

ArgParser make(Targets& t) {
  ArgParser p("prog", "A test program.");
  p.add_flag("name", &t.name, "a string", "STR");
  p.add_flag("flag", &t.flag, "a boolean");
  p.add_flag("on", &t.on, "a boolean that defaults to true");
  p.add_flag("rate", &t.rate, "a double", "X", Bounds::greater_than(0));
  p.add_flag("count", &t.count, "an int64", "N");
  p.add_flag("small", &t.small, "an int", "N", Bounds::closed(0, 100));
  p.add_flag("seed", &t.seed, "a uint64");
  p.add_flag("maybe", &t.maybe, "an optional double", "LR");
  p.add_flag("list", &t.list, "a comma list", "X,Y,...", Bounds::closed_open(0, 1));
  p.add_choice("mode", &t.mode, {"sgd", "adam", "rmsprop"}, "a choice");
  return p;
}

// Parses `args` into fresh targets.
Targets parse(std::initializer_list<std::string> args) {
  Targets t;
  ArgParser p = make(t);
  Args a(args);
  EXPECT_TRUE(p.parse(a.argc(), a.argv()).empty());
  return t;
}

std::string parse_error(std::initializer_list<std::string> args) {
  return usage_error([&] { parse(args); });
}

TEST(CliTest, DefaultsWhenAbsent) {
  Targets t;
  ArgParser p = make(t);
  Args a({});
  EXPECT_TRUE(p.parse(a.argc(), a.argv()).empty());
  const Targets d;
  EXPECT_EQ(t.name, d.name);
  EXPECT_EQ(t.flag, d.flag);
  EXPECT_EQ(t.on, d.on);
  EXPECT_EQ(t.rate, d.rate);
  EXPECT_EQ(t.count, d.count);
  EXPECT_EQ(t.small, d.small);
  EXPECT_EQ(t.seed, d.seed);
  EXPECT_FALSE(t.maybe.has_value());
  EXPECT_TRUE(t.list.empty());
  EXPECT_EQ(t.mode, d.mode);
  EXPECT_FALSE(p.help_requested());
  for (const char* n :
       {"name", "flag", "on", "rate", "count", "small", "seed", "maybe", "list", "mode"})
    EXPECT_FALSE(p.was_set(n)) << n;
}

TEST(CliTest, EqualsAndSpaceSyntaxes) {
  for (const bool equals : {true, false}) {
    SCOPED_TRACE(equals ? "--flag=value" : "--flag value");
    const auto p = [&](const std::string& flag, const std::string& value) {
      return equals ? parse({"--" + flag + "=" + value}) : parse({"--" + flag, value});
    };
    EXPECT_EQ(p("name", "hello world").name, "hello world");
    EXPECT_EQ(p("name", "a=b").name, "a=b");
    EXPECT_EQ(p("rate", "0.125").rate, 0.125);
    EXPECT_EQ(p("rate", "1e-4").rate, 1e-4);
    EXPECT_EQ(p("count", "-12").count, -12);
    EXPECT_EQ(p("count", "9223372036854775807").count, INT64_MAX);
    EXPECT_EQ(p("small", "100").small, 100);
    EXPECT_EQ(p("seed", "18446744073709551615").seed, UINT64_MAX);
    EXPECT_EQ(p("maybe", "0.3").maybe.value_or(-1), 0.3);
    EXPECT_EQ(p("list", "0.85,0.9,0.95").list, (std::vector<double>{0.85, 0.9, 0.95}));
    EXPECT_EQ(p("mode", "adam").mode, "adam");
  }
}

TEST(CliTest, SpaceSyntaxTakesNegativeNumbers) {
  EXPECT_EQ(parse({"--count", "-3"}).count, -3);
  EXPECT_EQ(parse({"--name", "-"}).name, "-");
  EXPECT_EQ(parse_error({"--rate", "-1"}), "--rate must be > 0, got -1");
}

TEST(CliTest, EmptyStringValue) {
  EXPECT_EQ(parse({"--name="}).name, "");
  EXPECT_EQ(parse({"--name", ""}).name, "");
}

TEST(CliTest, Booleans) {
  EXPECT_TRUE(parse({"--flag"}).flag);
  EXPECT_TRUE(parse({"--flag=true"}).flag);
  EXPECT_TRUE(parse({"--flag=1"}).flag);
  EXPECT_FALSE(parse({"--flag=false"}).flag);
  EXPECT_FALSE(parse({"--flag=0"}).flag);
  EXPECT_FALSE(parse({"--on=false"}).on);
  EXPECT_FALSE(parse({"--no_on"}).on);
  EXPECT_FALSE(parse({"--flag", "--no_flag"}).flag);
  EXPECT_TRUE(parse({"--no_flag", "--flag"}).flag);
  EXPECT_EQ(parse_error({"--flag=yes"}), "--flag: 'yes' is not a boolean (true|false|1|0)");
  EXPECT_EQ(parse_error({"--flag="}), "--flag: '' is not a boolean (true|false|1|0)");
  EXPECT_EQ(parse_error({"--no_flag=true"}), "--no_flag takes no value");
  // --no_ only negates booleans.
  EXPECT_EQ(parse_error({"--no_rate"}), "unknown flag '--no_rate'");

  // A bare boolean never swallows the next argument.
  Targets t;
  ArgParser p = make(t);
  Args a({"--flag", "file.txt"});
  EXPECT_EQ(p.parse(a.argc(), a.argv()), std::vector<std::string>{"file.txt"});
  EXPECT_TRUE(t.flag);
}

TEST(CliTest, LastValueWins) {
  EXPECT_EQ(parse({"--rate=1", "--rate", "2"}).rate, 2);
  EXPECT_EQ(parse({"--list=0.1,0.2", "--list=0.3"}).list, std::vector<double>{0.3});
}

TEST(CliTest, IntegersAreStrict) {
  EXPECT_EQ(parse_error({"--count=abc"}), "--count: 'abc' is not an integer");
  EXPECT_EQ(parse_error({"--count=2.5"}), "--count: '2.5' is not an integer");
  EXPECT_EQ(parse_error({"--count=1e3"}), "--count: '1e3' is not an integer");
  EXPECT_EQ(parse_error({"--count=12abc"}), "--count: '12abc' is not an integer");
  EXPECT_EQ(parse_error({"--count= 5"}), "--count: ' 5' is not an integer");
  EXPECT_EQ(parse_error({"--count="}), "--count: '' is not an integer");
  EXPECT_EQ(parse_error({"--count=9223372036854775808"}),
            "--count: '9223372036854775808' is out of range");
  EXPECT_EQ(parse_error({"--small=3000000000"}), "--small: '3000000000' is out of range");
  EXPECT_EQ(parse_error({"--seed=-1"}), "--seed: '-1' is not a non-negative integer");
  EXPECT_EQ(parse_error({"--seed=18446744073709551616"}),
            "--seed: '18446744073709551616' is out of range");
  EXPECT_EQ(parse({"--count=+5"}).count, 5);
}

TEST(CliTest, NumbersAreStrict) {
  EXPECT_EQ(parse_error({"--rate=abc"}), "--rate: 'abc' is not a number");
  EXPECT_EQ(parse_error({"--rate=0.1x"}), "--rate: '0.1x' is not a number");
  EXPECT_EQ(parse_error({"--rate=inf"}), "--rate: 'inf' is not a number");
  EXPECT_EQ(parse_error({"--rate=nan"}), "--rate: 'nan' is not a number");
  EXPECT_EQ(parse_error({"--rate=0x10"}), "--rate: '0x10' is not a number");
  EXPECT_EQ(parse_error({"--rate="}), "--rate: '' is not a number");
  EXPECT_EQ(parse_error({"--rate=1e999"}), "--rate: '1e999' is out of range");
  EXPECT_EQ(parse_error({"--maybe=x"}), "--maybe: 'x' is not a number");
  EXPECT_EQ(parse({"--rate=+.5"}).rate, 0.5);
  EXPECT_EQ(parse({"--rate=3"}).rate, 3);
}

TEST(CliTest, CommaLists) {
  EXPECT_EQ(parse({"--list=0.5"}).list, std::vector<double>{0.5});
  EXPECT_EQ(parse({"--list", "0.1, 0.2 ,0.3"}).list, (std::vector<double>{0.1, 0.2, 0.3}));
  EXPECT_TRUE(parse({"--list="}).list.empty());
  EXPECT_EQ(parse_error({"--list=0.1,abc"}), "--list: 'abc' is not a number");
  EXPECT_EQ(parse_error({"--list=0.1,,0.2"}), "--list: '' is not a number");
  EXPECT_EQ(parse_error({"--list=0.1,"}), "--list: '' is not a number");
  EXPECT_EQ(parse_error({"--list=0.5,1.5"}), "--list must be in [0, 1), got 1.5");
}

TEST(CliTest, Choices) {
  EXPECT_EQ(parse({"--mode=rmsprop"}).mode, "rmsprop");
  EXPECT_EQ(parse_error({"--mode=adma"}),
            "--mode: 'adma' is not one of sgd|adam|rmsprop (did you mean adam?)");
  EXPECT_EQ(parse_error({"--mode=lbfgs"}), "--mode: 'lbfgs' is not one of sgd|adam|rmsprop");
}

TEST(CliTest, Bounds) {
  EXPECT_EQ(parse_error({"--rate=0"}), "--rate must be > 0, got 0");
  EXPECT_EQ(parse_error({"--small=101"}), "--small must be in [0, 100], got 101");
  EXPECT_EQ(parse_error({"--small=-1"}), "--small must be in [0, 100], got -1");
  EXPECT_EQ(parse({"--small=0"}).small, 0);

  EXPECT_EQ(Bounds::greater_than(0).describe(), "> 0");
  EXPECT_EQ(Bounds::at_least(1).describe(), ">= 1");
  EXPECT_EQ(Bounds::closed_open(0, 1).describe(), "in [0, 1)");
  EXPECT_EQ(Bounds::open_closed(0, 1).describe(), "in (0, 1]");
  EXPECT_EQ(Bounds{}.describe(), "finite");
  EXPECT_TRUE(Bounds::closed_open(0, 1).contains(0));
  EXPECT_FALSE(Bounds::closed_open(0, 1).contains(1));
  EXPECT_FALSE(Bounds::open_closed(0, 1).contains(0));
  EXPECT_TRUE(Bounds::open_closed(0, 1).contains(1));
  EXPECT_EQ(usage_error([] { check_bounds("gamma", 1.5, Bounds::open_closed(0, 1)); }),
            "--gamma must be in (0, 1], got 1.5");
}

TEST(CliTest, UnknownFlagSuggestsTheClosest) {
  EXPECT_EQ(parse_error({"--raet=1"}), "unknown flag '--raet' (did you mean --rate?)");
  EXPECT_EQ(parse_error({"--seeds", "1"}), "unknown flag '--seeds' (did you mean --seed?)");
  EXPECT_EQ(parse_error({"--coutn"}), "unknown flag '--coutn' (did you mean --count?)");
  EXPECT_EQ(parse_error({"--zzzzzzzz"}), "unknown flag '--zzzzzzzz'");
  EXPECT_EQ(parse_error({"-rate=1"}), "unknown flag '-rate=1' (did you mean --rate?)");
  EXPECT_EQ(parse_error({"-x"}), "unknown flag '-x'");

  const std::vector<std::string> names = {"lr_min", "lr_max", "num_learning_batches", "lr_mode"};
  EXPECT_EQ(closest_match("lr_mn", names), "lr_min");
  EXPECT_EQ(closest_match("lr_mxa", names), "lr_max");
  EXPECT_EQ(closest_match("num_learn", names), "num_learning_batches");  // unique prefix
  EXPECT_EQ(closest_match("batch", names), "");
}

TEST(CliTest, MissingValue) {
  EXPECT_EQ(parse_error({"--rate"}), "--rate needs a value");
  EXPECT_EQ(parse_error({"--rate", "--count=2"}), "--rate needs a value");
  EXPECT_EQ(parse_error({"--name"}), "--name needs a value");
  EXPECT_EQ(parse_error({"--list"}), "--list needs a value");
  EXPECT_EQ(parse_error({"--maybe"}), "--maybe needs a value");
}

TEST(CliTest, Help) {
  for (const std::string h : {"--help", "-h"}) {
    Targets t;
    ArgParser p = make(t);
    Args a({"--rate=2", h, "--bogus", "--count=abc"});
    EXPECT_TRUE(p.parse(a.argc(), a.argv()).empty());
    EXPECT_TRUE(p.help_requested());
    EXPECT_EQ(t.rate, 0.5) << "nothing is written once help is asked for";
  }
  // After "--", -h is an argument like any other.
  Targets t;
  ArgParser p = make(t);
  Args a({"--rate=2", "--", "-h", "--count=1"});
  EXPECT_EQ(p.parse(a.argc(), a.argv()), (std::vector<std::string>{"-h", "--count=1"}));
  EXPECT_FALSE(p.help_requested());
  EXPECT_EQ(t.rate, 2);
  EXPECT_EQ(t.count, 7);
  // A value given to help is said to be one, not called an unknown flag.
  EXPECT_EQ(parse_error({"--help=1"}), "--help takes no value (got '--help=1')");
  EXPECT_EQ(parse_error({"-h=yes"}), "-h takes no value (got '-h=yes')");
}

TEST(CliTest, PositionalArgumentsInOrder) {
  Targets t;
  ArgParser p = make(t);
  Args a({"a", "--rate=2", "b", "-", "--count", "4", "c"});
  EXPECT_EQ(p.parse(a.argc(), a.argv()), (std::vector<std::string>{"a", "b", "-", "c"}));
  EXPECT_EQ(t.count, 4);
}

TEST(CliTest, WasSet) {
  Targets t;
  ArgParser p = make(t);
  Args a({"--rate=0.5", "--no_on", "--list="});
  p.parse(a.argc(), a.argv());
  EXPECT_TRUE(p.was_set("rate")) << "set even to its default";
  EXPECT_TRUE(p.was_set("on"));
  EXPECT_TRUE(p.was_set("list"));
  EXPECT_FALSE(p.was_set("count"));
  EXPECT_THROW(p.was_set("nope"), cyclone::Error);
  // A second parse starts afresh.
  Args b({});
  p.parse(b.argc(), b.argv());
  EXPECT_FALSE(p.was_set("rate"));
}

TEST(CliTest, ProgrammingErrorsAreNotUsageErrors) {
  std::string s;
  ArgParser p("prog", "");
  p.add_flag("name", &s, "a string");
  try {
    p.add_flag("name", &s, "again");
    ADD_FAILURE() << "duplicate flag accepted";
  } catch (const UsageError&) {
    ADD_FAILURE() << "a programming error is not a usage error";
  } catch (const cyclone::Error& e) {
    EXPECT_NE(e.message().find("--name registered twice"), std::string::npos) << e.message();
  }
  EXPECT_THROW(p.add_flag("Bad-Name", &s, ""), cyclone::Error);
  EXPECT_THROW(p.add_flag("help", &s, ""), cyclone::Error);
  EXPECT_THROW(p.add_flag("other", static_cast<std::string*>(nullptr), ""), cyclone::Error);
}

TEST(CliTest, HelpShowsEveryFlagWithItsDefaultInAlignedColumns) {
  Targets t;
  t.maybe = std::nullopt;
  ArgParser p = make(t);
  p.set_epilog("Exit status: 0 ok.");
  const std::string h = p.help();
  EXPECT_EQ(h.rfind("usage: prog [flags]\n\nA test program.\n\nflags:\n", 0), 0u) << h;
  EXPECT_NE(h.find("Exit status: 0 ok.\n"), std::string::npos);
  for (const std::string line :
       {"--name=STR", "a string (default: default)", "--flag ", "a boolean (default: false)",
        "--[no_]on ", "(default: true)", "--rate=X ", "(default: 0.5)", "--count=N ",
        "(default: 7)", "(default: 3)", "(default: 42)", "--maybe=LR ", "(default: unset)",
        "--list=X,Y,... ", "(default: empty)", "--mode=NAME ",
        "a choice {sgd|adam|rmsprop} (default: sgd)", "-h, --help"})
    EXPECT_NE(h.find(line), std::string::npos) << "missing '" << line << "' in\n" << h;

  // Every description starts in the same column.
  std::istringstream is(h);
  std::optional<size_t> column;
  for (std::string line; std::getline(is, line);) {
    if (line.rfind("  -", 0) != 0) continue;
    const size_t gap = line.find("  ", 2);
    ASSERT_NE(gap, std::string::npos) << line;
    const size_t col = line.find_first_not_of(' ', gap);
    if (!column) column = col;
    EXPECT_EQ(col, *column) << line;
  }
  EXPECT_TRUE(column.has_value());
}

TEST(CliTest, FormatNumberRoundTrips) {
  EXPECT_EQ(format_number(0.0005), "0.0005");
  EXPECT_EQ(format_number(10), "10");
  EXPECT_EQ(format_number(0.99994), "0.99994");
  EXPECT_EQ(format_number(-1), "-1");
  EXPECT_EQ(format_number(1e-6), "1e-06");
  EXPECT_EQ(format_number(1e-5), "0.00001");
  EXPECT_EQ(format_number(123456789012.5), "123456789012.5");
  EXPECT_EQ(format_number(0), "0");
  for (const double x : {0.1, 1.0 / 3, 2.0 / 3 * 1e-9, 6.02214076e23, 1e-4, 4000.0, 0.99994})
    EXPECT_EQ(std::stod(format_number(x)), x) << format_number(x);
  EXPECT_EQ(format_number(1e300), "1e+300");
  EXPECT_EQ(std::stod(format_number(0.1 + 0.2)), 0.1 + 0.2);
}

}  // namespace
}  // namespace cyclone::train
