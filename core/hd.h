// CYCLONE_HD marks functions compiled for both host and device: the elementwise functors and the
// Philox generator are written once and run by a CPU loop or a CUDA grid.
#pragma once

#if defined(__CUDACC__)
#define CYCLONE_HD __host__ __device__ __forceinline__
#else
#define CYCLONE_HD inline
#endif
