#!/usr/bin/python3
"""Cost of one full-batch GD step on Figure 1's l_4 regression: dln against PyTorch autograd.

The job (Claim 1 / Figure 1 left of the notes, Section 3.2): the ethanol problem's size,
X 128 x 1316 (d_0 = 128 features, m = 1316 measurements), one output, l_4 loss

    l(W) = 1/m sum_i |W x_i - y_i|^4,   W = W_n ... W_1 (1 x 128)
    W_j <- W_j - lr * dl/dW_j           (plain full-batch GD, fixed lr, float64, 1 thread)

for four networks: depth 1 (linear), depth 2 width 100, depth 3 width 100, depth 3 width 1.
Data: data/uci-gas-sensor-ethanol/ethanol.dat parsed here, features and target standardized
(mean 0, population variance 1, as `dln experiment fig1-lp`); `--synthetic` (or a missing file)
uses standardized Gaussian data of the same shape instead.

  * dln:   `build/dln train --config CFG.toml --out RUNDIR --quiet` with problem.kind =
           "lp_regression", x_file / y_file .npy files, run.threads = 1, record.every = 1000;
           ms/step = summary.json's seconds_per_step (the loop without records), best of --repeat.
  * torch: the same GD from dln's RUNDIR/init/W*.npy, same lr, float64,
           torch.set_num_threads(1) (and the process's OpenBLAS at 1 thread), two forwards:
           "product": E = W_n @ ... @ W_1 first (output side first, as dln), then E @ X;
           "layers":  h = W_j h from h = X (the nn.Linear way; a GEMM per layer).
           "product" runs dln's full step count: its loss at the last iterate must equal dln's
           final_loss to ~1e-10 relative (reported, with the end-to-end matrix's difference
           relative to what training moved it). "layers" runs --layer-steps steps (slow) and is
           compared with dln's recorded loss at that iteration.
  * the data pass alone: r = W X - Y and G = r X^T, the two GEMVs with X every step needs
           (numpy, the same system OpenBLAS as dln, 1 thread), best of 5 timings, measured once
           at the start and again after each config (dln/pass uses the one next to it).

Times are measured, never asserted. Exit 1 when dln fails or a loss check misses (1e-9).
Environment: like bench_completion.py, dln runs with the caller's environment unchanged
(OPENBLAS_CORETYPE included; it is recorded); torch's OpenMP pool gets OMP_WAIT_POLICY=PASSIVE.

    /usr/bin/python3 bench/bench_fig1_lp.py                 # ~1-2 minutes
    /usr/bin/python3 bench/bench_fig1_lp.py --repeat 1 --steps 5000 --layer-steps 300

Writes bench/results_fig1_lp.json (--out).
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ORIGINAL_ENV = dict(os.environ)  # what dln runs with
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads libgomp

import numpy as np  # noqa: E402

from bench_env import (loaded_libraries, openblas_handle, work_directory,  # noqa: E402
                       write_json_atomic)

torch = None  # imported in main()

REPO = Path(__file__).resolve().parent.parent
ETHANOL = REPO / "data" / "uci-gas-sensor-ethanol" / "ethanol.dat"
P = 4
INIT_SCALE = 0.01  # per-layer Gaussian entry std (near zero, as fig1-lp)
RECORD_EVERY = 1000
LOSS_TOL = 1e-9    # relative; measured values are ~1e-13 and below
# (label, depth, width, lr as a multiple of eta_0 = 1 / lambda_max(Hessian of l at W = 0)).
# On the ethanol data every run is stable over the default 20000 steps and cuts the loss by 7.7-19x
# (the networks at 2 eta_0; 4 eta_0 diverges for each of them between steps 4000 and 18000).
CONFIGS = [("depth 1", 1, 0, 1.0), ("depth 2, width 100", 2, 100, 2.0),
           ("depth 3, width 100", 3, 100, 2.0), ("depth 3, width 1", 3, 1, 2.0)]


def standardize(a: np.ndarray) -> np.ndarray:
    """Each row to mean 0 and population variance 1 (a constant row becomes 0)."""
    a = a - a.mean(axis=1, keepdims=True)
    s = a.std(axis=1, keepdims=True)
    return np.divide(a, s, out=np.zeros_like(a), where=s > 0)


def load_data(synthetic: bool) -> tuple[np.ndarray, np.ndarray, str]:
    """X (128 x m) and Y (1 x m), standardized."""
    if not synthetic and ETHANOL.exists():
        feats, conc = [], []
        for line in ETHANOL.read_text().splitlines():
            if not line.strip():
                continue
            head, *rest = line.split()
            conc.append(float(head.split(";")[1]))
            row = np.zeros(128)
            for tok in rest:
                k, v = tok.split(":")
                row[int(k) - 1] = float(v)
            feats.append(row)
        return (standardize(np.array(feats).T), standardize(np.array(conc)[None, :]),
                f"{ETHANOL.relative_to(REPO)} (standardized)")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 1316))
    y = rng.normal(size=(1, 128)) @ x / np.sqrt(128) + 0.5 * rng.normal(size=(1, 1316))
    return standardize(x), standardize(y), "Gaussian X, y = w x + noise (standardized)"


def origin_rate(x: np.ndarray, y: np.ndarray) -> float:
    """eta_0 = 1 / lambda_max of p(p-1)/m sum_i y_i^{p-2} x_i x_i^T (the Hessian at W = 0)."""
    h = (x * y[0] ** (P - 2)) @ x.T * (P * (P - 1) / x.shape[1])
    return 1.0 / float(np.linalg.eigvalsh(h)[-1])


def write_config(path: Path, xf: Path, yf: Path, depth: int, width: int, lr: float,
                 steps: int) -> None:
    width_line = f"width = {width}\n" if depth > 1 else ""
    path.write_text(
        f'[problem]\nkind = "lp_regression"\np = {P}\nrows = 1\ncols = 128\n'
        f'x_file = "{xf}"\ny_file = "{yf}"\n'
        f'[network]\ndepth = {depth}\n{width_line}init = "gaussian"\ninit_scale = {INIT_SCALE}\n'
        f"seed = 3\n"
        f'[optimizer]\nname = "gd"\nlr = {lr!r}\n'
        f"[stop]\nmax_iters = {steps}\n"
        f"[record]\nevery = {RECORD_EVERY}\n"
        f"[run]\nthreads = 1\n")


def run_dln(dln: Path, cfg: Path, rundir: Path) -> dict:
    p = subprocess.run([str(dln), "train", "--config", str(cfg), "--out", str(rundir), "--quiet"],
                       capture_output=True, text=True, env=ORIGINAL_ENV, timeout=600)
    if p.returncode not in (0, 3):  # 3: diverged (summary.json written, termination says so)
        raise RuntimeError(f"dln exited {p.returncode}: {p.stderr.strip()[-400:]}")
    return json.loads((rundir / "summary.json").read_text())


def dln_history(rundir: Path) -> dict[int, float]:
    lines = (rundir / "history.csv").read_text().splitlines()
    return {int(r.split(",")[0]): float(r.split(",")[1]) for r in lines[1:]}


def torch_gd(init, x, y, lr: float, steps: int, layers: bool):
    """`steps` GD steps; returns (factors, wall seconds)."""
    ws = [torch.tensor(w, dtype=torch.float64).requires_grad_() for w in init]
    m = x.shape[1]
    t0 = time.perf_counter()
    for _ in range(steps):
        if layers:
            h = x
            for w in ws:
                h = w @ h
        else:
            h = functools.reduce(torch.matmul, reversed(ws)) @ x
        loss = (h - y).pow(P).sum() / m
        loss.backward()
        with torch.no_grad():
            for w in ws:
                w -= lr * w.grad
                w.grad = None
    return ws, time.perf_counter() - t0


def torch_loss(ws, x, y) -> tuple[float, np.ndarray]:
    with torch.no_grad():
        e = functools.reduce(torch.matmul, reversed(ws))
        return float((e @ x - y).pow(P).sum() / x.shape[1]), e.numpy().copy()


def best_time(f, reps: int) -> float:
    """Seconds per call of f, best of 5 timings of `reps` calls."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            f()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best


def data_pass(x: np.ndarray, y: np.ndarray, xt, yt) -> dict:
    """The two GEMVs with X of every step: r = w X - y (X^T w) and g = r X^T (X r)."""
    w, y1 = np.full(x.shape[0], 0.01), np.ascontiguousarray(y[0])
    xc = np.ascontiguousarray(x)
    wt, yt1 = torch.from_numpy(w.copy()), yt[0].contiguous()

    def numpy_pass():  # 1-D operands: dgemv, twice
        return xc @ (w @ xc - y1)

    def torch_pass():
        return torch.mv(xt, torch.mv(xt.T, wt) - yt1)

    out = {"numpy_s": best_time(numpy_pass, 2000), "torch_s": best_time(torch_pass, 2000)}
    # One GEMV alone, to see the overhead of the calls themselves.
    out["numpy_one_gemv_s"] = best_time(lambda: w @ xc, 2000)
    return out


def environment(blas) -> dict:
    return {"host": platform.node(), "python": sys.version.split()[0], "numpy": np.__version__,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "openblas_corename": blas.openblas_get_corename().decode() if blas else None,
            "openblas_threads": int(blas.openblas_get_num_threads()) if blas else None,
            "blas_libraries_loaded": loaded_libraries(r"blas|lapack|mkl|omp"),
            "env": {k: ORIGINAL_ENV.get(k, "<unset>") for k in
                    ("OPENBLAS_CORETYPE", "DLN_BLAS_CORETYPE", "OPENBLAS_NUM_THREADS",
                     "OMP_NUM_THREADS")},
            "torch_omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}


def bench_one(args, label, depth, width, lr, xy, work: Path, problems: list) -> dict:
    x, y, xt, yt = xy
    tag = label.replace(" ", "").replace(",", "_")
    cfg, rundir = work / f"{tag}.toml", work / tag
    write_config(cfg, work / "X.npy", work / "Y.npy", depth, width, lr, args.steps)
    sums = [run_dln(args.dln, cfg, rundir) for _ in range(args.repeat)]
    s = min(sums, key=lambda d: d["seconds_per_step"])
    rec = {"label": label, "depth": depth, "width": width, "lr": lr, "steps": s["iterations"],
           "dln_s": s["seconds_per_step"], "dln_s_all": [d["seconds_per_step"] for d in sums],
           "dln_termination": s["termination"], "dln_final_loss": s["final_loss"],
           "dln_blas": s["blas"].get("corename"), "dln_step_threads": s.get("step_threads")}
    if s["termination"] != "max_iters":
        problems.append(f"{label}: dln ended with {s['termination']}")
    init = [np.load(rundir / "init" / f"W{j}.npy") for j in range(1, depth + 1)]
    hist = dln_history(rundir)
    rec["loss_initial"] = hist[0]

    torch_gd(init, xt, yt, lr, 3, False)  # warm-up
    ws, wall = torch_gd(init, xt, yt, lr, s["iterations"], False)
    loss, e = torch_loss(ws, xt, yt)
    e_dln, e0 = np.load(rundir / "end_to_end.npy"), functools.reduce(np.matmul, reversed(init))
    rec["torch_product_s"] = wall / s["iterations"]
    rec["torch_product_loss"] = loss
    rec["loss_rel_diff"] = abs(loss - s["final_loss"]) / abs(s["final_loss"])
    rec["e2e_update_rel_diff"] = float(np.linalg.norm(e - e_dln) / np.linalg.norm(e_dln - e0))
    rec["loss_rel_change"] = (hist[0] - s["final_loss"]) / hist[0]
    if not rec["loss_rel_diff"] <= LOSS_TOL:
        problems.append(f"{label}: torch loss {loss!r} vs dln {s['final_loss']!r}")

    k = min(args.layer_steps, s["iterations"])
    if depth > 1 and k in hist:
        ws, wall = torch_gd(init, xt, yt, lr, k, True)
        loss, _ = torch_loss(ws, xt, yt)
        rec["torch_layers_s"], rec["torch_layers_steps"] = wall / k, k
        rec["layers_loss_rel_diff"] = abs(loss - hist[k]) / abs(hist[k])
        if not rec["layers_loss_rel_diff"] <= LOSS_TOL:
            problems.append(f"{label}: torch (layers) loss at {k} {loss!r} vs dln {hist[k]!r}")
    return rec


def main() -> int:
    global torch
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dln", type=Path, default=REPO / "build" / "dln")
    ap.add_argument("--steps", type=int, default=20000, help="GD steps per dln run (and torch)")
    ap.add_argument("--layer-steps", type=int, default=1000,
                    help="steps of the torch layer-by-layer runs (a multiple of 1000)")
    ap.add_argument("--repeat", type=int, default=3, help="dln runs per config (best kept)")
    ap.add_argument("--synthetic", action="store_true", help="Gaussian data, not ethanol.dat")
    ap.add_argument("--keep", type=Path, help="keep the run directories here")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results_fig1_lp.json")
    args = ap.parse_args()
    if not args.dln.exists():
        print(f"{args.dln} not found: build it first (make build)", file=sys.stderr)
        return 2

    import torch as _torch

    torch = _torch
    torch.set_num_threads(1)
    _ = torch.ones(8, 8, dtype=torch.float64) @ torch.ones(8, 8, dtype=torch.float64)
    blas = openblas_handle()
    if blas is not None:
        blas.openblas_set_num_threads(ctypes.c_int(1))

    x, y, source = load_data(args.synthetic)
    eta0 = origin_rate(x, y)
    xt, yt = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
    results = {"job": {"data": source, "X": list(x.shape), "p": P, "init_scale": INIT_SCALE,
                       "eta0": eta0, "steps": args.steps, "layer_steps": args.layer_steps},
               "environment": environment(blas), "rows": []}
    print(f"data: {source}, X {x.shape[0]} x {x.shape[1]}, p = {P}, eta_0 = {eta0:.4g}")
    dp = data_pass(x, y, xt, yt)
    results["data_pass"] = dp
    print(f"data pass (2 GEMVs with X): numpy {dp['numpy_s'] * 1e3:.4f} ms, "
          f"torch {dp['torch_s'] * 1e3:.4f} ms (one numpy GEMV {dp['numpy_one_gemv_s'] * 1e3:.4f})")

    problems: list[str] = []
    head = (f"{'network':<20} {'lr':>9} {'dln ms':>8} {'torch ms':>9} {'torch/dln':>9} "
            f"{'pass ms':>8} {'dln/pass':>8} {'layers ms':>9} {'loss rdiff':>10} "
            f"{'E upd rdiff':>11}")
    print(head)
    with work_directory(args.keep, "bench_fig1_lp_") as wd:
        work = Path(wd)
        np.save(work / "X.npy", x)
        np.save(work / "Y.npy", y)
        for label, depth, width, factor in CONFIGS:
            r = bench_one(args, label, depth, width, factor * eta0, (x, y, xt, yt), work,
                          problems)
            r["torch_over_dln"] = r["torch_product_s"] / r["dln_s"]
            # The data pass again, right after this config's runs (the host is shared: a ratio
            # of neighbouring measurements is steadier than one against the first).
            r["data_pass"] = data_pass(x, y, xt, yt)
            r["dln_over_data_pass"] = r["dln_s"] / r["data_pass"]["numpy_s"]
            results["rows"].append(r)
            layers = f"{r['torch_layers_s'] * 1e3:9.4f}" if "torch_layers_s" in r else f"{'-':>9}"
            print(f"{label:<20} {r['lr']:9.3g} {r['dln_s'] * 1e3:8.4f} "
                  f"{r['torch_product_s'] * 1e3:9.4f} {r['torch_over_dln']:8.2f}x "
                  f"{r['data_pass']['numpy_s'] * 1e3:8.4f} {r['dln_over_data_pass']:7.2f}x "
                  f"{layers} {r['loss_rel_diff']:10.1e} {r['e2e_update_rel_diff']:11.1e}")
            results["problems"] = problems
            write_json_atomic(args.out, results)
    for p in problems:
        print("PROBLEM:", p)
    print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
