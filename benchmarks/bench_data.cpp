// Loader throughput (data/loader.h) in images/s on the host: synthetic images of MNIST's shape
// (1x28x28, normalisation only) and CIFAR's (3x32x32, with the standard crop-4 + flip augmentation,
// and with cutout 16 too), float32 batches of 128 on the CPU, with one worker (the per-core rate)
// and with one worker per hardware thread. Each iteration is one next(); the counter
// images_per_second is what a training loop could at most consume.
//
// What it must beat (the loader is never the bottleneck): WRN-28-10 on one H100 trains at about
// 2,000-3,000 images/s in fp32 and ~5,000+ in bf16; LeNet-5 at batch 64 with CUDA graphs can pass
// 100,000 images/s. A GPU run copies the same batches to the device on a side stream (4 bytes per
// pixel: 12 KiB per CIFAR image, 1.2 GB/s at 100k images/s, a few percent of PCIe 5).
#include <thread>

#include "bench_util.h"
#include "cyclone/data/loader.h"
#include "cyclone/data/synthetic.h"

namespace cyclone::bench {
namespace {

struct Shape3 {
  const char* name;
  int c, h, w;
};

void add_loader_case(const Shape3& s, const char* aug_name, const data::Augment& aug, int workers) {
  const std::string name = std::string("BM_loader/cpu/fp32/") + s.name + "/" + aug_name +
                           "/batch:128/workers:" + std::to_string(workers);
  benchmark::RegisterBenchmark(name.c_str(),
                               [s, aug, workers](benchmark::State& state) {
                                 data::SyntheticOptions so;
                                 so.channels = s.c;
                                 so.height = s.h;
                                 so.width = s.w;
                                 so.train_size = 10000;
                                 const data::Dataset d = data::make_synthetic(so, "train");
                                 data::LoaderOptions o;
                                 o.batch_size = 128;
                                 o.augment = aug;
                                 o.workers = workers;
                                 data::DataLoader loader(d, o);
                                 int64_t epoch = 0, images = 0;
                                 data::Batch b;
                                 auto next = [&] {
                                   if (!loader.next(b)) {
                                     loader.start_epoch(++epoch);
                                     loader.next(b);
                                   }
                                 };
                                 // Drain what the workers made ahead while the dataset was
                                 // generated.
                                 for (int i = 0; i < 2 * std::max(workers, 1) + 1; ++i) next();
                                 for (auto _ : state) {
                                   next();
                                   images += b.size();
                                   benchmark::DoNotOptimize(b.images.raw_data());
                                 }
                                 state.counters["images_per_second"] = benchmark::Counter(
                                     static_cast<double>(images), benchmark::Counter::kIsRate);
                                 state.counters["workers"] = workers;
                               })
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond)
      ->MinTime(1.0);
}

}  // namespace

void register_data() {
  const int all = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const Shape3 mnist{"mnist_1x28x28", 1, 28, 28}, cifar{"cifar_3x32x32", 3, 32, 32};
  data::Augment cutout = data::Augment::cifar();
  cutout.cutout = 16;
  for (int workers : {1, all}) {
    add_loader_case(mnist, "normalize", data::Augment{}, workers);
    add_loader_case(cifar, "crop4_flip", data::Augment::cifar(), workers);
    add_loader_case(cifar, "crop4_flip_cutout16", cutout, workers);
    if (all == 1) break;
  }
}

}  // namespace cyclone::bench
