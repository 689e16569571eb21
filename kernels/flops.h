// Counting the floating-point work of the compute-bound kernels: while a FlopCounter lives, every
// GEMM (kernels/gemm.h: 2 M N K per product) and convolution pass (kernels/conv.h: 2 N Cout Hout
// Wout Cin kh kw each for forward, backward data and backward filter) the calling thread launches
// adds its FLOPs to it (and to every enclosing counter). Elementwise ops, reductions and batch
// norm are not counted: they are bandwidth-bound and a few percent of a CNN's FLOPs. This is what
// the training benchmark divides by time to give a model's achieved FLOP/s, comparable with the
// GEMM benchmark's peak (benchmarks/README.md). Launches replayed from a CUDA graph make no host
// call, so count an eager step. Cost without a counter: one thread-local read per launch.
#pragma once

namespace cyclone::kernels {

class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;

  double flops() const { return flops_; }

 private:
  friend void count_flops(double flops);
  FlopCounter* outer_;
  double flops_ = 0;
};

// Adds `flops` to the calling thread's live counters (nothing when there are none).
void count_flops(double flops);

}  // namespace cyclone::kernels
