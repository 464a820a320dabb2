#!/usr/bin/env python3
# \brief PyTorch peer of bench/bench_train.cpp: one TSM-SL training step (forward, loss, autograd backward, Adam) of
# the criteo preset (F -> 64 -> 32 -> 32 -> 2M, ReLU, sigmoid outputs), same data, batch and threads.
# Prints JSON: {"torch": version, "threads": n, "cases": {"features:F/batch:B": [samples/s per repetition]}}.
# Usage: /usr/bin/python3 bench/peer_train.py [--threads 2] [--repetitions 3] [--min-time 2] [--device cpu|cuda]
# On cuda every step ends with torch.cuda.synchronize(), as dfcl_bench_train ends each step with a host read.
import argparse
import json
import time

import torch
from torch import nn

ARMS = 5
POOL_ROWS = 1 << 18  # in-memory data the steps cycle through, as the C++ benchmark does


def model(features, arms):
    k = 2 * arms
    return nn.Sequential(nn.Linear(features, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32),
                         nn.ReLU(), nn.Linear(32, k))


def tsm_sl(z, t, y_r, y_c, w, arms):
    """L_PL with MSE on both outcomes: (1/M) sum_j (1/N_j) sum_{i: t_i = j} w_i [(y_r - r)^2 + (y_c - c)^2]."""
    r_hat, c_hat = torch.sigmoid(z[:, :arms]), torch.sigmoid(z[:, arms:])
    with torch.no_grad():  # the per-arm normalisers are constants of the batch
        n = torch.zeros(arms, dtype=z.dtype, device=z.device).index_add_(0, t, w)
        inv = torch.where(n > 0, 1.0 / (arms * n), torch.zeros_like(n))
        coef = w * inv[t]
    idx = t.unsqueeze(1)
    p_r, p_c = r_hat.gather(1, idx).squeeze(1), c_hat.gather(1, idx).squeeze(1)
    return (coef * ((y_r - p_r) ** 2 + (y_c - p_c) ** 2)).sum()


def run(features, batch, repetitions, min_time, device="cpu"):
    torch.manual_seed(42)
    x = torch.randn(POOL_ROWS, features).to(device)
    t = torch.randint(ARMS, (POOL_ROWS,)).to(device)
    y_r = torch.randint(2, (POOL_ROWS,)).float().to(device)
    y_c = torch.randint(2, (POOL_ROWS,)).float().to(device)
    w = torch.ones(POOL_ROWS).to(device)
    net = model(features, ARMS).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    step = 0

    def one():
        nonlocal step
        b = (step * batch) % POOL_ROWS
        s = slice(b, b + batch)
        step += 1
        opt.zero_grad(set_to_none=True)
        loss = tsm_sl(net(x[s]), t[s], y_r[s], y_c[s], w[s], ARMS)
        loss.backward()
        opt.step()
        sync()

    for _ in range(3):  # warm-up
        one()
    rates = []
    for _ in range(repetitions):
        n, start = 0, time.perf_counter()
        while True:
            one()
            n += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        rates.append(n * batch / elapsed)
    return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--features", type=int, nargs="*", default=[12, 32])
    ap.add_argument("--batches", type=int, nargs="*", default=[4096, 65536])
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cases = {}
    for f in a.features:
        for b in a.batches:
            cases[f"features:{f}/batch:{b}"] = run(f, b, a.repetitions, a.min_time, a.device)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "device": a.device,
                      "cases": cases}))


if __name__ == "__main__":
    main()
