"""dln.train(config) against `dln train`: bit-identical results, identical error messages."""
import csv
import json
import os

import numpy as np
import pytest

import dln

COMPLETION = {
    "problem": {"kind": "completion", "rows": 20, "cols": 16, "rank": 2, "observations": 150,
                "seed": 3},
    "network": {"depth": 3, "init": "gaussian", "init_scale": 0.1, "seed": 5},
    "optimizer": {"name": "gd", "lr": 0.5},
    "stop": {"max_iters": 300},
    "record": {"every": 25, "singular_values": 5},
}
SENSING = {
    "problem": {"kind": "sensing", "rows": 12, "cols": 12, "rank": 2, "observations": 100,
                "seed": 1},
    "network": {"depth": 2, "init": "identity", "init_scale": 1e-3, "seed": 2},
    "optimizer": {"name": "adam", "lr": 0.01},
    "stop": {"max_iters": 200},
    "record": {"every": 20, "analytic": True},
}


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array([[float(x) if x else np.nan for x in r] for r in rows[1:]])


def assert_same_run(result, d):
    assert np.array_equal(result.end_to_end, np.load(os.path.join(d, "end_to_end.npy")))
    for name, factors in (("factors", result.factors), ("init", result.init)):
        for j, w in enumerate(factors):
            assert np.array_equal(w, np.load(os.path.join(d, name, f"W{j + 1}.npy"))), (name, j)
    header, table = read_csv(os.path.join(d, "history.csv"))
    assert list(result.history) == header
    for j, col in enumerate(header):
        if col != "seconds":
            assert np.array_equal(result.history[col], table[:, j]), col
    header, table = read_csv(os.path.join(d, "singular_values.csv"))
    assert np.array_equal(result.singular_values, table[:, 1:], equal_nan=True)
    with open(os.path.join(d, "summary.json")) as f:
        summary = json.load(f)
    mine = result.summary
    assert set(mine) == set(summary)
    for key in ("termination", "iterations", "final_loss", "final", "dims", "parameters", "loss"):
        assert mine[key] == summary[key], key


@pytest.mark.parametrize("config", [COMPLETION, SENSING], ids=["completion_gd", "sensing_adam"])
def test_train_bit_identical_to_cli(config, cli, tmp_path):
    proc = cli(config)
    assert proc.returncode == 0, proc.stderr
    result = dln.train(config)
    assert_same_run(result, tmp_path / "cli")
    if config["record"].get("analytic"):
        _, table = read_csv(tmp_path / "cli" / "analytic_singular_values.csv")
        assert np.array_equal(result.analytic_singular_values, table[:, 1:], equal_nan=True)
    # The run directory Python writes is the CLI's, file for file.
    result.save(tmp_path / "py")
    for sub in ("end_to_end.npy", "factors/W1.npy", "init/W2.npy", "config.toml",
                "singular_values.csv"):
        assert (tmp_path / "py" / sub).read_bytes() == (tmp_path / "cli" / sub).read_bytes(), sub
    assert sorted(os.listdir(tmp_path / "py")) == sorted(os.listdir(tmp_path / "cli"))


def test_train_out_and_overrides(cli, tmp_path):
    proc = cli(COMPLETION, "cli", "--set", "optimizer.lr=0.3")
    assert proc.returncode == 0, proc.stderr
    result = dln.train(COMPLETION, out=tmp_path / "out", overrides=["optimizer.lr=0.3"])
    assert result.config["optimizer"]["lr"] == 0.3
    assert_same_run(result, tmp_path / "cli")
    assert_same_run(result, tmp_path / "out")
    # A TOML path works like --config.
    again = dln.train(str(tmp_path / "cli" / "config.toml"))
    assert np.array_equal(again.end_to_end, result.end_to_end)


BAD = [
    {"problem": {"kind": "completion", "colour": 3}},
    {"netwerk": {"depth": 2}},
    {"network": {"depth": 0}},
    {"network": {"depth": "three"}},
    {"optimizer": {"name": "sgd"}},
    {"optimizer": {"lr": -1.0}},
    {"network": {"depth": 3, "widths": [4]}},
    {"stop": {"max_iters": 1.5}},
    {"problem": {"rows": 0}},
    {"network": {"init": "file"}},
]


@pytest.mark.parametrize("config", BAD, ids=[str(b) for b in BAD])
def test_errors_equal_cli_messages(config, cli):
    proc = cli(config)
    assert proc.returncode == 2
    prefix = "dln: error: "
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(prefix), proc.stderr
    with pytest.raises(ValueError) as e:
        dln.train(config)
    assert str(e.value) == line[len(prefix):]


def test_bad_python_values():
    with pytest.raises(ValueError, match="network.depth: unsupported value of type object"):
        dln.train({"network": {"depth": object()}})
    with pytest.raises(ValueError, match="config: expected a dict"):
        dln.train(42)
    # numpy scalars and None (= default) are accepted
    cfg = dln.resolve_config({"network": {"depth": np.int64(2), "init_scale": np.float64(0.2),
                                          "width": None}})
    assert cfg["network"]["depth"] == 2 and cfg["network"]["init_scale"] == 0.2


def test_result_views_are_read_only():
    result = dln.train({"stop": {"max_iters": 5}})
    assert not result.end_to_end.flags.writeable
    assert result.end_to_end.flags.f_contiguous
    e2e = result.end_to_end
    del result
    assert np.isfinite(e2e).all()  # the view keeps the result alive


def test_clean_interpreter_exit():
    """No crash at interpreter shutdown (objects held by the extension are released in time)."""
    import subprocess
    import sys

    code = ("import numpy as np, dln\n"
            "r = dln.train({'stop': {'max_iters': 5}})\n"
            "w = r.factors; h = r.history\n"
            "dln.Objective([24, 30], dln.make_problem().loss).value([np.zeros((30, 24))])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
