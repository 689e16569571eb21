// CUDA synchronized batch norm steps (kernels/sync_batchnorm.h): a thread per channel, the math of
// kernels/sync_batchnorm_math.h, one launch each on the context's stream (no copy to the host,
// so a data-parallel step's NCCL all-reduces of the sums read and write device memory).
#include <cstdint>

#include "cyclone/kernels/cuda/launch.cuh"
#include "cyclone/kernels/cuda/sync_batchnorm.h"
#include "cyclone/kernels/sync_batchnorm_math.h"

namespace cyclone::kernels::cuda {

namespace {

template <class T>
__global__ void pack_kernel(const T* __restrict__ mean, const T* __restrict__ invstd,
                            int64_t channels, double eps, double m, double* __restrict__ sums) {
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k == 0) sums[2 * channels] = m;
  if (k >= channels) return;
  sync_bn::pack(static_cast<double>(mean[k]), static_cast<double>(invstd[k]), eps, m, sums[k],
                sums[channels + k]);
}

template <class T>
__global__ void stats_kernel(const double* __restrict__ sums, int64_t channels, double eps,
                             double momentum, T* __restrict__ mean, T* __restrict__ var,
                             T* __restrict__ invstd, T* running_mean, T* running_var) {
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k >= channels) return;
  const double m = sums[2 * channels];
  const sync_bn::Stats st = sync_bn::stats(sums[k], sums[channels + k], m, eps);
  mean[k] = static_cast<T>(st.mean);
  var[k] = static_cast<T>(st.var);
  invstd[k] = static_cast<T>(st.invstd);
  if (running_mean) {
    running_mean[k] =
        static_cast<T>(sync_bn::running(static_cast<double>(running_mean[k]), st.mean, momentum));
    running_var[k] = static_cast<T>(
        sync_bn::running(static_cast<double>(running_var[k]), st.var * m / (m - 1), momentum));
  }
}

template <class T>
__global__ void dx_affine_kernel(const double* __restrict__ sums, const double* __restrict__ grads,
                                 const T* __restrict__ weight, int64_t channels, double eps,
                                 T* __restrict__ alpha, T* __restrict__ beta) {
  const int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k >= channels) return;
  const double m = sums[2 * channels];
  double a, b;
  sync_bn::dx_affine(sync_bn::stats(sums[k], sums[channels + k], m, eps),
                     weight ? static_cast<double>(weight[k]) : 1.0, grads[k], grads[channels + k],
                     m, a, b);
  alpha[k] = static_cast<T>(a);
  beta[k] = static_cast<T>(b);
}

unsigned channel_blocks(int64_t channels) {
  return static_cast<unsigned>((std::max<int64_t>(channels, 1) + kBlock - 1) / kBlock);
}

}  // namespace

void sync_batch_norm_pack(Context& ctx, const Tensor& save_mean, const Tensor& save_invstd,
                          double eps, double m, const Tensor& sums) {
  const int64_t c = save_mean.numel();
  CYCLONE_DISPATCH_FLOAT(save_mean.dtype(), T, [&] {
    pack_kernel<T><<<channel_blocks(c), kBlock, 0, stream_of(ctx)>>>(
        save_mean.data<T>(), save_invstd.data<T>(), c, eps, m, sums.data<double>());
  });
  gpu::check_launch("sync_batch_norm_pack", ctx.stream());
}

void sync_batch_norm_stats(Context& ctx, const Tensor& sums, double eps, double momentum,
                           const Tensor& mean, const Tensor& var, const Tensor& invstd,
                           const Tensor& running_mean, const Tensor& running_var) {
  const int64_t c = mean.numel();
  if (c == 0) return;
  CYCLONE_DISPATCH_FLOAT(mean.dtype(), T, [&] {
    stats_kernel<T><<<channel_blocks(c), kBlock, 0, stream_of(ctx)>>>(
        sums.data<double>(), c, eps, momentum, mean.data<T>(), var.data<T>(), invstd.data<T>(),
        ptr_or_null<T>(running_mean), ptr_or_null<T>(running_var));
  });
  gpu::check_launch("sync_batch_norm_stats", ctx.stream());
}

void sync_batch_norm_dx_affine(Context& ctx, const Tensor& sums, const Tensor& grads,
                               const Tensor& weight, double eps, const Tensor& alpha,
                               const Tensor& beta) {
  const int64_t c = alpha.numel();
  if (c == 0) return;
  CYCLONE_DISPATCH_FLOAT(alpha.dtype(), T, [&] {
    dx_affine_kernel<T><<<channel_blocks(c), kBlock, 0, stream_of(ctx)>>>(
        sums.data<double>(), grads.data<double>(), ptr_or_null<T>(weight), c, eps, alpha.data<T>(),
        beta.data<T>());
  });
  gpu::check_launch("sync_batch_norm_dx_affine", ctx.stream());
}

}  // namespace cyclone::kernels::cuda
