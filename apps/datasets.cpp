// datasets: the datasets Cyclone knows, where it looks for them, and fetching / verifying them
// (data/fetch.h). best_lr and train fetch what they need by themselves; this is for doing it ahead
// of time, checking a copy, or seeing the sources.
//
//   ./bin/datasets list [NAME...] [--data_dir D]   each dataset (or those named), its directory,
//                                            present / verified (--data_dir: one dataset's)
//   ./bin/datasets fetch cifar10 mnist [--data_dir D] [--manifest F]   tries each; exit 1 when
//                                            one failed (a line for each)
//   ./bin/datasets verify mnist [--data_dir D]    exit 1 when a file is missing or changed
//   ./bin/datasets manifest [--manifest F]   the sources as JSON (the format --manifest reads)
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "cyclone/core/file_util.h"
#include "cyclone/data/fetch.h"
#include "cyclone/data/manifest.h"
#include "cyclone/data/registry.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/startup.h"

namespace {

using namespace cyclone;
using namespace cyclone::data;

std::string dir_of(const std::string& name, const std::string& data_dir) {
  return data_dir.empty() ? dataset_info(name).default_dir : data_dir;
}

// An error line on stderr after the lines already on stdout (which a pipe buffers).
void print_error(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "datasets: %s\n", message.c_str());
}

// What verification found wrong in one dataset.
struct Problems {
  bool any = false;
  bool only_missing = true;  // every file found wrong is simply not there
};

// Prints the verification of one dataset's files (as verify_dataset found them); any file not ok
// (nor unverifiable) is a problem.
Problems report(const std::vector<VerifiedFile>& files) {
  Problems problems;
  for (const VerifiedFile& v : files) {
    std::printf("  %-28s %-10s %s\n", v.name.c_str(), v.status.c_str(), v.detail.c_str());
    if (v.status == "ok" || v.status == "unverified") continue;
    problems.any = true;
    problems.only_missing = problems.only_missing && v.status == "missing";
  }
  return problems;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cyclone::train;
  prepare_for_limits("datasets");
  exit_if_blas_cannot_run("datasets", /*multiplies=*/false);
  return run_program("datasets", [&] {
    std::string data_dir, manifest;
    ArgParser p("datasets",
                "Lists, fetches and verifies the datasets Cyclone knows.\n"
                "usage: datasets list [NAME...] | fetch NAME... | verify NAME... | manifest  "
                "[flags]");
    p.add_flag("data_dir", &data_dir, "the dataset directory (one dataset); empty: its default",
               "DIR");
    p.add_flag("manifest", &manifest,
               "a manifest of sources replacing the built-in one (also $CYCLONE_DATASET_MANIFEST)",
               "FILE");
    const std::vector<std::string> args = p.parse(argc, argv);
    if (p.help_requested()) {
      std::printf("%s", p.help().c_str());
      return 0;
    }
    if (args.empty()) throw UsageError("a command is needed: list, fetch, verify or manifest");
    const std::string& cmd = args[0];
    if (cmd != "list" && cmd != "fetch" && cmd != "verify" && cmd != "manifest")
      throw UsageError("unknown command '" + cmd + "' (list, fetch, verify or manifest)");
    const std::vector<std::string> names(args.begin() + 1, args.end());
    if (cmd == "manifest" && !names.empty()) throw UsageError("manifest takes no dataset names");
    if (cmd != "list" && cmd != "manifest" && names.empty())
      throw UsageError(cmd + " needs one or more dataset names");
    for (const std::string& n : names) {
      try {
        dataset_info(n);
      } catch (const Error& e) {
        throw UsageError(e.message());
      }
      if (n == "synthetic")
        throw UsageError("synthetic is generated in memory and has no files to " + cmd);
    }
    if (!data_dir.empty() && names.size() != 1)
      throw UsageError("--data_dir names one dataset's directory; give one dataset with it (" +
                       cmd + " NAME --data_dir DIR)");
    // A manifest that cannot be read or parsed is refused before anything is printed or fetched.
    if (!manifest.empty()) {
      try {
        (void)active_manifest(manifest);
      } catch (const Error& e) {
        throw UsageError("--manifest: " + e.message());
      }
    }
    if (cmd == "manifest") {
      std::printf("%s\n", manifest_json(active_manifest(manifest)).c_str());
      return 0;
    }
    const std::string dir_flag = data_dir.empty() ? "" : " --data_dir " + shell_quote(data_dir);
    if (cmd == "list") {
      for (const DatasetInfo& info : dataset_infos()) {
        if (info.name == "synthetic") continue;
        if (!names.empty() && std::find(names.begin(), names.end(), info.name) == names.end())
          continue;
        const std::string dir = dir_of(info.name, data_dir);
        const bool present = dataset_present(info.name, dir);
        std::printf("%-14s %-40s %s\n", info.name.c_str(), dir.c_str(),
                    present ? "present" : "missing");
        const std::vector<VerifiedFile> files = verify_dataset(info.name, dir, manifest);
        if (present) {
          (void)report(files);
        } else {
          // Named as verify names them: as they are on disk, or as a fetch would write them.
          std::string needs;
          for (const VerifiedFile& v : files)
            if (v.status == "missing") needs += (needs.empty() ? "" : ", ") + v.name;
          std::printf("  needs %s (datasets fetch %s%s)\n", needs.c_str(), info.name.c_str(),
                      dir_flag.c_str());
        }
      }
      return 0;
    }
    if (cmd == "fetch") {
      // Every dataset named is tried; each failure is its own line, and any makes the exit 1.
      bool all_good = true;
      for (const std::string& n : names) {
        const std::string dir = dir_of(n, data_dir);
        FetchOptions fo;
        fo.manifest = manifest;
        try {
          const bool was_present = dataset_present(n, dir);
          fetch_dataset(n, dir, fo);
          // Present is not whole: a truncated .gz fetched earlier would fail the next run's load.
          if (was_present)
            for (const VerifiedFile& v : verify_dataset(n, dir, manifest))
              if (v.status == "mismatch" || v.status == "unreadable")
                throw Error("already present in " + dir + ", but " + v.name + " is damaged (" +
                            v.status + (v.detail.empty() ? "" : ": " + v.detail) +
                            "): remove it and fetch again");
          std::printf("%s: %s in %s\n", n.c_str(), was_present ? "already present" : "fetched",
                      dir.c_str());
        } catch (const Error& e) {
          const bool named = e.message().rfind(n + ":", 0) == 0;
          print_error(named ? e.message() : n + ": " + e.message());
          all_good = false;
        }
      }
      return all_good ? 0 : 1;
    }
    // verify
    std::string wrong;  // the datasets with a problem
    bool only_missing = true;
    for (const std::string& n : names) {
      const std::string dir = dir_of(n, data_dir);
      std::printf("%s (%s)\n", n.c_str(), dir.c_str());
      const Problems problems = report(verify_dataset(n, dir, manifest));
      if (!problems.any) continue;
      wrong += " " + n;
      only_missing = only_missing && problems.only_missing;
    }
    if (wrong.empty()) return 0;
    if (only_missing)
      print_error("verification failed: files are missing; run datasets fetch" + wrong + dir_flag);
    else
      print_error(
          "verification failed (a file is missing, changed or unreadable); fetch it again: "
          "remove it and run datasets fetch" +
          wrong + dir_flag);
    return 1;
  });
}
