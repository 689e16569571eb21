// kernels::AlgoCache, the convolution algorithm table the GPU code keeps (and, with
// $CYCLONE_CUDNN_CACHE, stores): choices survive a restart under the same fingerprint, a file
// from another cuDNN / GPU or a corrupt, truncated or malformed one is ignored with a note naming
// it (never a crash) and rewritten on the next insert, and a file that cannot be written leaves
// the table working in memory. Keys carry each operand's alignment, so a view at an odd offset
// (Tensor::slice) is searched on its own instead of being handed an algorithm timed on aligned
// buffers; on a GPU, convolutions on such views after aligned ones agree with the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/kernels/algo_cache.h"

namespace cyclone {
namespace {

using kernels::AlgoCache;
using kernels::AlgoChoice;
using kernels::AlgoKey;
using kernels::Conv2dParams;
using kernels::pointer_alignment;

AlgoKey key(int64_t pass, int64_t n, int64_t x_align = 16) {
  return {pass, 0, 0, 1, n, 160, 32, 32, 160, 3, 3, 32, 1, 1, 1, 1, 1, 1, 0, x_align, 16, 16};
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

TEST(AlgoCache, ChoicesSurviveARestartUnderTheSameFingerprint) {
  testing::TempDir dir;
  const std::string path = dir.file("cudnn.json");
  {
    AlgoCache c(path, "cudnn 91900; NVIDIA H100 sm_90");
    EXPECT_EQ(c.size(), 0u);
    EXPECT_EQ(c.note(), "") << "a missing file is the first run, not a problem";
    c.insert(key(0, 128), AlgoChoice{6, 1, 1 << 20});
    c.insert(key(2, 128), AlgoChoice{1, 2, 0});
    c.insert(key(0, 128), AlgoChoice{7, 1, 4096});  // replaced
    EXPECT_EQ(c.find(key(0, 128)), (AlgoChoice{7, 1, 4096}));
  }
  AlgoCache again(path, "cudnn 91900; NVIDIA H100 sm_90");
  EXPECT_EQ(again.size(), 2u);
  EXPECT_EQ(again.note(), "");
  EXPECT_EQ(again.find(key(0, 128)), (AlgoChoice{7, 1, 4096}));
  EXPECT_EQ(again.find(key(2, 128)), (AlgoChoice{1, 2, 0}));
  EXPECT_FALSE(again.find(key(1, 128)).has_value());
  EXPECT_FALSE(again.find(key(0, 64)).has_value());
  // Memory only: nothing is written anywhere.
  AlgoCache mem("", "x");
  mem.insert(key(0, 1), AlgoChoice{2, 0, 0});
  EXPECT_EQ(mem.find(key(0, 1)), (AlgoChoice{2, 0, 0}));
}

TEST(AlgoCache, AnotherFingerprintIsIgnoredThenReplaced) {
  testing::TempDir dir;
  const std::string path = dir.file("cudnn.json");
  AlgoCache(path, "cudnn 90100; NVIDIA A100 sm_80").insert(key(0, 8), AlgoChoice{3, 1, 0});
  AlgoCache other(path, "cudnn 91900; NVIDIA H100 sm_90");
  EXPECT_EQ(other.size(), 0u);
  EXPECT_NE(other.note().find(path), std::string::npos) << other.note();
  EXPECT_NE(other.note().find("A100"), std::string::npos) << other.note();
  other.insert(key(0, 8), AlgoChoice{5, 1, 0});
  AlgoCache third(path, "cudnn 91900; NVIDIA H100 sm_90");
  EXPECT_EQ(third.find(key(0, 8)), (AlgoChoice{5, 1, 0}));
}

TEST(AlgoCache, CorruptTruncatedOrMalformedFilesAreIgnoredWithANote) {
  testing::TempDir dir;
  const std::string path = dir.file("cudnn.json");
  const std::string fp = "fp";
  AlgoCache(path, fp).insert(key(0, 8), AlgoChoice{5, 1, 0});
  std::string good;
  {
    std::ifstream in(path);
    std::getline(in, good);
  }
  const std::string bad_cases[] = {
      "not json at all",
      good.substr(0, good.size() / 2),                          // truncated
      R"({"version": 1, "fingerprint": "fp", "entries": []})",  // keys without the layout
      R"({"version": "3", "fingerprint": "fp", "entries": []})",
      R"({"version": 3, "fingerprint": "fp", "entries": [{"key": [1, 2, 3], "algo": 1,
          "math": 0, "workspace": 0}]})",
      R"({"version": 3, "fingerprint": "fp", "entries": [{"key": [0,0,0,1,8,160,32,32,160,3,3,32,
          1,1,1,1,1,1,0], "algo": 1, "math": 0, "workspace": 0}]})",  // 19: no alignment
      R"({"version": 3, "fingerprint": "fp", "entries": [{"key": [0,0,0,1,8,160,32,32,160,3,3,32,
          1,1,1,1,1,1,0,16,16,16], "algo": "fast", "math": 0, "workspace": 0}]})",
      R"({"version": 3, "fingerprint": "fp", "entries": [{"key": [0,0,0,1,8,160,32,32,160,3,3,32,
          1,1,1,1,1,1,0,16,16,16], "algo": -4, "math": 0, "workspace": 0}]})",
      R"({"version": 3, "fingerprint": "fp"})",
  };
  for (const std::string& text : bad_cases) {
    SCOPED_TRACE(text);
    write(path, text);
    AlgoCache c(path, fp);
    EXPECT_EQ(c.size(), 0u);
    EXPECT_NE(c.note().find(path), std::string::npos) << c.note();
    c.insert(key(1, 8), AlgoChoice{2, 0, 0});  // rewritten whole and valid
    EXPECT_EQ(AlgoCache(path, fp).size(), 1u);
  }
}

// A file the previous format wrote (version 2: keys without the operands' alignment, so its
// choices may have been timed on better-aligned buffers) is not an error: it is left unused with
// one note saying which version it is, and the first new choice rewrites it as version 3.
TEST(AlgoCache, AVersion2FileIsIgnoredAndRewritten) {
  testing::TempDir dir;
  const std::string path = dir.file("cudnn.json");
  write(path, R"({"version": 2, "fingerprint": "fp", "entries": [{"key": [0,0,0,1,8,160,32,32,
      160,3,3,32,1,1,1,1,1,1,0], "algo": 1, "math": 0, "workspace": 0}]})");
  AlgoCache old(path, "fp");
  EXPECT_EQ(old.size(), 0u);
  EXPECT_NE(old.note().find(path), std::string::npos) << old.note();
  EXPECT_NE(old.note().find("version 2"), std::string::npos) << old.note();
  old.insert(key(0, 8), AlgoChoice{1, 0, 0});
  AlgoCache again(path, "fp");
  EXPECT_EQ(again.note(), "");
  EXPECT_EQ(again.find(key(0, 8)), (AlgoChoice{1, 0, 0}));
  std::string text;
  std::getline(std::ifstream(path), text);
  EXPECT_NE(text.find("\"version\":3"), std::string::npos) << text;
}

TEST(AlgoCache, PointerAlignmentIsTheLargestPowerOfTwoUpTo16) {
  alignas(64) static unsigned char buf[64];
  const std::vector<std::pair<int, int64_t>> expected = {{0, 16},  {1, 1},  {2, 2},   {3, 1},
                                                         {4, 4},   {6, 2},  {8, 8},   {12, 4},
                                                         {16, 16}, {24, 8}, {32, 16}, {48, 16}};
  for (const auto& [offset, align] : expected)
    EXPECT_EQ(pointer_alignment(buf + offset), align) << "offset " << offset;
  EXPECT_EQ(pointer_alignment(nullptr), 16);
}

// What makes a misaligned operand reachable: a slice of a tensor whose rows are not a multiple of
// 16 bytes (bfloat16 [N, 3, 5, 5]: 150-byte images) is a view at that offset, and conv receives
// it as it is. Its key differs from the aligned problem's only in the alignment fields; fresh
// allocations (every one at least 16-byte aligned) share one key, so a training loop still hits.
TEST(AlgoCache, KeysSeparateMisalignedViewsOnly) {
  const DType bf16 = DType::kBFloat16;
  const Tensor data = Tensor::empty({6, 3, 5, 5}, bf16, Device::cpu());
  const Tensor w = Tensor::empty({4, 3, 3, 3}, bf16, Device::cpu());
  const Tensor y = Tensor::empty({4, 4, 5, 5}, bf16, Device::cpu());
  const Tensor aligned = data.slice(0, 4), view = data.slice(1, 5), view2 = data.slice(2, 6);
  EXPECT_EQ(pointer_alignment(aligned.raw_data()), 16);
  EXPECT_EQ(pointer_alignment(view.raw_data()), 2);   // 150 bytes in
  EXPECT_EQ(pointer_alignment(view2.raw_data()), 4);  // 300 bytes in
  const kernels::Conv2dGeometry g =
      kernels::conv2d_geometry("test", aligned.shape(), w.shape(), Conv2dParams::square(1, 1));
  auto k = [&](const Tensor& x) {
    return kernels::conv_algo_key(0, 0, bf16, 2, g, x.raw_data(), w.raw_data(), y.raw_data());
  };
  const AlgoKey a = k(aligned), b = k(view);
  EXPECT_NE(a, b);
  for (size_t i = 0; i + 3 < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "field " << i;
  EXPECT_EQ(a[19], 16);
  EXPECT_EQ(b[19], 2);
  EXPECT_EQ(a[20], 16);
  EXPECT_EQ(a[21], 16);
  const Tensor other = Tensor::empty({4, 3, 5, 5}, bf16, Device::cpu());
  EXPECT_EQ(k(other), a) << "another aligned allocation is the same problem";
  // A table with both choices keeps them apart, in memory and through the file.
  testing::TempDir dir;
  const std::string path = dir.file("cudnn.json");
  {
    AlgoCache c(path, "fp");
    c.insert(a, AlgoChoice{1, 2, 4096});
    c.insert(b, AlgoChoice{0, 2, 0});
  }
  AlgoCache c(path, "fp");
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.find(a), (AlgoChoice{1, 2, 4096}));
  EXPECT_EQ(c.find(b), (AlgoChoice{0, 2, 0}));
  EXPECT_FALSE(c.find(k(view2)).has_value());
}

TEST(AlgoCache, AFileThatCannotBeWrittenLeavesTheTableInMemory) {
  testing::TempDir dir;
  const std::string path = dir.file("no_such_dir/cudnn.json");
  AlgoCache c(path, "fp");
  c.insert(key(0, 8), AlgoChoice{4, 1, 0});
  c.insert(key(0, 16), AlgoChoice{4, 1, 0});
  EXPECT_EQ(c.find(key(0, 8)), (AlgoChoice{4, 1, 0}));
  EXPECT_EQ(c.size(), 2u);
  EXPECT_NE(c.note().find("cannot write"), std::string::npos) << c.note();
  EXPECT_NE(c.note().find(path), std::string::npos) << c.note();
}

// ---- on a GPU: the same problem, aligned first, then on views at odd offsets ----

// A view of `shape` at element `offset` into a larger buffer on the GPU, holding `host`'s values
// (or NaN when host is undefined); `buffer` gets the whole buffer.
Tensor view_at(const Shape& shape, int64_t offset, DType dt, const Tensor& host, Tensor* buffer) {
  const Tensor buf = testing::nan_tensor({shape.numel() + 16}, dt, Device::cuda());
  const Tensor v = buf.slice(offset, offset + shape.numel()).reshape(shape);
  if (host.defined()) v.copy_from(host);
  if (buffer) *buffer = buf;
  return v;
}

// Shapes where cuDNN's vectorised tensor-core kernels are the fast ones (32 channels), so the
// aligned run's choice is likely one that needs 16-byte operands. Each run must agree with the
// CPU; before the alignment was in the key, the views were handed the aligned run's algorithm.
void misaligned_after_aligned(DType dt, bool channels_last) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  Context& gctx = Context::current(Device::cuda());
  const bool was = gctx.allow_tf32();
  gctx.set_allow_tf32(false);
  const bool half = is_half(dt);
  const int64_t n = 4, c = 32, h = 8, w = 8, co = 32, kk = 3;
  Conv2dParams p = Conv2dParams::square(1, 1);
  p.channels_last = channels_last;
  const Shape xs = channels_last ? Shape{n, h, w, c} : Shape{n, c, h, w};
  const Shape ws = channels_last ? Shape{co, kk, kk, c} : Shape{co, c, kk, kk};
  const Shape ys = channels_last ? Shape{n, h, w, co} : Shape{n, co, h, w};
  const Device cpu = Device::cpu();
  const Tensor x = testing::random_tensor(xs, 71, dt, cpu);
  const Tensor wt = testing::random_tensor(ws, 72, dt, cpu);
  const Tensor dy = testing::random_tensor(ys, 73, dt, cpu);
  Context& cctx = Context::current(cpu);
  const Tensor y_ref = Tensor::empty(ys, dt, cpu), dx_ref = Tensor::empty(xs, dt, cpu),
               dw_ref = Tensor::empty(ws, dt, cpu);
  kernels::conv2d_forward(cctx, x, wt, Tensor(), p, y_ref);
  kernels::conv2d_backward_data(cctx, dy, wt, p, dx_ref);
  kernels::conv2d_backward_filter(cctx, x, dy, p, dw_ref);
  // Element offsets: 0 (the allocator's alignment), then 4- and 8-byte aligned views. (cuDNN has
  // documented a 4-byte minimum for every algorithm, so 2-byte views are not asked for.)
  const int64_t size = static_cast<int64_t>(dtype_size(dt));
  for (const int64_t bytes : {int64_t{0}, int64_t{4}, int64_t{8}}) {
    const int64_t off = bytes / size;
    SCOPED_TRACE(detail::str_cat(dtype_name(dt), channels_last ? " NHWC" : " NCHW", ", operands ",
                                 bytes, " bytes past a 16-byte boundary"));
    Tensor y_buf;
    const Tensor xd = view_at(xs, off, dt, x, nullptr), wd = view_at(ws, off, dt, wt, nullptr),
                 dyd = view_at(ys, off, dt, dy, nullptr);
    const Tensor y = view_at(ys, off, dt, Tensor(), &y_buf),
                 dx = view_at(xs, off, dt, Tensor(), nullptr),
                 dw = view_at(ws, off, dt, Tensor(), nullptr);
    EXPECT_EQ(pointer_alignment(xd.raw_data()), bytes == 0 ? 16 : bytes);
    kernels::conv2d_forward(gctx, xd, wd, Tensor(), p, y);
    kernels::conv2d_backward_data(gctx, dyd, wd, p, dx);
    kernels::conv2d_backward_filter(gctx, xd, dyd, p, dw);
    const double tol = half ? 5e-3 : 1e-5;  // GPU.md; 16-bit results are each rounded once
    EXPECT_LT(testing::relative_error(testing::values(y), testing::values(y_ref)), tol);
    EXPECT_LT(testing::relative_error(testing::values(dx), testing::values(dx_ref)), tol);
    EXPECT_LT(testing::relative_error(testing::values(dw), testing::values(dw_ref)), tol);
    // Nothing written outside the view.
    const std::vector<double> whole = testing::values(y_buf);
    for (int64_t i = 0; i < off; ++i) EXPECT_TRUE(std::isnan(whole[i])) << "element " << i;
    for (size_t i = static_cast<size_t>(off + ys.numel()); i < whole.size(); ++i)
      EXPECT_TRUE(std::isnan(whole[i])) << "element " << i;
  }
  gctx.set_allow_tf32(was);
}

TEST(AlgoCacheCuda, MisalignedViewsAfterAlignedOnesFp32) {
  misaligned_after_aligned(DType::kFloat32, false);
}
TEST(AlgoCacheCuda, MisalignedViewsAfterAlignedOnesBfloat16ChannelsLast) {
  misaligned_after_aligned(DType::kBFloat16, true);
}
TEST(AlgoCacheCuda, MisalignedViewsAfterAlignedOnesFloat16) {
  misaligned_after_aligned(DType::kFloat16, false);
}

}  // namespace
}  // namespace cyclone
