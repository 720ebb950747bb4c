#!/usr/bin/python3
"""Cost of one SGD-momentum step of Figure 1 (right)'s CNN: dln (libtorch, C++) against the same
training loop in PyTorch (Python), on the same machine, in the same script.

The job: TensorFlow's MNIST tutorial CNN on Fashion-MNIST, batch 64, cross-entropy + 5e-4 x L2 of
the dense layers, SGD momentum 0.9 (the `dln experiment fig1-nonlinear` setup), for the original
network and its overparameterized version (dense layers as depth-2 products, +15.8% parameters).

  * dln:   `build/dln experiment fig1-nonlinear --config CFG` with train_size = batch x steps,
           one epoch, no truncation sweep; ms/step = results.csv's ms_per_step (the step alone).
  * torch: the same loop in Python (torch.nn, `dln.torch.overparameterize` for the products),
           the same threads (torch.set_num_threads), ms/step of the last `steps` steps after 20
           warm-up steps, on the same Fashion-MNIST batches.

Both use libtorch 1.13's kernels (oneDNN for the convolutions); the ratio is the cost of the
Python loop and autograd dispatch around them. Also reported: each model's FLOP rate (forward
+ backward ~ 3x the forward multiply-adds x 2) against the machine's FP32 matrix-multiply rate,
measured here: torch.mm of two 2048 x 2048 float32 matrices on the same threads, best of 5.
Times are measured, never asserted.

    /usr/bin/python3 bench/bench_fig1_nonlinear.py              # ~1-2 minutes
Writes bench/results_fig1_nonlinear.json (--out).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "build", "python"))

FORWARD_MACS = 28 * 28 * 32 * 25 + 14 * 14 * 64 * 32 * 25 + 3136 * 512 + 512 * 10
EXTRA_MACS = 512 * 512 + 10 * 10  # the second factors of the products


def load_batches(n):
    import gzip
    import numpy as np
    d = os.environ.get("DLN_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist")
    with gzip.open(os.path.join(d, "train-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(d, "train-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    x = (x[5000:5000 + n].astype(np.float32) - 127.5) / 255.0
    return x, y[5000:5000 + n].astype(np.int64)


def torch_ms_per_step(overparameterized, steps, threads, x, y):
    import torch
    from torch import nn
    import dln.torch as dt
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    m = nn.Sequential()
    m.add_module("conv1", nn.Conv2d(1, 32, 5, padding=2))
    m.add_module("relu1", nn.ReLU())
    m.add_module("pool1", nn.MaxPool2d(2))
    m.add_module("conv2", nn.Conv2d(32, 64, 5, padding=2))
    m.add_module("relu2", nn.ReLU())
    m.add_module("pool2", nn.MaxPool2d(2))
    m.add_module("flatten", nn.Flatten())
    m.add_module("fc1", nn.Linear(3136, 512))
    m.add_module("relu3", nn.ReLU())
    m.add_module("dropout", nn.Dropout(0.5))
    m.add_module("fc2", nn.Linear(512, 10))
    if overparameterized:
        m = dt.overparameterize(m, depth=2, init="factors")
    dense = [p for n, p in m.named_parameters() if n.startswith("fc")]
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    m.train()
    t0 = None
    for s in range(steps + 20):
        if s == 20:
            t0 = time.perf_counter()
        i = (s * 64) % (len(y) - 64)
        logits = m(xt[i:i + 64])
        loss = nn.functional.cross_entropy(logits, yt[i:i + 64]) + 5e-4 * 0.5 * sum(
            (p * p).sum() for p in dense)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return 1e3 * (time.perf_counter() - t0) / steps


def sgemm_gflops(threads):
    import torch
    torch.set_num_threads(threads)
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    torch.mm(a, b)
    best = 1e9
    for _ in range(5):
        t = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t)
    return 2 * 2048 ** 3 / best / 1e9


def dln_ms_per_step(dln, steps, threads):
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "cfg.toml")
        with open(cfg, "w") as f:
            f.write("[experiment]\n"
                    f"train_size = {64 * steps}\nepochs = 1\nvalidation_size = 640\n"
                    f"test_size = 1000\nthreads = {threads}\nranks = [512]\nclaim_rank = 512\n"
                    'models = ["original", "overparameterized"]\nsave_parameters = false\n'
                    "smoothing = 10\nclaim_window = 10\n")
        out = os.path.join(tmp, "out")
        subprocess.run([dln, "experiment", "fig1-nonlinear", "--config", cfg, "--out", out,
                        "--quiet", "--no-plot"], check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(out, "results.csv"), newline="") as f:
            return {r["model"]: float(r["ms_per_step"]) for r in csv.DictReader(f)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dln", default=os.path.join(ROOT, "build", "dln"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results_fig1_nonlinear.json"))
    a = ap.parse_args()
    x, y = load_batches(64 * a.steps + 64)
    peak = sgemm_gflops(a.threads)
    d = dln_ms_per_step(a.dln, a.steps, a.threads)
    rows = []
    for name, over in (("original", False), ("overparameterized", True)):
        t = torch_ms_per_step(over, a.steps, a.threads, x, y)
        flops = 64 * 3 * 2 * (FORWARD_MACS + (EXTRA_MACS if over else 0))
        rows.append({"model": name, "dln_ms_per_step": d[name], "torch_ms_per_step": t,
                     "torch_over_dln": t / d[name], "dln_gflops": flops / d[name] / 1e6,
                     "torch_gflops": flops / t / 1e6})
    print(f"FP32 matrix multiply (torch.mm 2048^2, {a.threads} threads): {peak:.1f} GFLOP/s")
    print(f"{'model':<20} {'dln ms':>8} {'torch ms':>9} {'torch/dln':>10} {'dln GFLOP/s':>12} "
          f"{'of mm rate':>10}")
    for r in rows:
        print(f"{r['model']:<20} {r['dln_ms_per_step']:8.1f} {r['torch_ms_per_step']:9.1f} "
              f"{r['torch_over_dln']:10.2f} {r['dln_gflops']:12.1f} "
              f"{100 * r['dln_gflops'] / peak:9.1f}%")
    with open(a.out, "w") as f:
        json.dump({"steps": a.steps, "threads": a.threads, "sgemm_gflops": peak, "rows": rows},
                  f, indent=1)


if __name__ == "__main__":
    main()
