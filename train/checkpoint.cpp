#include "cyclone/train/checkpoint.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <thread>
#include <vector>

#include "cyclone/core/file_util.h"
#include "cyclone/core/safetensors.h"

namespace cyclone::train {

namespace fs = std::filesystem;

namespace {

void check_ec(const std::error_code& ec, const std::string& what, const fs::path& p) {
  CYCLONE_CHECK(!ec, "checkpoint: cannot ", what, " '", p.string(), "': ", ec.message());
}

// An unfinished checkpoint's folder, removed. remove_all opens the folder to list it, which a
// limit on open files (ulimit -n) can refuse after it refused the write: then by name.
void remove_unfinished(const fs::path& tmp) {
  std::error_code ec;
  fs::remove_all(tmp, ec);
  if (!ec) return;
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"})
    fs::remove(tmp / f, ec);
  fs::remove(tmp, ec);
}

// Leftovers of a writer that was killed: ".<name>.tmp-<pid>" (an unfinished checkpoint) and
// ".<name>.old-<pid>" (a complete one moved aside; restored when its name is missing). Only
// entries of other processes: one writer per directory at a time.
void clean_leftovers(const fs::path& dir) {
  std::error_code ec;
  const std::string pid = std::to_string(::getpid());
  std::vector<fs::path> tmp, old;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.empty() || n[0] != '.' || n.ends_with("-" + pid) || n.ends_with("." + pid)) continue;
    // (".latest.tmp.<pid>" is write_file_atomic's temporary file.)
    if (n.find(".tmp-") != std::string::npos || n.find(".tmp.") != std::string::npos)
      tmp.push_back(e.path());
    if (n.find(".old-") != std::string::npos) old.push_back(e.path());
  }
  for (const auto& p : tmp) fs::remove_all(p, ec);
  for (const auto& p : old) {
    const std::string n = p.filename().string();
    const fs::path name = dir / n.substr(1, n.find(".old-") - 1);
    if (!fs::exists(name, ec))
      fs::rename(p, name, ec);
    else
      fs::remove_all(p, ec);
  }
}

// Fault injection for the crash-consistency test (tests/train/test_crash_consistency.sh): a pause
// in the middle of writing a checkpoint, so that a SIGKILL lands there often.
void test_pause() {
  static const long ms = [] {
    const char* v = std::getenv("CYCLONE_TEST_CHECKPOINT_PAUSE_MS");
    return v ? std::strtol(v, nullptr, 10) : 0L;
  }();
  if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

std::string write_checkpoint(const std::string& parent, const std::string& name,
                             const Module& model, const optim::Optimizer& optimizer,
                             const std::string& trainer_json) {
  CYCLONE_CHECK(!name.empty() && name.find('/') == std::string::npos && name[0] != '.',
                "checkpoint: bad name '", name, "'");
  std::error_code ec;
  const fs::path dir(parent);
  make_directories(dir.string());
  clean_leftovers(dir);
  const fs::path final_dir = dir / name;
  const fs::path tmp = dir / ("." + name + ".tmp-" + std::to_string(::getpid()));
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  check_ec(ec, "create the directory", tmp);
  try {
    model.save((tmp / "model.safetensors").string());
    test_pause();
    optimizer.save((tmp / "optimizer.safetensors").string());
    write_file_atomic((tmp / "trainer.json").string(), trainer_json);
  } catch (...) {
    remove_unfinished(tmp);
    throw;
  }
  // Replace an older checkpoint of the same name: move it aside first, so that at every moment
  // one complete copy exists under some name.
  const fs::path old = dir / ("." + name + ".old-" + std::to_string(::getpid()));
  const bool had_old = fs::exists(final_dir);
  if (had_old) {
    fs::rename(final_dir, old, ec);
    check_ec(ec, "move aside", final_dir);
  }
  fs::rename(tmp, final_dir, ec);
  if (ec) {
    if (had_old) fs::rename(old, final_dir);
    remove_unfinished(tmp);
    check_ec(ec, "rename into place", final_dir);
  }
  write_file_atomic((dir / "latest").string(), name + "\n");
  if (had_old) fs::remove_all(old, ec);
  return final_dir.string();
}

std::string resolve_checkpoint(const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  CYCLONE_CHECK(fs::exists(p, ec), "checkpoint '", path,
                "' does not exist (give a checkpoint folder, or the checkpoints folder holding "
                "'latest')");
  CYCLONE_CHECK(fs::is_directory(p, ec), "checkpoint '", path, "' is not a directory");
  if (fs::exists(p / "trainer.json", ec)) return p.string();
  if (fs::exists(p / "latest", ec)) clean_leftovers(p);
  if (fs::exists(p / "latest", ec)) {
    const fs::path latest = p / "latest";
    const std::string instead =
        "; give a checkpoint folder itself, such as " + (p / "epoch-0001").string();
    CYCLONE_CHECK(fs::is_regular_file(latest, ec), "checkpoint: '", latest.string(),
                  "' is not a file (it names the newest checkpoint folder beside it)", instead);
    const std::string name = latest_checkpoint_name(path);
    // A checkpoint's own name (epoch-0003, step-00000400, interrupted): one printable path
    // component. Anything else is damage, and quoting it would print its bytes to the terminal.
    const bool plausible = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
                           std::all_of(name.begin(), name.end(),
                                       [](char ch) { return ch > ' ' && ch < 0x7f && ch != '/'; });
    CYCLONE_CHECK(plausible, "checkpoint: '", latest.string(),
                  "' is damaged: it should hold the name of a checkpoint folder beside it, such as "
                  "epoch-0001 (",
                  name.size(), " bytes that are not one)", instead);
    const fs::path c = p / name;
    CYCLONE_CHECK(!name.empty() && fs::exists(c / "trainer.json", ec), "checkpoint: '",
                  (p / "latest").string(), "' names '", name,
                  "', which is not a complete checkpoint");
    return c.string();
  }
  CYCLONE_THROW("'", path, "' holds no checkpoint (neither trainer.json nor a 'latest' file)");
}

void throw_damaged_checkpoint(const std::string& dir, const std::string& what) {
  CYCLONE_THROW("checkpoint ", dir, " is damaged: ", what,
                "; resume from another checkpoint beside it, or start a new run");
}

void check_checkpoint_files(const std::string& dir) {
  for (const char* f : {"model.safetensors", "optimizer.safetensors", "trainer.json"}) {
    std::error_code ec;
    const fs::path p = fs::path(dir) / f;
    if (!fs::is_regular_file(p, ec))
      throw_damaged_checkpoint(dir,
                               p.string() + (fs::exists(p, ec) ? " is not a file" : " is missing"));
  }
  for (const char* f : {"model.safetensors", "optimizer.safetensors"}) {
    try {
      read_safetensors_header((fs::path(dir) / f).string());
    } catch (const Error& e) {
      throw_damaged_checkpoint(dir, e.message());
    }
  }
}

std::string read_checkpoint(const std::string& path, Module& model, optim::Optimizer& optimizer) {
  const fs::path dir(resolve_checkpoint(path));
  check_checkpoint_files(dir.string());
  const std::string trainer_json = read_file((dir / "trainer.json").string(), 64u << 20);
  model.load((dir / "model.safetensors").string(), /*strict=*/true);
  optimizer.load((dir / "optimizer.safetensors").string());
  return trainer_json;
}

std::string latest_checkpoint_name(const std::string& parent) {
  const fs::path file = fs::path(parent) / "latest";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return "";
  std::string s = read_file(file.string(), 4096);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

void remove_superseded_checkpoint(const std::string& parent, const std::string& name) {
  if (latest_checkpoint_name(parent) == name) return;
  std::error_code ec;
  fs::remove_all(fs::path(parent) / name, ec);
}

void prune_checkpoints(const std::string& parent, const std::string& prefix, int keep) {
  if (keep <= 0) return;
  std::error_code ec;
  const fs::path dir(parent);
  const std::string latest = latest_checkpoint_name(parent);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && n.rfind(prefix, 0) == 0) names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i + keep < names.size(); ++i)
    if (names[i] != latest) fs::remove_all(dir / names[i], ec);
}

}  // namespace cyclone::train
