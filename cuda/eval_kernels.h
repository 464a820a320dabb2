// \brief Evaluation on the device: metrics::IpwPath's exact λ path built on the GPU, so validation with scores on a
// GPU never copies them to the host. Each row's entry and exit events come from metrics::ipw_row_events (the row
// function IpwPath's constructor calls), sorted by λ with a CUB radix sort (descending; stable, so equal λs keep the
// row order, as the CPU path's tie rule), then the IPW revenue and cost terms get running sums (CUB scans). The IPW
// value of the dual policy at any λ is then one binary search and two doubles back to the host; metrics::eom_bisect
// (the CPU path's EOM driver) runs the EOM search through at().
#pragma once
#include <cstdint>  // for int64_t, int32_t
#include <string>   // for std::string
#include <vector>   // for std::vector

namespace dfcl::cuda {

class DeviceIpwPath {
 public:
  /// r, c: n x m float scores; arm (int32), revenue, cost (float): the RCT rows, all on the device. inv_p: 1 / p_j
  /// (host, m values; the sample's propensities); total: the per-capita divisor (the rows' count N). `stream`: a
  /// cudaStream_t (nullptr: the legacy default stream). On a CUDA error ok() is false and error() says why.
  DeviceIpwPath(const float* r, const float* c, int64_t n, int m, const int32_t* arm, const float* revenue,
                const float* cost, const std::vector<double>& inv_p, double total, void* stream = nullptr);
  ~DeviceIpwPath();
  DeviceIpwPath(const DeviceIpwPath&) = delete;
  DeviceIpwPath& operator=(const DeviceIpwPath&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  /// metrics::LambdaBound of the scores: spec (max r/c over costly arms) and hi (max(spec, largest hull breakpoint)).
  double bound_spec() const { return spec_; }
  double bound_hi() const { return hi_; }
  /// The events on the path (rows whose arm is on their hull count once or twice).
  int64_t events() const { return events_; }
  /// IPW per-capita revenue and cost of the dual policy at λ >= 0 (events with event λ > λ count, as IpwPath::at).
  bool at(double lambda, double* revenue, double* cost);

 private:
  int64_t n_ = 0, slots_ = 0, events_ = 0;
  double total_ = 0, spec_ = 0, hi_ = 0;
  void* stream_ = nullptr;
  double *keys_ = nullptr, *pr_ = nullptr, *pc_ = nullptr, *out_ = nullptr;
  std::string error_;
};

}  // namespace dfcl::cuda
