#!/usr/bin/env python3
# \brief Data-parallel scaling model: fits t(n) = α + β n to the measured all-reduce times (bench_allreduce's JSON),
# summarises the measured 1- and 2-rank `dfcl train` runs (bench/run_scaling_bench.sh), and projects weak-scaling
# efficiency to 8-512 GPUs with NCCL ring all-reduce figures, every assumption a flag printed with its source.
# Prints markdown tables (docs/benchmarks.md, "Data-parallel scaling"); --svg writes the plot. Python 3 stdlib only.
import argparse
import json
import math
import statistics
import sys

GPUS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
PROJECT = [8, 16, 32, 64, 128, 256, 512]
METHODS = {"dfcl_allreduce": "dfcl Communicator (blocking)", "dfcl_allreduce_async": "dfcl Communicator (async + wait)",
           "mpi_allreduce": "raw MPI_Allreduce"}


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Fits the α-β model to bench_allreduce's times, summarises the 1- and 2-rank `dfcl train` runs "
                    "and projects weak-scaling efficiency to 8-512 GPUs (NCCL ring); markdown on stdout.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Every projection assumption is a flag; the report prints each value with its source.")
    p.add_argument("--allreduce", required=True, help="bench_allreduce --format json output (2 ranks)")
    p.add_argument("--train-runs", help="train_runs.jsonl from bench/run_scaling_bench.sh")
    p.add_argument("--trainer-layout", default="", help="the trainer's log text 'N parameters, K gradient bucket'")
    p.add_argument("--svg", help="write the plot (all-reduce fit; measured and projected efficiency) here")
    g = p.add_argument_group("the model (criteo preset)")
    g.add_argument("--features", type=int, default=12)
    g.add_argument("--arms", type=int, default=2)
    g.add_argument("--batch-per-gpu", type=int, default=65536)
    g = p.add_argument_group("GPU compute (H100 SXM)")
    g.add_argument("--peak-tflops", type=float, default=66.9,
                   help="H100 SXM5 FP32 (non-tensor) peak, NVIDIA H100 datasheet; dfcl trains float32 and LibTorch "
                        "leaves TF32 matmul off by default")
    g.add_argument("--peak-fraction", type=float, default=0.10,
                   help="achieved fraction of peak for this model's step (12..64-wide layers: memory- and "
                        "launch-bound)")
    g = p.add_argument_group("NCCL all-reduce of the gradient (NVIDIA/nccl src/graph/tuning.cc, LL protocol)")
    g.add_argument("--gpus-per-node", type=int, default=8)
    g.add_argument("--nccl-base-us", type=float, default=6.6, help="baseLat, Ring/LL (Tree/LL: 6.8)")
    g.add_argument("--nccl-nvlink-hop-us", type=float, default=0.6, help="hwLat NVLink, Ring/LL and Tree/LL")
    g.add_argument("--nccl-net-overhead-us", type=float, default=1.0,
                   help="multi-node: every ring step costs at least the network post overhead (1.0 Intel, 2.0 AMD)")
    g.add_argument("--nccl-net-hop-us", type=float, default=2.7, help="hwLat NET, Ring/LL (Tree/LL: 5.0)")
    g.add_argument("--nccl-net-tree-hop-us", type=float, default=5.0)
    g.add_argument("--busbw-nvlink-gbs", type=float, default=360.0,
                   help="ring bus bandwidth inside an 8x H100 NVLink/NVSwitch node (NCCL-tests all_reduce_perf, "
                        "typical large-message figure)")
    g.add_argument("--busbw-net-gbs", type=float, default=45.0,
                   help="ring bus bandwidth across nodes: one 400 Gb/s NDR InfiniBand NIC per GPU at ~90%%")
    g = p.add_argument_group("the per-step counts all-reduce (CPU doubles, through MPI even with the nccl backend)")
    g.add_argument("--mpi-round-us", type=float, default=2.0,
                   help="one MPI message round across nodes (InfiniBand/UCX small-message latency plus software)")
    g.add_argument("--mpi-round-intra-us", type=float, default=0.5, help="one round inside a node (shared memory)")
    g.add_argument("--hidden", type=float, default=0.0,
                   help="fraction of the gradient all-reduce hidden behind backward (0: one bucket, see the report)")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------- measurements

def load_allreduce(path):
    d = json.load(open(path))
    by = {}
    for r in d["results"]:
        by.setdefault(r["method"], []).append((r["bytes"], r["median_us"], r["p10_us"], r["p90_us"]))
    for v in by.values():
        v.sort()
    return d, by


def fit_alpha_beta(points):
    """t = α + β n by least squares on relative residuals ((t_i - α - β n_i) / t_i), so that the latency-bound small
    sizes count as much as the bandwidth-bound large ones. Returns (α µs, β µs per byte, max |relative residual|)."""
    sw = swn = swnn = swt = swnt = 0.0
    for n, t, *_ in points:
        w = 1.0 / (t * t)
        sw += w; swn += w * n; swnn += w * n * n; swt += w * t; swnt += w * n * t
    det = sw * swnn - swn * swn
    beta = (sw * swnt - swn * swt) / det
    alpha = (swt - beta * swn) / sw
    worst = max(abs(t - alpha - beta * n) / t for n, t, *_ in points)
    return alpha, beta, worst


def load_runs(path):
    runs = [json.loads(l) for l in open(path) if l.strip()]
    by = {}
    for r in runs:
        by.setdefault((r["kind"], r["ranks"], r.get("mode", "poll")), []).append(r)
    return runs, by


def thr(by, kind, ranks, mode="poll"):
    return [r["samples_per_s"] for r in by.get((kind, ranks, mode), [])]


def criteo_params(F, M):
    widths = [F, 64, 32, 32, 2 * M]  # the criteo preset: shared trunk 64-32-32, revenue and cost heads per arm
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


# ---------------------------------------------------------------------------------------------------- projection

def nodes_of(P, a):
    return max(1, math.ceil(P / a.gpus_per_node))


def nccl_ring_us(P, nbytes, a):
    """The ring formula t = 2(P-1)α + 2(P-1)/P · n/B_bus, with the 2(P-1) steps' α split by link as NCCL's tuner does:
    base latency, then 2N network steps and the other 2(P-1)-2N NVLink steps (each at least the net overhead)."""
    if P == 1:
        return 0.0
    N = nodes_of(P, a)
    steps = 2 * (P - 1)
    if N == 1:
        lat = a.nccl_base_us + steps * a.nccl_nvlink_hop_us
        bw = a.busbw_nvlink_gbs
    else:
        lat = (a.nccl_base_us + (steps - 2 * N) * max(a.nccl_nvlink_hop_us, a.nccl_net_overhead_us)
               + 2 * N * a.nccl_net_hop_us)
        bw = a.busbw_net_gbs
    return lat + steps / P * nbytes / (bw * 1e3)  # GB/s = 1e3 bytes/µs


def nccl_tree_us(P, nbytes, a):
    """NCCL's tree (what its tuner picks for small messages across nodes): base + 2((P/N-1) NVLink + log2 N net)."""
    if P == 1:
        return 0.0
    N = nodes_of(P, a)
    per_node = min(P, a.gpus_per_node)
    lat = 6.8 + 2 * ((per_node - 1) * a.nccl_nvlink_hop_us + math.log2(N) * a.nccl_net_tree_hop_us)
    return lat + 2 * nbytes / ((a.busbw_nvlink_gbs if N == 1 else a.busbw_net_gbs) * 1e3)


def counts_us(P, a):
    """dfcl's per-step all-reduce of M+1 doubles (CPU, MPI): reduce-scatter then all-gather, ~log2 P rounds each."""
    if P == 1:
        return 0.0
    rounds = 2 * math.ceil(math.log2(P))
    return rounds * (a.mpi_round_intra_us if nodes_of(P, a) == 1 else a.mpi_round_us)


def gpu_efficiency(P, t_compute_us, grad_bytes, a, algo="ring"):
    t_grad = (nccl_ring_us if algo == "ring" else nccl_tree_us)(P, grad_bytes, a)
    comm = counts_us(P, a) + (1 - a.hidden) * t_grad
    return t_compute_us / (t_compute_us + comm), t_grad, comm


def cpu_ring_us(P, nbytes, alpha, beta):
    """The measured 2-rank fit read as a ring: at P = 2 the ring is 2 steps moving n bytes, so α_hop = α/2 and
    n/B = β n; at P ranks t = 2(P-1) α/2 + 2(P-1)/P β n."""
    return 0.0 if P == 1 else 2 * (P - 1) * alpha / 2 + 2 * (P - 1) / P * beta * nbytes


# ---------------------------------------------------------------------------------------------------- report

def fmt_k(x):
    return f"{x / 1e3:,.0f}k"


def med(v):
    return statistics.median(v)


def main(argv):
    a = parse_args(argv)
    out = []
    pr = out.append
    ar_meta, ar = load_allreduce(a.allreduce)
    W = ar_meta["world_size"]
    params = criteo_params(a.features, a.arms)
    grad_bytes = 4 * params
    counts_bytes = 8 * (a.arms + 1)
    fits = {m: fit_alpha_beta(v) for m, v in ar.items()}
    fits_p10 = {m: fit_alpha_beta([(n, lo) for n, _, lo, _ in v]) for m, v in ar.items()}

    # -- all-reduce table
    pr(f"All-reduce, float32 sum in place, {W} ranks, {ar_meta['mpi_library']}, median of {ar_meta['reps']} "
       f"repetitions (slowest rank), [10th-90th percentile]:\n")
    pr("| bytes | dfcl blocking (µs) | dfcl async (µs) | MPI_Allreduce (µs) | dfcl / MPI | async / MPI "
       "| dfcl busbw (GB/s) | MPI busbw (GB/s) |")
    pr("|---|---|---|---|---|---|---|---|")
    mpi = {n: (t, lo, hi) for n, t, lo, hi in ar["mpi_allreduce"]}
    blk = {n: (t, lo, hi) for n, t, lo, hi in ar["dfcl_allreduce"]}
    asy = {n: (t, lo, hi) for n, t, lo, hi in ar["dfcl_allreduce_async"]}
    bus = 2 * (W - 1) / W
    for n in sorted(mpi):
        c = lambda x: f"{x[0]:,.1f} [{x[1]:,.1f}-{x[2]:,.1f}]"
        pr(f"| {n:,} | {c(blk[n])} | {c(asy[n])} | {c(mpi[n])} | {blk[n][0] / mpi[n][0]:.2f}x "
           f"| {asy[n][0] / mpi[n][0]:.2f}x | {n / blk[n][0] * bus / 1e3:.2f} | {n / mpi[n][0] * bus / 1e3:.2f} |")
    pr("")
    gm = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs))
    for lo, hi, what in ((0, 1 << 16, "<= 64 KiB"), ((1 << 20), 1 << 40, ">= 1 MiB")):
        sel = [n for n in mpi if lo <= n <= hi]
        if sel:
            pr(f"Geometric mean of the time ratios over the sizes {what}: dfcl blocking / MPI "
               f"{gm([blk[n][0] / mpi[n][0] for n in sel]):.2f}x, async / MPI {gm([asy[n][0] / mpi[n][0] for n in sel]):.2f}x.")
    pr("")
    pr("α-β fit t(n) = α + β n (least squares on relative residuals over all sizes):\n")
    pr("| path | α (µs) | 1/β (GB/s) | worst relative residual | t(16,400 B gradient) µs | "
       f"t({counts_bytes} B counts) µs |")
    pr("|---|---|---|---|---|---|")
    for m in ("dfcl_allreduce", "dfcl_allreduce_async", "mpi_allreduce"):
        al, be, worst = fits[m]
        pr(f"| {METHODS[m]} | {al:.2f} | {1e-3 / be:.2f} | {worst * 100:.0f}% | {al + be * grad_bytes:.1f} "
           f"| {al + be * counts_bytes:.1f} |")
    for m in ("dfcl_allreduce", "mpi_allreduce"):
        al, be, worst = fits_p10[m]
        pr(f"| {METHODS[m]}, fit to the 10th percentiles | {al:.2f} | {1e-3 / be:.2f} | {worst * 100:.0f}% "
           f"| {al + be * grad_bytes:.1f} | {al + be * counts_bytes:.1f} |")
    pr("")

    # -- measured training scaling
    t1 = {}
    if a.train_runs:
        runs, by = load_runs(a.train_runs)

        def cell(v, base, weak):
            if not v:
                return "-"
            r = med(v) / (2 * base) if weak else med(v) / base
            return (f"{fmt_k(med(v))} ({fmt_k(min(v))}-{fmt_k(max(v))}): "
                    + (f"**{r * 100:.0f}%**" if weak else f"**{r:.2f}x**"))

        loads = [r["load_after"] for r in runs]
        reps = max(r["rep"] for r in runs)
        pr(f"`dfcl train` scaling, median samples/s of {reps} interleaved repetitions (range): weak-scaling "
           "efficiency or strong speed-up in bold; load average "
           f"{min(loads):.1f}-{max(loads):.1f} on the 2 vCPUs after the runs:\n")
        pr("| scaling | batch | 1 rank | 2 independent 1-rank runs at once (no MPI) | 2 ranks, MPI busy-poll "
           "| 2 ranks, MPI yield | ms per step, 1 rank → 2 ranks (poll / yield) |")
        pr("|---|---|---|---|---|---|---|")
        rows = [("weak", "weak4k", "weak4k", 4096, 8192), ("weak", "weak64k", "weak64k", 65536, 131072),
                ("strong", "strong8k", "weak4k", 8192, 8192), ("strong", "strong128k", "weak64k", 131072, 131072)]
        results = {}
        for kind, k1, k2, b1, b2 in rows:
            v1 = thr(by, k1, 1)
            if not v1:
                continue
            weak = kind == "weak"
            base = med(v1)
            cells, steps = [], []
            for mode in ("independent", "poll", "yield"):
                v2 = thr(by, k2, 2, mode)
                if weak and v2:
                    results[(k1, mode)] = med(v2) / (2 * base)
                if mode == "independent" and not weak:
                    cells.append("")  # two independent runs of half the batch are not a strong-scaling point
                    continue
                cells.append(cell(v2, base, weak))
                if v2 and mode != "independent":
                    steps.append(f"{b2 / med(v2) * 1e3:.2f}")
            s1 = b1 / base * 1e6  # µs per step
            if weak:
                t1[b1] = s1  # the measured compute per step at b1 rows per rank (1 rank: no collectives)
                batch = f"{b1:,} per rank (global {b1:,} → {b2:,})"
            else:
                batch = f"{b1:,} global ({b1:,} → {b1 // 2:,} per rank)"
            pr(f"| {kind} | {batch} | {fmt_k(base)} ({fmt_k(min(v1))}-{fmt_k(max(v1))}) | " + " | ".join(cells)
               + f" | {s1 / 1e3:.2f} → {' / '.join(steps)} |")
        pr("")
        pr("Weak: efficiency = samples/s(2) / (2 x samples/s(1)); strong: speed-up = samples/s(2) / samples/s(1). "
           "The independent pair's efficiency is what two processes get from these cores with no communication at "
           "all: the ceiling of any 2-rank result on this machine at the time.\n")
        al, be, _ = fits["dfcl_allreduce"]
        comm2 = (al + be * grad_bytes) + (al + be * counts_bytes)
        pr(f"The two collectives of a 2-rank step (the {counts_bytes} B counts, the {grad_bytes:,} B gradient) cost "
           f"{comm2:.0f} µs by the dfcl fit above.\n")
        pr("Weak-scaling efficiency within each repetition (the 2-rank run against the 1-rank run of the same "
           "repetition, minutes apart), with the load average after the 2-rank run:\n")
        pr("| rows per rank | mode | " + " | ".join(f"repetition {i}" for i in range(1, reps + 1)) + " |")
        pr("|---|---|" + "---|" * reps)
        for k, rows_ in (("weak4k", "4,096"), ("weak64k", "65,536")):
            one = {r["rep"]: r["samples_per_s"] for r in by.get((k, 1, "poll"), [])}
            for mode in ("independent", "poll", "yield"):
                two = {r["rep"]: r for r in by.get((k, 2, mode), [])}
                if not two:
                    continue
                cells = [f"{two[i]['samples_per_s'] / (2 * one[i]) * 100:.0f}% (load {two[i]['load_after']:.1f})"
                         if i in two and i in one else "-" for i in range(1, reps + 1)]
                pr(f"| {rows_} | {mode} | " + " | ".join(cells) + " |")
        pr("")
        for k, rows_ in (("weak4k", "4,096"), ("weak64k", "65,536")):
            ind = results.get((k, "independent"))
            if ind:
                best = max(results.get((k, m), 0) for m in ("poll", "yield"))
                pr(f"- {rows_} rows per rank: the best 2-rank efficiency is {best * 100:.0f}% against the independent "
                   f"pair's {ind * 100:.0f}%: dfcl's 2-rank run reaches {best / ind * 100:.0f}% of this machine's "
                   "ceiling.")
        pr("")
        for mode, name in (("poll", "busy-poll"), ("yield", "yield")):
            goal2 = [results[(k, mode)] for k in ("weak4k", "weak64k") if (k, mode) in results]
            if goal2:
                pr(f"Goal >= 90% weak-scaling efficiency at 2 ranks ({name}): "
                   f"**{'met' if min(goal2) >= 0.9 else 'not met'}** "
                   f"({', '.join(f'{x * 100:.0f}%' for x in goal2)} at 4,096 and 65,536 rows per rank).\n")

    # -- projection
    flops = 6 * params * a.batch_per_gpu
    t_c = flops / (a.peak_tflops * 1e12 * a.peak_fraction) * 1e6
    lay = a.trainer_layout.strip()
    pr("Projection to H100 GPUs (assumptions):\n")
    pr(f"- model: criteo preset, F = {a.features}, M = {a.arms}: {a.features}→64→32→32→{2 * a.arms}, "
       f"**{params:,} parameters** (from the layout; the trainer reports \"{lay or 'n/a'}\"), gradient "
       f"{grad_bytes:,} B float32; batch {a.batch_per_gpu:,} per GPU.")
    pr(f"- compute per step: 6 × params × batch = {flops / 1e9:.2f} GFLOP at {a.peak_fraction * 100:.0f}% of "
       f"{a.peak_tflops:g} TFLOP/s (H100 SXM FP32, NVIDIA datasheet) = **{t_c:.0f} µs**. Layers 12-64 wide make "
       "every GEMM memory-bound and a step of ~40 kernels costs ~100-200 µs in launches alone, so a far higher "
       "fraction is not credible for this model; the sensitivity table below varies it.")
    pr(f"- gradient all-reduce: NCCL ring, t_ring(P, n) = 2(P-1)α + 2(P-1)/P · n/B_bus, α split by link as in NCCL's "
       f"tuner (src/graph/tuning.cc, LL protocol): base {a.nccl_base_us} µs, NVLink step {a.nccl_nvlink_hop_us} µs "
       f"(≥ {a.nccl_net_overhead_us} µs net overhead once multi-node), 2N network steps of {a.nccl_net_hop_us} µs for "
       f"N nodes of {a.gpus_per_node} GPUs; B_bus {a.busbw_nvlink_gbs:g} GB/s in a node (NCCL-tests, 8x H100 NVLink), "
       f"{a.busbw_net_gbs:g} GB/s across nodes (NDR 400 Gb/s per GPU). At {grad_bytes:,} B the bandwidth term is "
       "< 1 µs: the all-reduce is pure latency. Tree column: NCCL's tree (base 6.8 µs, NVLink 0.6 µs, network "
       f"{a.nccl_net_tree_hop_us} µs per level), which NCCL's tuner would likely pick at this size across nodes.")
    pr(f"- per-step counts all-reduce ({a.arms + 1} doubles): CPU tensors go through MPI even with dist.backend=nccl, "
       f"as reduce-scatter + all-gather: 2⌈log2 P⌉ rounds of {a.mpi_round_us} µs across nodes "
       f"({a.mpi_round_intra_us} µs in a node). The loss all-reduce every 50 steps is ignored.")
    pr(f"- overlap: **{a.hidden * 100:.0f}% of the gradient all-reduce hidden**. The whole gradient fits the first "
       "bucket (dist.first_bucket_mb = 1 MiB), so its one all-reduce starts after backward's last hook; and dfcl's "
       "NCCL stream orders with stream 0 (src/dist/nccl.cpp), so nothing overlaps it on the GPU. Splitting the "
       "buckets smaller would not help: each bucket pays the full latency.")
    pr("- weak-scaling efficiency E(P) = t_compute / (t_compute + t_counts + (1 - hidden) t_grad); 1 GPU has no "
       "collectives.\n")
    pr("| GPUs | nodes | t_ring gradient (µs) | t_counts (µs) | step (µs) | efficiency, ring | t_tree (µs) "
       "| efficiency, tree |")
    pr("|---|---|---|---|---|---|---|---|")
    proj = {}
    for P in PROJECT:
        e, tg, comm = gpu_efficiency(P, t_c, grad_bytes, a, "ring")
        et, tt, _ = gpu_efficiency(P, t_c, grad_bytes, a, "tree")
        proj[P] = (e, et)
        pr(f"| {P} | {nodes_of(P, a)} | {tg:.1f} | {counts_us(P, a):.1f} | {t_c + comm:.0f} | {e * 100:.1f}% "
           f"| {tt:.1f} | {et * 100:.1f}% |")
    pr("")
    e64, et64 = proj[64]
    comm64 = gpu_efficiency(64, t_c, grad_bytes, a, "ring")[2]
    need_tc = 9 * comm64  # E >= 0.9  <=>  t_c >= 9 comm
    need_b = need_tc / t_c * a.batch_per_gpu
    pr("Sensitivity, efficiency at 64 GPUs (ring / tree) against the fraction of FP32 peak and the batch per GPU:\n")
    fr = [0.01, 0.02, 0.05, 0.10, 0.25, 0.50]
    pr("| batch per GPU | " + " | ".join(f"{f * 100:g}% of peak" for f in fr) + " |")
    pr("|---|" + "---|" * len(fr))
    for b in (65536, 262144, 1048576):
        cells = []
        for f in fr:
            tc = 6 * params * b / (a.peak_tflops * 1e12 * f) * 1e6
            cells.append(f"{gpu_efficiency(64, tc, grad_bytes, a, 'ring')[0] * 100:.0f}% / "
                         f"{gpu_efficiency(64, tc, grad_bytes, a, 'tree')[0] * 100:.0f}%")
        pr(f"| {b:,} | " + " | ".join(cells) + " |")
    pr("")
    pr(f"Goal projected >= 90% weak-scaling efficiency at 64 GPUs (batch {a.batch_per_gpu:,} per GPU): "
       f"**{'met' if e64 >= 0.9 else 'not met'}** ({e64 * 100:.0f}% with the ring, {et64 * 100:.0f}% with the tree). "
       f"90% needs a step of >= {need_tc / 1e3:.2f} ms of compute against {comm64:.0f} µs of collectives, "
       f"i.e. >= {need_b / 1e3:,.0f}k rows per GPU at the stated {a.peak_fraction * 100:.0f}% of peak.\n")

    # -- what the CPU MPI measured here implies
    al, be, _ = fits["dfcl_allreduce"]
    if t1:
        pr(f"What the measured α-β of this machine's MPI implies (dfcl blocking fit read as a ring: α/2 = "
           f"{al / 2:.2f} µs per step, 1/β = {1e-3 / be:.2f} GB/s; the compute per step is the measured 1-rank step at "
           "the same rows per rank; shared memory on one host, so a network would only add latency):\n")
        bs = sorted(t1)
        pr("| ranks | t(gradient) + t(counts) (µs) | " + " | ".join(f"efficiency, {b:,} rows/rank" for b in bs) + " |")
        pr("|---|---|" + "---|" * len(bs))
        cpu = {}
        for P in [2] + PROJECT:
            comm = cpu_ring_us(P, grad_bytes, al, be) + cpu_ring_us(P, counts_bytes, al, be)
            cpu[P] = {b: t1[b] / (t1[b] + comm) for b in bs}
            pr(f"| {P} | {comm:,.0f} | " + " | ".join(f"{cpu[P][b] * 100:.1f}%" for b in bs) + " |")
        pr("")
    else:
        cpu = {}

    print("\n".join(out))
    if a.svg:
        write_svg(a.svg, ar, fits, a, t_c, grad_bytes, t1, cpu, load_runs(a.train_runs)[1] if a.train_runs else {})


# ---------------------------------------------------------------------------------------------------- plot

COLORS = {"dfcl_allreduce": "#1f77b4", "dfcl_allreduce_async": "#ff7f0e", "mpi_allreduce": "#2ca02c"}


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Panel:
    def __init__(self, x, y, w, h, xr, yr, xlog, ylog):
        self.x, self.y, self.w, self.h = x, y, w, h
        self.xr, self.yr, self.xlog, self.ylog = xr, yr, xlog, ylog

    def _f(self, v, r, log):
        if log:
            return (math.log(v) - math.log(r[0])) / (math.log(r[1]) - math.log(r[0]))
        return (v - r[0]) / (r[1] - r[0])

    def X(self, v):
        return self.x + self._f(v, self.xr, self.xlog) * self.w

    def Y(self, v):
        return self.y + self.h - self._f(v, self.yr, self.ylog) * self.h


def svg_panel(o, p, title, xlabel, ylabel, xticks, yticks):
    o.append(f'<text x="{p.x + p.w / 2:.1f}" y="{p.y - 12:.1f}" text-anchor="middle" font-size="14">{esc(title)}</text>')
    for v, lab in xticks:
        o.append(f'<line x1="{p.X(v):.2f}" y1="{p.y}" x2="{p.X(v):.2f}" y2="{p.y + p.h}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{p.X(v):.2f}" y="{p.y + p.h + 18}" text-anchor="middle">{esc(lab)}</text>')
    for v, lab in yticks:
        o.append(f'<line x1="{p.x}" y1="{p.Y(v):.2f}" x2="{p.x + p.w}" y2="{p.Y(v):.2f}" stroke="#e5e5e5"/>')
        o.append(f'<text x="{p.x - 6}" y="{p.Y(v) + 4:.2f}" text-anchor="end">{esc(lab)}</text>')
    o.append(f'<rect x="{p.x}" y="{p.y}" width="{p.w}" height="{p.h}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{p.x + p.w / 2:.1f}" y="{p.y + p.h + 42}" text-anchor="middle">{esc(xlabel)}</text>')
    cy = p.y + p.h / 2
    o.append(f'<text x="{p.x - 58}" y="{cy:.1f}" text-anchor="middle" transform="rotate(-90 {p.x - 58} {cy:.1f})">'
             f'{esc(ylabel)}</text>')


def svg_line(o, p, pts, color, dashed=False, markers=False, line=True, hollow=False):
    pts = [(x, y) for x, y in pts if p.xr[0] <= x <= p.xr[1] and p.yr[0] <= y <= p.yr[1]]
    if line and len(pts) > 1:
        d = " ".join(f"{p.X(x):.2f},{p.Y(y):.2f}" for x, y in pts)
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        o.append(f'<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{d}"/>')
    if markers:
        for x, y in pts:
            o.append(circle(p.X(x), p.Y(y), color, hollow))


def circle(x, y, color, hollow=False):
    if hollow:
        return f'<circle cx="{x:.2f}" cy="{y:.2f}" r="3.5" fill="white" stroke="{color}" stroke-width="1.5"/>'
    return f'<circle cx="{x:.2f}" cy="{y:.2f}" r="3.5" fill="{color}"/>'


def svg_legend(o, p, items, at="top-left"):
    width = 44 + 6.6 * max(len(s) for s, *_ in items)
    x0 = p.x + 10 if at == "top-left" else p.x
    y0 = p.y + 6 if at == "top-left" else p.y + p.h + 56  # "below": under the x-axis label
    o.append(f'<rect x="{x0}" y="{y0}" width="{width:.0f}" height="{18 * len(items) + 6}" fill="white" '
             'fill-opacity="0.85" stroke="#bbb"/>')
    ly = y0 + 18
    for name, color, dashed, markers, line in items:
        if line:
            dash = ' stroke-dasharray="6 4"' if dashed else ""
            o.append(f'<line x1="{x0 + 6}" y1="{ly - 4}" x2="{x0 + 30}" y2="{ly - 4}" stroke="{color}" '
                     f'stroke-width="2"{dash}/>')
        if markers:
            o.append(circle(x0 + 18, ly - 4, color, markers == "hollow"))
        o.append(f'<text x="{x0 + 36}" y="{ly}">{esc(name)}</text>')
        ly += 18


def write_svg(path, ar, fits, a, t_c, grad_bytes, t1, cpu, runs_by):
    o = []
    # Left: all-reduce time against size, measured medians and the α-β fits.
    allv = [t for v in ar.values() for _, t, *_ in v]
    ylo = 10 ** math.floor(math.log10(min(allv) * 0.8))
    yhi = 10 ** math.ceil(math.log10(max(allv) * 1.2))
    nmax = max(n for v in ar.values() for n, *_ in v)
    xhi = 10 ** math.ceil(math.log10(nmax))
    L = Panel(90, 44, 440, 330, (1, xhi), (ylo, yhi), True, True)
    names = {0: "1", 1: "10", 2: "100", 3: "1k", 4: "10k", 5: "100k", 6: "1M", 7: "10M", 8: "100M", 9: "1G"}
    xt = [(10 ** k, names.get(k, f"1e{k}")) for k in range(0, int(round(math.log10(xhi))) + 1)]
    yt = [(10 ** k, names.get(k, f"{10 ** k:g}")) for k in range(int(round(math.log10(ylo))),
                                                                 int(round(math.log10(yhi))) + 1)]
    svg_panel(o, L, "All-reduce, float32 sum, 2 ranks (this VM)", "message size (bytes)", "time per all-reduce (µs)",
              xt, yt)
    legend = []
    for m in ("dfcl_allreduce", "dfcl_allreduce_async", "mpi_allreduce"):
        svg_line(o, L, [(n, t) for n, t, *_ in ar[m]], COLORS[m], markers=True, line=False)
        al, be, _ = fits[m]
        xs = [10 ** (k / 8) for k in range(0, 8 * int(round(math.log10(xhi))) + 1)]
        if m != "dfcl_allreduce_async":
            svg_line(o, L, [(x, al + be * x) for x in xs], COLORS[m], dashed=True)
        legend.append((f"{METHODS[m]}" + (f", fit α={al:.1f} µs, 1/β={1e-3 / be:.2f} GB/s"
                                           if m != "dfcl_allreduce_async" else ""), COLORS[m],
                       True, True, m != "dfcl_allreduce_async"))
    gx = grad_bytes
    o.append(f'<line x1="{L.X(gx):.2f}" y1="{L.y}" x2="{L.X(gx):.2f}" y2="{L.y + L.h}" stroke="#999" '
             'stroke-dasharray="2 3"/>')
    o.append(f'<text x="{L.X(gx) + 4:.2f}" y="{L.y + L.h - 6}" fill="#666">criteo gradient</text>')
    svg_legend(o, L, legend, at="below")

    # Right: weak-scaling efficiency against GPUs/ranks: projections and the measured 2-rank points.
    R = Panel(680, 44, 470, 330, (1, 512), (0, 100), True, False)
    xt = [(P, str(P)) for P in GPUS]
    yt = [(v, f"{v}%") for v in range(0, 101, 20)]
    svg_panel(o, R, f"Weak scaling, criteo model ({grad_bytes // 4:,} parameters)", "GPUs / ranks",
              "weak-scaling efficiency", xt, yt)
    o.append(f'<line x1="{R.x}" y1="{R.Y(90):.2f}" x2="{R.x + R.w}" y2="{R.Y(90):.2f}" stroke="#d62728" '
             'stroke-dasharray="3 3"/>')
    o.append(f'<text x="{R.x + 6}" y="{R.Y(90) - 5:.2f}" fill="#d62728">goal 90%</text>')
    items = []
    ring = [(P, gpu_efficiency(P, t_c, grad_bytes, a, "ring")[0] * 100) for P in GPUS]
    tree = [(P, gpu_efficiency(P, t_c, grad_bytes, a, "tree")[0] * 100) for P in GPUS]
    svg_line(o, R, ring, "#9467bd", markers=True)
    svg_line(o, R, tree, "#9467bd", dashed=True)
    items.append((f"H100 + NCCL ring, {a.batch_per_gpu // 1024}k/GPU at {a.peak_fraction * 100:g}% FP32 peak",
                  "#9467bd", False, True, True))
    items.append(("same, NCCL tree", "#9467bd", True, False, True))
    cpu_colors = {4096: "#8c564b", 65536: "#17becf"}
    for b in sorted(t1):
        pts = [(1, 100)] + [(P, cpu[P][b] * 100) for P in sorted(cpu)]
        c = cpu_colors.get(b, "#7f7f7f")
        svg_line(o, R, pts, c, dashed=True)
        items.append((f"CPU α-β here, {b // 1024}k rows/rank (model)", c, True, False, True))
    for kind, b in (("weak4k", 4096), ("weak64k", 65536)):
        v1 = thr(runs_by, kind, 1)
        for mode in ("poll", "yield", "independent"):
            v2 = thr(runs_by, kind, 2, mode)
            if v1 and v2:
                c = cpu_colors[b]
                e = med(v2) / (2 * med(v1)) * 100
                if mode == "independent":  # the machine's ceiling: a short bar
                    o.append(f'<line x1="{R.X(2) - 9:.2f}" y1="{R.Y(e):.2f}" x2="{R.X(2) + 9:.2f}" '
                             f'y2="{R.Y(e):.2f}" stroke="{c}" stroke-width="2"/>')
                    items.append((f"2 independent 1-rank runs at once, {b // 1024}k/run (this VM's ceiling)", c,
                                  False, False, True))
                    continue
                svg_line(o, R, [(2, e)], c, markers=True, line=False, hollow=mode == "yield")
                items.append((f"measured, 2 ranks on 2 shared vCPUs, {b // 1024}k/rank, "
                              f"{'MPI yield' if mode == 'yield' else 'MPI busy-poll'}", c, False,
                              "hollow" if mode == "yield" else True, False))
    svg_legend(o, R, items, at="below")
    Wd, Ht = 1180, int(R.y + R.h + 56 + 18 * max(len(items), len(legend)) + 16)
    o.insert(0, f'<svg xmlns="http://www.w3.org/2000/svg" width="{Wd}" height="{Ht}" viewBox="0 0 {Wd} {Ht}" '
                'font-family="Helvetica, Arial, sans-serif" font-size="12">\n<rect width="100%" height="100%" fill="white"/>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
