"""Error paths of the bindings: PythonLoss misuse, the loss constructors, array conversion, and
how a failed or diverged run ends (exact messages)."""
import json
import re

import numpy as np
import pytest

import dln

W = np.zeros((2, 3))


def raises(message, f, *args, **kwargs):
    """f(*args) raises ValueError whose message is exactly `message`."""
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        f(*args, **kwargs)


def test_python_loss_misuse():
    ident = lambda w: w  # noqa: E731
    raises("PythonLoss: shape must be positive, got 0x3", dln.PythonLoss, 0, 3, ident, ident)
    raises("PythonLoss: shape must be positive, got 2x-1", dln.PythonLoss, 2, -1, ident, ident)
    raises("PythonLoss: give value and gradient, or value_and_gradient", dln.PythonLoss, 2, 3)
    raises("PythonLoss: give value and gradient, or value_and_gradient", dln.PythonLoss, 2, 3,
           value=lambda w: 0.0)
    raises("PythonLoss: give value and gradient, or value_and_gradient", dln.PythonLoss, 2, 3,
           gradient=ident)
    one = dln.PythonLoss(2, 3, value_and_gradient=lambda w: 1.0)
    raises("value_and_gradient: must return (value, gradient)", one.value_and_gradient, W)
    three = dln.PythonLoss(2, 3, value_and_gradient=lambda w: (1.0, w, w))
    raises("value_and_gradient: must return (value, gradient)", three.value_and_gradient, W)
    raises("value: must return a number", dln.PythonLoss(2, 3, lambda w: "x", ident).value, W)
    raises("value: must return a number",
           dln.PythonLoss(2, 3, value_and_gradient=lambda w: (None, w)).value_and_gradient, W)
    raises("gradient: expected a real (float64) array, got dtype <U3",
           dln.PythonLoss(2, 3, lambda w: 0.0, lambda w: "abc").value_and_gradient, W)
    raises("gradient: expected shape (2, 3), got (3, 2)",
           dln.PythonLoss(2, 3, value_and_gradient=lambda w: (0.0, w.T)).value_and_gradient, W)
    # The same misuse inside training stops it with the same error.
    bad = dln.PythonLoss(2, 3, lambda w: 0.0, lambda w: w.T)
    with pytest.raises(ValueError, match=r"^gradient: expected shape \(2, 3\), got \(3, 2\)$"):
        dln.train_factors(dln.Objective([3, 2], bad), [np.ones((2, 3))], {"lr": 0.1})


def test_loss_constructor_errors():
    a = np.zeros((4, 2, 3))
    raises("A: expected shape (m, 2, 3), got (m, 3, 2)", dln.SensingLoss, 2, 3,
           np.zeros((4, 3, 2)), np.zeros(4))
    raises("A: expected shape (*, 6), got (4, 5)", dln.SensingLoss, 2, 3, np.zeros((4, 5)),
           np.zeros(4))
    raises("A: expected a real (float64) array, got dtype complex128", dln.SensingLoss, 2, 3,
           a.astype(complex), np.zeros(4))
    raises("b: expected shape (4,), got (5,)", dln.SensingLoss, 2, 3, a, np.zeros(5))
    raises("problem.observations: no measurements", dln.SensingLoss, 2, 3, np.zeros((0, 2, 3)),
           np.zeros(0))
    raises('problem.reduction: expected "half_mean" or "mean", got "sum"', dln.SensingLoss, 2, 3,
           a, np.zeros(4), reduction="sum")
    x = np.zeros((3, 4))
    raises("Y: expected shape (*, 4), got (2, 5)", dln.SquareRegressionLoss, x, np.zeros((2, 5)))
    raises("X: expected a 2-D array, got shape (3,)", dln.SquareRegressionLoss, np.zeros(3),
           np.zeros((2, 3)))
    raises("problem.samples: no samples", dln.SquareRegressionLoss, np.zeros((3, 0)),
           np.zeros((2, 0)))
    raises("problem.p: must be an even integer >= 2", dln.LpRegressionLoss, x, np.zeros((2, 4)),
           3)
    raises("Y: expected shape (*, 4), got (2, 5)", dln.LpRegressionLoss, x, np.zeros((2, 5)), 4)
    raises("logistic loss: X and labels differ in sample count", dln.LogisticLoss, x, [0, 1, 1],
           2)
    raises("logistic loss: label out of range [0, rows)", dln.LogisticLoss, x, [0, 1, 2, 0], 2)
    raises("logistic loss: label out of range [0, rows)", dln.LogisticLoss, x, [0, -1, 1, 0], 2)
    raises("labels: expected an integer array, got dtype float64", dln.LogisticLoss, x,
           [0.0, 1.0, 1.0, 0.0], 2)
    raises("labels: expected a 1-D array, got shape (2, 2)", dln.LogisticLoss, x,
           [[0, 1], [1, 0]], 2)
    raises("problem.samples: no samples", dln.LogisticLoss, np.zeros((3, 0)), [], 2)
    raises("completion loss: observation index out of range", dln.CompletionLoss, 3, 3, [0, 5],
           [0, 1], [1.0, 2.0])
    raises("completion loss: row, col and value arrays differ in length", dln.CompletionLoss, 3,
           3, [0], [0, 1], [1.0, 2.0])


def test_conversion_errors():
    y = np.zeros((2, 2))
    for bad, dtype in [(np.array([["a", "b"]]), "<U1"), (np.zeros((2, 2), dtype=bool), "bool"),
                       (np.zeros((2, 2), dtype=object), "object"),
                       (np.zeros((2, 2), dtype=np.complex64), "complex64")]:
        raises(f"X: expected a real (float64) array, got dtype {dtype}", dln.SquareRegressionLoss,
               bad, y)
    raises("X: expected an array of numbers", dln.SquareRegressionLoss, [[1, 2], [3]], y)
    raises("X: expected a 2-D array, got shape (2, 2, 1)", dln.SquareRegressionLoss,
           np.zeros((2, 2, 1)), y)
    # float32 and int arrays are converted exactly.
    xs = np.arange(6, dtype=np.float32).reshape(2, 3)
    ys = np.ones((1, 3))
    w = np.array([[0.5, -1.0]])
    assert dln.SquareRegressionLoss(xs, ys).value(w) == \
        dln.SquareRegressionLoss(xs.astype(np.float64), ys).value(w)
    loss = dln.SquareRegressionLoss(xs, ys)
    raises("W: expected shape (1, 2), got (2, 1)", loss.value, w.T)
    raises("W: expected a 2-D array, got shape (2,)", loss.value, w.ravel())
    raises("factors: expected a list of 2-D arrays W_1..W_n", dln.Objective([2, 1], loss).value,
           w)
    raises("factors: expected at least one factor", dln.Objective([2, 1], loss).value, [])


class Boom(dln.Callback):
    def on_step(self, iteration, loss):
        if iteration == 3:
            raise RuntimeError("boom at 3")
        return True


def test_callback_exception_leaves_no_summary(tmp_path):
    out = tmp_path / "run"
    config = {"stop": {"max_iters": 20}, "run": {"checkpoint_every": 2}}
    with pytest.raises(RuntimeError, match="^boom at 3$"):
        dln.train(config, out=str(out), callbacks=[Boom()])
    # The run directory was started (config, init, data) but not completed.
    assert (out / "config.toml").exists() and (out / "init" / "W1.npy").exists()
    assert not (out / "summary.json").exists()
    assert not (out / "history.csv").exists()


def test_diverged_run_returns_normally(tmp_path):
    out = tmp_path / "diverged"
    config = {"problem": {"rows": 8, "cols": 6, "observations": 30}, "network": {"depth": 3},
              "optimizer": {"name": "gd", "lr": 1e4}, "stop": {"max_iters": 1000}}
    result = dln.train(config, out=str(out))
    assert result.termination == "diverged"
    assert result.summary["iterations"] < 1000
    assert result.summary["message"].startswith("loss became ")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["termination"] == "diverged"
    assert summary["iterations"] == result.summary["iterations"]
