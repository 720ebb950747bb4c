"""Draws the figure of a `dln experiment` directory from its CSV files (matplotlib).

Usage: /usr/bin/python3 plot.py DIR NAME   ->  DIR/NAME.png and DIR/NAME.svg
Written into every experiment directory by dln; edit it freely to restyle a figure.
"""
import csv
import os
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(directory, name):
    with open(os.path.join(directory, name), newline="") as f:
        return list(csv.DictReader(f))


def mean_by(rows, keys, value):
    groups = defaultdict(list)
    for r in rows:
        groups[tuple(r[k] for k in keys)].append(float(r[value]))
    return {k: sum(v) / len(v) for k, v in groups.items()}


def method_label(m):
    return "min nuclear" if m == "min_nuclear" else m.replace("depth", "depth ") + " LNN"


FIG1_STYLE = {
    "linear_gd": ("black", "-"), "depth2_w100": ("tab:blue", "-"), "depth2_w1": ("tab:blue", "--"),
    "depth3_w100": ("tab:red", "-"), "depth3_w1": ("tab:red", "--"), "e2e_n2": ("tab:blue", ":"),
    "e2e_n3": ("tab:red", ":"), "linear_adagrad": ("tab:green", "-."),
    "linear_adadelta": ("tab:olive", "-."), "linear_adam": ("tab:purple", "-."),
    "depth3_w100_adam": ("tab:purple", "-"),
}
FIG1_LABEL = {
    "linear_gd": "linear (GD)", "depth2_w100": "2 layer LNN", "depth2_w1": "2 layer LNN, width 1",
    "depth3_w100": "3 layer LNN", "depth3_w1": "3 layer LNN, width 1",
    "e2e_n2": "end-to-end update, n=2", "e2e_n3": "end-to-end update, n=3",
    "linear_adagrad": "linear (AdaGrad)", "linear_adadelta": "linear (AdaDelta)",
    "linear_adam": "linear (Adam)", "depth3_w100_adam": "3 layer LNN (Adam)",
}


def fig1_panels(traj, dataset, title):
    rows = [r for r in traj if r["dataset"] == dataset and r["role"] == "search"]
    ps = sorted({int(r["p"]) for r in rows})
    fig, axes = plt.subplots(1, max(1, len(ps)), figsize=(6 * max(1, len(ps)), 4.5), squeeze=False)
    for ax, p in zip(axes[0], ps):
        curves = defaultdict(list)
        for r in rows:
            if int(r["p"]) == p:
                curves[(r["method"], r["rate"])].append((int(r["iteration"]), float(r["gap"])))
        for (method, rate), pts in curves.items():
            pts = [(i, g) for i, g in pts if g > 0]
            if not pts:
                continue
            color, ls = FIG1_STYLE.get(method, ("gray", "-"))
            ax.plot([i for i, _ in pts], [g for _, g in pts], color=color, ls=ls, lw=1.3,
                    label=f"{FIG1_LABEL.get(method, method)} (lr {float(rate):.2g})")
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel("l - l* (distance from optimum)")
        ax.set_title(f"l_{p} loss")
        ax.legend(fontsize=6.5)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def fig1_lp(directory):
    traj = read(directory, "trajectories.csv")
    datasets = list(dict.fromkeys(r["dataset"] for r in traj))
    main = datasets[0] if datasets else "ethanol"
    for d in datasets[1:]:
        extra = fig1_panels(traj, d, f"Claim 1 on the {d} instance: each method at its best rate")
        for ext in ("png", "svg"):
            extra.savefig(os.path.join(directory, f"fig1-lp-{d}.{ext}"), dpi=120)
    return fig1_panels(traj, main, f"Figure 1 (left) on the {main} data: each method at its "
                                   "best fixed rate")


def fig2(directory):
    rows = read(directory, "results.csv")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for panel, value, title in ((0, "recon_mse", "reconstruction error (per-entry MSE)"),
                                (1, "nuclear_norm", "nuclear norm")):
        means = mean_by(rows, ("method", "observations"), value)
        for m in methods:
            xs = sorted({int(k[1]) for k in means if k[0] == m})
            ys = [means[(m, str(x))] for x in xs]
            axes[panel].plot(xs, ys, marker="o", label=method_label(m))
        axes[panel].set_xlabel("observations")
        axes[panel].set_title(title)
        if panel == 0:
            axes[panel].set_yscale("log")
        axes[panel].legend()
    truth = [float(r["truth_nuclear_norm"]) for r in rows if r.get("truth_nuclear_norm")]
    if truth:
        axes[1].axhline(sum(truth) / len(truth), color="gray", ls="--", label="ground truth")
        axes[1].legend()
    fig.suptitle("Figure 2: matrix completion, min nuclear norm vs linear neural networks")
    return fig


def fig3(directory):
    traj = read(directory, "trajectories.csv")
    panels = list(dict.fromkeys((r["setting"], r["method"]) for r in traj))
    settings = list(dict.fromkeys(p[0] for p in panels))
    methods = list(dict.fromkeys(p[1] for p in panels))
    fig, axes = plt.subplots(len(settings), len(methods), squeeze=False,
                             figsize=(4 * len(methods), 3.3 * len(settings)))
    seed = traj[0]["seed"]
    err = {(r["setting"], r["method"], r["seed"]): float(r["recon_rel_error"])
           for r in read(directory, "results.csv")}
    for i, s in enumerate(settings):
        for j, m in enumerate(methods):
            ax = axes[i][j]
            pts = [r for r in traj if r["setting"] == s and r["method"] == m and r["seed"] == seed]
            series = defaultdict(list)
            for r in pts:
                series[int(r["index"])].append((int(r["iteration"]), float(r["sigma"])))
            for k in sorted(series):
                xs, ys = zip(*series[k])
                ax.plot(xs, ys, lw=1.2)
            name = "linear (depth 1)" if m == "depth1" else method_label(m).replace(" LNN", "")
            ax.set_title(f"{s}: {name}, rel. error {err[(s, m, seed)]:.2g}", fontsize=10)
            ax.set_xlabel("iteration")
            if j == 0:
                ax.set_ylabel("singular values")
    fig.suptitle("Figure 3: singular values of the end-to-end matrix during gradient descent")
    fig.tight_layout()
    return fig


def prop5(directory):
    traj = read(directory, "trajectories.csv")
    cases = list(dict.fromkeys((r["variant"], r["method"]) for r in traj))
    seed = traj[0]["seed"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    flow = any(float(r["time"]) > 0 for r in traj)
    for n, (variant, method) in enumerate(cases):
        pts = [r for r in traj if r["variant"] == variant and r["method"] == method
               and r["seed"] == seed]
        color = f"C{n}"
        label = f"{method_label(method).replace(' LNN', '')}, {variant}"
        for resolved, style in (("1", "-"), ("0", ":")):
            seg = [r for r in pts if r["det_resolved"] == resolved]
            if not seg:
                continue
            loss = [float(r["loss"]) for r in seg]
            x = [float(r["time"]) if flow else int(r["iteration"]) for r in seg]
            lab = label if resolved == "1" else None
            axes[0].loglog(loss, [abs(float(r["w00"])) for r in seg], style, color=color, label=lab)
            axes[1].loglog(loss, [float(r["fro_norm"]) for r in seg], style, color=color, label=lab)
            axes[2].loglog(x, loss, style, color=color, label=lab)
    ls = sorted({float(r["loss"]) for r in traj if 0 < float(r["loss"]) < 1.0 / 24})
    if ls:
        axes[0].loglog(ls, [(6 * x) ** -0.5 - 2 for x in ls], "k--", label="bound 1/sqrt(6 loss) - 2")
    axes[0].set_xlabel("loss")
    axes[0].set_ylabel("|w_11| (the unobserved entry)")
    axes[1].set_xlabel("loss")
    axes[1].set_ylabel("Frobenius norm of W")
    axes[2].set_xlabel("flow time t" if flow else "iteration")
    axes[2].set_ylabel("loss")
    for ax in axes[:2]:
        ax.invert_xaxis()
    for ax in axes:
        ax.legend(fontsize=7)
    fig.suptitle("Proposition 5: norms grow without bound as the loss goes to zero "
                 "(dotted: det W below double-precision resolution)", fontsize=11)
    fig.tight_layout()
    return fig


def compression(directory):
    rows = read(directory, "results.csv")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    means = mean_by(rows, ("method", "rank"), "recon_mse")
    params = {(r["method"], r["rank"]): int(r["parameters"]) for r in rows}
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for m in methods:
        ks = sorted({int(k[1]) for k in means if k[0] == m})
        ax.plot([params[(m, str(k))] for k in ks], [means[(m, str(k))] for k in ks], marker=".",
                label=method_label(m) if m != "depth1" else "linear (depth 1)")
    ax.set_xlabel("parameters of the rank-truncated solution, rho (d + d' - rho)")
    ax.set_ylabel("reconstruction error (per-entry MSE)")
    ax.set_yscale("log")
    ax.legend()
    ax.set_title("Section 4.4: implicit compression by overparameterization")
    fig.tight_layout()
    return fig


def smooth(values, window):
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def fig1_nonlinear(directory):
    steps = read(directory, "training.csv")
    epochs = read(directory, "epochs.csv")
    trunc = read(directory, "truncation.csv")
    window = 100
    cfg = os.path.join(directory, "config.toml")
    if os.path.exists(cfg):
        for line in open(cfg):
            if line.strip().startswith("smoothing"):
                window = int(line.split("=")[1].split("#")[0])
    models = list(dict.fromkeys(r["model"] for r in steps))
    colors = dict(zip(models, ["tab:blue", "tab:red", "tab:green", "tab:purple"]))
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.4))
    for col, title in (("loss", "training loss (cross-entropy + L2, as plotted)"),
                       ("cross_entropy", "training cross-entropy (data term)")):
        ax = axes[0 if col == "loss" else 1]
        for m in models:
            rs = [r for r in steps if r["model"] == m]
            x = [int(r["step"]) for r in rs]
            y = [float(r[col]) for r in rs]
            ax.plot(x, y, color=colors[m], alpha=0.15, linewidth=0.5)
            ax.plot(x, smooth(y, window), color=colors[m], label=m)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{title}; {window}-step mean", fontsize=9)
        ax.legend(fontsize=8)
    ax = axes[2]
    for m in models:  # from epoch 1: the step-0 accuracies (~10%) would flatten the curves
        rs = [r for r in epochs if r["model"] == m and int(r["epoch"]) >= 1]
        ax.plot([int(r["epoch"]) for r in rs], [100 * float(r["test_accuracy"]) for r in rs],
                marker="o", color=colors[m], label=m)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("test accuracy after each epoch", fontsize=9)
    ax.legend(fontsize=8)
    ax = axes[3]
    for m in models:
        rs = [r for r in trunc if r["model"] == m]
        ax.plot([int(r["dense_params_kept"]) for r in rs], [100 * float(r["test_accuracy"]) for r in rs],
                marker=".", color=colors[m], label=m)
    ax.set_xscale("log")
    ax.set_xlabel("dense parameters kept, sum of rho (d + d' - rho) + bias")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("rank-truncated dense layers (Section 4.4)", fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle("Figure 1 (right) on Fashion-MNIST: original vs linearly overparameterized CNN")
    fig.tight_layout()
    return fig


def ranked_curves(ax, rows, value):
    """One curve per `index` (1 = largest, darkest) of value vs iteration."""
    series = defaultdict(list)
    for r in rows:
        series[int(r["index"])].append((int(r["iteration"]), float(r[value])))
    top = max(series, default=1)
    for k in sorted(series):
        xs, ys = zip(*series[k])
        color = plt.cm.plasma(0.85 * (k - 1) / max(1, top - 1))
        ax.plot(xs, ys, lw=1.1, color=color, label=f"#{k}")
    ax.set_xlabel("iteration")


def tensor_rank(directory):
    traj = read(directory, "trajectories.csv")
    res = read(directory, "results.csv")
    seed = traj[0]["seed"]
    stds = sorted({r["init_std"] for r in traj}, key=float, reverse=True)
    fig, axes = plt.subplots(1, len(stds) + 1, figsize=(4 * (len(stds) + 1), 3.6), squeeze=False)
    for ax, std in zip(axes[0], stds):
        ranked_curves(ax, [r for r in traj if r["init_std"] == std and r["seed"] == seed], "norm")
        info = [r for r in res if r["init_std"] == std and r["seed"] == seed]
        rank = info[0]["estimated_rank"] if info else "?"
        ax.set_title(f"init std {float(std):.3g}: estimated rank {rank}", fontsize=10)
        if std == stds[-1] and info and info[0]["t50"]:  # t50 of the top components
            for t in info[0]["t50"].split(";"):
                ax.axvline(float(t), color="gray", lw=0.7, alpha=0.35)
    axes[0][0].set_ylabel("component norms (top 10)")
    axes[0][0].legend(fontsize=6, ncol=2, title="index", title_fontsize=6)
    ax = axes[0][-1]
    for n, std in enumerate(stds):
        pts = [r for r in traj if r["init_std"] == std and r["seed"] == seed and r["index"] == "1"]
        ax.plot([int(r["iteration"]) for r in pts], [float(r["recon_rel_error"]) for r in pts],
                color=f"C{n}", label=f"init std {float(std):.3g}")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_title("reconstruction error ||W - W*|| / ||W*||", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle("Tensor factorization: components are learned one at a time; smaller init, "
                 "lower tensor rank (gray: t50 of the top components)", fontsize=11)
    fig.tight_layout()
    return fig


def tensor_completion(directory):
    rows = read(directory, "results.csv")
    methods = list(dict.fromkeys(r["method"] for r in rows))
    label = {"cp_factorization": "CP factorization (GD, small init)",
             "zero_fill": "zero-filled tensor, CP-ALS",
             "cp_als_true_rank": "CP-ALS at the true rank"}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    err = mean_by(rows, ("method", "observations"), "recon_rel_error")
    est = mean_by([r for r in rows if r["estimated_rank"]], ("method", "observations"),
                  "estimated_rank")
    for m in methods:
        xs = sorted({int(k[1]) for k in err if k[0] == m})
        axes[0].plot(xs, [max(err[(m, str(x))], 1e-8) for x in xs], marker="o",
                     label=label.get(m, m))
        if m != "cp_als_true_rank":
            xs = sorted({int(k[1]) for k in est if k[0] == m})
            axes[1].plot(xs, [est[(m, str(x))] for x in xs], marker="o", label=label.get(m, m))
    truth = {r["estimated_rank"] for r in rows if r["method"] == "cp_als_true_rank"}
    if len(truth) == 1 and "" not in truth:
        axes[1].axhline(float(truth.pop()), color="gray", ls="--", label="true rank")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("||W - W*|| / ||W*|| (mean over seeds)")
    axes[0].set_title("reconstruction error", fontsize=10)
    axes[1].set_ylabel("estimated CP rank (mean over seeds)")
    axes[1].set_title("estimated CP rank (max_rank + 1 = above max_rank)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("observations")
        ax.legend(fontsize=7)
    fig.suptitle("Tensor completion: CP factorization vs baselines")
    fig.tight_layout()
    return fig


def htf_dynamics(directory):
    traj = read(directory, "trajectories.csv")
    seed = traj[0]["seed"]
    titles = {"matrix": ("matrix factorization", "singular values"),
              "cp": ("tensor (CP) factorization", "component norms"),
              "hierarchical": ("hierarchical tensor factorization", "root's local component norms")}
    methods = [m for m in titles if any(r["method"] == m for r in traj)]
    err = {(r["method"], r["seed"]): float(r["recon_rel_error"])
           for r in read(directory, "results.csv")}
    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.8), squeeze=False)
    for ax, m in zip(axes[0], methods):
        pts = [r for r in traj if r["method"] == m and r["seed"] == seed]
        root = str(max(int(r["node"]) for r in pts))  # the root is the last internal node
        ranked_curves(ax, [r for r in pts if r["node"] == root], "value")
        ax.set_title(f"{titles[m][0]}, rel. error {err.get((m, seed), float('nan')):.2g}",
                     fontsize=10)
        ax.set_ylabel(f"{titles[m][1]} (top 10)")
    axes[0][0].legend(fontsize=6, ncol=2, title="index", title_fontsize=6)
    fig.suptitle("Incremental learning in matrix, tensor and hierarchical tensor factorizations")
    fig.tight_layout()
    return fig


def main():
    directory, name = sys.argv[1], sys.argv[2]
    fig = {"fig1-lp": fig1_lp, "fig1-nonlinear": fig1_nonlinear, "fig2": fig2, "fig3": fig3,
           "prop5": prop5, "compression": compression, "tensor-rank": tensor_rank,
           "tensor-completion": tensor_completion, "htf-dynamics": htf_dynamics}[name](directory)
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(directory, f"{name}.{ext}"), dpi=120)


if __name__ == "__main__":
    main()
