// IDX, CIFAR and gzip readers on bytes the tests write: exact reads, and one clear Error (naming
// the file and, where it matters, the byte offset) for every kind of bad input.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include "common/test_util.h"
#include "data/data_test_util.h"

namespace cyclone::testing {
namespace {

using data::CifarKind;

std::vector<uint8_t> iota_bytes(size_t n, int mul = 1) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * mul);
  return v;
}

// Writes an MNIST-style pair (n images of h x w, labels i % classes) and returns the paths.
std::pair<std::string, std::string> write_idx_pair(const TempDir& dir, uint32_t n, uint32_t h,
                                                   uint32_t w, const std::string& prefix = "") {
  std::vector<uint8_t> labels(n);
  for (uint32_t i = 0; i < n; ++i) labels[i] = static_cast<uint8_t>(i % 10);
  const std::string ip = dir.file(prefix + "images"), lp = dir.file(prefix + "labels");
  write_file(ip, idx_bytes(0x08, {n, h, w}, iota_bytes(size_t{n} * h * w, 3)));
  write_file(lp, idx_bytes(0x08, {n}, labels));
  return {ip, lp};
}

TEST(IdxReader, ReadsImagesAndLabelsExactly) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 5, 4, 3);
  const data::Dataset d = data::load_idx_dataset(ip, lp, "tiny", 10);
  EXPECT_EQ(d.images.shape(), Shape({5, 1, 4, 3}));
  EXPECT_EQ(d.images.to_vector<uint8_t>(), iota_bytes(60, 3));
  EXPECT_EQ(d.labels.to_vector<int32_t>(), (std::vector<int32_t>{0, 1, 2, 3, 4}));
  ASSERT_EQ(d.mean.size(), 1u);
}

TEST(IdxReader, ParsesEveryElementType) {
  const std::vector<std::pair<uint8_t, size_t>> types = {{0x08, 1}, {0x09, 1}, {0x0B, 2},
                                                         {0x0C, 4}, {0x0D, 4}, {0x0E, 8}};
  for (auto [type, size] : types) {
    const auto b = idx_bytes(type, {2, 3}, std::vector<uint8_t>(6 * size, 7));
    const data::IdxView v = data::parse_idx(b.data(), b.size(), "t");
    EXPECT_EQ(v.element_size, size);
    EXPECT_EQ(v.dims, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(v.data_offset, 12u);
  }
}

TEST(IdxReader, GzippedFileReadsTheSame) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 7, 5, 5);
  write_file(ip + ".gz", gzip_stored(read_bytes(ip)));
  write_file(lp + ".gz", gzip_stored(read_bytes(lp)));
  const data::Dataset a = data::load_idx_dataset(ip, lp, "raw", 10);
  const data::Dataset b = data::load_idx_dataset(ip + ".gz", lp + ".gz", "gz", 10);
  EXPECT_EQ(a.images.to_vector<uint8_t>(), b.images.to_vector<uint8_t>());
  EXPECT_EQ(a.labels.to_vector<int32_t>(), b.labels.to_vector<int32_t>());
  // gzip is recognised by its magic bytes, not by the name.
  write_file(dir.file("renamed"), gzip_stored(read_bytes(ip)));
  EXPECT_EQ(data::read_file(dir.file("renamed")), read_bytes(ip));
}

TEST(IdxReader, TruncatedFileNamesFileAndSizes) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 5, 4, 3);
  auto b = read_bytes(ip);
  b.resize(b.size() - 7);
  write_file(ip, b);
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "5 x 4 x 3", "60 bytes",
                    "53 bytes");
  // Cut inside the header itself.
  write_file(ip, {0, 0, 8, 3, 0, 0});
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "truncated IDX header");
  write_file(ip, {0, 0});
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "shorter than the 4-byte magic");
}

TEST(IdxReader, WrongMagicNumber) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 5, 4, 3);
  auto b = read_bytes(ip);
  b[2] = 0x42;  // no such type
  write_file(ip, b);
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "bad magic number 0x42",
                    "byte offset 0");
  b = read_bytes(lp);
  b[0] = 1;
  write_file(ip, b);
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "bad magic number");
  // Labels where images are expected: a rank mismatch, named as such.
  write_file(ip, read_bytes(lp));
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "rank 1", "rank 3");
  // A type other than uint8 is parsed but refused for images.
  write_file(ip, idx_bytes(0x0D, {1, 1, 1}, {0, 0, 0, 0}));
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "float32", "uint8");
}

TEST(IdxReader, HeaderDisagreesWithFileSize) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 5, 4, 3);
  auto b = read_bytes(ip);
  b.push_back(0);  // one byte too many
  write_file(ip, b);
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "60 bytes", "61 bytes");
}

TEST(IdxReader, BillionItemHeaderDoesNotAllocate) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 5, 4, 3);
  const MemoryStats before = cpu_memory_stats();
  write_file(ip, idx_bytes(0x08, {2000000000u, 28, 28}, iota_bytes(100)));
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "2000000000 x 28 x 28",
                    "1568000000000 bytes", "100 bytes");
  // Dimensions whose product overflows 64 bits.
  write_file(ip, idx_bytes(0x08, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, iota_bytes(10)));
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "over 2^64 bytes");
  write_file(lp, idx_bytes(0x08, {4000000000u}, iota_bytes(10)));
  EXPECT_ERROR_WITH(data::parse_idx(read_bytes(lp).data(), read_bytes(lp).size(), lp), lp,
                    "4000000000");
  EXPECT_LT(cpu_memory_stats().peak_bytes, before.peak_bytes + (size_t{1} << 20))
      << "a rejected header made the tensor allocator reserve memory";
}

// The header decides how much is read: a header of 5 images in front of half a gigabyte (sparse
// here), or gzip data that decompresses past the header's size, is refused having read the
// header, where the whole file was read and decompressed (1 GB of memory) before the comparison.
TEST(IdxReader, ReadsNoFurtherThanTheHeaderAllows) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 5, 4, 3);
  // Past the 1 GiB a dataset file may have: the whole-file read refused it for its size alone.
  std::filesystem::resize_file(ip, data::kMaxFileBytes + 16);
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "5 x 4 x 3", "60 bytes",
                    "1073741824 bytes after its 16-byte header");
  auto b = idx_bytes(0x08, {5, 4, 3}, iota_bytes(60));
  b.resize(b.size() + (size_t{1} << 20));  // a megabyte more than the header says
  write_file(ip, gzip_stored(b));
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip,
                    "decompresses to more than 76 bytes", "the size its IDX header gives");
  // gzip data cut inside the header: the gzip error, not "truncated IDX header".
  const std::vector<uint8_t> gz = gzip_stored(idx_bytes(0x08, {5, 4, 3}, iota_bytes(60)));
  write_file(ip, std::vector<uint8_t>(gz.begin(), gz.begin() + 20));
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "gzip");
}

// An empty set was trained on as nothing, or scored as loss 0 and accuracy 0 ("test acc 0.00%").
TEST(IdxReader, NoImageIsAnError) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 0, 28, 28);
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), ip, "holds no image",
                    "fetch the dataset again");
}

TEST(IdxReader, LabelOutOfRangeNamesOffset) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 5, 4, 3);
  write_file(lp, idx_bytes(0x08, {5}, {1, 2, 3, 10, 4}));
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "t", 10), lp, "label 10 of item 3",
                    "byte offset 11", "[0, 10)");
}

TEST(IdxReader, ImageAndLabelCountsMustAgree) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 5, 4, 3);
  write_file(lp, idx_bytes(0x08, {4}, {1, 2, 3, 4}));
  EXPECT_ERROR_WITH(data::load_idx_dataset(ip, lp, "pair", 10), ip, lp, "5 images", "4 labels");
}

TEST(FileReader, DirectoryMissingAndFifo) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "sub");
  EXPECT_ERROR_WITH(data::read_file(dir.file("sub")), dir.file("sub"), "is a directory");
  EXPECT_ERROR_WITH(data::read_file(dir.file("nope")), dir.file("nope"), "no such file");
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  EXPECT_ERROR_WITH(data::read_file(dir.file("fifo")), dir.file("fifo"), "not a regular file");
}

TEST(FileReader, UnreadableFile) {
  TempDir dir;
  write_file(dir.file("secret"), {1, 2, 3});
  ASSERT_EQ(::chmod(dir.file("secret").c_str(), 0), 0);
  if (::geteuid() != 0) {
    EXPECT_ERROR_WITH(data::read_file(dir.file("secret")), dir.file("secret"), "cannot open",
                      "Permission denied");
    return;
  }
  // Root reads anything: stage the case in a child that drops to the unprivileged "nobody".
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 3;
    if (::setgid(65534) == 0 && ::setuid(65534) == 0) {
      try {
        data::read_file(dir.file("secret"));
        code = 1;  // read despite mode 000
      } catch (const Error& e) {
        code = e.message().find("Permission denied") != std::string::npos &&
                       e.message().find(dir.file("secret")) != std::string::npos
                   ? 0
                   : 2;
      }
    }
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 3) GTEST_SKIP() << "cannot drop root privileges to stage the case";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the file was read; 2: the error lacked the path or "
                                       "'Permission denied'";
}

TEST(GzipReader, TruncatedAndCorruptStreams) {
  const auto real = read_bytes((test_data_dir() / "mnist/t10k-labels-idx1-ubyte.gz").string());
  ASSERT_GT(real.size(), 1000u);
  auto cut = real;
  cut.resize(cut.size() / 2);
  EXPECT_ERROR_WITH(data::gunzip(cut.data(), cut.size(), "labels.gz"), "labels.gz",
                    "truncated gzip", "byte offset " + std::to_string(cut.size()));
  auto bad = real;
  bad[bad.size() - 6] ^= 0xFF;  // the CRC-32 in the trailer
  EXPECT_ERROR_WITH(data::gunzip(bad.data(), bad.size(), "labels.gz"), "labels.gz", "corrupt gzip");
  auto junk = real;
  junk.push_back(7);
  EXPECT_ERROR_WITH(data::gunzip(junk.data(), junk.size(), "labels.gz"), "labels.gz",
                    "unexpected bytes", "byte offset " + std::to_string(real.size()));
  // A bomb: 8 MiB of zeros stopped at a 1 MiB cap.
  const auto bomb = gzip_stored(std::vector<uint8_t>(8 << 20, 0));
  EXPECT_ERROR_WITH(data::gunzip(bomb.data(), bomb.size(), "bomb.gz", 1 << 20), "bomb.gz",
                    "more than 1048576 bytes");
  // Two concatenated members read as one stream, as gzip(1) does.
  auto two = gzip_stored({1, 2, 3});
  const auto second = gzip_stored({4, 5});
  two.insert(two.end(), second.begin(), second.end());
  EXPECT_EQ(data::gunzip(two.data(), two.size(), "two.gz"), (std::vector<uint8_t>{1, 2, 3, 4, 5}));
}

// ---------------------------------------------------------------- CIFAR

// Record i of a test batch: label (i * 3 + salt) % classes, pixels (i + 5 p + salt) % 256.
std::vector<uint8_t> cifar_batch(int n, CifarKind kind, int salt) {
  std::vector<uint8_t> b;
  for (int i = 0; i < n; ++i) {
    if (kind == CifarKind::kCifar10) {
      b.push_back(static_cast<uint8_t>((i * 3 + salt) % 10));
    } else {
      b.push_back(static_cast<uint8_t>((i * 3 + salt) % 20));
      b.push_back(static_cast<uint8_t>((i * 7 + salt) % 100));
    }
    for (int p = 0; p < 3072; ++p) b.push_back(static_cast<uint8_t>(i + 5 * p + salt));
  }
  return b;
}

TEST(CifarReader, Cifar10TrainAndTestFromTheirFiles) {
  TempDir dir;
  for (int k = 1; k <= 5; ++k) {
    write_file(dir.file("data_batch_" + std::to_string(k) + ".bin"),
               cifar_batch(3, CifarKind::kCifar10, k));
  }
  write_file(dir.file("test_batch.bin"), cifar_batch(4, CifarKind::kCifar10, 9));
  data::LoadOptions o;
  o.data_dir = dir.path().string();
  const data::Dataset train = data::load_dataset("cifar10", "train", o);
  EXPECT_EQ(train.images.shape(), Shape({15, 3, 32, 32}));
  EXPECT_EQ(train.num_classes, 10);
  const auto x = train.images.to_vector<uint8_t>();
  const auto y = train.labels.to_vector<int32_t>();
  for (int k = 1; k <= 5; ++k) {
    for (int i = 0; i < 3; ++i) {
      const int r = (k - 1) * 3 + i;
      EXPECT_EQ(y[r], (i * 3 + k) % 10);
      // Channel-planar: the record's pixel p is element p of the image's [3, 32, 32] block.
      for (int p : {0, 1, 1023, 1024, 2047, 2048, 3071}) {
        EXPECT_EQ(x[r * 3072 + p], static_cast<uint8_t>(i + 5 * p + k)) << r << " " << p;
      }
    }
  }
  const data::Dataset test = data::load_dataset("cifar10", "test", o);
  EXPECT_EQ(test.size(), 4);
  EXPECT_EQ(test.mean, data::dataset_info("cifar10").mean);
}

TEST(CifarReader, Cifar100FineByDefaultCoarseOnRequest) {
  TempDir dir;
  write_file(dir.file("train.bin"), cifar_batch(6, CifarKind::kCifar100, 1));
  write_file(dir.file("test.bin"), cifar_batch(2, CifarKind::kCifar100, 2));
  data::LoadOptions o;
  o.data_dir = dir.path().string();
  const data::Dataset fine = data::load_dataset("cifar100", "train", o);
  EXPECT_EQ(fine.num_classes, 100);
  o.coarse_labels = true;
  const data::Dataset coarse = data::load_dataset("cifar100", "train", o);
  EXPECT_EQ(coarse.num_classes, 20);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(fine.labels.to_vector<int32_t>()[i], (i * 7 + 1) % 100);
    EXPECT_EQ(coarse.labels.to_vector<int32_t>()[i], (i * 3 + 1) % 20);
  }
  EXPECT_EQ(fine.images.to_vector<uint8_t>()[3072 + 10], static_cast<uint8_t>(1 + 50 + 1));
  EXPECT_EQ(data::load_dataset("cifar100", "test", o).size(), 2);
}

TEST(CifarReader, BadFiles) {
  TempDir dir;
  const std::string f = dir.file("data_batch_1.bin");
  auto b = cifar_batch(3, CifarKind::kCifar10, 0);
  b.resize(b.size() - 100);
  write_file(f, b);
  EXPECT_ERROR_WITH(data::load_cifar_dataset({f}, CifarKind::kCifar10, false, "c"), f,
                    "not a whole number", "byte offset 6146");
  b = cifar_batch(3, CifarKind::kCifar10, 0);
  b[3073] = 10;  // label of record 1
  write_file(f, b);
  EXPECT_ERROR_WITH(data::load_cifar_dataset({f}, CifarKind::kCifar10, false, "c"), f,
                    "label 10 of record 1", "byte offset 3073");
  b = cifar_batch(3, CifarKind::kCifar100, 0);
  b[2 * 3074 + 1] = 100;  // fine label of record 2
  write_file(f, b);
  EXPECT_ERROR_WITH(data::load_cifar_dataset({f}, CifarKind::kCifar100, false, "c"), f,
                    "fine label 100 of record 2", "byte offset 6149");
  write_file(f, {});
  EXPECT_ERROR_WITH(data::load_cifar_dataset({f}, CifarKind::kCifar10, false, "c"), f, "empty");
  std::filesystem::remove(f);
  std::filesystem::create_directories(f);
  EXPECT_ERROR_WITH(data::load_cifar_dataset({f}, CifarKind::kCifar10, false, "c"), f,
                    "is a directory");
}

// ---------------------------------------------------------------- registry

TEST(Registry, MissingDatasetNamesFilesDirectoryAndRemedy) {
  TempDir dir;
  data::LoadOptions o;
  o.download = false;  // the error a user sees with --no_download (fetching: tests/fetch/)
  o.data_dir = dir.file("absent");
  EXPECT_ERROR_WITH(data::load_dataset("mnist", "train", o), "mnist (train split) not found",
                    dir.file("absent"), "no such directory", "train-images-idx3-ubyte",
                    "train-labels-idx1-ubyte", "yann.lecun.com", "--data_dir");
  write_file(dir.file("a_file"), std::vector<uint8_t>{1, 2, 3});
  o.data_dir = dir.file("a_file");  // exists, as a file: not "no such directory"
  EXPECT_ERROR_WITH(data::load_dataset("mnist", "train", o), "(a file, not a directory)");
  o.data_dir = dir.path().string();
  write_file(dir.file("data_batch_1.bin"), cifar_batch(1, CifarKind::kCifar10, 0));
  EXPECT_ERROR_WITH(data::load_dataset("cifar10", "train", o), "data_batch_2.bin",
                    "data_batch_5.bin", "cifar-10-binary.tar.gz",
                    "--strip-components=1 -C " + dir.path().string() + ")");
  EXPECT_ERROR_WITH(data::load_dataset("fashion_mnist", "test", o), "t10k-images-idx3-ubyte",
                    "apt-get install dataset-fashion-mnist");
  EXPECT_ERROR_WITH(data::load_dataset("imagenet", "train", o), "unknown dataset 'imagenet'",
                    "mnist", "cifar100", "synthetic");
  EXPECT_ERROR_WITH(data::load_dataset("mnist", "val", o), "unknown split 'val'");
}

TEST(Registry, DefaultLocations) {
  EXPECT_EQ(data::dataset_info("mnist").default_dir, "./data/mnist");
  EXPECT_EQ(data::dataset_info("fashion_mnist").default_dir, "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(data::dataset_info("cifar10").default_dir, "./data/cifar-10-batches-bin");
  EXPECT_EQ(data::dataset_info("cifar100").num_classes, 100);
}

TEST(Registry, FindsGzippedMnistNames) {
  TempDir dir;
  auto [ip, lp] = write_idx_pair(dir, 3, 28, 28, "x");
  write_file(dir.file("t10k-images-idx3-ubyte.gz"), gzip_stored(read_bytes(ip)));
  write_file(dir.file("t10k-labels-idx1-ubyte"), read_bytes(lp));
  data::LoadOptions o;
  o.data_dir = dir.path().string();
  const data::Dataset d = data::load_dataset("mnist", "test", o);
  EXPECT_EQ(d.size(), 3);
  EXPECT_EQ(d.mean, (std::vector<float>{0.1307f}));  // the published statistics
}

TEST(Registry, ImagesOfAnotherSizeThanTheModelsAreBuiltForAreRefused) {
  TempDir dir;
  // MNIST padded to 32 x 32 (both splits) and a test split of 28 x 28 beside a padded train split.
  auto [ip, lp] = write_idx_pair(dir, 3, 32, 32, "x");
  std::filesystem::rename(ip, dir.file("train-images-idx3-ubyte"));
  std::filesystem::rename(lp, dir.file("train-labels-idx1-ubyte"));
  auto [tp, tl] = write_idx_pair(dir, 3, 28, 28, "y");
  std::filesystem::rename(tp, dir.file("t10k-images-idx3-ubyte"));
  std::filesystem::rename(tl, dir.file("t10k-labels-idx1-ubyte"));
  data::LoadOptions o;
  o.download = false;
  o.data_dir = dir.path().string();
  EXPECT_ERROR_WITH(data::load_dataset("mnist", "train", o), "mnist/train",
                    dir.file("train-images-idx3-ubyte"), "32 x 32", "28 x 28", "published");
  EXPECT_EQ(data::load_dataset("mnist", "test", o).height(), 28);
}

// ---------------------------------------------------------------- synthetic, split

TEST(Synthetic, DeterministicFromSeedAnyShape) {
  data::SyntheticOptions o;
  o.train_size = 300;
  o.test_size = 50;
  const data::Dataset a = data::make_synthetic(o, "train");
  const data::Dataset b = data::make_synthetic(o, "train");
  EXPECT_EQ(a.images.shape(), Shape({300, 3, 32, 32}));
  EXPECT_EQ(a.images.to_vector<uint8_t>(), b.images.to_vector<uint8_t>());
  EXPECT_EQ(a.labels.to_vector<int32_t>(), b.labels.to_vector<int32_t>());
  const auto test = data::make_synthetic(o, "test").images.to_vector<uint8_t>();
  EXPECT_FALSE(std::equal(test.begin(), test.end(), a.images.to_vector<uint8_t>().begin()))
      << "the test split repeats the training split";
  o.seed = 1;
  EXPECT_NE(data::make_synthetic(o, "train").images.to_vector<uint8_t>(),
            a.images.to_vector<uint8_t>());
  o.channels = 1;
  o.height = 28;
  o.width = 20;
  o.num_classes = 7;
  const data::Dataset c = data::make_synthetic(o, "test");
  EXPECT_EQ(c.images.shape(), Shape({50, 1, 28, 20}));
  for (int64_t h : data::label_histogram(c)) EXPECT_GT(h, 0);
  EXPECT_EQ(c.mean.size(), 1u);
}

TEST(Split, ValidationCarvedReproduciblyFromSeed) {
  data::SyntheticOptions o;
  o.train_size = 1000;
  const data::Dataset d = data::make_synthetic(o, "train");
  const data::Split s = data::split_validation(d, 0.1, 42);
  EXPECT_EQ(s.train.size(), 900);
  EXPECT_EQ(s.validation.size(), 100);
  // Together they are the dataset: every image once (the synthetic images are all distinct).
  std::multiset<uint64_t> all, parts;
  const auto hashes = [](const data::Dataset& x, std::multiset<uint64_t>& out) {
    const uint8_t* p = x.images.data<uint8_t>();
    for (int64_t i = 0; i < x.size(); ++i) out.insert(fnv1a(p + i * 3072, 3072));
  };
  hashes(d, all);
  hashes(s.train, parts);
  hashes(s.validation, parts);
  EXPECT_EQ(all, parts);
  const data::Split again = data::split_validation(d, 0.1, 42);
  EXPECT_EQ(again.validation.images.to_vector<uint8_t>(), s.validation.images.to_vector<uint8_t>());
  const data::Split other = data::split_validation(d, 0.1, 43);
  EXPECT_NE(other.validation.images.to_vector<uint8_t>(), s.validation.images.to_vector<uint8_t>());
  EXPECT_ERROR_WITH(data::split_validation(d, 1.0, 0), "validation fraction 1");
  // A part that rounds to no image is refused rather than scored as loss 0, accuracy 0.
  EXPECT_ERROR_WITH(data::split_validation(d, 0.0001, 0), "0.0001 of 1000 images is 0 images");
  EXPECT_ERROR_WITH(data::split_validation(d, 0.9996, 0), "is 1000 images, leaving 0");
  EXPECT_EQ(data::split_validation(d, 0.001, 0).validation.size(), 1);
}

// pad_to: 28x28 (or 28x20) images centred in zeros, the odd pixel on the bottom / right; labels,
// classes and the dataset's mean / std unchanged; too small a size and features are refused.
TEST(PadImages, CentresTheImagesInBlackAndKeepsTheRest) {
  data::SyntheticOptions o;
  o.train_size = 6;
  o.channels = 2;
  o.height = 28;
  o.width = 20;
  const data::Dataset d = data::make_synthetic(o, "train");
  const data::Dataset p = data::pad_images(d, 32);
  ASSERT_EQ(p.images.shape(), Shape({6, 2, 32, 32}));
  EXPECT_EQ(p.labels.to_vector<int32_t>(), d.labels.to_vector<int32_t>());
  EXPECT_EQ(p.mean, d.mean);
  EXPECT_EQ(p.std, d.std);
  EXPECT_EQ(p.num_classes, d.num_classes);
  const auto src = d.images.to_vector<uint8_t>(), out = p.images.to_vector<uint8_t>();
  for (int64_t plane = 0; plane < 12; ++plane)
    for (int64_t y = 0; y < 32; ++y)
      for (int64_t x = 0; x < 32; ++x) {
        const bool inside = y >= 2 && y < 30 && x >= 6 && x < 26;  // top 2, left 6
        const uint8_t want = inside ? src[(plane * 28 + y - 2) * 20 + x - 6] : 0;
        ASSERT_EQ(out[(plane * 32 + y) * 32 + x], want) << plane << " " << y << " " << x;
      }
  // An odd margin: 28 -> 31 puts 1 row above and 2 below.
  const data::Dataset odd = data::pad_images(d, 31);
  EXPECT_EQ(odd.images.to_vector<uint8_t>()[31 + 5], src[0]);  // row 1, column 5
  EXPECT_EQ(data::pad_images(d, 28).images.dim(3), 28);        // height already: width padded
  EXPECT_ERROR_WITH(data::pad_images(d, 27), "cannot pad 28 x 20 images to 27 x 27");
  data::Dataset features = d;
  features.images = Tensor::zeros({6, 2, 28, 20}, DType::kFloat32, Device::cpu());
  EXPECT_ERROR_WITH(data::pad_images(features, 32), "padding needs images (uint8)");
}

}  // namespace
}  // namespace cyclone::testing
