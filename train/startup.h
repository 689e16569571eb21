// What every app checks before it parses its flags: the environment it was started in.
#pragma once

namespace cyclone::train {

// Under an address-space limit (ulimit -v) too small for OpenBLAS's threads
// (kernels::check_blas_address_space), prints "<program>: <why and what to do>" and leaves with
// exit code 1 at once: OpenBLAS's exit handler would wait for a worker thread that is looping in
// its allocator. `multiplies`: the program multiplies matrices (trains) on this thread.
void exit_if_blas_cannot_run(const char* program, bool multiplies);

// Under a file-size limit (ulimit -f) the kernel sends SIGXFSZ to a write past it, which by default
// kills the process without a word and leaves the temporary file it was writing. Ignored, the
// write fails with EFBIG instead, and the usual error path removes the temporary file and names
// the file and the limit (limit_note). Every app calls this first.
void report_file_size_limit_as_errors();

}  // namespace cyclone::train
