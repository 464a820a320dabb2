// \brief The device λ path (see eval_kernels.h).
#include <cub/cub.cuh>  // for cub::DeviceRadixSort, cub::DeviceScan

#include "cuda/eval_kernels.h"
#include "cuda/reduce.cuh"       // for block_max, blocks_for, finish_partials, kThreads
#include "metrics/ipw_rows.h"    // for ipw_row_events (the CPU path's row function)

namespace dfcl::cuda {
namespace {

constexpr int kMaxArms = 64;
struct InvP {
  double v[kMaxArms];
};

// Two slots per row: (enter, row << 1) and (leave, row << 1 | 1); a slot without an event gets λ = −1, which no λ >= 0
// query counts. Per block: the max of the rows' spec and hi bounds.
__global__ void events_kernel(const float* r, const float* c, int64_t n, int m, const int32_t* arm, double* keys,
                              int64_t* tags, double* partial, unsigned long long* count) {
  __shared__ double shared[detail::kThreads];
  metrics::LambdaBound b;
  unsigned long long local = 0;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const metrics::IpwRowEvents e = metrics::ipw_row_events(r + i * m, c + i * m, m, arm[i], b);
    keys[2 * i] = e.events > 0 ? e.enter : -1.0, tags[2 * i] = i << 1;
    keys[2 * i + 1] = e.events > 1 ? e.leave : -1.0, tags[2 * i + 1] = (i << 1) | 1;
    local += e.events;
  }
  if (local) atomicAdd(count, local);
  const double spec = detail::block_max(b.spec, shared), hi = detail::block_max(b.hi, shared);
  if (threadIdx.x == 0) partial[2 * blockIdx.x] = spec, partial[2 * blockIdx.x + 1] = hi;
}

// The IPW terms of the sorted events: ±(1/p_t) y for an entry (+) or exit (−); 0 for empty slots.
__global__ void terms_kernel(const double* keys, const int64_t* tags, int64_t slots, const int32_t* arm,
                             const float* revenue, const float* cost, InvP inv_p, double* tr, double* tc) {
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < slots; e += int64_t(gridDim.x) * blockDim.x) {
    if (keys[e] < 0) {
      tr[e] = 0, tc[e] = 0;
      continue;
    }
    const int64_t row = tags[e] >> 1;
    const double f = (tags[e] & 1) ? -inv_p.v[arm[row]] : inv_p.v[arm[row]];
    tr[e] = f * revenue[row], tc[e] = f * cost[row];
  }
}

// One thread: how many sorted keys (descending) are > λ, and the running sums there.
__global__ void at_kernel(const double* keys, const double* pr, const double* pc, int64_t slots, double lambda,
                          double* out) {
  int64_t lo = 0, hi = slots;  // first index with keys[idx] <= λ
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (keys[mid] > lambda)
      lo = mid + 1;
    else
      hi = mid;
  }
  out[0] = lo > 0 ? pr[lo - 1] : 0.0;
  out[1] = lo > 0 ? pc[lo - 1] : 0.0;
}

}  // namespace

#define DFCL_EVAL_TRY(expr)                      \
  do {                                           \
    cudaError_t e_ = (expr);                     \
    if (e_ != cudaSuccess) {                     \
      error_ = cudaGetErrorString(e_);           \
      cudaGetLastError();                        \
      return;                                    \
    }                                            \
  } while (0)

DeviceIpwPath::DeviceIpwPath(const float* r, const float* c, int64_t n, int m, const int32_t* arm,
                             const float* revenue, const float* cost, const std::vector<double>& inv_p, double total,
                             void* stream)
    : n_(n), slots_(2 * n), total_(total), stream_(stream) {
  if (m < 1 || m > kMaxArms || int(inv_p.size()) != m || n < 0) {
    error_ = "device IPW path: arms must lie in [1, 64] with one 1/p per arm";
    return;
  }
  const cudaStream_t st = static_cast<cudaStream_t>(stream);
  const size_t slots = size_t(slots_ > 0 ? slots_ : 1);
  const int blocks = detail::blocks_for(n);
  double *keys_in = nullptr, *tr = nullptr, *tc = nullptr, *partial = nullptr;
  int64_t *tags_in = nullptr, *tags = nullptr;
  unsigned long long* count = nullptr;
  void* temp = nullptr;
  struct Free {  // the construction's scratch, freed on every exit
    void** p[7];
    ~Free() {
      for (void** q : p)
        if (*q) cudaFree(*q);
    }
  } scratch{{reinterpret_cast<void**>(&keys_in), reinterpret_cast<void**>(&tr), reinterpret_cast<void**>(&tc),
             reinterpret_cast<void**>(&partial), reinterpret_cast<void**>(&tags_in), reinterpret_cast<void**>(&tags),
             &temp}};
  DFCL_EVAL_TRY(cudaMalloc(&keys_in, sizeof(double) * slots));
  DFCL_EVAL_TRY(cudaMalloc(&keys_, sizeof(double) * slots));
  DFCL_EVAL_TRY(cudaMalloc(&tags_in, sizeof(int64_t) * slots));
  DFCL_EVAL_TRY(cudaMalloc(&tags, sizeof(int64_t) * slots));
  DFCL_EVAL_TRY(cudaMalloc(&tr, sizeof(double) * slots));
  DFCL_EVAL_TRY(cudaMalloc(&tc, sizeof(double) * slots));
  DFCL_EVAL_TRY(cudaMalloc(&pr_, sizeof(double) * slots));
  DFCL_EVAL_TRY(cudaMalloc(&pc_, sizeof(double) * slots));
  DFCL_EVAL_TRY(cudaMalloc(&out_, sizeof(double) * 2));
  DFCL_EVAL_TRY(cudaMalloc(&partial, sizeof(double) * (2 * size_t(blocks) + 2) + sizeof(unsigned long long)));
  count = reinterpret_cast<unsigned long long*>(partial + 2 * size_t(blocks) + 2);
  DFCL_EVAL_TRY(cudaMemsetAsync(count, 0, sizeof(unsigned long long), st));
  events_kernel<<<blocks, detail::kThreads, 0, st>>>(r, c, n, m, arm, keys_in, tags_in, partial, count);
  detail::finish_partials<<<1, detail::kThreads, 0, st>>>(partial, blocks, 2, partial + 2 * size_t(blocks), false,
                                                          true);
  DFCL_EVAL_TRY(cudaGetLastError());
  // Sort the slots by λ, descending (stable: equal λs keep the slot order, row then entry before exit).
  size_t temp_bytes = 0, scan_bytes = 0;
  DFCL_EVAL_TRY(cub::DeviceRadixSort::SortPairsDescending(nullptr, temp_bytes, keys_in, keys_, tags_in, tags,
                                                          int64_t(slots), 0, 64, st));
  DFCL_EVAL_TRY(cub::DeviceScan::InclusiveSum(nullptr, scan_bytes, tr, pr_, int64_t(slots), st));
  DFCL_EVAL_TRY(cudaMalloc(&temp, temp_bytes > scan_bytes ? temp_bytes : scan_bytes));
  DFCL_EVAL_TRY(cub::DeviceRadixSort::SortPairsDescending(temp, temp_bytes, keys_in, keys_, tags_in, tags,
                                                          int64_t(slots), 0, 64, st));
  InvP ip{};
  for (int j = 0; j < m; ++j) ip.v[j] = inv_p[size_t(j)];
  terms_kernel<<<detail::blocks_for(int64_t(slots)), detail::kThreads, 0, st>>>(keys_, tags, int64_t(slots), arm,
                                                                                 revenue, cost, ip, tr, tc);
  DFCL_EVAL_TRY(cudaGetLastError());
  size_t bytes = temp_bytes > scan_bytes ? temp_bytes : scan_bytes;
  DFCL_EVAL_TRY(cub::DeviceScan::InclusiveSum(temp, bytes, tr, pr_, int64_t(slots), st));
  DFCL_EVAL_TRY(cub::DeviceScan::InclusiveSum(temp, bytes, tc, pc_, int64_t(slots), st));
  double bound[2];
  unsigned long long ev = 0;
  DFCL_EVAL_TRY(cudaMemcpyAsync(bound, partial + 2 * size_t(blocks), sizeof(bound), cudaMemcpyDeviceToHost, st));
  DFCL_EVAL_TRY(cudaMemcpyAsync(&ev, count, sizeof(ev), cudaMemcpyDeviceToHost, st));
  DFCL_EVAL_TRY(cudaStreamSynchronize(st));
  spec_ = bound[0], hi_ = bound[1] > bound[0] ? bound[1] : bound[0];  // finish_bound
  events_ = int64_t(ev);
}

DeviceIpwPath::~DeviceIpwPath() {
  for (double* p : {keys_, pr_, pc_, out_})
    if (p) cudaFree(p);
}

bool DeviceIpwPath::at(double lambda, double* revenue, double* cost) {
  if (!ok()) return false;
  const cudaStream_t st = static_cast<cudaStream_t>(stream_);
  double v[2] = {0, 0};
  if (slots_ > 0) {
    at_kernel<<<1, 1, 0, st>>>(keys_, pr_, pc_, slots_, lambda, out_);
    cudaError_t e = cudaMemcpyAsync(v, out_, sizeof(v), cudaMemcpyDeviceToHost, st);
    if (e == cudaSuccess) e = cudaStreamSynchronize(st);
    if (e != cudaSuccess) {
      error_ = cudaGetErrorString(e);
      cudaGetLastError();
      return false;
    }
  }
  *revenue = total_ > 0 ? v[0] / total_ : 0.0;
  *cost = total_ > 0 ? v[1] / total_ : 0.0;
  return true;
}

}  // namespace dfcl::cuda
