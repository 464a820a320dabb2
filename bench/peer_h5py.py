#!/usr/bin/env python3
"""Peer for the data benchmarks: numpy + h5py writing and reading the same schema-v1 layout.

Write: numpy draws the columns (plain normals and uniforms: less work than dfcl's outcome model, so a generous
peer) and h5py writes them with the same chunking and filters (shuffle, gzip level L, fletcher32).
Read: h5py reads a dfcl-written file chunk by chunk, every column. Prints one JSON object.
Usage: peer_h5py.py FILE_WRITTEN_BY_DFCL [--rows N] [--deflate L]
"""
import argparse, json, os, tempfile, time

import h5py
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("dfcl_file")
ap.add_argument("--rows", type=int, default=1 << 20)
ap.add_argument("--deflate", type=int, default=1)
a = ap.parse_args()
N, F, M, C = a.rows, 32, 5, 1 << 16
res = {"rows": N, "deflate": a.deflate, "numpy": np.__version__, "h5py": h5py.__version__}

rng = np.random.default_rng(0)
path = os.path.join(tempfile.gettempdir(), "dfcl_peer.h5")
t0 = time.perf_counter()
with h5py.File(path, "w") as f:
    kw = dict(chunks=True, shuffle=True, fletcher32=True)
    if a.deflate > 0:
        kw.update(compression="gzip", compression_opts=a.deflate)
    cols = {"features": (F, np.float32), "treatment": (0, np.int32), "revenue": (0, np.float32),
            "cost": (0, np.float32), "source": (0, np.uint8), "propensity": (0, np.float32),
            "true_revenue": (M, np.float32), "true_cost": (M, np.float32)}
    ds = {}
    for name, (w, dt) in cols.items():
        shape = (N, w) if w else (N,)
        kw["chunks"] = (C, w) if w else (C,)
        ds[name] = f.create_dataset(name, shape, dtype=dt, **kw)
    for s in range(0, N, C):
        n = min(C, N - s)
        ds["features"][s:s + n] = rng.standard_normal((n, F), dtype=np.float32)
        ds["treatment"][s:s + n] = rng.integers(0, M, n, dtype=np.int32)
        ds["revenue"][s:s + n] = rng.standard_normal(n, dtype=np.float32)
        ds["cost"][s:s + n] = rng.random(n, dtype=np.float32)
        ds["source"][s:s + n] = rng.integers(0, 2, n, dtype=np.uint8)
        ds["propensity"][s:s + n] = rng.random(n, dtype=np.float32)
        ds["true_revenue"][s:s + n] = rng.standard_normal((n, M), dtype=np.float32)
        ds["true_cost"][s:s + n] = rng.random((n, M), dtype=np.float32)
res["write_rows_per_s"] = N / (time.perf_counter() - t0)
os.remove(path)

with h5py.File(a.dfcl_file, "r") as f:
    n_rows = f["features"].shape[0]
    t0 = time.perf_counter()
    for s in range(0, n_rows, C):
        for name in f.keys():
            _ = f[name][s:s + C]
    res["read_rows_per_s"] = n_rows / (time.perf_counter() - t0)
print(json.dumps(res))
