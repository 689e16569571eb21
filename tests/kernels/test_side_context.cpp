// Kernels called with a context that is not the thread's current one (a Context of its own, with
// its own stream): their scratch must be allocated on that context's stream. The caching allocator
// hands a freed block to the next allocation on the stream it was allocated on without waiting;
// scratch taken from the current context's stream would be handed out there while the other
// stream's kernels may still read it.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/graph.h"
#include "cyclone/kernels/batchnorm.h"
#include "cyclone/kernels/conv.h"
#include "cyclone/kernels/reduce.h"
#include "cyclone/kernels/softmax.h"

namespace cyclone {
namespace {

TEST(SideContext, EmptyOnAContextIsOnItsDevice) {
  Context& cpu = Context::current(Device::cpu());
  const Tensor t = Tensor::empty({3, 5}, DType::kFloat64, cpu);
  EXPECT_EQ(t.device(), Device::cpu());
  EXPECT_EQ(t.shape(), Shape({3, 5}));
  EXPECT_EQ(t.dtype(), DType::kFloat64);
}

// The results of batch_norm_forward, reduce_all and softmax_cross_entropy_forward on ctx.
std::vector<Tensor> run_ops(Context& ctx, const Tensor& x, const Tensor& logits,
                            const Tensor& labels) {
  const Device dev = x.device();
  const int64_t C = x.dim(1), rows = logits.dim(0);
  const Tensor y = testing::nan_tensor(x.shape(), DType::kFloat32, dev);
  const Tensor sm = testing::nan_tensor({C}, DType::kFloat32, dev);
  const Tensor si = testing::nan_tensor({C}, DType::kFloat32, dev);
  const Tensor sum = testing::nan_tensor({1}, DType::kFloat32, dev);
  const Tensor loss = testing::nan_tensor({1}, DType::kFloat32, dev);
  const Tensor lse = testing::nan_tensor({rows}, DType::kFloat32, dev);
  Context::current(dev).synchronize();  // the inputs and NaN fills ran on the current stream
  kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5, y,
                              sm, si);
  kernels::reduce_all(ctx, kernels::ReduceOp::kSum, x, sum);
  kernels::softmax_cross_entropy_forward(ctx, logits, labels, 0.0, loss, lse);
  return {y, sm, si, sum, loss, lse};
}

TEST(SideContextCuda, KernelScratchComesFromTheContextsStream) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Device dev = Device::cuda(0);
  Context& current = Context::current(dev);
  Context side(dev);
  // Small enough that every scratch buffer (batch norm's one partial block per channel, the
  // reduction's one partial, the 8 row losses) fits the allocator's smallest block, 512 bytes.
  const Tensor x = testing::random_tensor({4, 16, 8, 8}, 1, DType::kFloat32, Device::cpu()).to(dev);
  const Tensor logits = testing::random_tensor({8, 10}, 2, DType::kFloat32, Device::cpu()).to(dev);
  const Tensor labels = Tensor::from_vector<int32_t>({0, 9, 3, 3, 7, 1, 2, 5}, {8}, dev);
  current.synchronize();
  gpu::empty_cache(0);  // no cached block on any stream: every reuse below is one of this test's
  std::vector<Tensor> got = run_ops(side, x, logits, labels);
  // side's kernels may still run. Blocks of the scratch's size on the current stream must be new
  // ones (a cudaMalloc each), not the scratch freed by the ops above.
  const size_t before = gpu::memory_stats(0).num_allocs;
  std::vector<void*> probes;
  for (int i = 0; i < 3; ++i) probes.push_back(gpu::caching_malloc(512, 0, current.stream()));
  EXPECT_EQ(gpu::memory_stats(0).num_allocs - before, 3u)
      << "a kernel run on another context freed its scratch to the current stream's free list";
  for (void* p : probes) gpu::caching_free(p);
  side.synchronize();
  // And the side context computes what the current one does.
  const std::vector<Tensor> want = run_ops(current, x, logits, labels);
  current.synchronize();
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(got[i].to_vector<float>(), want[i].to_vector<float>()) << "#" << i;
}

// An empty batch's filter gradient is zeroed like every write of the op, on ctx's stream: it was
// Tensor::zero_, on the current context's stream, unordered with ctx's later work on dw. A
// capture of side's stream shows where the zeroing went: recorded in the graph (run by its
// replay), not run at once elsewhere.
TEST(SideContextCuda, EmptyBatchFilterGradientIsZeroedOnTheContextsStream) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Device dev = Device::cuda(0);
  Context side(dev);
  const Tensor x = Tensor::empty({0, 3, 8, 8}, DType::kFloat32, dev);
  const Tensor dy = Tensor::empty({0, 4, 8, 8}, DType::kFloat32, dev);
  const Tensor dw = testing::nan_tensor({4, 3, 3, 3}, DType::kFloat32, dev);
  Context::current(dev).synchronize();
  gpu::Graph g;
  ASSERT_EQ(g.capture(side,
                      [&] {
                        kernels::conv2d_backward_filter(side, x, dy,
                                                        kernels::Conv2dParams::square(1, 1), dw);
                      }),
            "");
  EXPECT_EQ(g.nodes(), 1) << "the zeroing was not enqueued on the context's stream";
  for (float v : dw.to_vector<float>()) ASSERT_TRUE(std::isnan(v)) << "zeroed outside the capture";
  g.replay();
  side.synchronize();
  for (float v : dw.to_vector<float>()) ASSERT_EQ(v, 0.f);
}

}  // namespace
}  // namespace cyclone
