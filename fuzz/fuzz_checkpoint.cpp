// libFuzzer target: resuming from a checkpoint (train/checkpoint.h, Trainer::resume), whose three
// files someone else may have written or a crash may have damaged: trainer.json (where the run
// is, its random streams, policy, early-stopping state), model.safetensors and
// optimizer.safetensors (tensors plus the optimizer's JSON in the metadata). The contract under
// test: any content either resumes, after which training one more step works, or throws
// cyclone::Error (any other exception escapes and counts as a crash); nothing allocates more than
// the files justify.
//
// One input holds the three files, in that order, separated by kSeparator (a missing part: that
// file is absent). Seeds are real checkpoints of the small problem below:
//   cyclone_fuzz_checkpoint --write-seeds tests/fuzz/checkpoint/corpus     (replay build)
//   build-fuzz/fuzz/cyclone_fuzz_checkpoint -max_total_time=60 tests/fuzz/checkpoint/corpus
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cyclone/core/error.h"
#include "cyclone/core/file_util.h"
#include "cyclone/data/loader.h"
#include "cyclone/data/synthetic.h"
#include "cyclone/models/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/trainer.h"
#include "fuzz_seeds.h"

namespace fs = std::filesystem;
using namespace cyclone;

namespace {

constexpr std::string_view kSeparator = "\n--cyclone-fuzz-next-file--\n";
const char* const kFiles[] = {"trainer.json", "model.safetensors", "optimizer.safetensors"};

// A two-class problem on 1x2x2 images: an MLP with dropout (two random streams to restore), Adam
// (three state slots per parameter) and 1cycle (momentum in the policy state).
struct Rig {
  static const data::Dataset& train_set() {
    static const data::Dataset d = [] {
      data::SyntheticOptions so;
      so.channels = 1;
      so.height = so.width = 2;
      so.num_classes = 2;
      so.train_size = 8;
      so.test_size = 4;
      so.seed = 3;
      return data::make_synthetic(so, "train");
    }();
    return d;
  }

  std::shared_ptr<Generator> dropout_gen = std::make_shared<Generator>(dropout_seed(1));
  std::shared_ptr<Module> model;
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<schedulers::Policy> policy = schedulers::make_policy(
      R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 8, "base_momentum": 0.85,
          "max_momentum": 0.95})");
  std::unique_ptr<data::DataLoader> loader;
  std::unique_ptr<train::Trainer> trainer;

  explicit Rig(const std::string& checkpoint_dir = "") {
    ModelOptions mo;
    mo.in_channels = 1;
    mo.height = mo.width = 2;
    mo.num_classes = 2;
    mo.dropout = 0.25;
    mo.seed = 1;
    mo.dropout_generator = dropout_gen;
    model = make_model("mlp-3", mo);
    opt = optim::make_optimizer("adam", model->named_parameters(), R"({"lr": 0.01})");
    data::LoaderOptions lo;
    lo.batch_size = 4;
    lo.seed = 11;
    lo.workers = 0;
    loader = std::make_unique<data::DataLoader>(train_set(), lo);
    train::TrainerOptions o;
    o.epochs = 4;
    o.num_classes = 2;
    o.progress_mode = -2;
    o.tensorboard = false;
    o.checkpoint_dir = checkpoint_dir;
    o.checkpoint_every = 1;
    o.keep_checkpoints = 0;
    o.generators = {dropout_gen};
    trainer = std::make_unique<train::Trainer>(*model, *opt, *policy, *loader, nullptr, o);
  }
};

// A directory of this process's own, removed at exit. Held by a pointer that is never freed, so
// that the exit handler still finds it after static destructors have run.
const std::string& scratch_dir() {
  static const std::string* dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    fs::path d = fs::path(tmp && *tmp ? tmp : "/tmp") /
                 ("cyclone-fuzz-checkpoint-" + std::to_string(::getpid()));
    fs::create_directories(d);
    auto* held = new std::string(d.string());
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(scratch_dir(), ec);
    });
    return held;
  }();
  return *dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

namespace cyclone_fuzz {

// Checkpoints of the rig after each of its 4 epochs, each packed into one input.
int write_seeds(const std::string& out_dir) {
  const fs::path work = fs::path(scratch_dir()) / "seeds";
  fs::remove_all(work);
  Rig rig(work.string());
  const train::FitResult r = rig.trainer->fit();
  (void)r;
  fs::create_directories(out_dir);
  int n = 0;
  for (const auto& e : fs::directory_iterator(work)) {
    if (!e.is_directory() || !fs::exists(e.path() / "trainer.json")) continue;
    std::string packed;
    for (int i = 0; i < 3; ++i) {
      if (i) packed += kSeparator;
      packed += slurp(e.path() / kFiles[i]);
    }
    std::ofstream(fs::path(out_dir) / ("checkpoint_" + e.path().filename().string()),
                  std::ios::binary)
        << packed;
    ++n;
  }
  fs::remove_all(work);
  return n;
}

}  // namespace cyclone_fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const fs::path dir = fs::path(scratch_dir()) / "checkpoint";
  fs::create_directories(dir);
  size_t begin = 0;
  for (int i = 0; i < 3; ++i) {
    const fs::path file = dir / kFiles[i];
    if (begin == std::string_view::npos) {
      fs::remove(file);
      continue;
    }
    size_t end = input.find(kSeparator, begin);
    std::ofstream(file, std::ios::binary | std::ios::trunc)
        << input.substr(begin, end == std::string_view::npos ? end : end - begin);
    begin = end == std::string_view::npos ? end : end + kSeparator.size();
  }
  Rig rig;
  try {
    rig.trainer->resume(dir.string());
  } catch (const Error& e) {
    cyclone_fuzz::report(e.what());
    return 0;
  }
  // Resumed: whatever the files held (NaN weights, an epoch past the end, a step far ahead), one
  // more epoch of training either runs or stops with an Error, never crashes.
  try {
    rig.trainer->fit();
  } catch (const Error& e) {
    cyclone_fuzz::report(e.what());
  }
  return 0;
}
