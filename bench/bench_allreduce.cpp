// \brief All-reduce latency and bandwidth against message size: dfcl's MPI Communicator (blocking and async) against
// raw MPI_Allreduce on the same buffers, in the same run (float32 sum, in place).
//
// Run under mpirun (2 ranks or more): bench/run_scaling_bench.sh runs it and feeds its JSON to bench/scaling_model.py
// (the α-β fit), docs/benchmarks.md holds the results. Each size: a correctness check (rank + 1 summed), warm-up, then
// `--reps` repetitions; one repetition runs a batch of back-to-back all-reduces of each method (the methods in turn,
// the order rotating from repetition to repetition so that load from other processes hits them alike), timed from a
// barrier and divided by the batch length (sized to ~`--batch-ms`, the same on every rank). A repetition's time is the
// slowest rank's; the table gives the median over the repetitions and the 10th/90th percentiles.
// Not Google Benchmark: its adaptive iteration counts would differ between ranks and deadlock the collectives.
#include <ATen/ATen.h>   // for at::zeros, at::full
#include <CLI/CLI.hpp>     // for CLI::App
#include <fmt/format.h>  // for fmt::format, fmt::print
#include <mpi.h>         // for MPI_Allreduce, MPI_Wtime

#include <algorithm>  // for std::sort, std::clamp, std::max
#include <cmath>      // for std::llround
#include <cstdint>    // for int64_t
#include <cstdio>     // for std::fprintf
#include <cstring>    // for std::strcmp
#include <string>     // for std::string
#include <vector>     // for std::vector

#include "dist/communicator.h"  // for make_communicator, CommOptions, Communicator

using namespace dfcl;

namespace {

constexpr int kMethods = 3;
const char* const kMethodNames[kMethods] = {"dfcl_allreduce", "dfcl_allreduce_async", "mpi_allreduce"};

struct Options {
  int64_t min_bytes = 4, max_bytes = int64_t(64) << 20;
  int factor = 4;
  int reps = 21, warmup = 2;
  double batch_ms = 5;
  std::string format = "csv";
};

const char* kDescription =
    "All-reduce (float32 sum, in place) through dfcl's MPI Communicator, blocking and async, and raw MPI_Allreduce\n"
    "on the same buffer, for sizes min-bytes, min-bytes*factor, ... <= max-bytes (defaults 4 B .. 64 MiB, factor 4).\n"
    "R repetitions (default 21) after K warm-up ones (2); each repetition is a batch of back-to-back all-reduces of\n"
    "~T ms (5) per method. Prints, on rank 0, the median time per all-reduce (slowest rank), algorithm and bus\n"
    "bandwidth (NCCL-tests convention: busbw = algbw * 2(W-1)/W) and each method's time over MPI_Allreduce's.\n"
    "Run it as: mpirun -n W dfcl_bench_allreduce [options]";

void add_options(CLI::App& app, Options& o) {
  app.add_option("--min-bytes", o.min_bytes, "smallest message (a multiple of 4)")->check(CLI::Range(int64_t(4), int64_t(1) << 31));
  app.add_option("--max-bytes", o.max_bytes, "largest message (at most 2 GiB)")->check(CLI::Range(int64_t(4), int64_t(1) << 31));
  app.add_option("--factor", o.factor, "size step")->check(CLI::Range(2, 1024));
  app.add_option("--reps", o.reps, "timed repetitions")->check(CLI::Range(1, 1000000));
  app.add_option("--warmup", o.warmup, "warm-up repetitions")->check(CLI::Range(0, 1000000));
  app.add_option("--batch-ms", o.batch_ms, "length of one repetition's batch per method (ms)")->check(CLI::PositiveNumber);
  app.add_option("--format", o.format, "output")->check(CLI::IsMember({"csv", "json"}));
}

struct Bench {
  dist::Communicator& comm;
  MPI_Comm mpi;  // the peer's own communicator (a dup of MPI_COMM_WORLD)

  void run(int method, at::Tensor& t) {
    switch (method) {
      case 0:
        comm.allreduce(t, dist::ReduceOp::kSum);
        break;
      case 1:
        comm.allreduce_async(t, dist::ReduceOp::kSum)->wait();
        break;
      default:
        MPI_Allreduce(MPI_IN_PLACE, t.data_ptr<float>(), int(t.numel()), MPI_FLOAT, MPI_SUM, mpi);
    }
  }

  /// Seconds per all-reduce over a batch of `inner`, timed on this rank from a barrier.
  double batch(int method, at::Tensor& t, int64_t inner) {
    MPI_Barrier(mpi);
    const double t0 = MPI_Wtime();
    for (int64_t i = 0; i < inner; ++i) run(method, t);
    return (MPI_Wtime() - t0) / double(inner);
  }

  /// Every method sums (rank + 1) over the ranks: W(W+1)/2 in every element, on every rank.
  bool check(at::Tensor& t) {
    const int W = comm.size();
    bool ok = true;
    for (int m = 0; m < kMethods; ++m) {
      t.fill_(float(comm.rank() + 1));
      run(m, t);
      const float want = float(W) * float(W + 1) / 2;
      ok = ok && at::all(t == want).item<bool>();
    }
    int mine = ok ? 1 : 0, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, mpi);
    return all == 1;
  }
};

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * double(v.size() - 1);
  const size_t lo = size_t(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - double(lo)) * (v[hi] - v[lo]);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{kDescription};
  add_options(app, o);
  CLI11_PARSE(app, argc, argv);
  if (o.min_bytes % 4 != 0 || o.max_bytes < o.min_bytes) {
    std::fprintf(stderr, "dfcl_bench_allreduce: --min-bytes must be a multiple of 4 (float32) and <= --max-bytes\n");
    return 2;
  }
  dist::CommOptions copts;
  copts.backend = "mpi";
  auto comm = dist::make_communicator(copts);  // initialises MPI (MPI_THREAD_MULTIPLE)
  const int W = comm->size(), rank = comm->rank();
  MPI_Comm mpi = MPI_COMM_NULL;
  MPI_Comm_dup(MPI_COMM_WORLD, &mpi);
  Bench bench{*comm, mpi};
  if (W < 2 && rank == 0) std::fprintf(stderr, "bench_allreduce: one rank; run it under mpirun -n 2 (or more)\n");

  char lib[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int lib_len = 0;
  MPI_Get_library_version(lib, &lib_len);
  std::string library(lib, size_t(lib_len));
  library = library.substr(0, library.find_first_of(",\n"));

  struct Row {
    int64_t bytes, inner;
    double median[kMethods], p10[kMethods], p90[kMethods];
  };
  std::vector<Row> rows;
  for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= o.factor) {
    at::Tensor t = at::zeros({bytes / 4}, at::kFloat);
    if (!bench.check(t)) {
      if (rank == 0) std::fprintf(stderr, "bench_allreduce: wrong all-reduce result at %lld bytes\n", (long long)bytes);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
    t.zero_();  // zeros stay zeros: no overflow to inf over thousands of in-place sums
    // Batch length from the peer's time per all-reduce in batches of 16 (median of 5; the slowest rank's), the same
    // on every rank. Batches, not single all-reduces: on shared cores one all-reduce that waits for a descheduled
    // rank costs a whole scheduler time slice, which would shrink the batches to 1.
    std::vector<double> probe;
    for (int i = 0; i < 5; ++i) probe.push_back(bench.batch(2, t, bytes <= (int64_t(1) << 20) ? 16 : 2));
    double one = quantile(probe, 0.5), slowest = 0;
    MPI_Allreduce(&one, &slowest, 1, MPI_DOUBLE, MPI_MAX, mpi);
    const int64_t inner = std::clamp<int64_t>(std::llround(o.batch_ms * 1e-3 / std::max(slowest, 1e-7)), 1, 20000);
    for (int w = 0; w < o.warmup; ++w)
      for (int m = 0; m < kMethods; ++m) bench.batch(m, t, inner);
    std::vector<double> mine(size_t(o.reps) * kMethods), all(mine.size());
    for (int r = 0; r < o.reps; ++r)
      for (int k = 0; k < kMethods; ++k) {
        const int m = (r + k) % kMethods;
        mine[size_t(r) * kMethods + size_t(m)] = bench.batch(m, t, inner);
      }
    MPI_Allreduce(mine.data(), all.data(), int(all.size()), MPI_DOUBLE, MPI_MAX, mpi);
    Row row{bytes, inner, {}, {}, {}};
    for (int m = 0; m < kMethods; ++m) {
      std::vector<double> v;
      for (int r = 0; r < o.reps; ++r) v.push_back(all[size_t(r) * kMethods + size_t(m)]);
      row.median[m] = quantile(v, 0.5), row.p10[m] = quantile(v, 0.1), row.p90[m] = quantile(v, 0.9);
    }
    rows.push_back(row);
    if (rank == 0)
      std::fprintf(stderr, "%10lld B: dfcl %.2f us, dfcl async %.2f us, MPI_Allreduce %.2f us (batches of %lld)\n",
                   (long long)bytes, row.median[0] * 1e6, row.median[1] * 1e6, row.median[2] * 1e6, (long long)inner);
  }

  if (rank == 0) {
    const double bus = 2.0 * double(W - 1) / double(W);
    if (o.format == "csv") {
      fmt::print("bytes,elements,method,median_us,p10_us,p90_us,algbw_GBps,busbw_GBps,time_over_mpi,batch,reps\n");
      for (const Row& r : rows)
        for (int m = 0; m < kMethods; ++m) {
          const double alg = double(r.bytes) / r.median[m] / 1e9;
          fmt::print("{},{},{},{:.3f},{:.3f},{:.3f},{:.4f},{:.4f},{:.3f},{},{}\n", r.bytes, r.bytes / 4, kMethodNames[m],
                     r.median[m] * 1e6, r.p10[m] * 1e6, r.p90[m] * 1e6, alg, alg * bus, r.median[m] / r.median[2],
                     r.inner, o.reps);
        }
    } else {
      fmt::print("{{\n  \"world_size\": {},\n  \"mpi_library\": \"{}\",\n  \"reps\": {},\n  \"results\": [\n", W, library,
                 o.reps);
      for (size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        for (int m = 0; m < kMethods; ++m) {
          const double alg = double(r.bytes) / r.median[m] / 1e9;
          fmt::print(
              "    {{\"bytes\": {}, \"method\": \"{}\", \"median_us\": {:.3f}, \"p10_us\": {:.3f}, \"p90_us\": {:.3f}, "
              "\"algbw_GBps\": {:.4f}, \"busbw_GBps\": {:.4f}, \"time_over_mpi\": {:.3f}, \"batch\": {}}}{}\n",
              r.bytes, kMethodNames[m], r.median[m] * 1e6, r.p10[m] * 1e6, r.p90[m] * 1e6, alg, alg * bus,
              r.median[m] / r.median[2], r.inner, i + 1 == rows.size() && m + 1 == kMethods ? "" : ",");
        }
      }
      fmt::print("  ]\n}}\n");
    }
    std::fflush(stdout);
  }
  MPI_Comm_free(&mpi);
  comm.reset();  // dfcl finalises MPI at exit, after its last communicator
  return 0;
}
