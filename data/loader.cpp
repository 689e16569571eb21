#include "cyclone/data/loader.h"

#include <cstring>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <system_error>
#include <thread>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/error.h"
#include "cyclone/core/resource_limits.h"
#include "cyclone/data/cuda/transfer.h"
#include "cyclone/data/random.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone::data {

int default_workers() {
  return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
}

int64_t batch_count(int64_t n, int64_t batch_size, bool drop_last) {
  CYCLONE_CHECK(batch_size >= 1, "batch_size must be >= 1, got ", batch_size);
  return drop_last ? n / batch_size : (n + batch_size - 1) / batch_size;
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  if (shuffle) return permutation(n, seed, Purpose::kShuffle, static_cast<uint32_t>(epoch));
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Named (not anonymous) because DataLoader::Impl holds Slots: a unity build would otherwise warn
// that a type with linkage uses the anonymous namespace.
namespace loader_detail {

struct Slot {
  int64_t ticket = -1;
  bool ready = false;
  std::exception_ptr error;
  int64_t epoch = 0, index = 0, rows = 0;
  Tensor host_images, host_labels;  // full-batch buffers
  // CPU: set by the lease of the batch last handed out from these buffers (see lend()); null
  // when they were never lent.
  std::shared_ptr<std::atomic<bool>> returned;
  // GPU only.
  void* copy_done = nullptr;  // event recorded after the copy out of the host buffers
  bool copy_pending = false;  // that copy may still read the host buffers
  bool transferred = false;   // dev_* hold this ticket's batch
  Tensor dev_images, dev_labels;
};

}  // namespace loader_detail

using loader_detail::Slot;

namespace {

// A batch handed to the caller on the CPU views the slot's buffers through a lease: when the
// caller's last reference to its tensors (or to any view of them) goes, the lease's deleter marks
// the buffers returned with a release store, which the worker's acquire load pairs with before it
// refills them. (Reading shared_ptr::use_count() instead, as this loader once did, is a relaxed
// load: it does not order the caller's last reads before the worker's writes; TSan caught it.)
Tensor lend(const Tensor& t, const std::shared_ptr<void>& lease) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = t.unsafe_impl()->storage;
  impl->storage.data = std::shared_ptr<void>(lease, t.unsafe_impl()->storage.data.get());
  impl->offset = t.unsafe_impl()->offset;
  impl->shape = t.shape();
  impl->dtype = t.dtype();
  return Tensor(std::move(impl));
}

bool lent_out(const Slot& s) {
  return s.returned != nullptr && !s.returned->load(std::memory_order_acquire);
}

}  // namespace

struct DataLoader::Impl {
  Dataset data;
  LoaderOptions opt;
  std::vector<float> table;
  int64_t nb = 0;
  int64_t per_image = 0;
  bool gpu = false;
  bool resident = false;  // the dataset lives in GPU memory: batches are gathered there
  int workers = 0;

  std::mutex mu;
  std::condition_variable cv_work, cv_ready;
  std::vector<Slot> slots;
  int64_t base_epoch = 0, produce_t = 0, consume_t = 0, generation = 0, current_epoch = 0;
  int busy = 0;
  bool stop = false;
  std::exception_ptr failed;
  std::vector<std::thread> threads;

  std::mutex order_mu;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> orders;

  void* copy_stream = nullptr;
  void* alloc_ready = nullptr;

  int64_t slot_count() const { return static_cast<int64_t>(slots.size()); }

  std::shared_ptr<const std::vector<int64_t>> order_for(int64_t epoch) {
    if (!opt.shuffle) return nullptr;
    {
      std::lock_guard lk(order_mu);
      auto it = orders.find(epoch);
      if (it != orders.end()) return it->second;
    }
    // Computed outside the lock; two workers racing compute the same permutation.
    auto p = std::make_shared<const std::vector<int64_t>>(
        epoch_order(data.size(), opt.seed, epoch, true));
    std::lock_guard lk(order_mu);
    orders.emplace(epoch, p);
    while (orders.size() > 3) orders.erase(orders.begin());  // the pipeline spans <= 2 epochs
    return p;
  }

  // This shard's part of global batch `index`: positions [begin, begin + rows) of the epoch's
  // order. A global batch of m rows gives each of S shards m / S rows, the first m % S one more.
  struct Span {
    int64_t begin = 0, rows = 0;
  };
  Span span(int64_t index) const {
    const int64_t shards = opt.num_shards, g = opt.batch_size * shards;
    const int64_t m = std::min(g, data.size() - index * g);
    const int64_t q = m / shards, r = m % shards, k = opt.shard;
    return {index * g + k * q + std::min<int64_t>(k, r), q + (k < r ? 1 : 0)};
  }

  // Fills slot s with ticket t's batch (the caller owns s: its previous batch was handed out).
  void produce(Slot& s, int64_t epoch, int64_t index) {
    if (s.copy_pending) {
      cuda::event_synchronize(s.copy_done);
      s.copy_pending = false;
    }
    // No batch holds more rows than the dataset: a batch_size beyond it is the whole set, in
    // buffers of the set's size (not of batch_size rows, which may not fit in memory).
    const int64_t b = std::max<int64_t>(1, std::min(opt.batch_size, data.size()));
    const Span sp = span(index);
    s.epoch = epoch;
    s.index = index;
    s.rows = sp.rows;
    if (!s.host_images.defined() || lent_out(s)) {  // still held by the caller: new buffers
      const Shape shape{b, data.images.dim(1), data.images.dim(2), data.images.dim(3)};
      s.host_images = gpu ? Tensor::empty_pinned(shape, DType::kFloat32)
                          : Tensor::empty(shape, DType::kFloat32, Device::cpu());
      s.host_labels = gpu ? Tensor::empty_pinned({b}, DType::kInt32)
                          : Tensor::empty({b}, DType::kInt32, Device::cpu());
    }
    s.returned.reset();
    const auto order = order_for(epoch);
    const int32_t* y = data.labels.data<int32_t>();
    float* dst = s.host_images.data<float>();
    int32_t* labels = s.host_labels.data<int32_t>();
    if (data.images.dtype() == DType::kFloat32) {  // features: rows copied as they are
      const float* feat = data.images.data<float>();
      for (int64_t k = 0; k < s.rows; ++k) {
        const int64_t pos = sp.begin + k;
        const int64_t j = order ? (*order)[pos] : pos;
        std::memcpy(dst + k * per_image, feat + j * per_image, per_image * sizeof(float));
        labels[k] = y[j];
      }
      return;
    }
    const uint8_t* src = data.images.data<uint8_t>();
    const int c = data.channels(), h = data.height(), w = data.width();
    for (int64_t k = 0; k < s.rows; ++k) {
      const int64_t pos = sp.begin + k;
      const int64_t j = order ? (*order)[pos] : pos;
      const SampleParams p = sample_params(
          opt.augment, h, w, opt.seed, static_cast<uint32_t>(epoch), static_cast<uint64_t>(pos));
      transform_image(src + j * per_image, c, h, w, table.data(), opt.augment, p,
                      dst + k * per_image);
      labels[k] = y[j];
    }
  }

  void worker_loop() {
    // This thread's CUDA calls (pinned buffers, event waits) belong to the loader's GPU: a new
    // thread's current device is 0, where every rank of a node would otherwise open a context.
    // A failure here resurfaces in produce's own CUDA calls, which report it.
    if (gpu) {
      try {
        gpu::set_device(opt.device.index);
      } catch (const Error&) {
      }
    }
    std::unique_lock lk(mu);
    while (true) {
      cv_work.wait(lk, [&] { return stop || produce_t < consume_t + slot_count(); });
      if (stop) return;
      const int64_t t = produce_t++;
      const int64_t gen = generation;
      const int64_t epoch = base_epoch + t / nb, index = t % nb;
      Slot& s = slots[t % slot_count()];
      ++busy;
      lk.unlock();
      std::exception_ptr err;
      try {
        produce(s, epoch, index);
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      --busy;
      if (gen == generation) {
        s.ticket = t;
        s.ready = true;
        s.error = err;
      }
      cv_ready.notify_all();
    }
  }

  // Enqueues the copy of slot s to the device (caller owns s and it holds a ready batch).
  void transfer(Slot& s) {
    Context& ctx = Context::current(opt.device);
    const Shape shape{s.rows, data.images.dim(1), data.images.dim(2), data.images.dim(3)};
    s.dev_images = Tensor::empty(shape, DType::kFloat32, opt.device);
    s.dev_labels = Tensor::empty({s.rows}, DType::kInt32, opt.device);
    // The memory belongs to the caller's stream, which may still be using it for an earlier,
    // freed tensor: the copy stream waits for the caller's stream up to this point.
    cuda::event_record(alloc_ready, ctx.stream());
    cuda::stream_wait_event(copy_stream, alloc_ready);
    gpu::memcpy_async(s.dev_images.raw_data(), s.host_images.raw_data(), s.dev_images.nbytes(),
                      copy_stream);
    gpu::memcpy_async(s.dev_labels.raw_data(), s.host_labels.raw_data(), s.dev_labels.nbytes(),
                      copy_stream);
    cuda::event_record(s.copy_done, copy_stream);
    s.copy_pending = true;
    s.transferred = true;
  }

  // Hands slot s's batch to the caller (caller owns s).
  // Resident features: the batch's rows gathered on the device by two launches on the caller's
  // stream. The epoch's order goes to the device once per epoch (the only copy, and the only wait
  // on the host); a batch's indices are a slice of it.
  Tensor dev_order;
  int64_t dev_order_epoch = -1;
  void gather(int64_t epoch, int64_t index, Batch& batch) {
    const Span sp = span(index);
    const int64_t rows = sp.rows;
    if (dev_order_epoch != epoch) {
      const auto order = order_for(epoch);
      std::vector<int32_t> idx(static_cast<size_t>(data.size()));
      for (int64_t k = 0; k < data.size(); ++k)
        idx[k] = static_cast<int32_t>(order ? (*order)[k] : k);
      dev_order = Tensor::from_vector<int32_t>(idx, {data.size()}, opt.device);
      dev_order_epoch = epoch;
    }
    Context& ctx = Context::current(opt.device);
    const Tensor dev_idx = dev_order.slice(sp.begin, sp.begin + rows);
    std::vector<int64_t> dims = data.images.shape().dims();
    dims[0] = rows;
    batch.images = Tensor::empty(Shape(dims), DType::kFloat32, opt.device);
    batch.labels = Tensor::empty({rows}, DType::kInt32, opt.device);
    kernels::gather_rows(ctx, data.images, dev_idx, batch.images);
    kernels::gather_rows(ctx, data.labels, dev_idx, batch.labels);
    batch.epoch = epoch;
    batch.index = index;
  }

  void hand_out(Slot& s, Batch& batch) {
    batch.epoch = s.epoch;
    batch.index = s.index;
    if (!gpu) {
      const bool full = s.rows == s.host_images.dim(0);
      auto returned = std::make_shared<std::atomic<bool>>(false);
      s.returned = returned;
      // The lease keeps the buffers alive as long as the caller holds any part of the batch.
      const std::shared_ptr<void> lease(
          nullptr, [returned, images = s.host_images, labels = s.host_labels](void*) {
            returned->store(true, std::memory_order_release);
          });
      batch.images = lend(full ? s.host_images : s.host_images.slice(0, s.rows), lease);
      batch.labels = lend(full ? s.host_labels : s.host_labels.slice(0, s.rows), lease);
      return;
    }
    if (!s.transferred) transfer(s);
    cuda::stream_wait_event(Context::current(opt.device).stream(), s.copy_done);
    batch.images = std::move(s.dev_images);
    batch.labels = std::move(s.dev_labels);
    s.dev_images = Tensor();
    s.dev_labels = Tensor();
    s.transferred = false;
  }

  // Drops every batch made ahead and restarts the tickets at (epoch, 0). Called with lk held.
  void restart(std::unique_lock<std::mutex>& lk, int64_t epoch) {
    ++generation;
    cv_ready.wait(lk, [&] { return busy == 0; });
    for (Slot& s : slots) {
      if (s.transferred) {
        // Device memory of the caller's stream written by the copy stream: the caller's stream
        // must pass the copy before the memory can be freed (and reused) in its order.
        cuda::stream_wait_event(Context::current(opt.device).stream(), s.copy_done);
        s.dev_images = Tensor();
        s.dev_labels = Tensor();
        s.transferred = false;
      }
      s.ticket = -1;
      s.ready = false;
      s.error = nullptr;
    }
    base_epoch = epoch;
    produce_t = consume_t = 0;
    cv_work.notify_all();
  }
};

DataLoader::DataLoader(const Dataset& dataset, const LoaderOptions& options)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  validate(dataset);
  m.data = dataset;
  m.opt = options;
  const LoaderOptions& o = m.opt;
  CYCLONE_CHECK(o.batch_size >= 1, dataset.name, ": batch_size must be >= 1, got ", o.batch_size);
  CYCLONE_CHECK(dataset.images.dtype() == DType::kUInt8 || !o.augment.any(), dataset.name,
                ": float32 features are batched as they are; augmentation needs uint8 images");
  CYCLONE_CHECK(o.workers >= -1 && o.workers <= 256, dataset.name,
                ": workers must be in [-1, 256], got ", o.workers);
  CYCLONE_CHECK(o.prefetch >= 0 && o.prefetch <= 1024, dataset.name,
                ": prefetch must be in [0, 1024], got ", o.prefetch);
  CYCLONE_CHECK(
      o.augment.crop_padding >= 0 && o.augment.crop_padding <= 1024 && o.augment.cutout >= 0,
      dataset.name, ": bad augmentation (crop padding ", o.augment.crop_padding, ", cutout ",
      o.augment.cutout, ")");
  m.resident = dataset.images.device().is_cuda();
  CYCLONE_CHECK(!m.resident || o.device == dataset.images.device(), dataset.name, ": features in ",
                dataset.images.device().str(), " memory batched for ", o.device.str());
  m.gpu = o.device.is_cuda() && !m.resident;
  m.workers = m.resident ? 0 : (o.workers < 0 ? default_workers() : o.workers);
  CYCLONE_CHECK(o.num_shards >= 1 && o.shard >= 0 && o.shard < o.num_shards, dataset.name,
                ": shard ", o.shard, " of ", o.num_shards, " is not a shard (0 <= shard < ",
                "num_shards)");
  CYCLONE_CHECK(o.batch_size <= INT64_MAX / o.num_shards, dataset.name, ": batch_size ",
                o.batch_size, " x ", o.num_shards, " shards is too large");
  m.nb = batch_count(dataset.size(), o.batch_size * o.num_shards, o.drop_last);
  m.per_image = dataset.images.dim(1) * dataset.images.dim(2) * dataset.images.dim(3);
  std::vector<float> mean = o.mean.empty() ? dataset.mean : o.mean;
  std::vector<float> std = o.std.empty() ? dataset.std : o.std;
  if (!o.normalize) {
    mean.assign(dataset.channels(), 0.f);
    std.assign(dataset.channels(), 1.f);
  }
  CYCLONE_CHECK(static_cast<int>(mean.size()) == dataset.channels() &&
                    static_cast<int>(std.size()) == dataset.channels(),
                dataset.name, ": ", mean.size(), " means and ", std.size(), " stds for ",
                dataset.channels(), " channels");
  m.table = normalization_table(mean, std);
  // Each slot holds a whole float batch: the default ring is capped by bytes, so a huge batch
  // with many workers does not multiply it (the workers then wait for free slots; the batches
  // are the same, whoever makes them).
  const int64_t batch_rows = std::min<int64_t>(o.batch_size, std::max<int64_t>(dataset.size(), 1));
  const int64_t batch_bytes = batch_rows * (m.per_image + 1) * 4;
  const int prefetch =
      o.prefetch > 0 ? o.prefetch
                     : static_cast<int>(std::max<int64_t>(
                           2, std::min<int64_t>(2 * m.workers, kPrefetchBytes / batch_bytes)));
  m.slots.resize(static_cast<size_t>(prefetch));
  if (m.gpu) {
    m.copy_stream = gpu::stream_create(o.device.index);
    m.alloc_ready = cuda::event_create(o.device.index);
    for (Slot& s : m.slots) s.copy_done = cuda::event_create(o.device.index);
  }
  if (m.nb > 0 && !m.resident) {
    for (int i = 0; i < m.workers; ++i) {
      try {
        m.threads.emplace_back([&m] { m.worker_loop(); });
      } catch (const std::system_error& e) {
        // Under ulimit -u or ulimit -v. The started workers must be joined: a joinable
        // std::thread destroyed with Impl would terminate the process.
        {
          std::lock_guard lk(m.mu);
          m.stop = true;
        }
        m.cv_work.notify_all();
        for (std::thread& t : m.threads) t.join();
        // OutOfMemory: like memory, a limit of this machine, not a bad input (see core/error.h).
        throw OutOfMemory(thread_start_failure(
            detail::str_cat(dataset.name, " data loader worker ", i + 1, " of ", m.workers), e,
            detail::str_cat("use fewer loader workers (--workers / trainer.workers ", i, "; now ",
                            m.workers, ")")));
      }
    }
  }
}

DataLoader::~DataLoader() {
  Impl& m = *impl_;
  {
    std::lock_guard lk(m.mu);
    m.stop = true;
  }
  m.cv_work.notify_all();
  for (std::thread& t : m.threads) t.join();
  if (m.gpu) {
    // Pinned buffers must outlive the copies reading them; the device tensors made ahead belong to
    // the caller's stream, which must pass their copies before it frees them.
    for (Slot& s : m.slots) {
      try {
        if (s.transferred) {
          cuda::stream_wait_event(Context::current(m.opt.device).stream(), s.copy_done);
        }
        if (s.copy_pending) cuda::event_synchronize(s.copy_done);
      } catch (...) {
        // A destructor cannot report; a broken context is raised by the caller's next CUDA call.
      }
      s.dev_images = Tensor();
      s.dev_labels = Tensor();
      cuda::event_destroy(s.copy_done);
    }
    cuda::event_destroy(m.alloc_ready);
    gpu::stream_destroy(m.copy_stream);
  }
}

int64_t DataLoader::num_batches() const { return impl_->nb; }
int64_t DataLoader::num_samples() const { return impl_->data.size(); }
const LoaderOptions& DataLoader::options() const { return impl_->opt; }
int DataLoader::prefetch() const { return static_cast<int>(impl_->slot_count()); }

void DataLoader::start_epoch(int64_t epoch) {
  Impl& m = *impl_;
  CYCLONE_CHECK(epoch >= 0, m.data.name, ": epoch must be >= 0, got ", epoch);
  std::unique_lock lk(m.mu);
  m.current_epoch = epoch;
  if (m.nb == 0) return;
  if (m.resident) {
    m.base_epoch = epoch;
    m.consume_t = 0;
    return;
  }
  if (m.base_epoch + m.consume_t / m.nb == epoch && m.consume_t % m.nb == 0) return;
  m.restart(lk, epoch);
}

bool DataLoader::next(Batch& batch) {
  Impl& m = *impl_;
  if (m.failed) std::rethrow_exception(m.failed);
  if (m.nb == 0) return false;
  std::unique_lock lk(m.mu);
  const int64_t t = m.consume_t;
  if (m.base_epoch + t / m.nb != m.current_epoch) return false;
  if (m.resident) {
    lk.unlock();
    m.gather(m.current_epoch, t % m.nb, batch);
    ++m.consume_t;
    return true;
  }
  Slot& s = m.slots[t % m.slot_count()];
  if (m.workers == 0) {
    lk.unlock();
    try {
      m.produce(s, m.base_epoch + t / m.nb, t % m.nb);
    } catch (...) {
      m.failed = std::current_exception();
      throw;
    }
    s.ticket = t;
    s.ready = true;
  } else {
    m.cv_ready.wait(lk, [&] { return s.ticket == t && s.ready; });
    lk.unlock();
    if (s.error) {
      // A batch that cannot be made (e.g. out of memory) ends the loader: later calls rethrow.
      m.failed = s.error;
      std::rethrow_exception(m.failed);
    }
  }
  m.hand_out(s, batch);
  lk.lock();
  s.ready = false;
  ++m.consume_t;
  m.cv_work.notify_all();
  if (m.gpu && m.workers > 0) {
    // Start the next batch's copy now, so it runs while the caller computes on this one.
    Slot& n = m.slots[m.consume_t % m.slot_count()];
    if (n.ticket == m.consume_t && n.ready && !n.transferred && !n.error) {
      lk.unlock();
      m.transfer(n);
    }
  }
  return true;
}

}  // namespace cyclone::data
