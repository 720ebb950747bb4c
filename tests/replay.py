#!/usr/bin/python3
"""Independent numpy replay of a dln run directory.

This script re-implements, from the written contract only (not from dln's
source), the losses, gradients, optimizers, training loop and diagnostics of
dln, and checks the numbers a `dln train --out DIR` run wrote.

Usage
-----
  replay.py RUNDIR [--rtol 1e-9]
      Load RUNDIR/config.toml, RUNDIR/init/W*.npy and the data in RUNDIR/data/
      (never regenerated from seeds), replay exactly summary["iterations"]
      optimizer steps, and check, to relative tolerance rtol:
        * factors/W1..Wn.npy and end_to_end.npy  (Frobenius-relative:
          ||A - B||_F / ||B||_F, or absolute when ||B||_F = 0)
        * summary.json final_loss and every key of summary.json "final"
        * every history.csv column except `seconds`, at every recorded row
        * singular_values.csv (top-K singular values of E, descending)
        (scalars: |a - b| / max(1, |b|), the reference b being dln's number)
      plus exact structural checks: the recorded iterations are 0, every
      multiple of record.every and the last one; the stopping rule agrees with
      summary["termination"] (loss_tol / max_iters).
      Prints one line per check with its max relative error; exits 1 if any
      check fails.

  replay.py --self-test DLN_BIN [--rtol 1e-9] [--keep DIR]
      Write ~15 tiny configs (completion depth 1-4 on a non-square 7x5 matrix
      with every optimizer, "mean" reduction, a loss_tol stop, sensing,
      regression, lp_regression p=4, logistic), run
      `DLN_BIN train --config C --out D --quiet` on each and replay each run.
      Exits 0 if all pass, 1 otherwise, 77 (CTest "skipped") without numpy.

Contract replayed (E = W_n ... W_1, W_j is d_j x d_{j-1}, m = number of data):
  completion   L = coef/2 sum_i (E[r_i, c_i] - b_i)^2, coef = 1/m (half_mean), 2/m (mean)
  sensing      L = coef/2 sum_i (<E, A_i> - b_i)^2
  regression   L = 1/(2m) ||E X - Y||_F^2
  lp_regression L = 1/m sum |E X - Y|^p
  logistic     L = 1/m sum_i [logsumexp(E x_i) - (E x_i)_{y_i}]
  grad_j = W_{n:j+1}^T dL/dE W_{j-1:1}^T, grad_norm = sqrt(sum_j ||grad_j||_F^2)
  unbalancedness = max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F (0 for depth 1)
  effective_rank = exp(entropy(s / sum s)) over all singular values of E
  recon_mse = mean((E - W*)^2), recon_rel_error = ||E - W*||_F / ||W*||_F
  optimizers (all layers from gradients at the same point, t = step from 1):
    gd             W -= lr g
    momentum       v = mu v + g; W -= lr v
    group_rmsprop  s = alpha s + (1-alpha) sum_j ||g_j||^2;
                   v = sqrt(s / (1 - alpha^t)) + eps  (sqrt(s) + eps without
                   bias_correction); W_j -= lr / v g_j
    adam           m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
                   W -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
  loop: for t = 0, 1, ...: evaluate at the current state; stop if
        (loss_tol > 0 and loss <= loss_tol) or t == max_iters; else step.

Run with Debian's /usr/bin/python3 (numpy + tomllib).
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import time

try:
    import tomllib
    import numpy as np
except ImportError as exc:  # CTest treats 77 as "skipped"
    print(f"replay.py: skipping, {exc}")
    sys.exit(77)


# --------------------------------------------------------------------------
# Losses: each returns (loss, dL/dE) for an end-to-end matrix E.
# --------------------------------------------------------------------------

def make_loss(cfg, data_dir):
    """Build loss(E) -> (value, gradient) from the files in data_dir."""
    prob = cfg["problem"]
    kind = prob["kind"]
    reduction = prob.get("reduction", "half_mean")
    if reduction not in ("half_mean", "mean"):
        raise ValueError(f"unknown reduction {reduction!r}")
    red = 1.0 if reduction == "half_mean" else 2.0

    if kind == "completion":
        obs = np.loadtxt(os.path.join(data_dir, "observations.csv"), delimiter=",",
                         skiprows=1, ndmin=2)
        r = obs[:, 0].astype(np.int64)
        c = obs[:, 1].astype(np.int64)
        b = obs[:, 2].astype(np.float64)
        assert np.all(obs[:, 0] == r) and np.all(obs[:, 1] == c), "non-integer indices"
        coef = red / len(b)

        def loss(E):
            res = E[r, c] - b
            G = np.zeros_like(E)
            np.add.at(G, (r, c), coef * res)
            return 0.5 * coef * float(res @ res), G
        return loss

    if kind == "sensing":
        A = np.load(os.path.join(data_dir, "sensing_A.npy")).astype(np.float64)
        b = np.load(os.path.join(data_dir, "sensing_b.npy")).astype(np.float64).reshape(-1)
        assert A.ndim == 3 and A.shape[0] == b.shape[0], f"sensing shapes {A.shape} {b.shape}"
        coef = red / len(b)

        def loss(E):
            res = np.einsum("ijk,jk->i", A, E) - b
            G = coef * np.einsum("i,ijk->jk", res, A)
            return 0.5 * coef * float(res @ res), G
        return loss

    if kind in ("regression", "lp_regression", "logistic"):
        X = np.load(os.path.join(data_dir, "X.npy")).astype(np.float64)
        m = X.shape[1]
        if kind == "logistic":
            lab = np.load(os.path.join(data_dir, "labels.npy")).reshape(-1)
            y = lab.astype(np.int64)
            assert np.all(y == lab) and y.shape[0] == m, "labels must be m integers"
            cols = np.arange(m)

            def loss(E):
                Z = E @ X
                zmax = Z.max(axis=0)
                lse = zmax + np.log(np.exp(Z - zmax).sum(axis=0))
                P = np.exp(Z - lse)
                P[y, cols] -= 1.0
                return float(np.sum(lse - Z[y, cols])) / m, (P @ X.T) / m
            return loss

        Y = np.load(os.path.join(data_dir, "Y.npy")).astype(np.float64)
        assert Y.shape[1] == m, "X and Y differ in sample count"
        if kind == "regression":
            def loss(E):
                R = E @ X - Y
                return 0.5 * float(np.sum(R * R)) / m, (R @ X.T) / m
            return loss

        p = int(prob["p"])

        def loss(E):
            R = E @ X - Y
            aR = np.abs(R)
            return float(np.sum(aR ** p)) / m, (p / m) * (np.sign(R) * aR ** (p - 1)) @ X.T
        return loss

    raise ValueError(f"unknown problem kind {kind!r}")


# --------------------------------------------------------------------------
# Network algebra
# --------------------------------------------------------------------------

def end_to_end(Ws):
    E = Ws[0]
    for W in Ws[1:]:
        E = W @ E
    return E


def evaluate(Ws, loss):
    """Return (loss, E, [grad_j]) at the factors Ws = [W_1, ..., W_n]."""
    n = len(Ws)
    prefix = [np.eye(Ws[0].shape[1])]          # prefix[j] = W_j ... W_1
    for W in Ws:
        prefix.append(W @ prefix[-1])
    E = prefix[n]
    suffix = [None] * (n + 1)                  # suffix[j] = W_n ... W_{j+1}
    suffix[n] = np.eye(Ws[-1].shape[0])
    for j in range(n - 1, -1, -1):
        suffix[j] = suffix[j + 1] @ Ws[j]
    value, G = loss(E)
    # factor j (1-based) = Ws[j-1]: grad = suffix[j]^T G prefix[j-1]^T
    grads = [suffix[j + 1].T @ G @ prefix[j].T for j in range(n)]
    return value, E, grads


def metrics(Ws, E, value, grads, truth):
    s = np.linalg.svd(E, compute_uv=False)
    ssum = float(s.sum())
    if ssum > 0:
        p = s / ssum
        p = p[p > 0]
        eff = math.exp(-float(np.sum(p * np.log(p))))
    else:
        eff = 0.0
    unb = 0.0
    for j in range(len(Ws) - 1):
        D = Ws[j + 1].T @ Ws[j + 1] - Ws[j] @ Ws[j].T
        unb = max(unb, float(np.linalg.norm(D)))
    out = {
        "loss": value,
        "grad_norm": math.sqrt(sum(float(np.sum(g * g)) for g in grads)),
        "unbalancedness": unb,
        "fro_norm": float(np.linalg.norm(E)),
        "nuclear_norm": ssum,
        "spectral_norm": float(s[0]) if s.size else 0.0,
        "effective_rank": eff,
    }
    if truth is not None:
        D = E - truth
        out["recon_mse"] = float(np.mean(D * D))
        out["recon_rel_error"] = float(np.linalg.norm(D) / np.linalg.norm(truth))
    return out, s


# --------------------------------------------------------------------------
# Optimizers: step(grads) updates the list of factors in place.
# --------------------------------------------------------------------------

class Optimizer:
    def __init__(self, opt, Ws):
        self.name = opt["name"]
        self.lr = float(opt["lr"])
        self.mu = float(opt.get("momentum", 0.9))
        self.alpha = float(opt.get("alpha", 0.99))
        self.eps = float(opt.get("eps", 0.0))
        self.bias_correction = bool(opt.get("bias_correction", True))
        self.b1 = float(opt.get("beta1", 0.9))
        self.b2 = float(opt.get("beta2", 0.999))
        self.t = 0
        self.s = 0.0
        self.m = [np.zeros_like(W) for W in Ws]
        self.v = [np.zeros_like(W) for W in Ws]
        if self.name not in ("gd", "momentum", "group_rmsprop", "adam"):
            raise ValueError(f"unknown optimizer {self.name!r}")

    def step(self, Ws, grads):
        self.t += 1
        t = self.t
        if self.name == "gd":
            for W, g in zip(Ws, grads):
                W -= self.lr * g
        elif self.name == "momentum":
            for W, v, g in zip(Ws, self.v, grads):
                v *= self.mu
                v += g
                W -= self.lr * v
        elif self.name == "group_rmsprop":
            sq = sum(float(np.sum(g * g)) for g in grads)
            self.s = self.alpha * self.s + (1.0 - self.alpha) * sq
            if self.bias_correction:
                denom = math.sqrt(self.s / (1.0 - self.alpha ** t)) + self.eps
            else:
                denom = math.sqrt(self.s) + self.eps
            for W, g in zip(Ws, grads):
                W -= (self.lr / denom) * g
        else:  # adam
            c1 = 1.0 - self.b1 ** t
            c2 = 1.0 - self.b2 ** t
            for W, m, v, g in zip(Ws, self.m, self.v, grads):
                m *= self.b1
                m += (1.0 - self.b1) * g
                v *= self.b2
                v += (1.0 - self.b2) * (g * g)
                W -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


# --------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------

def rel_scalar(a, b):
    if math.isnan(a) and math.isnan(b):
        return 0.0
    if a == b:
        return 0.0
    return abs(a - b) / max(1.0, abs(b))


def rel_matrix(a, b):
    if a.shape != b.shape:
        return math.inf
    nb = float(np.linalg.norm(b))
    return float(np.linalg.norm(a - b)) / (nb if nb > 0 else 1.0)


class Checker:
    def __init__(self, rtol, prefix=""):
        self.rtol = rtol
        self.prefix = prefix
        self.failed = []

    def value(self, name, err):
        ok = err <= self.rtol
        print(f"{self.prefix}{'ok  ' if ok else 'FAIL'} {name:<34} max rel err {err:.3e}")
        if not ok:
            self.failed.append(name)
        return ok

    def exact(self, name, ok, detail=""):
        print(f"{self.prefix}{'ok  ' if ok else 'FAIL'} {name:<34} {detail}")
        if not ok:
            self.failed.append(name)
        return ok


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def load_factors(d, n):
    return [np.load(os.path.join(d, f"W{j}.npy")).astype(np.float64) for j in range(1, n + 1)]


# --------------------------------------------------------------------------
# Replay one run directory
# --------------------------------------------------------------------------

def replay(rundir, rtol, prefix=""):
    """Replay rundir; return the list of failed check names (empty = pass)."""
    ck = Checker(rtol, prefix)
    with open(os.path.join(rundir, "config.toml"), "rb") as f:
        cfg = tomllib.load(f)
    with open(os.path.join(rundir, "summary.json")) as f:
        summary = json.load(f)
    depth = int(cfg["network"]["depth"])
    iters = int(summary["iterations"])
    stop = cfg.get("stop", {})
    loss_tol = float(stop.get("loss_tol", 0.0))
    max_iters = int(stop.get("max_iters", 0))
    every = int(cfg.get("record", {}).get("every", 1))
    data_dir = os.path.join(rundir, "data")

    Ws = load_factors(os.path.join(rundir, "init"), depth)
    prob = cfg["problem"]
    dims = [Ws[0].shape[1]] + [W.shape[0] for W in Ws]
    shapes_ok = all(Ws[j].shape == (dims[j + 1], dims[j]) for j in range(depth))
    hidden = [int(w) for w in cfg["network"].get("widths", [])]
    shapes_ok &= dims[1:-1] == hidden
    if prob["kind"] in ("completion", "sensing") or "rows" in prob:
        shapes_ok &= dims[-1] == int(prob["rows"]) and dims[0] == int(prob["cols"])
    ck.exact("init factor shapes", shapes_ok, f"dims {dims}")

    loss = make_loss(cfg, data_dir)
    gt_path = os.path.join(data_dir, "ground_truth.npy")
    truth = np.load(gt_path).astype(np.float64) if os.path.exists(gt_path) else None
    opt = Optimizer(cfg["optimizer"], Ws)

    hist_header, hist_rows = read_csv(os.path.join(rundir, "history.csv"))
    hist = {int(r[0]): r for r in hist_rows}
    sv_path = os.path.join(rundir, "singular_values.csv")
    sv = {}
    if os.path.exists(sv_path):
        _, sv_rows = read_csv(sv_path)
        sv = {int(r[0]): [float(x) for x in r[1:] if x != ""] for r in sv_rows}

    # Expected recorded iterations: 0, multiples of `every`, and the last.
    expected = sorted(set([0, iters] + list(range(0, iters + 1, max(every, 1)))))
    ck.exact("history.csv iterations", [int(r[0]) for r in hist_rows] == expected,
             f"{len(hist_rows)} rows, last {hist_rows[-1][0] if hist_rows else None}")
    if sv:
        ck.exact("singular_values.csv iterations", sorted(sv) == expected, f"{len(sv)} rows")
    want_cols = ["iteration", "loss", "grad_norm", "unbalancedness", "fro_norm",
                 "nuclear_norm", "spectral_norm", "effective_rank"]
    if truth is not None:
        want_cols += ["recon_mse", "recon_rel_error"]
    ck.exact("history.csv header", hist_header == want_cols + ["seconds"], ",".join(hist_header))

    K = int(cfg.get("record", {}).get("singular_values", 0))
    K = min(K, min(dims[0], dims[-1]))
    col_err = {c: 0.0 for c in want_cols[1:]}
    sv_err = 0.0
    sv_len_ok = True
    tol_ok = True
    final = None
    t0 = time.time()
    for t in range(iters + 1):
        value, E, grads = evaluate(Ws, loss)
        if t < iters and loss_tol > 0 and value <= loss_tol:
            tol_ok = False  # dln should have stopped here
        if t in hist or t in sv or t == iters:
            met, s = metrics(Ws, E, value, grads, truth)
            if t in hist:
                row = dict(zip(hist_header, hist[t]))
                for c in col_err:
                    if c in row:
                        col_err[c] = max(col_err[c], rel_scalar(met[c], float(row[c])))
            if t in sv:
                ref = sv[t]
                sv_len_ok &= len(ref) == K
                for a, b in zip(s[:len(ref)], ref):
                    sv_err = max(sv_err, rel_scalar(float(a), b))
            if t == iters:
                final = (met, E)
        if t == iters:
            break
        opt.step(Ws, grads)
    elapsed = time.time() - t0

    for c, e in col_err.items():
        ck.value(f"history {c}", e)
    if sv:
        ck.exact("singular_values.csv width", sv_len_ok, f"K = {K}")
        ck.value("singular_values", sv_err)

    met, E = final
    ref_factors = load_factors(os.path.join(rundir, "factors"), depth)
    ck.value("final factors", max(rel_matrix(a, b) for a, b in zip(Ws, ref_factors)))
    ref_E = np.load(os.path.join(rundir, "end_to_end.npy"))
    ck.exact("end_to_end.npy dtype", ref_E.dtype == np.float64, str(ref_E.dtype))
    ck.value("end_to_end.npy", rel_matrix(E, ref_E.astype(np.float64)))
    ck.value("summary final_loss", rel_scalar(met["loss"], float(summary["final_loss"])))
    fin = summary.get("final", {})
    ck.exact("summary final keys", set(fin) == set(met), ",".join(sorted(fin)))
    ck.value("summary final.*", max([rel_scalar(met[k], float(fin[k])) for k in met if k in fin]
                                    or [0.0]))

    term = summary.get("termination")
    if loss_tol > 0:
        ck.exact("no earlier loss <= loss_tol", tol_ok)
    if term == "loss_tol":
        ck.exact("termination loss_tol", loss_tol > 0 and met["loss"] <= loss_tol,
                 f"loss {met['loss']:.6e} <= tol {loss_tol:.6e} at iteration {iters}")
    elif term == "max_iters":
        ck.exact("termination max_iters", iters == max_iters,
                 f"iterations {iters}, max_iters {max_iters}")
    else:
        print(f"{prefix}note termination {term!r}: stopping rule not checked")
    print(f"{prefix}replayed {iters} steps of {prob['kind']} depth {depth} "
          f"{cfg['optimizer']['name']} in {elapsed:.2f} s")
    return ck.failed


# --------------------------------------------------------------------------
# Self-test
# --------------------------------------------------------------------------

def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def toml_dump(cfg):
    out = []
    for sec, kv in cfg.items():
        out.append(f"[{sec}]")
        out += [f"{k} = {toml_value(v)}" for k, v in kv.items()]
        out.append("")
    return "\n".join(out)


def completion(depth, widths, opt, max_iters=40, **extra):
    prob = {"kind": "completion", "rows": 7, "cols": 5, "rank": 2, "observations": 20, "seed": 3}
    prob.update(extra.pop("problem", {}))
    return {
        "problem": prob,
        "network": {"depth": depth, "widths": widths, "init": extra.pop("init", "gaussian"),
                    "init_scale": extra.pop("init_scale", 0.3), "seed": 4 + depth},
        "optimizer": opt,
        "stop": {"max_iters": max_iters, **extra.pop("stop", {})},
        "record": {"every": extra.pop("every", 10), **extra.pop("record", {})},
        "run": {"threads": 1},
    }


def self_test_configs():
    C = {}
    C["completion_d1_gd"] = completion(1, [], {"name": "gd", "lr": 0.5})
    C["completion_d2_momentum"] = completion(2, [6], {"name": "momentum", "lr": 0.1,
                                                      "momentum": 0.8}, every=7)
    C["completion_d3_group_rmsprop"] = completion(3, [9, 4], {"name": "group_rmsprop",
                                                              "lr": 0.01}, init="balanced")
    C["completion_d4_adam"] = completion(4, [6, 9, 4], {"name": "adam", "lr": 0.01},
                                         record={"singular_values": 2})
    C["completion_d4_adam"]["run"]["threads"] = 2  # one multi-threaded BLAS run
    C["completion_d4_gd_mean"] = completion(4, [6, 9, 4], {"name": "gd", "lr": 0.3},
                                            problem={"reduction": "mean"}, init_scale=0.5)
    C["completion_d2_rmsprop_nobias"] = completion(
        2, [3], {"name": "group_rmsprop", "lr": 0.02, "alpha": 0.9, "eps": 1e-6,
                 "bias_correction": False}, init="orthogonal", init_scale=0.5)
    C["completion_d1_adam"] = completion(1, [], {"name": "adam", "lr": 0.05, "beta1": 0.8,
                                                 "beta2": 0.99, "eps": 1e-7}, every=1)
    C["completion_d3_momentum_noisy"] = completion(
        3, [8, 2], {"name": "momentum", "lr": 0.2, "momentum": 0.5},
        problem={"noise": 0.1, "observations": 35}, max_iters=60, every=25)
    C["completion_d2_gd_loss_tol"] = completion(
        2, [5], {"name": "gd", "lr": 0.5}, max_iters=2000, init_scale=0.5,
        stop={"loss_tol": 1e-3}, every=50)
    C["sensing_d3_gd"] = {
        "problem": {"kind": "sensing", "rows": 4, "cols": 3, "rank": 1, "observations": 30,
                    "seed": 11},
        "network": {"depth": 3, "widths": [5, 2], "init": "gaussian", "init_scale": 0.4,
                    "seed": 12},
        "optimizer": {"name": "gd", "lr": 0.05},
        "stop": {"max_iters": 30}, "record": {"every": 10}, "run": {"threads": 1}}
    C["regression_d2_momentum"] = {
        "problem": {"kind": "regression", "rows": 3, "cols": 4, "rank": 2, "samples": 20,
                    "seed": 21, "noise": 0.05},
        "network": {"depth": 2, "widths": [6], "init": "gaussian", "init_scale": 0.3,
                    "seed": 22},
        "optimizer": {"name": "momentum", "lr": 0.05},
        "stop": {"max_iters": 30}, "record": {"every": 10}, "run": {"threads": 1}}
    C["lp_regression_d3_gd"] = {
        "problem": {"kind": "lp_regression", "rows": 3, "cols": 4, "rank": 2, "samples": 25,
                    "p": 4, "seed": 31},
        "network": {"depth": 3, "widths": [5, 3], "init": "gaussian", "init_scale": 0.3,
                    "seed": 32},
        "optimizer": {"name": "gd", "lr": 0.002},
        "stop": {"max_iters": 30}, "record": {"every": 10}, "run": {"threads": 1}}
    C["lp_regression_d2_standardized"] = {  # problem.standardize: data/X.npy, Y.npy as trained
        "problem": {"kind": "lp_regression", "rows": 2, "cols": 3, "rank": 1, "samples": 25,
                    "p": 4, "seed": 33, "noise": 0.5, "standardize": True},
        "network": {"depth": 2, "widths": [4], "init": "gaussian", "init_scale": 0.3,
                    "seed": 34},
        "optimizer": {"name": "gd", "lr": 0.002},
        "stop": {"max_iters": 30}, "record": {"every": 10}, "run": {"threads": 1}}
    C["logistic_d2_adam"] = {
        "problem": {"kind": "logistic", "rows": 3, "cols": 4, "rank": 2, "samples": 30,
                    "seed": 41},
        "network": {"depth": 2, "widths": [5], "init": "gaussian", "init_scale": 0.3,
                    "seed": 42},
        "optimizer": {"name": "adam", "lr": 0.02},
        "stop": {"max_iters": 30}, "record": {"every": 10}, "run": {"threads": 1}}
    C["sensing_d2_mean_rmsprop"] = {
        "problem": {"kind": "sensing", "rows": 3, "cols": 5, "rank": 2, "observations": 40,
                    "seed": 51, "reduction": "mean", "sensing_std": 0.0},
        "network": {"depth": 2, "widths": [4], "init": "gaussian", "init_scale": 0.3,
                    "seed": 52},
        "optimizer": {"name": "group_rmsprop", "lr": 0.01},
        "stop": {"max_iters": 25}, "record": {"every": 5}, "run": {"threads": 1}}
    return C


def self_test(dln_bin, rtol, keep):
    if not os.access(dln_bin, os.X_OK):
        print(f"replay.py: {dln_bin} is not an executable")
        return 1
    tmp = None
    if keep:
        base = keep
        os.makedirs(base, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="dln_replay_")
        base = tmp.name
    failures = {}
    t0 = time.time()
    for name, cfg in self_test_configs().items():
        print(f"== {name}")
        cpath = os.path.join(base, name + ".toml")
        out = os.path.join(base, name)
        with open(cpath, "w") as f:
            f.write(toml_dump(cfg))
        proc = subprocess.run([dln_bin, "train", "--config", cpath, "--out", out, "--quiet"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"FAIL dln exited {proc.returncode}: {proc.stderr.strip()}")
            failures[name] = ["dln train"]
            continue
        try:
            failed = replay(out, rtol, prefix="  ")
        except Exception as exc:  # a broken run dir is a failure, not a crash
            print(f"  FAIL replay raised {type(exc).__name__}: {exc}")
            failed = ["replay raised"]
        with open(os.path.join(out, "summary.json")) as f:
            term = json.load(f)["termination"]
        want = "loss_tol" if "loss_tol" in name else "max_iters"
        if term != want:
            print(f"  FAIL self-test expected termination {want}, got {term}")
            failed = failed + ["termination"]
        if failed:
            failures[name] = failed
    print(f"self-test: {len(self_test_configs()) - len(failures)}/{len(self_test_configs())} "
          f"runs pass in {time.time() - t0:.1f} s")
    for name, failed in failures.items():
        print(f"  {name}: {', '.join(failed)}")
    if tmp:
        tmp.cleanup()
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rundir", nargs="?", help="dln run directory to replay")
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--self-test", metavar="DLN_BIN",
                    help="train and replay a set of tiny configs with this dln binary")
    ap.add_argument("--keep", metavar="DIR", help="self-test: keep the runs in DIR")
    args = ap.parse_args()
    if args.self_test:
        return self_test(args.self_test, args.rtol, args.keep)
    if not args.rundir:
        ap.error("RUNDIR or --self-test DLN_BIN required")
    failed = replay(args.rundir, args.rtol)
    print("PASS" if not failed else f"FAIL: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
