#include "cyclone/dist/world.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "cyclone/dist/backends.h"

namespace cyclone::dist {

namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

double timeout_from_env() {
  const char* v = env("CYCLONE_DIST_TIMEOUT");
  if (!v) return 600;
  char* end = nullptr;
  const double s = std::strtod(v, &end);
  if (!(end && *end == '\0' && std::isfinite(s) && s > 0)) {
    const char* rank = env("OMPI_COMM_WORLD_RANK");
    throw Error(std::string("CYCLONE_DIST_TIMEOUT='") + v + "'" +
                (rank ? std::string(" on rank ") + rank : std::string()) +
                " must be a number of seconds > 0 (e.g. 600, the default): set it alike for "
                "every rank (mpirun -x CYCLONE_DIST_TIMEOUT)");
  }
  return s;
}

std::atomic<World*> started{nullptr};

// 52 bits of FNV-1a: exact in a double, so one float64 all-reduce gathers every rank's hash.
double fingerprint_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return static_cast<double>(h >> 12);
}

}  // namespace

World::World() {
  const bool under_mpirun = env("OMPI_COMM_WORLD_SIZE") != nullptr;
  if (!under_mpirun) {
    const char* ws = env("WORLD_SIZE");
    CYCLONE_CHECK(!ws || std::strcmp(ws, "1") == 0, "WORLD_SIZE=", ws,
                  " is set but this process was not started by mpirun: Cyclone's ranks are "
                  "launched with `mpirun -np N <program> ...` (RANK / WORLD_SIZE rendezvous is "
                  "not supported)");
    // srun starting several tasks itself (not mpirun inside the allocation): each would train
    // alone as a world of one, on the same GPU, into the same files.
    const char* tasks = env("SLURM_STEP_NUM_TASKS");
    const char* task = env("SLURM_PROCID");
    CYCLONE_CHECK(!tasks || std::strcmp(tasks, "1") == 0, "started by srun as task ",
                  task ? task : "?", " of ", tasks, " (SLURM_STEP_NUM_TASKS=", tasks,
                  "), not by mpirun: Cyclone's ranks are launched by Open MPI's mpirun, which "
                  "uses the Slurm allocation itself: run `mpirun -np ",
                  tasks,
                  " <program> ...` from the batch script, or from `srun -n 1` (srun's direct "
                  "launch is not supported)");
    host_ = std::make_unique<SoloCommunicator>();
    return;
  }
  // Read before MPI starts: a rank with a bad value then ends alone, and mpirun ends the job.
  const double timeout = timeout_from_env();
  const detail::MpiProcess p = detail::mpi_init();
  mpi_ = true;
  launcher_ = "mpirun";
  rank_ = p.rank;
  size_ = p.size;
  local_rank_ = p.local_rank;
  host_ = detail::make_mpi_communicator();
  host_->set_timeout_seconds(timeout);
}

World::~World() { finalize(); }

void World::finalize() {
  if (finalized_) return;
  finalized_ = true;
  device_comms_.clear();
  host_.reset();
  if (mpi_) detail::mpi_finalize();
}

bool World::abort(int code) {
  if (!mpi_) return false;
  detail::mpi_abort(code);
  return true;
}

Communicator& World::communicator(Device device) {
  CYCLONE_CHECK(!finalized_, "dist::world() used after finalize()");
  if (device.is_cpu()) return *host_;
  for (auto& [index, c] : device_comms_)
    if (index == device.index) return *c;
  auto c = detail::make_nccl_communicator(*host_, device.index, host_->timeout_seconds());
  device_comms_.emplace_back(device.index, std::move(c));
  return *device_comms_.back().second;
}

Device World::device_for(Device requested) const {
  if (!requested.is_cuda() || size_ <= 1) return requested;
  const int gpus = cuda_device_count();
  CYCLONE_CHECK(local_rank_ < gpus, "rank ", rank_, " is rank ", local_rank_,
                " on its node, which has ", gpus,
                " GPU(s): start at most one rank per GPU (mpirun -npernode ", gpus,
                "), or use --device=cpu");
  return Device::cuda(local_rank_);
}

void World::all_reduce(std::vector<double>& values, ReduceOp op) {
  if (size_ <= 1 || values.empty()) return;
  Tensor t = Tensor::from_vector(values, Shape{static_cast<int64_t>(values.size())}, Device::cpu());
  host_->all_reduce(t, op);
  const double* p = t.data<double>();
  values.assign(p, p + values.size());
}

double World::all_reduce(double value, ReduceOp op) {
  std::vector<double> v{value};
  all_reduce(v, op);
  return v[0];
}

void World::check_same(const std::string& what, const std::string& fingerprint) {
  if (size_ <= 1) return;
  // Every rank's hash in its own slot; a sum gathers them all.
  std::vector<double> hashes(size_, 0.0);
  hashes[rank_] = fingerprint_hash(fingerprint);
  all_reduce(hashes, ReduceOp::kSum);
  std::vector<int> differ;
  for (int r = 1; r < size_; ++r)
    if (hashes[r] != hashes[0]) differ.push_back(r);
  if (differ.empty()) return;

  // Rank 0's text, so that each rank can say which keys differ from it.
  Tensor len =
      Tensor::from_vector(std::vector<double>{double(fingerprint.size())}, Shape{1}, Device::cpu());
  host_->broadcast(len, 0);
  const auto n = static_cast<int64_t>(len.data<double>()[0]);
  Tensor bytes = Tensor::zeros(Shape{std::max<int64_t>(n, 1)}, DType::kUInt8, Device::cpu());
  if (rank_ == 0) std::memcpy(bytes.raw_data(), fingerprint.data(), fingerprint.size());
  host_->broadcast(bytes, 0);
  const std::string root_text(static_cast<const char*>(bytes.raw_data()), n);

  std::string keys;
  const auto mine = nlohmann::json::parse(fingerprint, nullptr, false);
  const auto root = nlohmann::json::parse(root_text, nullptr, false);
  if (mine.is_object() && root.is_object()) {
    for (const auto& [k, v] : root.items())
      if (!mine.contains(k) || mine.at(k) != v)
        keys += (keys.empty() ? "" : ", ") + k + " (rank 0: " + v.dump() +
                (mine.contains(k) ? ", here: " + mine.at(k).dump() : ", here: none") + ")";
  }
  std::string ranks;
  for (int r : differ) ranks += (ranks.empty() ? "" : ", ") + std::to_string(r);
  std::string msg =
      "ranks started differently: the " + what + " of rank(s) " + ranks + " differs from rank 0's";
  if (!keys.empty()) msg += " in " + keys;
  msg += "; start every rank with the same command, config and data";
  throw RanksDiffer(msg);
}

World& world() {
  if (World* w = started.load(std::memory_order_acquire)) return *w;
  // A world that failed to start is not started again: MPI's start is collective, and a second
  // try on one rank (to print an error's rank prefix, to finalize) would wait for the others
  // forever.
  static std::mutex mu;
  static std::string failed;
  {
    std::lock_guard lk(mu);
    if (!failed.empty()) throw Error(failed);
  }
  try {
    static World w;
    started.store(&w, std::memory_order_release);
    return w;
  } catch (const Error& e) {
    std::lock_guard lk(mu);
    failed = e.message();
    throw;
  }
}

World* started_world() { return started.load(); }

std::string rank_prefix() {
  const World& w = world();
  return w.distributed()
             ? "rank " + std::to_string(w.rank()) + "/" + std::to_string(w.size()) + ": "
             : "";
}

}  // namespace cyclone::dist
