// \brief Thread counts for torch intra-op work and dfcl's own worker pools.
#pragma once

namespace dfcl {

/// Resolves the thread count: `requested` > 0 wins; else OMP_NUM_THREADS; else hardware threads.
int resolve_threads(int requested);
/// Sets torch's intra-op pool (at::set_num_threads) and returns the value used.
int configure_torch_threads(int requested);

}  // namespace dfcl
