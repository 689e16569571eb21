// The loader: shuffling, batching, normalisation and augmentation against plain reference code,
// and batches that depend only on (seed, epoch, batch index), never on the worker count.
#include <algorithm>
#include <numeric>

#include "common/test_util.h"
#include "data/data_test_util.h"

namespace cyclone::testing {
namespace {

data::Dataset small_synthetic(int64_t n, int c = 3, int h = 32, int w = 32) {
  data::SyntheticOptions o;
  o.train_size = n;
  o.channels = c;
  o.height = h;
  o.width = w;
  o.seed = 5;
  return data::make_synthetic(o, "train");
}

struct Epoch {
  std::vector<std::vector<float>> images;
  std::vector<std::vector<int32_t>> labels;
};

Epoch run_epoch(data::DataLoader& loader, int64_t epoch) {
  loader.start_epoch(epoch);
  Epoch e;
  data::Batch b;
  while (loader.next(b)) {
    EXPECT_EQ(b.epoch, epoch);
    EXPECT_EQ(b.index, static_cast<int64_t>(e.images.size()));
    e.images.push_back(b.images.to_vector<float>());
    e.labels.push_back(b.labels.to_vector<int32_t>());
  }
  return e;
}

TEST(Loader, BatchCounts) {
  EXPECT_EQ(data::batch_count(10, 3, false), 4);
  EXPECT_EQ(data::batch_count(10, 3, true), 3);
  EXPECT_EQ(data::batch_count(9, 3, true), 3);
  EXPECT_EQ(data::batch_count(2, 3, true), 0);
  EXPECT_EQ(data::batch_count(0, 3, false), 0);
}

// A batch larger than the dataset is the whole dataset, whatever batch_size says: 2^40 rows would
// need terabytes of buffers if the loader sized them by batch_size.
TEST(Loader, ABatchLargerThanTheDatasetIsAllOfIt) {
  const data::Dataset d = small_synthetic(100, 1, 8, 8);
  for (const int64_t batch : {int64_t{1000}, int64_t{1} << 40}) {
    data::LoaderOptions o;
    o.batch_size = batch;
    o.workers = 1;
    data::DataLoader loader(d, o);
    EXPECT_EQ(loader.num_batches(), 1);
    const Epoch e = run_epoch(loader, 0);
    ASSERT_EQ(e.labels.size(), 1u);
    EXPECT_EQ(e.labels[0].size(), 100u);
    EXPECT_EQ(e.images[0].size(), 100u * 64);
  }
}

TEST(Loader, ShuffleIsAPermutationPerEpochFromTheSeed) {
  const auto p0 = data::epoch_order(1000, 7, 0, true);
  const auto p1 = data::epoch_order(1000, 7, 1, true);
  auto sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  std::vector<int64_t> ids(1000);
  std::iota(ids.begin(), ids.end(), 0);
  EXPECT_EQ(sorted, ids);
  EXPECT_NE(p0, p1);
  EXPECT_NE(p0, ids);
  EXPECT_EQ(p0, data::epoch_order(1000, 7, 0, true));
  EXPECT_NE(p0, data::epoch_order(1000, 8, 0, true));
  EXPECT_EQ(data::epoch_order(5, 7, 3, false), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  // Roughly uniform: element 0 lands in each half about equally often over many epochs.
  int low = 0;
  for (int e = 0; e < 400; ++e) low += data::epoch_order(100, 1, e, true)[0] < 50;
  EXPECT_GT(low, 160);
  EXPECT_LT(low, 240);
}

TEST(Loader, UnshuffledBatchesAreNormalisedImagesInOrder) {
  const data::Dataset d = small_synthetic(10, 3, 4, 5);
  data::LoaderOptions o;
  o.batch_size = 4;
  o.shuffle = false;
  o.workers = 2;
  data::DataLoader loader(d, o);
  ASSERT_EQ(loader.num_batches(), 3);
  const Epoch e = run_epoch(loader, 0);
  ASSERT_EQ(e.images.size(), 3u);
  EXPECT_EQ(e.images[2].size(), 2u * 60);  // the last, partial batch
  const auto x = d.images.to_vector<uint8_t>();
  const auto y = d.labels.to_vector<int32_t>();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(e.labels[i / 4][i % 4], y[i]);
    for (int p = 0; p < 60; ++p) {
      const int c = p / 20;
      const float want = static_cast<float>((x[i * 60 + p] / 255.0 - d.mean[c]) / d.std[c]);
      EXPECT_NEAR(e.images[i / 4][(i % 4) * 60 + p], want, 1e-6) << i << " " << p;
    }
  }
  o.drop_last = true;
  data::DataLoader dropping(d, o);
  EXPECT_EQ(run_epoch(dropping, 0).images.size(), 2u);
}

// The augmentation by its definition: pad with black, crop, flip, normalise, cut out.
std::vector<float> reference_transform(const uint8_t* src, int C, int H, int W,
                                       const std::vector<float>& mean,
                                       const std::vector<float>& std, const data::Augment& a,
                                       const data::SampleParams& p) {
  const int pad = a.crop_padding;
  const int PH = H + 2 * pad, PW = W + 2 * pad;
  std::vector<int> padded(static_cast<size_t>(C) * PH * PW, 0);
  for (int c = 0; c < C; ++c)
    for (int y = 0; y < H; ++y)
      for (int x = 0; x < W; ++x)
        padded[(c * PH + y + pad) * PW + x + pad] = src[(c * H + y) * W + x];
  std::vector<float> out(static_cast<size_t>(C) * H * W);
  for (int c = 0; c < C; ++c) {
    for (int y = 0; y < H; ++y) {
      for (int x = 0; x < W; ++x) {
        const int cx = (a.flip && p.flip) ? W - 1 - x : x;
        const int v = padded[(c * PH + y + (pad ? p.oy : 0)) * PW + cx + (pad ? p.ox : 0)];
        float f = static_cast<float>((v / 255.0 - mean[c]) / std[c]);
        if (a.cutout > 0 && y >= p.cy - a.cutout / 2 && y < p.cy + a.cutout / 2 &&
            x >= p.cx - a.cutout / 2 && x < p.cx + a.cutout / 2) {
          f = 0.f;
        }
        out[(c * H + y) * W + x] = f;
      }
    }
  }
  return out;
}

TEST(Augment, MatchesReferenceForEveryOffsetAndFlip) {
  const int C = 2, H = 5, W = 7;
  std::vector<uint8_t> img(C * H * W);
  for (size_t i = 0; i < img.size(); ++i) img[i] = static_cast<uint8_t>(i * 37 + 11);
  const std::vector<float> mean = {0.3f, 0.6f}, std = {0.2f, 0.5f};
  const auto table = data::normalization_table(mean, std);
  for (int pad : {0, 1, 3, 9}) {
    for (int cutout : {0, 2, 3}) {
      data::Augment a{pad, true, cutout};
      for (int oy = 0; oy <= 2 * pad; ++oy) {
        for (int ox = 0; ox <= 2 * pad; ++ox) {
          for (bool flip : {false, true}) {
            data::SampleParams p{oy, ox, flip, (oy + ox) % H, (oy * 3 + ox) % W};
            std::vector<float> got(img.size(), std::nanf(""));
            data::transform_image(img.data(), C, H, W, table.data(), a, p, got.data());
            const auto want = reference_transform(img.data(), C, H, W, mean, std, a, p);
            ASSERT_EQ(got, want) << "pad " << pad << " cutout " << cutout << " offsets " << oy
                                 << "," << ox << " flip " << flip;
          }
        }
      }
    }
  }
}

TEST(Augment, ParamsCoverTheirRangesUniformly) {
  const data::Augment a{4, true, 16};
  std::vector<int> oy(9), ox(9);
  int flips = 0;
  for (uint64_t pos = 0; pos < 9000; ++pos) {
    const data::SampleParams p = data::sample_params(a, 32, 32, 3, 0, pos);
    ASSERT_TRUE(p.oy >= 0 && p.oy <= 8 && p.ox >= 0 && p.ox <= 8);
    ASSERT_TRUE(p.cy >= 0 && p.cy < 32 && p.cx >= 0 && p.cx < 32);
    ++oy[p.oy];
    ++ox[p.ox];
    flips += p.flip;
  }
  for (int k = 0; k < 9; ++k) {
    EXPECT_NEAR(oy[k], 1000, 150);
    EXPECT_NEAR(ox[k], 1000, 150);
  }
  EXPECT_NEAR(flips, 4500, 250);
}

TEST(Loader, SameBatchesForAnyWorkerCount) {
  const data::Dataset d = small_synthetic(203);
  std::vector<Epoch> runs;
  for (int workers : {0, 1, 4}) {
    data::LoaderOptions o;
    o.batch_size = 16;
    o.workers = workers;
    o.prefetch = workers == 4 ? 3 : 0;
    o.augment = data::Augment::cifar();
    o.augment.cutout = 8;
    o.seed = 11;
    data::DataLoader loader(d, o);
    Epoch both = run_epoch(loader, 0);
    Epoch e1 = run_epoch(loader, 1);
    both.images.insert(both.images.end(), e1.images.begin(), e1.images.end());
    both.labels.insert(both.labels.end(), e1.labels.begin(), e1.labels.end());
    runs.push_back(std::move(both));
  }
  ASSERT_EQ(runs[0].images.size(), 26u);
  for (size_t r = 1; r < runs.size(); ++r) {
    EXPECT_EQ(runs[r].labels, runs[0].labels);
    EXPECT_TRUE(runs[r].images == runs[0].images) << "run " << r << " differs";
  }
  EXPECT_NE(runs[0].images[0], runs[0].images[13]);  // epoch 1 is another shuffle
}

// The default ring of batches made ahead is capped by bytes: a whole-dataset batch ("all of it")
// with many workers held 2 x workers copies of the dataset as floats (gigabytes for CIFAR-10).
TEST(Loader, PrefetchOfLargeBatchesIsCappedByBytesAndBatchesStayTheSame) {
  const data::Dataset d = small_synthetic(1000);
  const int64_t batch_bytes = 1000 * (3 * 32 * 32 + 1) * 4;
  std::vector<Epoch> runs;
  for (int workers : {0, 16}) {
    data::LoaderOptions o;
    o.batch_size = int64_t{1} << 20;
    o.workers = workers;
    o.augment = data::Augment::cifar();
    data::DataLoader loader(d, o);
    EXPECT_GE(loader.prefetch(), 2);
    EXPECT_LE(loader.prefetch() * batch_bytes, data::kPrefetchBytes) << workers << " workers";
    runs.push_back(run_epoch(loader, 0));
  }
  EXPECT_TRUE(runs[0].images == runs[1].images);
  EXPECT_EQ(runs[0].labels, runs[1].labels);
  // Small batches keep two per worker; an explicit prefetch is taken as given.
  data::LoaderOptions o;
  o.batch_size = 16;
  o.workers = 4;
  EXPECT_EQ(data::DataLoader(d, o).prefetch(), 8);
  o.prefetch = 3;
  EXPECT_EQ(data::DataLoader(d, o).prefetch(), 3);
}

// Data parallelism: the shards of a global batch, put side by side, are that batch — images,
// augmentation and labels — for 1 and 2 shards with worker threads, also for last global batches
// of 3 images (2 + 1 rows) and of 1 image (an empty batch for shard 1); then 3 shards.
TEST(Loader, ShardsTogetherAreTheGlobalBatch) {
  for (int shards : {1, 2}) {
    for (int64_t n : {int64_t{99}, int64_t{97}}) {  // 99 = 3 x 32 + 3; 97 = 3 x 32 + 1
      const data::Dataset d = small_synthetic(n, 1, 8, 8);
      data::LoaderOptions o;
      o.augment = data::Augment::cifar();
      o.seed = 4;
      o.workers = 2;
      o.batch_size = 32;
      data::DataLoader whole(d, o);
      const Epoch want = run_epoch(whole, 1);
      std::vector<Epoch> parts;
      for (int k = 0; k < shards; ++k) {
        data::LoaderOptions so = o;
        so.batch_size = 32 / shards;
        so.shard = k;
        so.num_shards = shards;
        data::DataLoader loader(d, so);
        EXPECT_EQ(loader.num_batches(), whole.num_batches());
        parts.push_back(run_epoch(loader, 1));
      }
      for (size_t b = 0; b < want.labels.size(); ++b) {
        std::vector<int32_t> labels;
        std::vector<float> images;
        for (const Epoch& p : parts) {
          labels.insert(labels.end(), p.labels[b].begin(), p.labels[b].end());
          images.insert(images.end(), p.images[b].begin(), p.images[b].end());
        }
        EXPECT_EQ(labels, want.labels[b]) << shards << " shards, batch " << b;
        EXPECT_TRUE(images == want.images[b]) << shards << " shards, batch " << b;
      }
    }
  }
  // 3 shards of 11 over 100 images: global batches 33, 33, 33, 1 — the last gives shard 0 one
  // image and shards 1 and 2 an empty batch.
  const data::Dataset d = small_synthetic(100, 1, 8, 8);
  data::LoaderOptions o;
  o.workers = 0;
  o.batch_size = 11;
  o.num_shards = 3;
  std::vector<int64_t> last_sizes;
  for (int k = 0; k < 3; ++k) {
    o.shard = k;
    data::DataLoader loader(d, o);
    ASSERT_EQ(loader.num_batches(), 4);
    const Epoch e = run_epoch(loader, 0);
    ASSERT_EQ(e.labels.size(), 4u);
    EXPECT_EQ(e.labels[0].size(), 11u);
    last_sizes.push_back(static_cast<int64_t>(e.labels[3].size()));
  }
  EXPECT_EQ(last_sizes, (std::vector<int64_t>{1, 0, 0}));
  o.shard = 3;
  EXPECT_THROW(data::DataLoader(d, o), Error);
  o.shard = 0;
  o.num_shards = 0;
  EXPECT_THROW(data::DataLoader(d, o), Error);
}

TEST(Loader, BatchMatchesItsDefinition) {
  const data::Dataset d = small_synthetic(50, 3, 8, 8);
  data::LoaderOptions o;
  o.batch_size = 8;
  o.augment = data::Augment{2, true, 4};
  o.seed = 99;
  data::DataLoader loader(d, o);
  const Epoch e = run_epoch(loader, 2);
  const auto order = data::epoch_order(50, 99, 2, true);
  const auto table = data::normalization_table(d.mean, d.std);
  const uint8_t* x = d.images.data<uint8_t>();
  for (int64_t pos = 0; pos < 50; ++pos) {
    const auto p = data::sample_params(o.augment, 8, 8, 99, 2, pos);
    const auto want =
        reference_transform(x + order[pos] * 192, 3, 8, 8, d.mean, d.std, o.augment, p);
    const auto& got = e.images[pos / 8];
    ASSERT_TRUE(std::equal(want.begin(), want.end(), got.begin() + (pos % 8) * 192)) << pos;
    EXPECT_EQ(e.labels[pos / 8][pos % 8], d.labels.to_vector<int32_t>()[order[pos]]);
  }
}

TEST(Loader, HeldBatchesStayValidAndEpochsResume) {
  const data::Dataset d = small_synthetic(100, 1, 6, 6);
  data::LoaderOptions o;
  o.batch_size = 10;
  o.workers = 2;
  o.prefetch = 2;
  data::DataLoader loader(d, o);
  data::Batch first;
  ASSERT_TRUE(loader.next(first));
  const auto kept = first.images.to_vector<float>();
  data::Batch b;
  int n = 1;
  while (loader.next(b)) ++n;
  EXPECT_EQ(n, 10);
  EXPECT_EQ(first.images.to_vector<float>(), kept) << "a held batch was overwritten";
  EXPECT_FALSE(loader.next(b)) << "the epoch is over until start_epoch";
  // Jumping ahead (resuming at epoch 3) gives what a fresh loader gives there.
  const Epoch resumed = run_epoch(loader, 3);
  data::DataLoader fresh(d, o);
  EXPECT_TRUE(run_epoch(fresh, 3).images == resumed.images);
  // Repeating an epoch mid-way restarts it.
  loader.start_epoch(1);
  ASSERT_TRUE(loader.next(b));
  const auto again = run_epoch(loader, 1);
  data::DataLoader fresh1(d, o);
  EXPECT_TRUE(run_epoch(fresh1, 1).images == again.images);
}

TEST(Loader, RejectsBadOptions) {
  const data::Dataset d = small_synthetic(10, 1, 4, 4);
  data::LoaderOptions o;
  o.batch_size = 0;
  EXPECT_ERROR_WITH(data::DataLoader(d, o), "batch_size");
  o.batch_size = 2;
  o.mean = {0.1f, 0.2f};
  o.std = {1.f, 1.f};
  EXPECT_ERROR_WITH(data::DataLoader(d, o), "2 means", "1 channels");
}

TEST(LoaderCuda, BatchesOnTheGpuEqualTheCpuOnes) {
  if (!cuda_available()) GTEST_SKIP() << "no usable CUDA device on this machine";
  const data::Dataset d = small_synthetic(300);
  data::LoaderOptions o;
  o.batch_size = 32;
  o.augment = data::Augment::cifar();
  data::DataLoader cpu(d, o);
  o.device = Device::cuda();
  data::DataLoader gpu(d, o);
  for (int64_t epoch : {0, 1}) {
    const Epoch a = run_epoch(cpu, epoch);
    const Epoch b = run_epoch(gpu, epoch);
    EXPECT_TRUE(a.images == b.images);
    EXPECT_EQ(a.labels, b.labels);
  }
}

}  // namespace
}  // namespace cyclone::testing
