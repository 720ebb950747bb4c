"""dln.plot: each function returns a Figure with the expected lines, from every kind of source."""
import csv

import pytest

import dln

pytest.importorskip("matplotlib")
import dln.plot as dplot  # noqa: E402

CONFIG = {"problem": {"rows": 10, "cols": 8, "rank": 2, "observations": 50},
          "network": {"depth": 2}, "optimizer": {"lr": 0.5}, "stop": {"max_iters": 40},
          "record": {"every": 10, "singular_values": 4}}


def lines(fig):
    return [len(ax.get_lines()) for ax in fig.axes]


def test_plots_from_results_and_directories(tmp_path):
    a = dln.train(CONFIG, out=tmp_path / "a")
    b = dln.train(CONFIG, overrides=["network.depth=3"])
    assert lines(dplot.singular_values([a, b])) == [4, 4]
    assert lines(dplot.singular_values(tmp_path / "a", top=2)) == [2]
    assert lines(dplot.loss_curves([tmp_path / "a", b, dln.load_run(tmp_path / "a")])) == [3]
    assert lines(dplot.unbalancedness([a, b], labels=["depth 2", "depth 3"])) == [2]


def test_plots_from_experiment_directories(tmp_path):
    fig2 = tmp_path / "fig2"
    fig2.mkdir()
    with open(fig2 / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["experiment", "method", "observations", "seed", "recon_mse", "nuclear_norm"])
        for m in ("min_nuclear", "depth2", "depth3"):
            for n in (100, 200):
                for s in (1, 2):
                    w.writerow(["fig2", m, n, s, 0.1 / n, 10 + s])
    assert lines(dplot.reconstruction(fig2)) == [3, 3]
    fig3 = tmp_path / "fig3"
    fig3.mkdir()
    with open(fig3 / "trajectories.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["setting", "method", "seed", "iteration", "time", "index", "sigma"])
        for s in ("sensing", "completion"):
            for m in ("depth1", "depth2"):
                for it in (0, 1, 2):
                    for k in (1, 2, 3):
                        w.writerow([s, m, 1, it, it, k, it * k])
    assert lines(dplot.singular_values(fig3)) == [3, 3, 3, 3]
    runs = tmp_path / "exp" / "runs"
    dln.train(CONFIG, out=runs / "r1")
    dln.train(CONFIG, out=runs / "r2")
    (tmp_path / "exp" / "results.csv").write_text("experiment,method\n")
    assert lines(dplot.loss_curves(tmp_path / "exp")) == [2]
