// lr_schedule: prints a learning-rate policy step by step, to check a schedule before training
// with it (DESIGN.md: policies are data, printable by lr_schedule).
//
//   ./bin/lr_schedule --spec '<json>' --steps N [--format csv|json] [--plot out.svg]
//   ./bin/lr_schedule --spec @run_policy.json --steps 1000 --plot schedule.svg
//
// CSV: "step,lr,momentum" then one row per step t = 0 … N−1, every number printed so that it
// reads back as the same double. momentum is the policy's own where it schedules one, else the
// spec's "momentum" field (default 0.9), the optimizer's constant momentum. JSON: the policy with
// every default filled in, the values, and the SGDR restart steps. Exit 2 (one line on stderr)
// for a bad flag or spec (a --plot path in a missing or read-only directory, or one that is a
// directory, pipe or device, included: checked before anything is printed; a symlink is written
// through), 1 for a runtime failure such as a full disk while writing the plot.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "cyclone/core/error.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/plot.h"

namespace {

using cyclone::schedulers::Params;

constexpr const char* kUsage =
    "usage: lr_schedule --spec '<json>'|@file.json --steps N [--format csv|json] "
    "[--plot out.svg]\n"
    "Prints the learning rate (and momentum) a policy gives at steps 0 .. N-1.\n"
    "Policies: ";

struct Options {
  std::string spec;
  int64_t steps = -1;
  std::string format = "csv";
  std::string plot;
};

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "lr_schedule: %s\n", msg.c_str());
  std::exit(2);
}

int64_t parse_steps(const std::string& v) {
  char* end = nullptr;
  errno = 0;
  const long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno != 0 || n < 1 || n > 100000000) {
    usage_error("--steps: expected an integer in [1, 100000000], got '" + v + "'");
  }
  return n;
}

// A plot that cannot be written is found before the schedule is printed, not after.
void check_plot_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // A symlink is written through (write_file_atomic): what matters is the file it leads to.
  const fs::file_status st = fs::status(path, ec);
  if (fs::is_directory(st)) usage_error("--plot " + path + ": is a directory");
  if (fs::exists(st) && !fs::is_regular_file(st))
    usage_error("--plot " + path +
                ": is not a regular file (a device, pipe or socket); give the path of a file to "
                "create or replace");
  const fs::path real = fs::exists(st) ? fs::canonical(path, ec) : fs::path(path);
  const fs::path parent = real.parent_path().empty() ? fs::path(".") : real.parent_path();
  if (!fs::is_directory(parent, ec))
    usage_error("--plot " + path + ": no such directory '" + parent.string() + "'");
  if (::access(parent.c_str(), W_OK | X_OK) != 0)
    usage_error("--plot " + path + ": cannot write in '" + parent.string() +
                "': " + std::strerror(errno));
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    if (a == "--help" || a == "-h") {
      std::string names;
      for (const auto& n : cyclone::schedulers::policy_names())
        names += (names.empty() ? "" : ", ") + n;
      std::printf("%s%s\n", kUsage, names.c_str());
      std::exit(0);
    }
    if (a.rfind("--", 0) != 0) usage_error("unexpected argument '" + a + "'");
    const auto eq = a.find('=');
    if (eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    if (a != "--spec" && a != "--steps" && a != "--format" && a != "--plot") {
      usage_error("unknown flag " + a + " (see --help)");
    }
    if (eq == std::string::npos) {
      if (i + 1 >= argc) usage_error("flag " + a + " needs a value");
      value = argv[++i];
    }
    if (a == "--spec")
      o.spec = value;
    else if (a == "--steps")
      o.steps = parse_steps(value);
    else if (a == "--format")
      o.format = value;
    else
      o.plot = value;
  }
  if (o.spec.empty()) usage_error("--spec is required (a JSON object or @file.json)");
  if (o.steps < 0) usage_error("--steps is required");
  if (o.format != "csv" && o.format != "json") {
    usage_error("--format: expected csv or json, got '" + o.format + "'");
  }
  if (!o.plot.empty()) check_plot_path(o.plot);
  if (o.spec[0] == '@') {
    const std::string path = o.spec.substr(1);
    std::ifstream f(path, std::ios::binary);
    if (!f) usage_error("--spec: cannot read " + path);
    std::ostringstream text;
    text << f.rdbuf();
    o.spec = text.str();
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  namespace sch = cyclone::schedulers;
  std::unique_ptr<sch::Policy> policy;
  double momentum = 0;
  try {
    const Params spec = Params::parse(o.spec);
    policy = sch::make_policy(spec);
    momentum = sch::spec_momentum(spec);
  } catch (const cyclone::Error& e) {
    usage_error(e.message());
  }
  try {
    std::vector<double> steps, lrs, moms;
    bool scheduled = false;
    for (int64_t t = 0; t < o.steps; ++t) {
      const sch::Value v = policy->value(t);
      steps.push_back(static_cast<double>(t));
      lrs.push_back(v.lr);
      moms.push_back(v.momentum.value_or(momentum));
      scheduled |= v.momentum.has_value();
    }
    if (o.format == "csv") {
      std::string out = "step,lr,momentum\n";
      for (int64_t t = 0; t < o.steps; ++t) {
        out += std::to_string(t) + ',' + sch::format_number(lrs[t]) + ',' +
               sch::format_number(moms[t]) + '\n';
      }
      std::fwrite(out.data(), 1, out.size(), stdout);
    } else {
      Params doc;
      doc.set_object("policy", policy->params())
          .set_integer("steps", o.steps)
          .set_numbers("lr", lrs)
          .set_numbers("momentum", moms)
          .set_boolean("momentum_scheduled", scheduled)
          .set_integers("restarts", policy->restarts(o.steps));
      std::printf("%s\n", doc.dump(1).c_str());
    }
    if (!o.plot.empty()) {
      cyclone::train::Plot plot;
      plot.title = policy->name() + " policy";
      plot.x_label = "step";
      plot.left_label = "learning rate";
      plot.right_label = "momentum";
      plot.x = steps;
      plot.series.push_back({"lr", lrs, "#1f77b4", false});
      plot.series.push_back(
          {scheduled ? "momentum" : "momentum (constant)", moms, "#d62728", true});
      cyclone::train::write_svg(plot, o.plot);
    }
  } catch (const std::exception& e) {
    const auto* ce = dynamic_cast<const cyclone::Error*>(&e);
    std::fprintf(stderr, "lr_schedule: %s\n", ce ? ce->message().c_str() : e.what());
    return 1;
  }
  return 0;
}
