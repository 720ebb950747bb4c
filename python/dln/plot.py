"""Figures for dln runs and experiments (matplotlib; docs/python.md).

Every function returns a ``matplotlib.figure.Figure`` and accepts, as its source(s):

* a run directory path (``dln train --out DIR``, ``Result.save(DIR)``),
* a ``dln.Result`` (``dln.train``) or ``dln.TrainResult`` (``dln.train_factors``),
* a dict from ``dln.load_run(DIR)``,
* an experiment directory (``dln experiment NAME --out DIR``: ``results.csv``,
  ``trajectories.csv`` and ``runs/``), where that makes sense.

Figures are made with ``matplotlib.figure.Figure`` directly (no pyplot state), so they work
headless; call ``fig.savefig(path)`` to write them.
"""
import csv
import os
from collections import defaultdict

import numpy as np
from matplotlib.figure import Figure

__all__ = ["singular_values", "reconstruction", "loss_curves", "unbalancedness"]


# ---- sources -------------------------------------------------------------------------------

def _is_experiment(path):
    return isinstance(path, (str, os.PathLike)) and os.path.isdir(path) and (
        os.path.exists(os.path.join(path, "results.csv"))
        or os.path.exists(os.path.join(path, "trajectories.csv")))


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _run(source, label=None):
    """A source as {'label', 'history', 'singular_values', 'sv_x', 'time'}."""
    from . import load_run

    if isinstance(source, (str, os.PathLike)):
        run = load_run(os.fspath(source))
        lab = label or os.path.basename(os.path.normpath(os.fspath(source)))
        hist = run["history"]
        sv = run["singular_values"]
    elif isinstance(source, dict) and "history" in source:
        run, hist, sv = source, source["history"], source.get("singular_values")
        lab = label or source.get("label", "run")
    elif hasattr(source, "history"):
        hist, sv = source.history, source.singular_values
        lab = label or getattr(source, "termination", "run")
    else:
        raise ValueError(f"source: expected a run directory, a dln.Result / dln.TrainResult or "
                         f"a dict from dln.load_run, got {type(source).__name__}")
    return {"label": lab, "history": hist, "singular_values": sv}


def _runs(sources, labels):
    """Expands experiment directories to their runs/*; a single source becomes a list."""
    if isinstance(sources, (str, os.PathLike)) or not isinstance(sources, (list, tuple)):
        sources = [sources]
    out = []
    for i, s in enumerate(sources):
        lab = labels[i] if labels is not None else None
        if _is_experiment(s) and os.path.isdir(os.path.join(s, "runs")):
            root = os.path.join(s, "runs")
            for name in sorted(os.listdir(root)):
                d = os.path.join(root, name)
                if os.path.exists(os.path.join(d, "summary.json")) and os.path.exists(
                        os.path.join(d, "history.csv")):
                    out.append(_run(d, name))
        else:
            out.append(_run(s, lab))
    return out


def _x(hist):
    """Flow time for continuous optimizers, else iterations."""
    if "time" in hist:
        return np.asarray(hist["time"], dtype=float), "flow time t"
    return np.asarray(hist["iteration"], dtype=float), "iteration"


def _new(ncols=1, nrows=1, width=4.2, height=3.4):
    fig = Figure(figsize=(width * ncols, height * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


# ---- figures --------------------------------------------------------------------------------

def singular_values(sources, labels=None, top=None, logy=False):
    """Singular-value trajectories of W_{n:1} (Figure 3 style): one panel per run, one line per
    singular value (the top ``top``, default all recorded). An experiment directory with a
    ``trajectories.csv`` (``dln experiment fig3``) gives one panel per (problem, method)."""
    if _is_experiment(sources) and os.path.exists(os.path.join(sources, "trajectories.csv")):
        return _fig3_experiment(os.fspath(sources), top, logy)
    runs = _runs(sources, labels)
    fig, axes = _new(len(runs))
    for ax, run in zip(axes[0], runs):
        sv = np.asarray(run["singular_values"], dtype=float)
        x, xlabel = _x(run["history"])
        k = sv.shape[1] if top is None else min(top, sv.shape[1])
        for j in range(k):
            ax.plot(x[: sv.shape[0]], sv[:, j], lw=1.2, label=f"sigma_{j + 1}")
        ax.set_xlabel(xlabel)
        ax.set_title(str(run["label"]), fontsize=10)
        if logy:
            ax.set_yscale("log")
    axes[0][0].set_ylabel("singular values of W")
    fig.suptitle("Singular values of the end-to-end matrix")
    fig.tight_layout()
    return fig


def _fig3_experiment(directory, top, logy):
    traj = _read_csv(os.path.join(directory, "trajectories.csv"))
    panels = list(dict.fromkeys((r["setting"], r["method"]) for r in traj))
    settings = list(dict.fromkeys(p[0] for p in panels))
    methods = list(dict.fromkeys(p[1] for p in panels))
    seed = traj[0]["seed"]
    fig, axes = _new(len(methods), len(settings), 4.0, 3.3)
    for i, s in enumerate(settings):
        for j, m in enumerate(methods):
            ax = axes[i][j]
            series = defaultdict(list)
            for r in traj:
                if r["setting"] == s and r["method"] == m and r["seed"] == seed:
                    series[int(r["index"])].append((int(r["iteration"]), float(r["sigma"])))
            for k in sorted(series)[: top or None]:
                xs, ys = zip(*series[k])
                ax.plot(xs, ys, lw=1.2)
            ax.set_title(f"{s}: {m}", fontsize=10)
            ax.set_xlabel("iteration")
            if logy:
                ax.set_yscale("log")
            if j == 0:
                ax.set_ylabel("singular values")
    fig.suptitle("Singular values of the end-to-end matrix during gradient descent")
    fig.tight_layout()
    return fig


def reconstruction(source, x="observations"):
    """Reconstruction error and nuclear norm against the number of observations (Figure 2
    style): one line per method in each of the two panels, averaged over seeds. ``source`` is an
    experiment directory or ``results.csv`` of ``dln experiment fig2``, or a list of dicts with
    keys ``method``, ``observations``, ``recon_mse``, ``nuclear_norm`` (e.g. one per run)."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        rows = _read_csv(os.path.join(path, "results.csv") if os.path.isdir(path) else path)
    else:
        rows = [dict(r) for r in source]
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    fig, axes = _new(2, 1, 5.0, 4.0)
    for ax, value, title in ((axes[0][0], "recon_mse", "reconstruction error (per-entry MSE)"),
                             (axes[0][1], "nuclear_norm", "nuclear norm")):
        for m in methods:
            groups = defaultdict(list)
            for r in rows:
                if str(r["method"]) == m and r.get(value, "") != "":
                    groups[float(r[x])].append(float(r[value]))
            xs = sorted(groups)
            ax.plot(xs, [np.mean(groups[v]) for v in xs], marker="o", label=m)
        ax.set_xlabel(x)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    axes[0][0].set_yscale("log")
    fig.suptitle("Min nuclear norm vs linear neural networks")
    fig.tight_layout()
    return fig


def loss_curves(sources, labels=None, logx=True):
    """Training loss of several runs on log axes, one line per run (an experiment directory
    contributes every run under its runs/)."""
    runs = _runs(sources, labels)
    fig, axes = _new(1, 1, 5.5, 4.0)
    ax = axes[0][0]
    for run in runs:
        x, xlabel = _x(run["history"])
        loss = np.asarray(run["history"]["loss"], dtype=float)
        if logx:
            x = x + (1.0 if xlabel == "iteration" else 0.0)  # iteration 0 on a log axis
        ax.plot(x, loss, lw=1.2, label=str(run["label"]))
    ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel + (" + 1" if logx and xlabel == "iteration" else ""))
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def unbalancedness(sources, labels=None):
    """Unbalancedness (Def. 1) over training, one line per run, log y axis (0 is drawn at the
    smallest positive value seen)."""
    runs = _runs(sources, labels)
    fig, axes = _new(1, 1, 5.5, 4.0)
    ax = axes[0][0]
    for run in runs:
        x, xlabel = _x(run["history"])
        u = np.asarray(run["history"]["unbalancedness"], dtype=float)
        pos = u[u > 0]
        floor = pos.min() if pos.size else 1e-300
        ax.plot(x, np.maximum(u, floor), lw=1.2, label=str(run["label"]))
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("unbalancedness max_j ||W_{j+1}^T W_{j+1} - W_j W_j^T||_F")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
