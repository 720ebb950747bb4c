#!/usr/bin/python3
"""dln vs the authors' PyTorch loop: group-RMSprop deep matrix completion (Figure 2 setup).

What it measures
----------------
Arora, Cohen, Hu, Luo (2019), "Implicit Regularization in Deep Matrix Factorization", trained
their deep matrix factorizations with a PyTorch script: the factors are ``nn.Linear`` layers
without bias, float32, the end-to-end matrix is formed by applying the layers, the loss is the
plain mean over the observed entries, ``loss.backward()`` gives the gradients and a
"group-RMSprop" optimizer steps them (see /work/shared/reference/experiment-setups.md,
"Group-RMSprop" and "Matrix completion / sensing"):

    s <- alpha s + (1 - alpha) sum_j ||g_j||_F^2      (one running average for all layers)
    v  = sqrt(s / (1 - alpha^t)) + eps                (bias-corrected, t = step number)
    W_j <- W_j - (lr / v) g_j                         lr 1e-3, alpha 0.99, eps 1e-4

This script reimplements that loop the way such a script is written (an ``nn.Module``, a
``torch.optim.Optimizer`` subclass, autograd; not an optimized version) and runs it against
``build/dln train`` on the SAME instance, in the same script, and reports per-iteration times.

The instance (the published Figure 2 setup, as dln's ``completion_config`` builds it):
100 x 100 ground truth of rank 5 (||W*||_F = 100), 2000 observed entries, depth 3, all widths
100, Gaussian init with per-layer std init_scale^(1/3) / sqrt(100), init_scale = 1e-3, loss =
1/m sum_i (E[r_i, c_i] - b_i)^2 (dln: ``problem.reduction = "mean"``), stop at loss <= 1e-6
or a step cap.

dln runs first (``dln train --config CFG --out RUNDIR --quiet``, with the caller's environment
unchanged; the thread count goes in the config as ``run.threads``). The torch loop then loads
RUNDIR/init/W*.npy and RUNDIR/data/observations.csv, so both sides start from the same factors
and see the same data. dln's W_j is d_j x d_{j-1} with E = W_n ... W_1; nn.Linear(d_{j-1}, d_j)
stores its weight as (out, in) = d_j x d_{j-1} and computes y = x W^T, so layer j's weight is
W_j itself, and applying the layers to the d_0 x d_0 identity gives
I W_1^T W_2^T ... W_n^T = (W_n ... W_1)^T = E^T; the module returns its transpose, E.

Rows (ms per iteration, and torch / dln):
  torch float32, the authors' loop, 1 and 2 threads
  torch float64, the same loop, 1 and 2 threads
  dln (float64), run.threads = 1 and 2 (dln runs 1 BLAS thread when every dimension is below
  150, so both rows report blas.threads = 1 here; builds that split a step over a helper
  thread report that as summary.json's step_threads, printed next to it)

Correctness: the float64 loop runs exactly as many steps as dln (``--steps``) or to the same
stopping criterion (``--full``); the relative Frobenius difference of the end-to-end matrices
must be <= 1e-8 (with ``--full`` the iteration counts must also agree within 1), otherwise the
script exits 1. The float32 loop's difference is reported, not checked. The speed target (dln
>= 3x faster per iteration than the fastest float32 row, dln at its default run.threads = 2) is
printed, never asserted.

torch's OpenMP pool runs with OMP_WAIT_POLICY=PASSIVE (``--omp-wait-policy``), as in
bench_completion.py: on the 2-vCPU VM libgomp's default spin-waiting makes every small parallel
torch op take milliseconds instead of microseconds, a handicap of the VM, not of PyTorch.

How to run (from the repository root, after building build/dln):

    /usr/bin/python3 bench/bench_authors.py                 # timing, --steps 10000 per row
    /usr/bin/python3 bench/bench_authors.py --steps 20000   # longer timing runs
    /usr/bin/python3 bench/bench_authors.py --full          # to loss <= 1e-6 (~30k iterations)

Writes bench/results_authors.json (``--out``). Uses only numpy, torch and the standard library.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
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

torch = None  # imported in main(), after OMP_WAIT_POLICY is settled (libgomp reads it at load)
nn = None

ORIGINAL_ENV = dict(os.environ)  # dln runs with exactly this environment
REPO = Path(__file__).resolve().parent.parent

# The published Figure 2 instance (experiments/fig2.toml, completion_config in
# src/dln/experiments/common.cpp) at 2000 observations, depth 3, seed 1.
ROWS = COLS = 100
RANK = 5
OBSERVATIONS = 2000
DEPTH = 3
WIDTH = 100
INIT_SCALE = 1e-3  # end-to-end scale; per-layer std = INIT_SCALE^(1/DEPTH) / sqrt(WIDTH)
LR, ALPHA, EPS = 1e-3, 0.99, 1e-4
LOSS_TOL = 1e-6
SEED = 1  # problem seed; the network seed is 1000 + SEED, as completion_config uses

DEFAULT_STEPS = 10000  # ~2.5-4.5 s per torch row, ~1.5 s per dln row on the 2-vCPU VM
DEFAULT_FULL_CAP = 200000
WARMUP_STEPS = 3
THREADS = (1, 2)
E2E_TOL = 1e-8  # float64 loop vs dln after the same number of steps (or at convergence)
SPEED_TARGET = 3.0  # dln >= 3x faster per iteration than the authors' float32 loop
SLEEP_BEFORE_DLN = 0.5  # s; lets this process's BLAS/OpenMP threads go idle
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd")
ENV_VARS = ("OPENBLAS_CORETYPE", "DLN_BLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
            "DLN_THREADS", "OMP_WAIT_POLICY", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------

def cpuinfo() -> tuple[str, list[str]]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("unknown", platform.processor()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return model, [fl for fl in CPU_FLAGS if fl in flags]


def cpu_busy_fraction(interval: float = 1.0) -> float | None:
    """Fraction of all CPUs' time spent non-idle over `interval` s (this process sleeps)."""
    def sample():
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        return sum(vals), vals[3] + vals[4]  # total, idle + iowait

    try:
        t0, i0 = sample()
        time.sleep(interval)
        t1, i1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1.0 - (i1 - i0) / (t1 - t0) if t1 > t0 else None


class OtherLoad:
    """Share of all CPUs' time that OTHER processes used between start() and stop().

    /proc/stat's non-idle time of the whole machine minus this process's own CPU time and that
    of its waited-for children (dln). On a shared 2-vCPU machine this says which timings were
    taken while something else ran; None where /proc/stat is unavailable.
    """

    @staticmethod
    def _sample():
        with open("/proc/stat") as f:
            vals = [int(x) for x in f.readline().split()[1:]]
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return sum(vals), sum(vals) - vals[3] - vals[4], own

    def start(self) -> "OtherLoad":
        try:
            self._s = self._sample()
        except (OSError, ValueError, IndexError):
            self._s = None
        return self

    def stop(self) -> float | None:
        if self._s is None:
            return None
        try:
            total1, busy1, own1 = self._sample()
        except (OSError, ValueError, IndexError):
            return None
        total0, busy0, own0 = self._s
        if total1 <= total0:
            return None
        own = (own1 - own0) * os.sysconf("SC_CLK_TCK")
        return min(1.0, max(0.0, ((busy1 - busy0) - own) / (total1 - total0)))


def set_torch_threads(threads: int, blas: ctypes.CDLL | None) -> None:
    # torch.set_num_threads sets the intra-op (OpenMP) pool; an OpenBLAS-pthreads libblas, which
    # Debian's torch calls for matmul, has its own pool.
    torch.set_num_threads(threads)
    if blas is not None:
        blas.openblas_set_num_threads(ctypes.c_int(threads))


def collect_environment(blas: ctypes.CDLL | None) -> dict:
    model, flags = cpuinfo()
    config_lines = [ln.strip() for ln in torch.__config__.show().splitlines() if ln.strip()]
    build = next((ln for ln in config_lines if ln.startswith("- Build settings")), "")
    blas_info = re.search(r"BLAS_INFO=([^,]+)", build)
    capability = next((ln for ln in config_lines if "CPU capability" in ln), "")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {
        "host": platform.node(),
        "loadavg": load,
        "cpu_busy_before": cpu_busy_fraction(),
        "cpu": model,
        "cpu_flags": flags,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "env": {k: ORIGINAL_ENV.get(k, "<unset>") for k in ENV_VARS},
        "torch_omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "<libgomp default>"),
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_blas_info": blas_info.group(1) if blas_info else "unknown",
        "torch_cpu_capability": capability,
        "torch_blas": None if blas is None else {
            "corename": blas.openblas_get_corename().decode(),
            "config": blas.openblas_get_config().decode().strip(),
        },
        "blas_libraries_loaded": loaded_libraries(r"blas|lapack|mkl|omp"),
    }


def gemm_peak(dln: Path) -> dict:
    """`dln gemm-peak --all-kernels --size 1000 --threads 1`, else plain `gemm-peak`."""
    out: dict = {"command": None, "lines": [], "error": None}
    for extra in (["--all-kernels"], []):
        cmd = [str(dln), "gemm-peak", *extra, "--size", "1000", "--threads", "1"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                                  env=ORIGINAL_ENV)
        except (OSError, subprocess.TimeoutExpired) as exc:
            out["error"] = f"{' '.join(cmd)}: {exc}"
            continue
        lines = []
        for ln in proc.stdout.splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                obj = json.loads(ln)
                if isinstance(obj, dict):
                    lines.append(obj)
        if proc.returncode == 0 and lines:
            out.update(command=" ".join(cmd[1:]), lines=lines, error=None)
            return out
        out["error"] = (f"{' '.join(cmd[1:])} exited {proc.returncode}: "
                        f"{(proc.stderr or proc.stdout).strip()[-300:]}")
    return out


def print_environment(env: dict, peak: dict) -> None:
    print("== environment ==")
    print(f"cpu                 : {env['cpu']} ({env['cpu_count']} cpus, "
          f"{env['cpus_usable']} usable)")
    print(f"cpu flags           : {' '.join(env['cpu_flags']) or '-'} "
          f"(of {', '.join(CPU_FLAGS)})")
    for k, v in env["env"].items():
        print(f"{k:<20}: {v}")
    if env["loadavg"] is not None:
        print(f"load average        : {' '.join(f'{x:.2f}' for x in env['loadavg'])}")
    if env["cpu_busy_before"] is not None:
        busy = env["cpu_busy_before"]
        print(f"cpu busy (1 s)      : {100 * busy:.0f}% of all cpus before the runs"
              + ("  (WARNING: other work is running; timings will be noisy)" if busy > 0.15
                 else ""))
    print(f"{'torch OMP wait':<20}: {env['torch_omp_wait_policy']} (see --omp-wait-policy)")
    print(f"python / numpy      : {env['python']} ({env['python_executable']}) / {env['numpy']}")
    print(f"torch               : {env['torch']}  BLAS_INFO={env['torch_blas_info']}  "
          f"{env['torch_cpu_capability'].lstrip('- ')}")
    tb = env["torch_blas"]
    print(f"torch-side BLAS     : " + (f"OpenBLAS corename={tb['corename']}  config={tb['config']}"
                                       if tb else "not OpenBLAS (no openblas_get_corename)"))
    print(f"libs loaded         : {', '.join(env['blas_libraries_loaded']) or '-'}")
    if peak["lines"]:
        print(f"dln {peak['command']}:")
        for ln in peak["lines"]:
            if "corename" in ln and "gflops" in ln:
                rest = {k: v for k, v in ln.items()
                        if k not in ("corename", "gflops", "size", "threads", "selected")}
                print(f"  {ln['corename']:<14} {float(ln['gflops']):7.1f} GFLOP/s"
                      f"{'  [selected]' if ln.get('selected') else ''}  {json.dumps(rest)}")
            else:
                print(f"  {json.dumps(ln)}")
    else:
        print(f"dln gemm-peak       : unavailable ({peak['error']})")
    if ORIGINAL_ENV.get("OPENBLAS_CORETYPE") or ORIGINAL_ENV.get("DLN_BLAS_CORETYPE"):
        print("note: a BLAS core type is set in the caller's environment; both sides run with it. "
              "For an out-of-the-box measurement run\n      "
              "env -u OPENBLAS_CORETYPE -u DLN_BLAS_CORETYPE /usr/bin/python3 "
              "bench/bench_authors.py")
    print()


# --------------------------------------------------------------------------------------------
# dln side
# --------------------------------------------------------------------------------------------

def per_layer_std() -> float:
    return INIT_SCALE ** (1.0 / DEPTH) / np.sqrt(WIDTH)


def write_config(path: Path, max_iters: int, threads: int) -> None:
    path.write_text(
        "# bench_authors.py: Figure 2 instance (completion_config), 2000 observations, depth 3\n"
        "[problem]\n"
        'kind = "completion"\n'
        f"rows = {ROWS}\ncols = {COLS}\nrank = {RANK}\nobservations = {OBSERVATIONS}\n"
        f"seed = {SEED}\n"
        'reduction = "mean"\n\n'
        "[network]\n"
        f"depth = {DEPTH}\nwidth = {WIDTH}\n"
        'init = "gaussian"\n'
        f"init_scale = {per_layer_std()!r}\nseed = {1000 + SEED}\n\n"
        "[optimizer]\n"
        'name = "group_rmsprop"\n'
        f"lr = {LR!r}\nalpha = {ALPHA!r}\neps = {EPS!r}\n\n"
        "[stop]\n"
        f"max_iters = {max_iters}\nloss_tol = {LOSS_TOL!r}\n\n"
        "[record]\n"
        f"every = {max_iters}\n\n"
        "[run]\n"
        f"threads = {threads}\n"
    )


def run_dln(dln: Path, cfg: Path, rundir: Path, timeout: float) -> dict:
    if rundir.exists():
        shutil.rmtree(rundir)
    time.sleep(SLEEP_BEFORE_DLN)
    cmd = [str(dln), "train", "--config", str(cfg), "--out", str(rundir), "--quiet"]
    load = OtherLoad().start()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=ORIGINAL_ENV)
    other = load.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: "
                           f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    summary = json.loads((rundir / "summary.json").read_text())
    missing = [k for k in ("iterations", "seconds_per_step", "final_loss", "blas")
               if k not in summary]
    if missing:
        raise RuntimeError(f"{rundir / 'summary.json'}: missing keys {missing}")
    summary["_other_load"] = other  # bench_authors.py's, not dln's
    return summary


def load_run(rundir: Path) -> tuple[list[np.ndarray], np.ndarray]:
    factors = [np.load(rundir / "init" / f"W{j}.npy") for j in range(1, DEPTH + 1)]
    obs = np.loadtxt(rundir / "data" / "observations.csv", delimiter=",", skiprows=1, ndmin=2,
                     dtype=np.float64)
    return factors, obs


# --------------------------------------------------------------------------------------------
# The authors' loop, in PyTorch
# --------------------------------------------------------------------------------------------

def make_torch_classes():
    class DeepMatrixFactorization(nn.Module):
        """Depth-n linear network; forward() returns the end-to-end matrix E = W_n ... W_1."""

        def __init__(self, dims: list[int], dtype):
            super().__init__()
            self.layers = nn.ModuleList(
                nn.Linear(dims[j], dims[j + 1], bias=False).to(dtype)
                for j in range(len(dims) - 1))
            self.register_buffer("eye", torch.eye(dims[0], dtype=dtype))

        def forward(self):
            x = self.eye
            for layer in self.layers:  # x <- x W_j^T
                x = layer(x)
            return x.t()  # (W_1^T ... W_n^T)^T = W_n ... W_1

    class GroupRMSprop(torch.optim.Optimizer):
        """RMSprop with one running average of the squared gradient norm for the whole group."""

        def __init__(self, params, lr=1e-3, alpha=0.99, eps=1e-4):
            super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                params = [p for p in group["params"] if p.grad is not None]
                if not params:
                    continue
                if "step" not in group:
                    group["step"] = 0
                    group["square_avg"] = torch.zeros((), dtype=params[0].dtype)
                group["step"] += 1
                alpha = group["alpha"]
                sq = sum(p.grad.pow(2).sum() for p in params)
                square_avg = group["square_avg"]
                square_avg.mul_(alpha).add_(sq, alpha=1 - alpha)
                avg = (square_avg / (1 - alpha ** group["step"])).sqrt().add_(group["eps"])
                for p in params:
                    p.addcdiv_(p.grad, avg, value=-group["lr"])

    return DeepMatrixFactorization, GroupRMSprop


def torch_train(init: list[np.ndarray], obs: np.ndarray, dtype, max_iters: int,
                loss_tol: float) -> dict:
    """The authors' training loop from dln's initial factors; stops like dln (loss of the
    current iterate <= loss_tol, or max_iters steps). Returns E, iterations, wall, losses."""
    Model, Opt = make_torch_classes()
    dims = [init[0].shape[1]] + [w.shape[0] for w in init]
    model = Model(dims, dtype)
    with torch.no_grad():
        for layer, w in zip(model.layers, init):
            layer.weight.copy_(torch.from_numpy(w))  # nn.Linear weight (out, in) = W_j
    rows = torch.from_numpy(obs[:, 0].astype(np.int64))
    cols = torch.from_numpy(obs[:, 1].astype(np.int64))
    b = torch.from_numpy(obs[:, 2]).to(dtype)
    opt = Opt(model.parameters(), lr=LR, alpha=ALPHA, eps=EPS)

    load = OtherLoad().start()
    t0 = time.perf_counter()
    it = 0
    while True:
        e2e = model()
        loss = (e2e[rows, cols] - b).pow(2).mean()
        loss_value = loss.item()
        if (loss_tol > 0 and loss_value <= loss_tol) or it >= max_iters \
                or not np.isfinite(loss_value):
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
    wall = time.perf_counter() - t0
    other = load.stop()
    with torch.no_grad():
        e = model().to(torch.float64).numpy().copy()
    return {"e2e": e, "iterations": it, "wall_seconds": wall, "last_loss": loss_value,
            "other_load": other}


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

def rel_fro(a: np.ndarray, b: np.ndarray) -> float:
    nb = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b)) / nb if nb > 0 else float(np.linalg.norm(a - b))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="dln vs the authors' PyTorch group-RMSprop loop on the Figure 2 completion "
                    "instance (see the module docstring and bench/README.md).")
    ap.add_argument("--steps", type=int, default=None,
                    help=f"time this many iterations per row (default {DEFAULT_STEPS}; the run "
                         f"still stops early at loss <= {LOSS_TOL:g})")
    ap.add_argument("--full", action="store_true",
                    help=f"run every row to loss <= {LOSS_TOL:g} (cap --max-iters), compare "
                         "iteration counts and final matrices")
    ap.add_argument("--max-iters", type=int, default=DEFAULT_FULL_CAP,
                    help=f"step cap of --full (default {DEFAULT_FULL_CAP})")
    ap.add_argument("--repeat", type=int, default=1,
                    help="timed runs per row, fastest reported (default 1)")
    ap.add_argument("--dln", type=Path, default=REPO / "build" / "dln",
                    help="dln executable (default build/dln)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results_authors.json",
                    help="results JSON (default bench/results_authors.json)")
    ap.add_argument("--keep-runs", type=Path, default=None,
                    help="keep dln configs and run dirs here (default: temporary, deleted)")
    ap.add_argument("--omp-wait-policy", choices=["PASSIVE", "ACTIVE", "inherit"],
                    default="PASSIVE",
                    help="OMP_WAIT_POLICY for torch's OpenMP pool (default PASSIVE; 'inherit' "
                         "keeps the environment's). dln always gets the original environment.")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per dln run")
    args = ap.parse_args(argv)
    if args.full and args.steps is not None:
        ap.error("--steps and --full are exclusive")
    steps = args.steps if args.steps is not None else DEFAULT_STEPS
    if steps < 1 or args.max_iters < 1 or args.repeat < 1:
        ap.error("--steps, --max-iters and --repeat must be >= 1")
    max_iters = args.max_iters if args.full else steps

    if args.omp_wait_policy != "inherit":
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy
    global torch, nn
    import torch as _torch  # noqa: E402 - must follow the OMP_WAIT_POLICY decision
    import torch.nn as _nn  # noqa: E402

    torch, nn = _torch, _nn
    args.dln = args.dln.resolve()
    if not (args.dln.is_file() and os.access(args.dln, os.X_OK)):
        print(f"error: dln executable not found: {args.dln} (build it, or pass --dln)",
              file=sys.stderr)
        return 2

    _ = torch.ones(8, 8, dtype=torch.float64) @ torch.ones(8, 8, dtype=torch.float64)
    blas = openblas_handle()  # torch's BLAS, loaded by the matmul above
    env = collect_environment(blas)
    peak = gemm_peak(args.dln)
    print_environment(env, peak)
    mode = (f"--full: to loss <= {LOSS_TOL:g}, cap {max_iters}" if args.full
            else f"--steps {steps} (stop early at loss <= {LOSS_TOL:g})")
    print(f"job: completion {ROWS}x{COLS} rank {RANK}, m = {OBSERVATIONS}, depth {DEPTH}, "
          f"widths {WIDTH}, Gaussian per-layer std {INIT_SCALE:g}^(1/{DEPTH})/sqrt({WIDTH}) = "
          f"{per_layer_std():.4g}, mean loss, group-RMSprop lr {LR:g} alpha {ALPHA:g} "
          f"eps {EPS:g}; {mode}; best of {args.repeat}")
    print()

    report: dict = {
        "benchmark": "Figure 2 completion, group-RMSprop: dln vs the authors' PyTorch loop",
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "parameters": {
            "rows": ROWS, "cols": COLS, "rank": RANK, "observations": OBSERVATIONS,
            "depth": DEPTH, "width": WIDTH, "init_scale": INIT_SCALE,
            "per_layer_std": per_layer_std(), "lr": LR, "alpha": ALPHA, "eps": EPS,
            "reduction": "mean", "loss_tol": LOSS_TOL, "problem_seed": SEED,
            "network_seed": 1000 + SEED, "mode": "full" if args.full else "steps",
            "max_iters": max_iters, "repeat": args.repeat, "torch_warmup_steps": WARMUP_STEPS,
            "dln": str(args.dln),
            "torch_omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "<libgomp default>"),
        },
        "tolerances": {"e2e_rel_diff_float64": E2E_TOL,
                       "iteration_diff_float64": 1 if args.full else 0},
        "environment": env,
        "gemm_peak": peak,
        "rows": [],
    }
    problems: list[str] = []

    def save() -> None:
        report["problems"] = problems
        write_json_atomic(args.out, report)

    with work_directory(args.keep_runs, "dln-bench-authors-") as wd:
        wd = Path(wd)
        # ---- dln, 1 and 2 threads ----
        dln_rows = {}
        dln_runs: dict = {t: [] for t in THREADS}
        for _ in range(args.repeat):  # round-robin, as for torch below
            for threads in list(dln_runs):
                cfg = wd / f"authors_t{threads}.toml"
                write_config(cfg, max_iters, threads)
                try:
                    dln_runs[threads].append(
                        run_dln(args.dln, cfg, wd / f"authors_t{threads}", args.timeout))
                except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                    problems.append(f"dln run.threads={threads}: {exc}")
                    print(f"dln run.threads={threads}: FAILED: {exc}", file=sys.stderr)
                    del dln_runs[threads]
                    continue
                sm = dln_runs[threads][-1]
                oth = sm["_other_load"]
                print(f"  [{len(dln_runs[threads])}/{args.repeat}] dln run.threads={threads}: "
                      f"{sm['iterations']} iterations, {1e3 * sm['seconds_per_step']:.4f} "
                      f"ms/iteration, other load {'-' if oth is None else f'{100 * oth:.0f}%'}",
                      flush=True)
        for threads, runs in dln_runs.items():
            cfg = wd / f"authors_t{threads}.toml"
            rundir = wd / f"authors_t{threads}"
            best = min(runs, key=lambda s: s["seconds_per_step"])
            dln_rows[threads] = {"side": "dln", "dtype": "float64", "threads": threads,
                                 "iterations": int(best["iterations"]),
                                 "seconds_per_step": float(best["seconds_per_step"]),
                                 "seconds_per_step_all": [s["seconds_per_step"] for s in runs],
                                 "other_load": best["_other_load"],
                                 "other_load_all": [s["_other_load"] for s in runs],
                                 "final_loss": best["final_loss"],
                                 "termination": best.get("termination"),
                                 "blas": best["blas"], "summary": best,
                                 "config_toml": cfg.read_text(), "rundir": rundir}
        if not dln_rows:
            save()
            print(f"wrote {args.out}")
            return 1
        ref_threads = 2 if 2 in dln_rows else min(dln_rows)
        ref = dln_rows[ref_threads]
        iters = ref["iterations"]
        for t, r in dln_rows.items():
            if r["iterations"] != iters:
                problems.append(f"dln ran {r['iterations']} iterations with run.threads={t}, "
                                f"{iters} with run.threads={ref_threads}")
        init, obs = load_run(ref["rundir"])
        e_dln = np.load(ref["rundir"] / "end_to_end.npy")
        for t, r in dln_rows.items():  # run.threads = 1 vs 2 (a split step may round apart)
            r["e2e_rel_diff"] = rel_fro(np.load(r["rundir"] / "end_to_end.npy"), e_dln)
            if not r["e2e_rel_diff"] <= E2E_TOL:
                problems.append(f"dln run.threads={t} vs {ref_threads}: end-to-end rel diff "
                                f"{r['e2e_rel_diff']:.3g} > {E2E_TOL:g}")
        e0 = init[2] @ init[1] @ init[0]
        if len(obs) != OBSERVATIONS:
            problems.append(f"observations.csv has {len(obs)} rows, {OBSERVATIONS} expected")
        for j, w in enumerate(init, 1):
            std = float(w.std())
            if not 0.8 * per_layer_std() < std < 1.2 * per_layer_std():
                problems.append(f"init/W{j}.npy entry std {std:.3g}, {per_layer_std():.3g} "
                                "expected")

        # ---- torch rows: float32 (the authors' dtype) and float64, 1 and 2 threads ----
        # --steps: exactly dln's iteration count (the loop still stops at loss <= tol);
        # --full: each row's own stopping criterion, capped at --max-iters.
        torch_cap = max_iters if args.full else iters
        # The repeats go round-robin over the rows, so a burst of other work on the machine
        # spoils one repeat of several rows rather than every repeat of one row.
        variants = [(name, dt, threads) for name, dt in (("float32", torch.float32),
                                                         ("float64", torch.float64))
                    for threads in THREADS]
        all_runs: dict = {v[::2]: [] for v in variants}
        for rep in range(args.repeat):
            for dtype_name, dtype, threads in variants:
                set_torch_threads(threads, blas)
                torch_train(init, obs, dtype, WARMUP_STEPS, 0.0)  # warm-up, thrown away
                r = torch_train(init, obs, dtype, torch_cap, LOSS_TOL)
                all_runs[(dtype_name, threads)].append(r)
                oth = r["other_load"]
                print(f"  [{rep + 1}/{args.repeat}] torch {dtype_name} {threads} thread(s): "
                      f"{r['iterations']} iterations, "
                      f"{1e3 * r['wall_seconds'] / max(r['iterations'], 1):.4f} ms/iteration, "
                      f"other load {'-' if oth is None else f'{100 * oth:.0f}%'}", flush=True)
        torch_rows = []
        for dtype_name, dtype, threads in variants:
            runs = all_runs[(dtype_name, threads)]
            best = min(runs, key=lambda r: r["wall_seconds"] / max(r["iterations"], 1))
            row = {"side": "torch", "dtype": dtype_name, "threads": threads,
                   "iterations": best["iterations"],
                   "seconds_per_step": best["wall_seconds"] / max(best["iterations"], 1),
                   "wall_seconds_all": [r["wall_seconds"] for r in runs],
                   "other_load": best["other_load"],
                   "other_load_all": [r["other_load"] for r in runs],
                   "final_loss": best["last_loss"],
                   "e2e_rel_diff": rel_fro(best["e2e"], e_dln),
                   "update_rel_diff": (float(np.linalg.norm(best["e2e"] - e_dln)) /
                                       max(float(np.linalg.norm(e_dln - e0)), 1e-300))}
            dln_same = dln_rows.get(threads, ref)
            row["ratio_torch_over_dln"] = row["seconds_per_step"] / dln_same["seconds_per_step"]
            row["ratio_vs_dln_threads"] = dln_same["threads"]
            if dtype_name == "float64":
                tol = E2E_TOL
                di = abs(row["iterations"] - iters)
                if di > (1 if args.full else 0):
                    problems.append(f"torch float64 {threads}t ran {row['iterations']} "
                                    f"iterations, dln {iters}")
                if not row["e2e_rel_diff"] <= tol:
                    problems.append(f"torch float64 {threads}t: |E_torch - E_dln|/|E_dln| = "
                                    f"{row['e2e_rel_diff']:.3g} > {tol:g}")
            torch_rows.append(row)

        # ---- table ----
        for r in dln_rows.values():
            r["rundir"] = str(r["rundir"])
        rows = torch_rows + list(dln_rows.values())
        report["rows"] = rows
        report["relative_change_of_E"] = rel_fro(e_dln, e0)
        print()
        hdr = (f"{'side':<6} {'dtype':<8} {'thr':>3} {'iters':>7} {'ms/iter':>9} {'other':>5} "
               f"{'torch/dln':>9} {'E rdiff':>9} {'upd rdiff':>9} {'final loss':>11}  blas")
        print(hdr)
        print("-" * len(hdr))
        for r in rows:
            ratio = f"{r['ratio_torch_over_dln']:.2f}x" if "ratio_torch_over_dln" in r else "-"
            erd = f"{r['e2e_rel_diff']:.1e}" if "e2e_rel_diff" in r else "-"
            urd = f"{r['update_rel_diff']:.1e}" if "update_rel_diff" in r else "-"
            if r["side"] == "dln":
                bl = r["blas"]
                extra = "".join(f" {k}={bl[k]!r}" for k in ("reason", "override") if bl.get(k))
                st = r["summary"].get("step_threads")
                st_s = f" step_threads={st}" if st is not None else ""
                bl_s = f"corename={bl.get('corename')} threads={bl.get('threads')}{st_s}{extra}"
            else:
                bl_s = f"corename={(env['torch_blas'] or {}).get('corename', '?')}"
            oth = "-" if r.get("other_load") is None else f"{100 * r['other_load']:.0f}%"
            print(f"{r['side']:<6} {r['dtype']:<8} {r['threads']:>3} {r['iterations']:>7} "
                  f"{1e3 * r['seconds_per_step']:>9.4f} {oth:>5} {ratio:>9} {erd:>9} {urd:>9} "
                  f"{r['final_loss']:>11.4e}  {bl_s}")
        print("(other = share of all CPUs used by other processes during that row's reported "
              "run; torch/dln divides by dln with the same run.threads; E rdiff = "
              f"|E_torch - E_dln|_F/|E_dln|_F with E_dln from run.threads={ref_threads} (dln rows: "
              f"E of that row vs it), upd rdiff = |E_torch - E_dln|_F/|E_dln - E_0|_F; "
              f"|E_dln - E_0|/|E_0| = {report['relative_change_of_E']:.3g})")

        noisy = [r for r in rows if (r.get("other_load") or 0) > 0.1]
        if noisy:
            print("WARNING: other processes used > 10% of the CPUs during "
                  + ", ".join(f"{r['side']} {r['dtype']} {r['threads']}t" for r in noisy)
                  + "; those timings are noisy (rerun, or use --repeat)")
        report["noisy_rows"] = [f"{r['side']} {r['dtype']} {r['threads']}" for r in noisy]

        # ---- target ----
        f32 = [r for r in torch_rows if r["dtype"] == "float32"]
        if f32:
            fastest = min(f32, key=lambda r: r["seconds_per_step"])
            got = fastest["seconds_per_step"] / ref["seconds_per_step"]
            report["target"] = {
                "what": f"dln (run.threads={ref_threads}, default) >= {SPEED_TARGET:g}x faster "
                        f"per iteration than the fastest float32 torch row "
                        f"({fastest['threads']} thread(s)), caller's environment",
                "measured": got, "met": got >= SPEED_TARGET,
                "env_coretype": ORIGINAL_ENV.get("OPENBLAS_CORETYPE", "<unset>")}
            print()
            print("== target (informational, not asserted) ==")
            print(f"  {report['target']['what']}: measured {got:.2f}x "
                  f"[{'met' if got >= SPEED_TARGET else 'NOT met'}]")
        report["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        with contextlib.suppress(OSError):
            report["loadavg_end"] = list(os.getloadavg())
        report["all_ok"] = not problems
        save()
    print()
    for p in problems:
        print(f"  ! {p}", file=sys.stderr)
    print(f"wrote {args.out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
