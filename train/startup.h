// What every app checks before it parses its flags: the environment it was started in.
#pragma once

namespace cyclone::train {

// Under an address-space limit (ulimit -v) too small for OpenBLAS's threads
// (kernels::check_blas_address_space), prints "<program>: <why and what to do>" and leaves with
// exit code 1 at once: OpenBLAS's exit handler would wait for a worker thread that is looping in
// its allocator. `multiplies`: the program multiplies matrices (trains) on this thread.
void exit_if_blas_cannot_run(const char* program, bool multiplies);

// Limits of the process that would otherwise end it without a word. Every app calls this first.
// - A file-size limit (ulimit -f): the kernel sends SIGXFSZ to a write past it, which by default
//   kills the process and leaves the temporary file it was writing. Ignored, the write fails with
//   EFBIG instead, and the usual error path removes the temporary file and names the file and the
//   limit (limit_note).
// - A stack limit (ulimit -s) under kMinStackBytes: glibc also gives every thread a stack of that
//   size, and the programs crashed (SIGSEGV) under 32 KiB with several threads, under 128 KiB
//   parsing a deeply nested YAML config. Prints "<program>: <the limit and what to do>" and leaves
//   with exit code 1.
void prepare_for_limits(const char* program);

// The least stack limit the programs run under: 4 times what the deepest case measured needed.
inline constexpr unsigned long kMinStackBytes = 1ul << 20;

}  // namespace cyclone::train
