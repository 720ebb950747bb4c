#!/usr/bin/python3
"""dln vs PyTorch: plain gradient descent on deep linear matrix completion (float64, 2 threads).

What it measures
----------------
For every size d and depth n it runs the same job twice:

  * dln:     ``build/dln train --config CFG.toml --out RUNDIR --quiet`` (one subprocess per
             config; dln times its own training loop and reports ``seconds_per_step``);
  * PyTorch: the same gradient descent written the idiomatic autograd way, started from the
             SAME initial factors and observations that dln wrote into RUNDIR.

The job (loss = Eq. 9 of the notes, A_i = e_{r_i} e_{c_i}^T):

    E    = W_n ... W_1                      (W_j is d x d: every hidden width is d)
    loss = 1/(2m) * sum_i (E[r_i, c_i] - b_i)^2
    W_j <- W_j - lr * dloss/dW_j            (fixed lr, no momentum)

  ground truth d x d of rank 5, m = min(d*d // 2, 10 * 5 * d) observed entries, Gaussian init with
  entry std init_scale = 1/sqrt(d) (so the end-to-end matrix stays O(1) at every depth),
  lr = 1e-3, a fixed number of steps K per (d, n) (table DEFAULT_STEPS below; the slower side,
  normally torch, takes about 1-2 s), 2 BLAS threads on both sides. torch's OpenMP pool runs
  with OMP_WAIT_POLICY=PASSIVE unless --omp-wait-policy says otherwise: on the 2-vCPU VM
  libgomp's default spinning made every small parallel torch op take milliseconds (a handicap
  for the baseline, not a property of PyTorch). dln runs with the caller's environment.

The torch run takes exactly dln's reported number of iterations from dln's initial factors, so
its end-to-end matrix must equal dln's RUNDIR/end_to_end.npy; the relative Frobenius difference
is printed (E rdiff, must be <= 1e-8) together with the difference relative to the change made by
training (upd rdiff = |E_torch - E_dln| / |E_dln - E_0|), which stays sensitive even when lr*K is
tiny. A mismatch makes the script exit 1; performance targets are printed, never asserted.

dln FLOP model per step (the algorithm dln uses: the sparse gradient stays sparse):
  GEMM flops   = max(0, 3*(n-2)) * 2*d^3   (prefix products, suffix products, middle gradients)
  sparse flops = 4*m*d*n                   (n >= 2; an upper-bound estimate, see README)
  n = 1 has no O(d) work per observation, so GFLOP/s is not reported for it; %-of-peak (dln
  GFLOP/s over `dln gemm-peak --size 1000`) is only reported for n >= 3 (n <= 2 has no GEMM).
Memory: dln's peak RSS next to an estimate of what the job needs,
  needed = (3n + 2(n-2) + (n-1) + 4) * d^2 * 8 bytes + 64 * m bytes (see needed_bytes)
  (factors + gradients + n-1 prefix and suffix products, plus row/col/value of the data).

How to run (from the repository root, after building build/dln):

    /usr/bin/python3 bench/bench_completion.py            # d in 20,100,500,1000; n in 1..4
    /usr/bin/python3 bench/bench_completion.py --quick    # d in 20,100 only
    /usr/bin/python3 bench/bench_completion.py --sizes 100 --depths 3 --repeat 3

It prints the environment and a table, and writes bench/results.json (see --help and
bench/README.md). Uses only numpy, torch and the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import functools
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench_env import loaded_libraries, openblas_handle, work_directory, write_json_atomic

torch = None  # imported in main() after OMP_WAIT_POLICY is settled (libgomp reads it at load)

ORIGINAL_ENV = dict(os.environ)  # what dln runs with (threads go in the config: run.threads)
REPO = Path(__file__).resolve().parent.parent

RANK = 5
PROBLEM_SEED = 1
NETWORK_SEED = 2
WARMUP_STEPS = 2
E2E_TOL = 1e-8  # relative Frobenius tolerance on the end-to-end matrix
UPDATE_TOL = 1e-4  # relative tolerance on E_K - E_0 (catches wrong gradients when lr*K is tiny)
SLEEP_BEFORE_DLN = 0.5  # s; lets the spinning BLAS/OpenMP threads of this process go idle

# Steps per (d, n), sized from torch timings on the 2-vCPU development VM (~30 GFLOP/s DGEMM) so
# that the slower side (torch) takes roughly 1-2 s; a faster machine just finishes sooner.
DEFAULT_STEPS = {
    20: {1: 20000, 2: 20000, 3: 20000, 4: 20000},
    100: {1: 4000, 2: 3000, 3: 1500, 4: 1200},
    500: {1: 200, 2: 100, 3: 60, 4: 50},
    1000: {1: 60, 2: 20, 3: 20, 4: 15},
}

# Targets printed beside the numbers (never asserted). (depth, d) -> minimum torch/dln ratio.
RATIO_TARGETS = {(3, 20): 20.0, (3, 100): 3.0, (3, 1000): 1.2}
PEAK_TARGET = (3, 500, 70.0)  # depth 3, d >= 500: >= 70 % of the DGEMM peak


# --------------------------------------------------------------------------------------------
# Problem parameters and models
# --------------------------------------------------------------------------------------------

def observations_for(d: int) -> int:
    return min(d * d // 2, 10 * RANK * d)


def default_steps(d: int, n: int) -> int:
    if d in DEFAULT_STEPS and n in DEFAULT_STEPS[d]:
        return DEFAULT_STEPS[d][n]
    # Other sizes: crude torch cost model (~100 us overhead + 3(n-1) GEMMs at ~30 GFLOP/s), 1.5 s.
    est = 1e-4 + 3 * max(0, n - 1) * 2 * d**3 / 30e9 + 8 * d * d * 8 / 2e9
    return int(min(20000, max(3, round(1.5 / est))))


def dln_flops_per_step(d: int, n: int, m: int) -> tuple[int, int]:
    """(GEMM flops, sparse flops) per step of dln's algorithm; see the module docstring."""
    gemm = max(0, 3 * (n - 2)) * 2 * d**3
    sparse = 4 * m * d * n if n >= 2 else 0
    return gemm, sparse


def needed_bytes(d: int, n: int, m: int) -> int:
    """d x d matrices a dln run must hold at once, plus its data.

    factors, the initial factors kept for init/, gradients (3n); prefix and suffix products
    (n-2 each; n = 2 keeps W_2^T); sparse scratch T_j (n-1); the ground truth (1); and at a
    record the end-to-end matrix, its copy for the SVD and one unbalancedness buffer (3).
    Data: row, col, value in the loss and again in CSC/CSR order (2 x 24m, plus 16m).
    """
    prefix = max(n - 2, 0)
    suffix = max(n - 2, 0) + (1 if n == 2 else 0)
    scratch = max(n - 1, 0)
    mats = 3 * n + prefix + suffix + scratch + 1 + 3
    return mats * d * d * 8 + m * (2 * 24 + 16)


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------

def openblas_info(lib: ctypes.CDLL | None) -> dict | None:
    if lib is None:
        return None
    lib.openblas_get_corename.restype = ctypes.c_char_p
    lib.openblas_get_config.restype = ctypes.c_char_p
    return {
        "corename": lib.openblas_get_corename().decode(),
        "config": lib.openblas_get_config().decode().strip(),
        "threads": int(lib.openblas_get_num_threads()),
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def collect_environment(threads: int) -> dict:
    # Make the torch process's BLAS actually run on `threads` threads (torch.set_num_threads only
    # sets the OpenMP pool; an OpenBLAS-pthreads libblas has its own).
    torch.set_num_threads(threads)
    a = torch.ones(64, 64, dtype=torch.float64)
    _ = a @ a  # make sure the BLAS library is loaded before looking for it
    blas = openblas_handle()
    if blas is not None:
        blas.openblas_set_num_threads(ctypes.c_int(threads))

    config_lines = [ln.strip() for ln in torch.__config__.show().splitlines() if ln.strip()]
    build = next((ln for ln in config_lines if ln.startswith("- Build settings")), "")
    blas_info = re.search(r"BLAS_INFO=([^,]+)", build)
    parallel = [ln.strip() for ln in torch.__config__.parallel_info().splitlines() if ln.strip()]

    numpy_cfg = io.StringIO()
    with contextlib.redirect_stdout(numpy_cfg):
        try:
            np.show_config()
        except Exception as exc:  # pragma: no cover - informational only
            print(f"np.show_config failed: {exc}")
    numpy_blas = list(dict.fromkeys(ln.strip() for ln in numpy_cfg.getvalue().splitlines()
                                    if re.search(r"libraries|name|version", ln)))[:6]

    try:
        import threadpoolctl  # optional

        pools = threadpoolctl.threadpool_info()
    except ImportError:
        pools = "threadpoolctl not installed"

    env_vars = {k: ORIGINAL_ENV.get(k, "<unset>") for k in
                ("OPENBLAS_CORETYPE", "DLN_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                 "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    return {
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "numpy": np.__version__,
        "numpy_blas": numpy_blas,
        "torch": torch.__version__,
        "torch_config_head": config_lines[:6],
        "torch_blas_info": blas_info.group(1) if blas_info else "unknown",
        "torch_parallel_info": parallel,
        "torch_threads": torch.get_num_threads(),
        "blas_libraries_loaded": loaded_libraries(r"blas|lapack|mkl|omp"),
        "openblas_in_this_process": openblas_info(blas),
        "threadpoolctl": pools,
        "env": env_vars,
        "torch_omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "<libgomp default>"),
    }


def print_environment(env: dict, peak: dict | None) -> None:
    print("== environment ==")
    print(f"cpu                 : {env['cpu']} "
          f"({env['cpu_count']} cpus, {env['cpus_usable']} usable)")
    for k, v in env["env"].items():
        print(f"{k:<20}: {v}")
    print(f"{'torch OMP wait':<20}: {env['torch_omp_wait_policy']} (see --omp-wait-policy)")
    print(f"python              : {env['python']} ({env['python_executable']})")
    print(f"numpy               : {env['numpy']}  blas: {'; '.join(env['numpy_blas']) or '?'}")
    print(f"torch               : {env['torch']}  BLAS_INFO={env['torch_blas_info']}  "
          f"threads={env['torch_threads']}")
    for ln in env["torch_config_head"][:4]:
        print(f"  torch config      : {ln[:110]}")
    for ln in env["torch_parallel_info"]:
        if re.search(r"threads|backend|MKL|OpenMP", ln):
            print(f"  torch parallel    : {ln}")
    ob = env["openblas_in_this_process"]
    if ob:
        print(f"torch-side BLAS     : OpenBLAS corename={ob['corename']} threads={ob['threads']} "
              f"config={ob['config']}")
    print(f"libs loaded         : {', '.join(env['blas_libraries_loaded']) or '-'}")
    tp = env["threadpoolctl"]
    if isinstance(tp, str):
        print(f"threadpoolctl       : {tp}")
    else:
        for pool in tp:
            print(f"threadpoolctl       : {pool.get('internal_api')} {pool.get('version')} "
                  f"threads={pool.get('num_threads')} {pool.get('filepath')}")
    if peak:
        print(f"cpu instruction sets: {peak.get('cpu_features', '-')} (level {peak.get('cpu_isa')})")
        for k in peak.get("kernels", []):
            print(f"  kernel {k.get('corename'):<12}: {k.get('gflops', float('nan')):6.1f} GFLOP/s "
                  f"(DGEMM {k.get('size')}^3, {k.get('threads')} threads), self-test error "
                  f"{k.get('self_test_error', float('nan')):.2g}"
                  + ("  <- selected" if k.get("selected") else ""))
        print(f"dln kernel choice   : {peak.get('corename')}: {peak.get('reason', '-')}"
              + (f" [{peak['override']}]" if peak.get("override") else ""))
        print(f"dln gemm-peak       : {peak.get('gflops', float('nan')):.1f} GFLOP/s "
              f"(DGEMM {peak.get('size')}^3, {peak.get('threads')} threads, "
              f"corename={peak.get('corename')})")
    else:
        print("dln gemm-peak     : unavailable (%peak column will be '-')")
    print()


# --------------------------------------------------------------------------------------------
# dln side
# --------------------------------------------------------------------------------------------

def dln_env(threads: int) -> dict:
    return dict(ORIGINAL_ENV)


def gemm_peak(dln: Path, threads: int) -> dict | None:
    cmd = [str(dln), "gemm-peak", "--size", "1000", "--threads", str(threads), "--all-kernels"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                              env=dln_env(threads))
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"warning: {' '.join(cmd)} failed: {exc}", file=sys.stderr)
        return None
    if proc.returncode != 0:
        print(f"warning: {' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}",
              file=sys.stderr)
        return None
    lines = []
    for line in proc.stdout.strip().splitlines():
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    if not lines:
        print(f"warning: no JSON in gemm-peak output: {proc.stdout!r}", file=sys.stderr)
        return None
    selected = dict(lines[-1])  # the kernel dln selected comes last
    selected["kernels"] = lines
    return selected


def write_config(path: Path, d: int, n: int, m: int, init_scale: float, lr: float,
                 steps: int, threads: int) -> None:
    path.write_text(
        "[problem]\n"
        'kind = "completion"\n'
        f"rows = {d}\ncols = {d}\nrank = {RANK}\nobservations = {m}\nseed = {PROBLEM_SEED}\n\n"
        "[network]\n"
        f"depth = {n}\nwidth = {d}\n"
        'init = "gaussian"\n'
        f"init_scale = {init_scale!r}\nseed = {NETWORK_SEED}\n\n"
        "[optimizer]\n"
        'name = "gd"\n'
        f"lr = {lr!r}\n\n"
        "[stop]\n"
        f"max_iters = {steps}\n\n"
        "[record]\n"
        f"every = {steps}\n\n"
        "[run]\n"
        f"threads = {threads}\n"
    )


def run_dln(dln: Path, cfg: Path, rundir: Path, threads: int, timeout: float) -> dict:
    if rundir.exists():
        shutil.rmtree(rundir)
    time.sleep(SLEEP_BEFORE_DLN)
    cmd = [str(dln), "train", "--config", str(cfg), "--out", str(rundir), "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dln_env(threads))
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    summary = json.loads((rundir / "summary.json").read_text())
    missing = [k for k in ("iterations", "wall_seconds", "seconds_per_step", "final_loss",
                           "peak_rss_bytes", "blas") if k not in summary]
    if missing:
        raise RuntimeError(f"{rundir / 'summary.json'}: missing keys {missing}")
    return summary


def load_run(rundir: Path, n: int) -> tuple[list[np.ndarray], np.ndarray]:
    factors = [np.ascontiguousarray(np.load(rundir / "init" / f"W{j}.npy"), dtype=np.float64)
               for j in range(1, n + 1)]
    obs = np.loadtxt(rundir / "data" / "observations.csv", delimiter=",", skiprows=1, ndmin=2,
                     dtype=np.float64)
    return factors, obs


# --------------------------------------------------------------------------------------------
# PyTorch side
# --------------------------------------------------------------------------------------------

def end_to_end(ws: list[torch.Tensor]) -> torch.Tensor:
    # E = W_n @ ... @ W_1 (depth 1: E = W_1); ws[0] is W_1.
    return functools.reduce(torch.matmul, reversed(ws))


def torch_gd(init: list[np.ndarray], rows: torch.Tensor, cols: torch.Tensor, b: torch.Tensor,
             lr: float, steps: int) -> tuple[list[torch.Tensor], float, float]:
    """`steps` GD steps from `init`. Returns (factors, wall seconds, last training loss)."""
    ws = [torch.tensor(w, dtype=torch.float64).requires_grad_() for w in init]
    loss = torch.zeros((), dtype=torch.float64)
    t0 = time.perf_counter()
    for _ in range(steps):
        pred = end_to_end(ws)[rows, cols]
        loss = 0.5 * ((pred - b) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for w in ws:
                w -= lr * w.grad
                w.grad = None  # zero the grads (set_to_none, torch's own default)
    wall = time.perf_counter() - t0
    return ws, wall, float(loss)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def rel_fro(a: np.ndarray, b: np.ndarray) -> float:
    nb = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b)) / nb if nb > 0 else float(np.linalg.norm(a - b))


def bench_config(args, d: int, n: int, workdir: Path, peak_gflops: float | None) -> dict:
    m = observations_for(d)
    steps = args.steps or max(3, round(default_steps(d, n) * args.steps_scale))
    init_scale = args.init_scale if args.init_scale is not None else 1.0 / np.sqrt(d)
    rec: dict = {"d": d, "n": n, "m": m, "steps_requested": steps, "init_scale": init_scale,
                 "lr": args.lr}
    rundir = workdir / f"d{d}_n{n}"
    cfg = workdir / f"d{d}_n{n}.toml"
    write_config(cfg, d, n, m, init_scale, args.lr, steps, args.threads)
    rec["config_toml"] = cfg.read_text()

    # dln (best of --repeat runs; same seeds, so every run computes the same thing)
    summaries = [run_dln(args.dln, cfg, rundir, args.threads, args.timeout)
                 for _ in range(args.repeat)]
    summary = min(summaries, key=lambda s: s["seconds_per_step"])
    iters = int(summary["iterations"])
    dln_sps = float(summary["seconds_per_step"])
    rec["dln"] = {"summary": summary, "seconds_per_step": dln_sps,
                  "seconds_per_step_all": [s["seconds_per_step"] for s in summaries],
                  "peak_rss_bytes": max(int(s["peak_rss_bytes"]) for s in summaries)}
    problems = []
    if iters != steps:
        problems.append(f"dln ran {iters} iterations, {steps} requested")
    # dln's documented policy: one BLAS thread when every dimension is below 150 (the second
    # thread costs more than it gives there), run.threads otherwise.
    expected_threads = args.threads if d >= 150 else 1
    if int(summary["blas"].get("threads", -1)) != expected_threads:
        problems.append(f"dln used {summary['blas'].get('threads')} BLAS threads, "
                        f"{expected_threads} expected")

    # torch: same init and data, exactly dln's iteration count
    init, obs = load_run(rundir, n)
    if len(obs) != m:
        problems.append(f"observations.csv has {len(obs)} rows, {m} requested")
    rows = torch.from_numpy(obs[:, 0].astype(np.int64))
    cols = torch.from_numpy(obs[:, 1].astype(np.int64))
    b = torch.from_numpy(np.ascontiguousarray(obs[:, 2]))
    torch_gd(init, rows, cols, b, args.lr, WARMUP_STEPS)  # warm-up on a throw-away copy
    walls = []
    for _ in range(args.repeat):
        ws, wall, last_loss = torch_gd(init, rows, cols, b, args.lr, iters)
        walls.append(wall)
    torch_sps = min(walls) / max(iters, 1)
    with torch.no_grad():
        e_torch = end_to_end(ws).detach().numpy().copy()
        final_loss = float(0.5 * ((torch.from_numpy(e_torch)[rows, cols] - b) ** 2).mean())
    rec["torch"] = {"seconds_per_step": torch_sps, "wall_seconds_all": walls,
                    "steps": iters, "warmup_steps": WARMUP_STEPS,
                    "loss_at_final_weights": final_loss, "last_training_loss": last_loss}

    # correctness
    e_dln_path = rundir / "end_to_end.npy"
    if e_dln_path.exists():
        e_dln = np.load(e_dln_path)
        e0 = functools.reduce(np.matmul, reversed(init))
        if e_dln.shape != e_torch.shape:
            problems.append(f"end_to_end.npy shape {e_dln.shape} != {e_torch.shape}")
            e2e = upd = float("inf")
        else:
            e2e = rel_fro(e_torch, e_dln)
            moved = float(np.linalg.norm(e_dln - e0))
            upd = float(np.linalg.norm(e_torch - e_dln)) / moved if moved > 0 else float("inf")
            rec["relative_change_of_E"] = moved / max(float(np.linalg.norm(e0)), 1e-300)
        if not e2e <= E2E_TOL:
            problems.append(f"end-to-end rel diff {e2e:.3g} > {E2E_TOL:g}")
        if not upd <= UPDATE_TOL:
            problems.append(f"update rel diff {upd:.3g} > {UPDATE_TOL:g}")
    else:
        problems.append(f"{e_dln_path} missing")
        e2e = upd = None
    rec["e2e_rel_diff"] = e2e
    rec["update_rel_diff"] = upd
    dln_loss = float(summary["final_loss"])
    rec["loss_rel_diff"] = {
        "vs_loss_at_final_weights": abs(dln_loss - final_loss) / max(abs(final_loss), 1e-300),
        "vs_last_training_loss": abs(dln_loss - last_loss) / max(abs(last_loss), 1e-300),
    }

    # performance
    gemm, sparse = dln_flops_per_step(d, n, m)
    rec["flops_per_step"] = {"gemm": gemm, "sparse": sparse, "total": gemm + sparse}
    rec["ratio_torch_over_dln"] = torch_sps / dln_sps if dln_sps > 0 else None
    rec["dln_gflops"] = (gemm + sparse) / dln_sps / 1e9 if n >= 2 and dln_sps > 0 else None
    rec["pct_of_peak"] = (100.0 * rec["dln_gflops"] / peak_gflops
                          if n >= 3 and peak_gflops and rec["dln_gflops"] else None)
    rec["peak_rss_mb"] = rec["dln"]["peak_rss_bytes"] / 2**20
    rec["needed_mb_estimate"] = needed_bytes(d, n, m) / 2**20
    rec["problems"] = problems
    rec["ok"] = not problems
    return rec


COLUMNS = [("d", 5), ("n", 2), ("m", 6), ("steps", 6), ("dln s/step", 10), ("torch s/step", 12),
           ("torch/dln", 9), ("target", 7), ("dln GF/s", 8), ("%peak", 6), ("RSS MB", 7),
           ("need MB", 7), ("E rdiff", 8), ("upd rdiff", 9), ("ok", 4)]


def fmt_row(cells: list[str]) -> str:
    return "  ".join(f"{c:>{w}}" for c, (_, w) in zip(cells, COLUMNS))


def table_row(r: dict) -> str:
    def f(x, spec, suffix=""):
        return "-" if x is None else f"{x:{spec}}{suffix}"

    target = RATIO_TARGETS.get((r["n"], r["d"]))
    if "error" in r:
        return fmt_row([str(r["d"]), str(r["n"]), str(r.get("m", "")), "", "ERROR"] +
                       [""] * (len(COLUMNS) - 6) + ["FAIL"])
    return fmt_row([
        str(r["d"]), str(r["n"]), str(r["m"]), str(r["torch"]["steps"]),
        f(r["dln"]["seconds_per_step"], ".3e"), f(r["torch"]["seconds_per_step"], ".3e"),
        f(r["ratio_torch_over_dln"], ".2f", "x"), f"{target:g}x" if target else "",
        f(r["dln_gflops"], ".1f"), f(r["pct_of_peak"], ".0f", "%"),
        f(r["peak_rss_mb"], ".1f"), f(r["needed_mb_estimate"], ".1f"),
        f(r["e2e_rel_diff"], ".1e"), f(r["update_rel_diff"], ".1e"),
        "ok" if r["ok"] else "FAIL",
    ])


def target_lines(results: list[dict]) -> list[dict]:
    by = {(r["n"], r["d"]): r for r in results if "error" not in r}
    out = []
    for (n, d), want in sorted(RATIO_TARGETS.items(), key=lambda kv: kv[0][1]):
        r = by.get((n, d))
        got = r["ratio_torch_over_dln"] if r else None
        out.append({"what": f"depth {n}, d={d}: torch/dln >= {want:g}x", "measured": got,
                    "met": None if got is None else got >= want})
    n, dmin, pct = PEAK_TARGET
    for (rn, d), r in sorted(by.items(), key=lambda kv: kv[0][1]):
        if rn == n and d >= dmin:
            got = r["pct_of_peak"]
            out.append({"what": f"depth {n}, d={d}: >= {pct:g}% of DGEMM peak", "measured": got,
                        "met": None if got is None else got >= pct})
    if not any(t["what"].endswith("DGEMM peak") for t in out):
        out.append({"what": f"depth {n}, d>={dmin}: >= {pct:g}% of DGEMM peak",
                    "measured": None, "met": None})
    return out


def parse_list(text: str) -> list[int]:
    try:
        vals = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return vals


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark dln against a PyTorch baseline on GD matrix completion "
                    "(see the module docstring and bench/README.md).")
    ap.add_argument("--sizes", type=parse_list, default="20,100,500,1000",
                    help="matrix sizes d, comma-separated (default 20,100,500,1000)")
    ap.add_argument("--depths", type=parse_list, default="1,2,3,4",
                    help="depths n, comma-separated (default 1,2,3,4)")
    ap.add_argument("--quick", action="store_true", help="sizes 20,100 only")
    ap.add_argument("--dln", type=Path, default=REPO / "build" / "dln",
                    help="dln executable (default build/dln)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results.json",
                    help="results JSON (default bench/results.json)")
    ap.add_argument("--threads", type=int, default=2,
                    help="BLAS/torch threads on both sides (default 2)")
    ap.add_argument("--lr", type=float, default=1e-3, help="GD learning rate (default 1e-3)")
    ap.add_argument("--init-scale", type=float, default=None,
                    help="entry std of the Gaussian init (default 1/sqrt(d))")
    ap.add_argument("--steps", type=int, default=None,
                    help="steps for every config (default: built-in table per (d, n))")
    ap.add_argument("--steps-scale", type=float, default=1.0,
                    help="multiply the default step counts (min 3; default 1)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs per side and config, fastest reported (default 1)")
    ap.add_argument("--keep-runs", type=Path, default=None,
                    help="keep dln configs and run dirs here (default: temporary, deleted)")
    ap.add_argument("--omp-wait-policy", choices=["PASSIVE", "ACTIVE", "inherit"],
                    default="PASSIVE",
                    help="OMP_WAIT_POLICY for torch's OpenMP pool (default PASSIVE; 'inherit' "
                         "keeps the environment's, i.e. libgomp's spin-then-sleep if unset). "
                         "dln always gets the original environment.")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds allowed per dln run (default 1800)")
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes = [20, 100]
    if args.steps is not None and args.steps < 1:
        ap.error("--steps must be >= 1")
    if args.repeat < 1:
        ap.error("--repeat must be >= 1")
    if args.omp_wait_policy != "inherit":
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    global torch
    import torch as _torch  # noqa: E402 - must follow the OMP_WAIT_POLICY decision

    torch = _torch
    args.dln = args.dln.resolve()
    if not (args.dln.is_file() and os.access(args.dln, os.X_OK)):
        print(f"error: dln executable not found: {args.dln} (build it, or pass --dln)",
              file=sys.stderr)
        return 2

    env = collect_environment(args.threads)
    peak = gemm_peak(args.dln, args.threads)
    peak_gflops = float(peak["gflops"]) if peak and "gflops" in peak else None
    print_environment(env, peak)
    print(f"job: matrix completion, float64, rank {RANK}, m = min(d*d//2, {10 * RANK}*d), "
          f"Gaussian init std {'1/sqrt(d)' if args.init_scale is None else args.init_scale}, "
          f"GD lr {args.lr:g}, {args.threads} threads, torch warm-up {WARMUP_STEPS} steps, "
          f"best of {args.repeat}")
    print("dln flops/step = max(0,3(n-2))*2d^3 + 4*m*d*n (n >= 2); "
          "%peak = dln GF/s / gemm-peak (n >= 3 only)")
    print("need MB = (3n + 2(n-2) + (n-1) + 4)*d^2*8 + 64m bytes (needed_bytes()); RSS MB = dln peak RSS (whole "
          "process)")
    print(f"E rdiff = |E_torch - E_dln|_F/|E_dln|_F (tol {E2E_TOL:g}); "
          f"upd rdiff = |E_torch - E_dln|_F/|E_dln - E_0|_F (tol {UPDATE_TOL:g})")
    print()
    header = fmt_row([name for name, _ in COLUMNS])
    print(header)
    print("-" * len(header))

    report = {
        "benchmark": "deep linear matrix completion, plain GD, dln vs PyTorch",
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "parameters": {
            "sizes": args.sizes, "depths": args.depths, "threads": args.threads, "lr": args.lr,
            "init": "gaussian", "init_scale": args.init_scale or "1/sqrt(d)", "rank": RANK,
            "observations": f"min(d*d//2, {10 * RANK}*d)", "problem_seed": PROBLEM_SEED,
            "network_seed": NETWORK_SEED, "torch_warmup_steps": WARMUP_STEPS,
            "repeat": args.repeat, "dln": str(args.dln),
            "torch_omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "<libgomp default>"),
        },
        "models": {
            "flops_per_step": "gemm = max(0, 3*(n-2)) * 2*d^3; sparse = 4*m*d*n for n >= 2 "
                              "(0 for n = 1); total = gemm + sparse",
            "pct_of_peak": "100 * dln_gflops / gemm_peak.gflops, n >= 3 only",
            "needed_mb_estimate": "needed_bytes(): ((3n + 2(n-2) + (n-1) + 4) * d^2 * 8 + 64*m) / 2^20",
            "e2e_rel_diff": "|E_torch - E_dln|_F / |E_dln|_F",
            "update_rel_diff": "|E_torch - E_dln|_F / |E_dln - E_0|_F",
        },
        "tolerances": {"e2e_rel_diff": E2E_TOL, "update_rel_diff": UPDATE_TOL},
        "environment": env,
        "gemm_peak": peak,
        "results": [],
    }

    def save() -> None:
        write_json_atomic(args.out, report)

    with work_directory(args.keep_runs, "dln-bench-") as wd:
        for d in args.sizes:
            for n in args.depths:
                try:
                    rec = bench_config(args, d, n, Path(wd), peak_gflops)
                except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                    rec = {"d": d, "n": n, "m": observations_for(d), "error": str(exc),
                           "ok": False, "problems": [str(exc)]}
                report["results"].append(rec)
                print(table_row(rec), flush=True)
                for p in rec["problems"]:
                    print(f"      ! d={d} n={n}: {p}", flush=True)
                report["targets"] = target_lines(report["results"])
                save()

    print()
    print("== targets (informational, not asserted) ==")
    for t in report["targets"]:
        status = {None: "not run", True: "met", False: "NOT met"}[t["met"]]
        got = t["measured"]
        shown = "-" if got is None else (f"{got:.2f}x" if "torch/dln" in t["what"]
                                         else f"{got:.0f}%")
        print(f"  {t['what']:<42} measured {shown:>8}  [{status}]")
    failed = [r for r in report["results"] if not r["ok"]]
    report["all_ok"] = not failed
    report["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    save()
    print()
    print(f"wrote {args.out}")
    if failed:
        print(f"{len(failed)} config(s) FAILED (dln error or dln/torch mismatch): "
              + ", ".join(f"d={r['d']} n={r['n']}" for r in failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
