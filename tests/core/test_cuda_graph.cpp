// gpu::Graph (core/cuda/graph.h) on its own, below the step runner that uses it: a capture records
// the work without running it, every replay runs it again on the memory it captured, reset() hands
// the graph's pool back, and a capture the runtime refuses (or whose work throws) comes back as a
// reason with the stream usable for eager work. *Cuda* tests: they skip without a GPU.
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/context.h"
#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/graph.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone {
namespace {

// acc += 2, through a temporary that is allocated and freed inside the work.
void add_two(Context& ctx, const Tensor& acc) {
  const Tensor tmp = Tensor::empty(acc.shape(), acc.dtype(), acc.device());
  kernels::fill(ctx, tmp, 2.0);
  kernels::binary(ctx, kernels::BinaryOp::kAdd, acc, tmp, acc);
}

void expect_all(const Tensor& t, float value) {
  const std::vector<float> h = t.to_vector<float>();
  for (size_t i = 0; i < h.size(); ++i) ASSERT_EQ(h[i], value) << "element " << i;
}

TEST(GraphCuda, ReplaysRunTheCapturedWorkAndResetReturnsItsPool) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Device d = Device::cuda();
  Context& ctx = Context::current(d);
  const Tensor acc = Tensor::zeros({1031}, DType::kFloat32, d);  // not a multiple of a block
  add_two(ctx, acc);  // eager warm-up, as the step runner does (kernels loaded, handles made)
  gpu::Graph g;
  int calls = 0;
  const std::string reason = g.capture(ctx, [&] {
    ++calls;
    add_two(ctx, acc);
  });
  ASSERT_EQ(reason, "");
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(g.ready());
  EXPECT_GE(g.nodes(), 2);
  expect_all(acc, 2.f);  // captured, not run
  for (int i = 0; i < 3; ++i) g.replay();
  expect_all(acc, 8.f);

  const size_t reserved = gpu::memory_stats(d.index).reserved_bytes;
  g.reset();
  EXPECT_FALSE(g.ready());
  EXPECT_EQ(g.nodes(), 0);
  EXPECT_LT(gpu::memory_stats(d.index).reserved_bytes, reserved)
      << "the temporary's block belonged to the graph's pool, which reset() releases";
  EXPECT_THROW(g.replay(), Error);
}

TEST(GraphCuda, RefusedCaptureSaysWhyAndTheStreamStaysUsable) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Device d = Device::cuda();
  Context& ctx = Context::current(d);
  const Tensor t = Tensor::zeros({257}, DType::kFloat32, d);
  add_two(ctx, t);
  gpu::Graph g;
  // Waiting for the stream on the host is illegal while it is captured.
  const std::string reason = g.capture(ctx, [&] {
    add_two(ctx, t);
    ctx.synchronize();
  });
  EXPECT_NE(reason, "");
  EXPECT_FALSE(g.ready());
  EXPECT_THROW(g.replay(), Error);
  add_two(ctx, t);  // eager work after the failed capture runs (the captured add never did)
  expect_all(t, 4.f);

  // An Error of the work itself comes back as the reason, and so does not escape.
  const std::string why = g.capture(ctx, [&] {
    add_two(ctx, t);
    CYCLONE_THROW("the step refused to be captured");
  });
  EXPECT_NE(why.find("the step refused to be captured"), std::string::npos) << why;
  EXPECT_FALSE(g.ready());
  expect_all(t, 4.f);

  // The same Graph captures again after failures.
  ASSERT_EQ(g.capture(ctx, [&] { add_two(ctx, t); }), "");
  g.replay();
  expect_all(t, 6.f);
}

// nodes() counts every node a replay launches, not only kernels: a memset and a kernel are two.
TEST(GraphCuda, NodesCountsEveryKindOfNode) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Device d = Device::cuda();
  Context& ctx = Context::current(d);
  const Tensor a = Tensor::zeros({300}, DType::kFloat32, d),
               b = Tensor::zeros({300}, DType::kFloat32, d);
  kernels::binary(ctx, kernels::BinaryOp::kAdd, a, a, b);  // warm-up: the kernel is loaded
  gpu::Graph g;
  ASSERT_EQ(g.capture(ctx,
                      [&] {
                        gpu::memset_async(a.raw_data(), 0, a.nbytes(), ctx.stream());
                        kernels::binary(ctx, kernels::BinaryOp::kAdd, a, a, b);
                      }),
            "");
  EXPECT_EQ(g.nodes(), 2);
}

// A CPU context has nothing to capture: both builds (with and without the CUDA backend) say so as
// capture()'s reason, which callers answer by running the work eagerly, rather than one of them
// throwing. Runs without a GPU.
TEST(Graph, CaptureOnACpuContextIsRefusedWithAReason) {
  gpu::Graph g;
  int calls = 0;
  std::string reason;
  EXPECT_NO_THROW(reason = g.capture(Context::current(Device::cpu()), [&] { ++calls; }));
  EXPECT_NE(reason.find("needs a CUDA context"), std::string::npos) << reason;
  EXPECT_NE(reason.find("cpu"), std::string::npos) << reason;
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(g.ready());
  EXPECT_EQ(g.nodes(), 0);
}

}  // namespace
}  // namespace cyclone
