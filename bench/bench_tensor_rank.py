#!/usr/bin/python3
"""Cost of one training step of the tensor-rank run: dln vs the authors' PyTorch loop.

The job (Razin, Maman, Cohen 2021, "Implicit Regularization in Tensor Factorization", the
synthetic completion run of their README section 1): ground truth of order 4, modes of
dimension 10, CP rank 5, ||T||_F = 1; 2000 observed entries; a CP model with R = 1000
components (factors U_k of 10 x 1000, Gaussian init of std 5e-3); loss = plain mean of the
squared errors over the observed entries; group-RMSprop (lr 1e-2, alpha 0.99, eps 1e-6), full
batch:

    s <- alpha s + (1 - alpha) sum_k ||g_k||_F^2     (one scalar state for all factors)
    v  = sqrt(s / (1 - alpha^t)) + eps
    U_k <- U_k - (lr / v) g_k

What the torch loop mirrors (read from github.com/noamrazin/imp_reg_in_tf, commit 2fcc95f;
reimplemented here, not copied):
  * tensor_factorization/models/tensor_factorizations.py, TensorCPFactorization: the factors
    are an nn.ParameterList of float32 (d_k, R) tensors, randn * init_std; rank -1 (what
    tensor_sensing_experiment.py passes) means prod of the dims but the largest = 1000 here.
    compute_tensor() is common/utils/tensor.py's reconstruct_parafac: one
    torch.einsum('az,bz,cz,dz->abcd', U_1, ..., U_N) that forms the whole d^N tensor.
  * tensor_factorization/trainers/tensor_sensing_trainer.py, batch_update(): zero_grad; E =
    compute_tensor(); y_pred = (X * E.unsqueeze(0)).view(m, -1).sum(dim=1); nn.MSELoss();
    backward(); step(); loss.item(). For completion, tensor_sensing_data_generator.py makes X a
    dense float32 (m, d, ..., d) tensor of one-hot indicators, so every step multiplies the
    whole tensor by all m indicators. Full batch (tensor_sensing_datamodule.py, batch_size -1,
    the first num_samples entries). The trainer's two per-batch train metrics (MSE of y_pred)
    are computed too; validation (every 25 epochs in the README command) is left out, as
    dln's recording is.
  * common/train/optim/group_rsmprop.py, GroupRMSprop: one 0-d square_avg state, the update
    above.
Rows "torch (authors)" are that loop. Rows "torch (indexed)" replace the sensing product by
TensorCPFactorization.forward()'s indexing, y_pred = E[i_1, ..., i_N] (the same model, a
cheaper loop the published trainer does not use): a stronger baseline, reported next to it.

Both sides run the same instance: dln runs first (`dln train --config CFG --out RUNDIR -q`,
record.every large, record.rank_tol = 0), and torch loads RUNDIR/init/U*.npy and
RUNDIR/data/observations.csv. dln ms/step = summary.json's seconds_per_step (wall minus record
time over iterations), median of --repeat runs. torch ms/step: after warm-up steps on its own
copy, the median of --repeat timed blocks of up to 50 steps (fewer for slow cases, so each
block takes about --block-seconds). Each torch measurement runs in a fresh Python process: a
good part of a torch step is the kernel's page faults on the big temporaries it allocates
afresh every step, and how many there are depends on glibc malloc's adaptive mmap threshold,
i.e. on what the process ran before (the indexed loop measured 3.3 to 7 ms a step at the
published size in one process). A fresh process is what a user running the authors' script
gets. dln runs with run.threads = 1 (and 2 for the published case: the CP step split in two
halves of the entries); torch runs with 1 and 2 threads
(torch.set_num_threads and the OpenBLAS in the process) for the published case and 1 thread in
the scaling sweeps. torch's OpenMP pool runs with OMP_WAIT_POLICY=PASSIVE (--omp-wait-policy),
as in the other bench scripts.

Check: from the same init, both torch loops take --check-steps steps and their factors are
compared with dln's after as many steps: |U_torch - U_dln|_F / |U_dln - U_0|_F (float32 vs
float64) must be <= 1e-2, else exit 1. Times are measured, never asserted.

    /usr/bin/python3 bench/bench_tensor_rank.py                    # about 2-3 minutes
    /usr/bin/python3 bench/bench_tensor_rank.py --published-only --json /tmp/tr.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

DIM, TRUE_RANK, STD, LR, ALPHA, EPS = 10, 5, 5e-3, 1e-2, 0.99, 1e-6
PUBLISHED = (4, 1000, 2000)  # order N, components R, observations m
CHECK_TOL = 1e-2
torch = None  # imported in worker(), after OMP_WAIT_POLICY is set


def sweep_cases():
    r = [(4, R, 2000) for R in (100, 300, 1000, 3000)]
    n = [(N, 1000, min(2000, DIM ** N // 5)) for N in (3, 4, 5)]
    m = [(4, 1000, mm) for mm in (500, 2000, 8000)]
    return {"R": r, "N": n, "m": m}


# ---------------------------------------------------------------------------------------- dln

def dln_config(N, R, m, iters, threads=1):
    return ("[problem]\n"
            'kind = "tensor_completion"\n'
            f"shape = [{', '.join([str(DIM)] * N)}]\n"
            f"rank = {TRUE_RANK}\nobservations = {m}\n"
            'reduction = "mean"\n'
            "[network]\n"
            'model = "cp"\n'
            f"components = {R}\ninit_scale = {STD:g}\nseed = 1\n"
            "[optimizer]\n"
            'name = "group_rmsprop"\n'
            f"lr = {LR:g}\nalpha = {ALPHA:g}\neps = {EPS:g}\n"
            "[stop]\n"
            f"max_iters = {iters}\n"
            "[record]\n"
            "every = 1000000\nrank_tol = 0\n"
            f"[run]\nthreads = {threads}\n")


def run_dln(dln, wd, tag, case, iters, threads=1):
    cfg = os.path.join(wd, f"{tag}.toml")
    out = os.path.join(wd, tag)
    with open(cfg, "w") as f:
        f.write(dln_config(*case, iters, threads))
    subprocess.run([dln, "train", "--config", cfg, "--out", out, "-q"], check=True,
                   stdout=subprocess.DEVNULL)
    with open(os.path.join(out, "summary.json")) as f:
        s = json.load(f)
    if s["iterations"] != iters:
        raise RuntimeError(f"dln ran {s['iterations']} iterations, asked {iters}")
    return out, s


def load_run(rundir, N):
    init = [np.load(os.path.join(rundir, "init", f"U{k}.npy")) for k in range(1, N + 1)]
    obs = np.loadtxt(os.path.join(rundir, "data", "observations.csv"), delimiter=",",
                     skiprows=1, ndmin=2)
    return init, obs[:, :N].astype(np.int64), obs[:, N]


# -------------------------------------------------------------------------------------- torch

def make_torch_classes():
    nn = torch.nn

    class GroupRMSprop(torch.optim.Optimizer):
        """One scalar running average of the squared gradient norm over all parameters."""

        def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-6):
            super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                st = self.state
                if not st:
                    st["step"] = 0
                    st["square_avg"] = torch.zeros((), dtype=group["params"][0].dtype)
                sq, a = st["square_avg"], group["alpha"]
                st["step"] += 1
                sq.mul_(a)
                for p in group["params"]:
                    if p.grad is not None:
                        sq.add_((1 - a) * p.grad.pow(2).sum())
                v = sq.div(1 - a ** st["step"]).sqrt_().add_(group["eps"])
                scale = group["lr"] / v
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(-scale * p.grad)

    class CP(nn.Module):
        def __init__(self, init):
            super().__init__()
            self.factors = nn.ParameterList(
                [nn.Parameter(torch.tensor(u, dtype=torch.float32)) for u in init])
            n = len(init)
            self.spec = ",".join(f"{chr(97 + k)}z" for k in range(n)) + "->" + "".join(
                chr(97 + k) for k in range(n))

        def compute_tensor(self):
            return torch.einsum(self.spec, *self.factors)

        def forward(self, idx):  # TensorCPFactorization.forward: index the full tensor
            return self.compute_tensor()[tuple(idx.t())]

    return GroupRMSprop, CP


class TorchLoop:
    """One model + optimizer + data; step() is one training step of the chosen variant."""

    def __init__(self, variant, init, idx, vals):
        GroupRMSprop, CP = make_torch_classes()
        self.variant = variant
        self.model = CP(init)
        self.opt = GroupRMSprop(self.model.parameters(), lr=LR, alpha=ALPHA, eps=EPS)
        self.loss_fn = torch.nn.MSELoss()
        self.y = torch.tensor(vals, dtype=torch.float32)
        self.idx = torch.from_numpy(idx)
        m, shape = len(vals), [u.shape[0] for u in init]
        if variant == "authors":  # dense one-hot sensing tensors, as the data generator makes
            self.X = torch.zeros(m, *shape)
            self.X[(torch.arange(m),) + tuple(self.idx.t())] = 1
        self.m = m

    def step(self):
        self.opt.zero_grad()
        if self.variant == "authors":
            e = self.model.compute_tensor()
            y_pred = (self.X * e.unsqueeze(0)).view(self.m, -1).sum(dim=1)
        else:
            y_pred = self.model(self.idx)
        loss = self.loss_fn(y_pred, self.y)
        loss.backward()
        self.opt.step()
        with torch.no_grad():  # the trainer's per-batch train metrics
            _ = [self.loss_fn(y_pred, self.y).item() for _ in range(2)]
        return loss.item()

    def factors(self):
        return [p.detach().double().numpy() for p in self.model.factors]


def set_threads(n, blas):
    torch.set_num_threads(n)
    if blas is not None:
        import ctypes
        blas.openblas_set_num_threads(ctypes.c_int(n))


def time_torch(variant, init, idx, vals, threads, blas, repeat, block_seconds, max_block):
    set_threads(threads, blas)
    loop = TorchLoop(variant, init, idx, vals)
    t = time.perf_counter()
    for _ in range(2):
        loop.step()
    est = (time.perf_counter() - t) / 2
    block = max(3, min(max_block, round(block_seconds / est)))
    for _ in range(min(3, block)):
        loop.step()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(block):
            loop.step()
        times.append((time.perf_counter() - t) / block)
    return {"median": statistics.median(times), "blocks": times, "block_steps": block}


def rel_update_diff(u_t, u_d, u_0):
    num = sum(float(np.linalg.norm(a - b)) ** 2 for a, b in zip(u_t, u_d)) ** 0.5
    den = sum(float(np.linalg.norm(b - c)) ** 2 for b, c in zip(u_d, u_0)) ** 0.5
    return num / den if den > 0 else float("inf")


# ------------------------------------------------------------------------------------- worker

def worker(spec):
    """One torch measurement in a fresh process (its own allocator state; see the docstring)."""
    if spec["omp_wait_policy"] != "inherit":
        os.environ["OMP_WAIT_POLICY"] = spec["omp_wait_policy"]
    global torch
    import torch as _torch
    torch = _torch
    from bench_env import openblas_handle
    _ = torch.ones(4, 4) @ torch.ones(4, 4)  # loads torch's BLAS
    blas = openblas_handle()
    N, rundir = spec["order"], spec["rundir"]
    init, idx, vals = load_run(rundir, N)
    out = {"torch": torch.__version__, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    if spec["mode"] == "check":
        u_d = [np.load(os.path.join(rundir, "factors", f"U{k}.npy")) for k in range(1, N + 1)]
        set_threads(1, blas)
        loop = TorchLoop(spec["variant"], init, idx, vals)
        for _ in range(spec["steps"]):
            out["torch_last_loss"] = loop.step()
        out["upd_rdiff"] = rel_update_diff(loop.factors(), u_d, init)
        out["steps"] = spec["steps"]
    else:
        t0 = os.times()
        out.update(time_torch(spec["variant"], init, idx, vals, spec["threads"], blas,
                              spec["repeat"], spec["block_seconds"], 50))
        t1 = os.times()
        out["process_user_s"], out["process_sys_s"] = t1.user - t0.user, t1.system - t0.system
    print(json.dumps(out))


def run_worker(spec):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)],
                       check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------- main

def case_name(c):
    return f"N={c[0]} R={c[1]} m={c[2]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dln", default=os.path.join(ROOT, "build", "dln"))
    ap.add_argument("--json", default=None, help="write the raw numbers here")
    ap.add_argument("--repeat", type=int, default=3, help="dln runs / torch blocks per case")
    ap.add_argument("--dln-steps", type=int, default=400, help="iterations per dln run")
    ap.add_argument("--block-seconds", type=float, default=0.7,
                    help="target length of a torch timing block in the sweeps")
    ap.add_argument("--check-steps", type=int, default=20)
    ap.add_argument("--published-only", action="store_true", help="skip the scaling sweeps")
    ap.add_argument("--omp-wait-policy", default="PASSIVE",
                    help="OMP_WAIT_POLICY for torch ('inherit' keeps the environment's)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(json.loads(a.worker))
        return 0
    if not os.access(a.dln, os.X_OK):
        print(f"error: dln executable not found: {a.dln}", file=sys.stderr)
        return 2

    print(f"load average {os.getloadavg()[0]:.2f}, dln {a.dln}, torch OMP_WAIT_POLICY "
          f"{a.omp_wait_policy}")
    sweeps = {} if a.published_only else sweep_cases()
    cases = [PUBLISHED] + [c for cs in sweeps.values() for c in cs]
    cases = list(dict.fromkeys(cases))
    results, problems, torch_version = {}, [], None
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dln-bench-tensor-") as wd:
        for ci, case in enumerate(cases):
            N = case[0]
            pub = case == PUBLISHED
            tag = f"c{ci}"
            rundir, s0 = run_dln(a.dln, wd, tag + "_check", case, a.check_steps)
            row = {"order": N, "components": case[1], "observations": case[2]}
            d = [run_dln(a.dln, wd, f"{tag}_r{r}", case, a.dln_steps)[1]
                 for r in range(a.repeat)]
            row["dln"] = {"median": statistics.median(x["seconds_per_step"] for x in d),
                          "runs": [x["seconds_per_step"] for x in d],
                          "iterations": a.dln_steps, "flops_per_step": d[0]["flops_per_step"],
                          "peak_rss_bytes": d[0]["peak_rss_bytes"]}
            base = {"order": N, "rundir": rundir, "omp_wait_policy": a.omp_wait_policy}
            if pub:  # dln's step split between two threads (run.threads = 2, its default)
                d2 = [run_dln(a.dln, wd, f"{tag}_t2r{r}", case, a.dln_steps, 2)[1]
                      for r in range(a.repeat)]
                row["dln_t2"] = {"median": statistics.median(x["seconds_per_step"] for x in d2),
                                 "step_threads": d2[0]["step_threads"]}
            if pub:  # both torch loops against dln after check_steps steps
                row["check"] = {}
                for variant in ("authors", "indexed"):
                    c = run_worker(dict(base, mode="check", variant=variant,
                                        steps=a.check_steps))
                    c["dln_final_loss"] = s0["final_loss"]
                    row["check"][variant] = c
                    if not c["upd_rdiff"] <= CHECK_TOL:
                        problems.append(f"{case_name(case)} {variant}: factors differ from "
                                        f"dln's by {c['upd_rdiff']:.2e} of the update "
                                        f"(> {CHECK_TOL:g})")
            for threads in ((1, 2) if pub else (1,)):
                for variant in ("authors", "indexed"):
                    r = run_worker(dict(base, mode="time", variant=variant, threads=threads,
                                        repeat=a.repeat,
                                        block_seconds=1e9 if pub else a.block_seconds))
                    torch_version = r["torch"]
                    row[f"torch_{variant}_t{threads}"] = r
            results[case] = row
            print(f"  {case_name(case)}: dln {1e3 * row['dln']['median']:.3f} ms, torch "
                  f"(authors) {1e3 * row['torch_authors_t1']['median']:.2f} ms, torch "
                  f"(indexed) {1e3 * row['torch_indexed_t1']['median']:.2f} ms (1 thread)  "
                  f"[{time.perf_counter() - t_start:.0f} s]", flush=True)

    pub = results[PUBLISHED]
    dl = pub["dln"]["median"]
    print()
    print(f"## Published case: order 4, dim 10, R = 1000, m = 2000 ("
          f"{a.dln_steps} iterations per run; median of {a.repeat})")
    print()
    print("| side | threads | ms/step | torch/dln |")
    print("|---|---|---|---|")
    dl2 = pub["dln_t2"]["median"]
    print(f"| dln | 1 | {1e3 * dl:.3f} | 1 |")
    print(f"| dln | 2 | {1e3 * dl2:.3f} | {dl2 / dl:.2f}x |")
    for variant in ("authors", "indexed"):
        for t in (1, 2):
            r = pub[f"torch_{variant}_t{t}"]
            print(f"| torch ({variant}) | {t} | {1e3 * r['median']:.2f} | "
                  f"{r['median'] / dl:.1f}x |")
    print()
    for variant, c in pub["check"].items():
        print(f"check ({variant}): after {c['steps']} steps from the same init, "
              f"|U_torch - U_dln| / |U_dln - U_0| = {c['upd_rdiff']:.2e} "
              f"(float32 vs float64; tol {CHECK_TOL:g})")
    best = {v: min(pub[f"torch_{v}_t{t}"]["median"] for t in (1, 2))
            for v in ("authors", "indexed")}
    dbest = min(dl, dl2)
    headline = {"torch_authors_over_dln": best["authors"] / dbest,
                "torch_indexed_over_dln": best["indexed"] / dbest, "target": 5.0}
    print(f"headline (each side at its faster thread count): torch (authors' loop) / dln = "
          f"{headline['torch_authors_over_dln']:.1f}x (target >= 5x); torch (indexed) / dln = "
          f"{headline['torch_indexed_over_dln']:.1f}x")

    titles = {"R": "components R (N = 4, m = 2000)",
              "N": "order N (R = 1000, m = min(2000, 20% of 10^N))",
              "m": "observations m (N = 4, R = 1000)"}
    for key, cs in sweeps.items():
        print()
        print(f"## Scaling with {titles[key]}; torch 1 thread")
        print()
        print("| N | R | m | dln ms/step | torch (authors) ms | torch/dln | "
              "torch (indexed) ms | torch/dln |")
        print("|---|---|---|---|---|---|---|---|")
        for c in cs:
            r = results[c]
            dm = r["dln"]["median"]
            ta, ti = r["torch_authors_t1"]["median"], r["torch_indexed_t1"]["median"]
            print(f"| {c[0]} | {c[1]} | {c[2]} | {1e3 * dm:.3f} | {1e3 * ta:.2f} | "
                  f"{ta / dm:.1f}x | {1e3 * ti:.2f} | {ti / dm:.1f}x |")
    print()
    print(f"total {time.perf_counter() - t_start:.0f} s")
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)

    if a.json:
        out = {"benchmark": "tensor-rank run (Razin, Maman, Cohen 2021): one training step",
               "parameters": {"dim": DIM, "true_rank": TRUE_RANK, "init_std": STD, "lr": LR,
                              "alpha": ALPHA, "eps": EPS, "repeat": a.repeat,
                              "dln_steps": a.dln_steps, "check_steps": a.check_steps,
                              "block_seconds": a.block_seconds, "dln": a.dln,
                              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")},
               "environment": {"torch": torch_version, "numpy": np.__version__,
                               "cpus": os.cpu_count(), "loadavg": os.getloadavg()},
               "headline": headline,
               "sweeps": {k: [case_name(c) for c in cs] for k, cs in sweeps.items()},
               "rows": {case_name(c): r for c, r in results.items()},
               "problems": problems}
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
