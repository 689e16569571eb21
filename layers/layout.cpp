#include "cyclone/layers/layout.h"

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/transpose.h"
#include "cyclone/layers/autocast.h"
#include "cyclone/layers/conv_ops.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

namespace {
thread_local bool t_channels_last = false;

// x transposed by `forward`, recorded with `backward` (the inverse) as its gradient.
template <class Forward, class Backward>
Tensor relayout(const char* name, const Tensor& x, Forward&& forward, Backward&& backward) {
  CYCLONE_CHECK(x.defined() && x.rank() == 4, name, ": needs a rank-4 tensor, got ",
                x.defined() ? x.shape().str() : "undefined");
  Tensor y = forward(Context::of(x), x);
  return autograd::record(y, name, {x}, [backward](const Tensor& gy, const Tensor&) {
    return std::vector<Tensor>{backward(Context::of(gy), gy)};
  });
}
}  // namespace

bool channels_last_active() { return t_channels_last; }

ChannelsLastScope::ChannelsLastScope(bool on) : previous_(t_channels_last) { t_channels_last = on; }

ChannelsLastScope::~ChannelsLastScope() { t_channels_last = previous_; }

Tensor to_channels_last(const Tensor& x) {
  return relayout("to_channels_last", x, kernels::to_channels_last, kernels::to_channels_first);
}

Tensor to_channels_first(const Tensor& x) {
  return relayout("to_channels_first", x, kernels::to_channels_first, kernels::to_channels_last);
}

int channel_axis(const Tensor& x) { return t_channels_last && x.rank() == 4 ? 3 : 1; }

Tensor conv2d_in_layout(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        kernels::Conv2dParams params) {
  if (!t_channels_last) return conv2d(x, weight, bias, params);
  CYCLONE_CHECK(weight.defined() && weight.rank() == 4,
                "conv2d: needs weight [Cout, Cin, kh, kw], got ",
                weight.defined() ? weight.shape().str() : "undefined");
  params.channels_last = true;
  // Under autocast the weight is rounded first, so the transpose moves 16-bit elements (conv2d's
  // own cast is then a no-op): 10 bytes per element instead of 14.
  const Tensor low = autocast_applies(x, weight) ? cast(weight, autocast_dtype()) : weight;
  // [Cout, Cin, 1, 1] and [Cout, 1, 1, Cin] are the same memory: a view, no copy.
  const bool one_by_one = low.dim(2) == 1 && low.dim(3) == 1;
  const Tensor w = one_by_one ? low.reshape({low.dim(0), 1, 1, low.dim(1)}) : to_channels_last(low);
  return conv2d(x, w, bias, params);
}

}  // namespace cyclone
