// Batch normalization over dim 1 (Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network
// Training by Reducing Internal Covariate Shift", ICML 2015), with the semantics of PyTorch's
// torch.nn.functional.batch_norm / BatchNorm1d / BatchNorm2d (aten native_batch_norm).
//
// x is [N, C, inner...] (NC for inner = 1, NCHW for inner = H*W); every per-channel tensor (weight,
// bias, running_mean, running_var, save_mean, save_invstd, dweight, dbias) is [C] on x's device,
// of x's dtype, or float32 for bfloat16 or float16 x (mixed precision: y, dy and dx are 16-bit like
// x, the statistics and parameters float32, the sums double as always). For channel c the M = N *
// inner values x[n, c, i] form one batch:
//
// forward, training (statistics of the batch):
//   mean_c   = (1/M) sum x                  var_c = (1/M) sum (x - mean_c)^2   (biased)
//   invstd_c = 1 / sqrt(var_c + eps)        xhat  = (x - mean_c) * invstd_c
//   y        = weight_c * xhat + bias_c     (weight = 1, bias = 0 when undefined: no affine)
//   running_mean = (1 - momentum) running_mean + momentum mean_c
//   running_var  = (1 - momentum) running_var  + momentum var_c * M / (M - 1)   (unbiased)
//   (running stats skipped when undefined: track_running_stats=False). M must be > 1, as PyTorch's
//   "Expected more than 1 value per channel when training".
// forward, eval (running statistics): mean_c = running_mean_c, invstd_c = 1/sqrt(running_var_c +
//   eps), same y. Both modes write save_mean = mean_c and save_invstd = invstd_c for the backward.
//   Training-mode batch_norm_forward may leave y undefined: the statistics alone (save_mean,
//   save_invstd, the running update), without the normalisation pass (synchronized batch norm's
//   per-replica statistics).
// backward, training (the standard formula, all sums over the channel's M values):
//   dbias_c   = sum dy                       dweight_c = sum dy * xhat
//   dx        = weight_c * invstd_c * (dy - dbias_c / M - xhat * dweight_c / M)
//   (the sums are double; CUDA's channels-innermost kernel forms each dy * xhat term in the
//   per-channel dtype before adding it, as its dx does, where NCHW and the CPU form it in double:
//   ~1e-7 relative apart in float32)
// backward, eval (mean and invstd are constants): dbias, dweight as above, dx = dy * weight_c *
//   invstd_c. dx, dweight and dbias may each be undefined (not computed).
//
// fused ReLU (batch_norm_relu_*; the BN-ReLU pair of pre-activation and post-activation ResNets):
//   forward:  y = relu(weight_c * xhat + bias_c)   (NaN stays NaN, as relu())
//   backward: dy is the gradient of that output. The pre-activation p = weight_c * xhat + bias_c is
//     recomputed from x, the saved statistics, weight and bias (nothing extra is stored or read),
//     g = p > 0 ? dy : 0 takes dy's place in every formula above. Where p is within rounding of 0
//     the mask may differ from the forward's sign (relu's derivative there is a convention anyway).
//   The pair costs one pass less each way than batch_norm then relu, and the BN output never
//   exists: forward 3n instead of 5n element accesses, backward 5n instead of 8n.
//
// Accumulation is in double for float32 and float64, in a fixed order (no atomics): results are
// bit-identical run to run on a given device. The CPU cuts each channel into chunks fixed by the
// shape, sums each (two passes while it is in cache: mean, then squared deviations) on the thread
// pool, and merges them in chunk order (Chan et al.'s update): the same bits for any
// CYCLONE_NUM_THREADS; CUDA splits each channel into a
// shape-determined number of blocks, sums shifted values (x - x[0, c, 0], which keeps
// E[x^2] - E[x]^2 free of cancellation) and combines the partials in order. CPU and CUDA agree to
// the element type's rounding, not bit for bit.
//
// cost (n = N*C*inner elements of T): forward training reads x 2x (CUDA) / 3x (CPU) and writes y;
// eval reads x once and writes y; backward reads x and dy 2x each and writes dx; ~10 flops per
// element per pass, O(C) extra. No cuDNN: the CUDA kernels are hand-written, and a comparison with
// cudnnBatchNormalizationForwardTraining(Ex) on an H100 is still owed (use cuDNN where faster).
#pragma once

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

void batch_norm_forward(Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool training,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd);

void batch_norm_backward(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool training,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias);

// y = relu(batch_norm(x)) and its backward (see "fused ReLU" above; bias is the forward's,
// undefined when it had none). Same arguments and checks as the pair above.
void batch_norm_relu_forward(Context& ctx, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd);
void batch_norm_relu_backward(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& weight,
                              const Tensor& bias, const Tensor& save_mean,
                              const Tensor& save_invstd, bool training, const Tensor& dx,
                              const Tensor& dweight, const Tensor& dbias);

// x's shape seen as [N, C, inner] for the kernels (x must have rank >= 2).
struct BatchNormDims {
  int64_t n = 1, c = 1, inner = 1;
  int64_t per_channel() const { return n * inner; }  // M
};
BatchNormDims batch_norm_dims(const Shape& x);

}  // namespace cyclone::kernels
