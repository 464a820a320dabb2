// \brief Thread counts for torch intra-op work and dfcl's own worker pools.
#pragma once
#include <string>  // for std::string

namespace dfcl {

/// Resolves the thread count: `requested` > 0 wins; else OMP_NUM_THREADS; else hardware threads.
int resolve_threads(int requested);
/// Sets torch's intra-op pool (at::set_num_threads) and returns the value used.
int configure_torch_threads(int requested);
/// Sets the threads of the BLAS library LibTorch calls for its matmuls (OpenBLAS or MKL, looked up at run time, so
/// any LibTorch links); returns the library's name, or "" when neither is loaded (nothing changes then). Its own pool
/// spins against torch's OpenMP pool when small matmuls alternate with dfcl's OpenMP kernels on the same cores.
std::string set_blas_threads(int n);

}  // namespace dfcl
