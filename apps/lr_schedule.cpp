// lr_schedule: prints a learning-rate policy step by step, to check a schedule before training
// with it (DESIGN.md: policies are data, printable by lr_schedule).
//
//   ./bin/lr_schedule --spec '<json>' --steps N [--format csv|json] [--plot out.svg]
//   ./bin/lr_schedule --spec @run_policy.json --steps 1000 --plot schedule.svg
//
// Rows are streamed (10^8 steps need no more memory than 10), and --plot draws at most 16000
// points (each of 4000 buckets of steps: its first, last, lowest and highest rate). A --spec file
// is read up to 1 MiB.
// CSV: "step,lr,momentum" then one row per step t = 0 … N−1, every number printed so that it
// reads back as the same double. momentum is the policy's own where it schedules one, else the
// spec's "momentum" field (default 0.9), the optimizer's constant momentum. JSON: the policy with
// every default filled in, the values, and the SGDR restart steps. Exit 2 (one line on stderr)
// for a bad flag or spec (a --plot path in a missing or read-only directory, or one that is a
// directory, pipe or device, included: checked before anything is printed; a symlink is written
// through), 1 for a runtime failure such as a full disk while writing the plot.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/plot.h"
#include "cyclone/train/startup.h"

namespace {

using cyclone::schedulers::Params;

constexpr const char* kUsage =
    "usage: lr_schedule --spec '<json>'|@file.json --steps N [--format csv|json] "
    "[--plot out.svg]\n"
    "Prints the learning rate (and momentum) a policy gives at steps 0 .. N-1 (N up to 10^8,\n"
    "streamed); a spec file is at most 1 MiB; the plot draws at most 16000 points.\n"
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
  // The plot is SVG: under another extension (x.png) a viewer would refuse it or show nothing.
  if (fs::path(path).extension() != ".svg")
    usage_error("--plot " + path + ": the plot is an SVG drawing; name the file *.svg");
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

// A policy spec is a few hundred bytes: reading stops past 1 MiB (--spec @/dev/zero would
// otherwise read until memory runs out). Pipes (--spec @<(...)) are read like files.
std::string read_spec_file(const std::string& path) {
  constexpr size_t kMaxSpecBytes = size_t{1} << 20;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    usage_error("--spec @" + path + ": is a directory, not a JSON file");
  std::ifstream f(path, std::ios::binary);
  if (!f) usage_error("--spec: cannot read " + path + ": " + std::strerror(errno));
  std::string text(kMaxSpecBytes + 1, '\0');
  f.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(f.gcount()));
  if (text.size() > kMaxSpecBytes)
    usage_error("--spec @" + path +
                ": more than 1 MiB, too large for a policy spec (is it the right file?)");
  return text;
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
  if (o.spec[0] == '@') o.spec = read_spec_file(o.spec.substr(1));
  return o;
}

// The plot needs no more points than it has pixels: over a long schedule each bucket of steps
// keeps its first and last steps and those of its lowest and highest rate (restarts and spikes
// stay visible), so memory stays bounded whatever --steps.
constexpr int64_t kPlotBuckets = 4000;

struct PlotPoints {
  int64_t bucket = 1;
  std::vector<double> x, lr, momentum;
  struct Pt {
    int64_t t;
    double lr, momentum;
  };
  std::vector<Pt> pending;  // this bucket's first, lowest, highest and last

  explicit PlotPoints(int64_t steps) : bucket((steps + kPlotBuckets - 1) / kPlotBuckets) {}
  void add(int64_t t, double lr_t, double m_t) {
    if (t % bucket == 0) flush();
    const Pt p{t, lr_t, m_t};
    if (pending.empty()) {
      pending = {p, p, p, p};
      return;
    }
    if (lr_t < pending[1].lr) pending[1] = p;
    if (lr_t > pending[2].lr) pending[2] = p;
    pending[3] = p;
  }
  void flush() {
    std::sort(pending.begin(), pending.end(), [](const Pt& a, const Pt& b) { return a.t < b.t; });
    for (size_t i = 0; i < pending.size(); ++i) {
      if (i > 0 && pending[i].t == pending[i - 1].t) continue;
      x.push_back(static_cast<double>(pending[i].t));
      lr.push_back(pending[i].lr);
      momentum.push_back(pending[i].momentum);
    }
    pending.clear();
  }
};

}  // namespace

int main(int argc, char** argv) {
  cyclone::train::prepare_for_limits("lr_schedule");
  cyclone::train::exit_if_blas_cannot_run("lr_schedule", /*multiplies=*/false);
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
  // Streamed, row by row: 10^8 steps must not need gigabytes (only the plot keeps points).
  try {
    std::optional<PlotPoints> plot_points;
    if (!o.plot.empty()) plot_points.emplace(o.steps);
    bool scheduled = false;
    auto value_at = [&](int64_t t, double* lr, double* m) {
      const sch::Value v = policy->value(t);
      *lr = v.lr;
      *m = v.momentum.value_or(momentum);
      scheduled |= v.momentum.has_value();
    };
    // A refused write (a full disk, ulimit -f) ends the run at once, not after 10^8 more rows.
    auto check_stdout = [] {
      if (std::ferror(stdout))
        throw cyclone::Error("cannot write the schedule to stdout: " +
                             cyclone::errno_reason(errno));
    };
    double lr = 0, m = 0;
    if (o.format == "csv") {
      std::fputs("step,lr,momentum\n", stdout);
      for (int64_t t = 0; t < o.steps; ++t) {
        value_at(t, &lr, &m);
        const std::string row =
            std::to_string(t) + ',' + sch::format_number(lr) + ',' + sch::format_number(m) + '\n';
        if (std::fwrite(row.data(), 1, row.size(), stdout) != row.size()) check_stdout();
        if (plot_points) plot_points->add(t, lr, m);
      }
    } else {
      // The layout Params::dump(1) gives, its arrays written one number at a time.
      Params head;
      head.set_object("policy", policy->params()).set_integer("steps", o.steps);
      std::string text = head.dump(1);
      text.resize(text.rfind('}'));  // "{ ... "steps": N\n"
      while (!text.empty() && text.back() == '\n') text.pop_back();
      std::fputs(text.c_str(), stdout);
      for (const bool lr_pass : {true, false}) {
        std::fputs(lr_pass ? ",\n \"lr\": [" : ",\n \"momentum\": [", stdout);
        for (int64_t t = 0; t < o.steps; ++t) {
          value_at(t, &lr, &m);
          const std::string v = sch::format_number(lr_pass ? lr : m);
          if (std::fprintf(stdout, "%s\n  %s", t ? "," : "", v.c_str()) < 0) check_stdout();
          if (plot_points && lr_pass) plot_points->add(t, lr, m);
        }
        std::fputs("\n ]", stdout);
      }
      // The restarts streamed too: SGDR with one-step cycles restarts at every step.
      std::printf(",\n \"momentum_scheduled\": %s,\n \"restarts\": [",
                  scheduled ? "true" : "false");
      bool any = false;
      policy->for_each_restart(o.steps, [&any](int64_t s) {
        std::fprintf(stdout, "%s\n  %lld", any ? "," : "", static_cast<long long>(s));
        any = true;
      });
      std::fputs(any ? "\n ]\n}\n" : "]\n}\n", stdout);
    }
    std::fflush(stdout);
    check_stdout();
    if (plot_points) {
      plot_points->flush();
      cyclone::train::Plot plot;
      plot.title = policy->name() + " policy";
      plot.x_label = "step";
      plot.left_label = "learning rate";
      plot.right_label = "momentum";
      plot.x = std::move(plot_points->x);
      plot.series.push_back({"lr", std::move(plot_points->lr), "#1f77b4", false});
      plot.series.push_back({scheduled ? "momentum" : "momentum (constant)",
                             std::move(plot_points->momentum), "#d62728", true});
      cyclone::train::write_svg(plot, o.plot);
    }
  } catch (const std::exception& e) {
    const auto* ce = dynamic_cast<const cyclone::Error*>(&e);
    std::fprintf(stderr, "lr_schedule: %s\n", ce ? ce->message().c_str() : e.what());
    return 1;
  }
  return 0;
}
