"""Object level: Python losses, callbacks, array conversion rules, diagnostics, baselines."""
import os
import signal
import threading

import numpy as np
import pytest

import dln

PROBLEM = {"kind": "completion", "rows": 15, "cols": 12, "rank": 2, "observations": 90, "seed": 4}


def completion_python_loss(problem):
    r, c, b = problem.observations
    m = len(b)

    def value_and_gradient(w):
        res = w[r, c] - b
        g = np.zeros_like(w)
        np.add.at(g, (r, c), res / m)
        return 0.5 * np.mean(res ** 2), g

    return dln.PythonLoss(problem.rows, problem.cols, value_and_gradient=value_and_gradient)


def test_python_loss_reproduces_completion_trajectory():
    problem = dln.make_problem(PROBLEM)
    dims = [12, 10, 10, 15]
    init = dln.initialize(dims, "gaussian", 0.2, seed=1)
    opts = dict(optimizer={"name": "gd", "lr": 0.5}, stop={"max_iters": 200},
                record={"every": 10})
    builtin = dln.train_factors(dln.Objective(dims, problem.loss), init, **opts)
    mine = dln.train_factors(dln.Objective(dims, completion_python_loss(problem)), init, **opts)
    a, b = builtin.history, mine.history
    assert np.array_equal(a["iteration"], b["iteration"])
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-10)
    np.testing.assert_allclose(b["grad_norm"], a["grad_norm"], rtol=1e-9)
    np.testing.assert_allclose(mine.end_to_end, builtin.end_to_end, rtol=1e-9, atol=1e-12)
    assert a["loss"][-1] < 0.1 * a["loss"][0]


def test_python_loss_value_and_gradient_and_errors():
    problem = dln.make_problem(PROBLEM)
    loss = completion_python_loss(problem)
    w = np.random.default_rng(0).normal(size=(15, 12))
    v1, g1 = problem.loss.value_and_gradient(w)
    v2, g2 = loss.value_and_gradient(w)
    assert v1 == pytest.approx(v2, rel=1e-14)
    np.testing.assert_allclose(g1, g2, rtol=1e-14)
    bad = dln.PythonLoss(15, 12, lambda w: 0.0, lambda w: np.zeros((12, 15)))
    with pytest.raises(ValueError, match=r"gradient: expected shape \(15, 12\), got \(12, 15\)"):
        bad.value_and_gradient(w)
    boom = dln.PythonLoss(15, 12, lambda w: 1 / 0, lambda w: w)
    obj = dln.Objective([12, 15], boom)
    with pytest.raises(ZeroDivisionError):
        dln.train_factors(obj, [w], {"lr": 0.1})


class StopAt(dln.Callback):
    def __init__(self, at):
        self.at, self.steps, self.records = at, [], []

    def on_step(self, iteration, loss):
        self.steps.append(iteration)
        return iteration < self.at

    def on_record(self, row, factors):
        self.records.append(row["iteration"])
        assert len(factors) == 3 and factors[0].shape == (10, 12)


def test_callback_stops_training():
    cb = StopAt(7)
    config = {"problem": PROBLEM, "network": {"width": 10}, "stop": {"max_iters": 100},
              "record": {"every": 5}}
    result = dln.train(config, callbacks=[cb])
    assert result.termination == "callback"
    assert result.summary["iterations"] == 7
    assert cb.steps == list(range(8))
    assert cb.records == [0, 5, 7]
    # the same through train_factors, with a plain function as on_record
    seen = []
    problem = dln.make_problem(PROBLEM)
    run = dln.train_factors(dln.Objective([12, 10, 10, 15], problem.loss),
                            dln.initialize([12, 10, 10, 15]), {"lr": 0.2},
                            {"max_iters": 50}, {"every": 10},
                            callbacks=lambda row, w: seen.append(row["loss"]) or len(seen) < 3)
    assert run.termination == "callback" and len(seen) == 3 and run.summary.iterations == 20


def test_callback_every_and_exceptions():
    class Every(dln.Callback):
        every = 4

        def __init__(self):
            self.steps = []

        def on_step(self, iteration, loss):
            self.steps.append(iteration)

    cb = Every()
    dln.train({"stop": {"max_iters": 20}}, callbacks=cb)
    assert cb.steps == [0, 4, 8, 12, 16, 20]

    class Boom(dln.Callback):
        def on_record(self, row, factors):
            raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        dln.train({"stop": {"max_iters": 20}}, callbacks=[Boom()])
    with pytest.raises(ValueError, match=r"callbacks\[0\]: expected a callable"):
        dln.train({}, callbacks=[42])


def test_ctrl_c_interrupts_training():
    # An ignored SIGINT would end the run by max_seconds, normally, without KeyboardInterrupt.
    config = {"problem": {"rows": 60, "cols": 60, "observations": 1500},
              "stop": {"max_iters": 10**8, "max_seconds": 20}, "record": {"every": 10**6}}
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        dln.train(config)


def test_array_conversion_rules():
    problem = dln.make_problem(PROBLEM)
    dims = [12, 10, 15]
    obj = dln.Objective(dims, problem.loss)
    w = dln.initialize(dims, seed=3)
    v, g = obj.value_and_gradient(w)
    assert len(g) == 2 and g[0].shape == (10, 12) and g[0].flags.f_contiguous
    # C order and integer dtypes are converted (copied); nested lists too
    assert obj.value([np.ascontiguousarray(x) for x in w]) == v
    assert obj.value([x.tolist() for x in w]) == v
    ints = [np.ones((10, 12), dtype=np.int32), np.ones((15, 10), dtype=np.int64)]
    assert obj.value(ints) == obj.value([x.astype(float) for x in ints])
    with pytest.raises(ValueError, match=r"factors\[0\]: expected a real \(float64\) array, "
                                         r"got dtype complex128"):
        obj.value([w[0].astype(complex), w[1]])
    with pytest.raises(ValueError, match=r"factors\[1\]: expected shape \(15, 10\), got \(10, 15\)"):
        obj.value([w[0], w[1].T])
    with pytest.raises(ValueError, match=r"factors\[0\]: expected a 2-D array, got shape \(120,\)"):
        obj.value([w[0].ravel(), w[1]])
    with pytest.raises(ValueError, match=r"factors: expected 2 factors \(depth\), got 1"):
        obj.value([w[0]])
    with pytest.raises(ValueError, match=r"r: expected an integer array, got dtype float64"):
        dln.CompletionLoss(3, 3, [0.0, 1.0], [0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"W: expected shape \(15, 12\)"):
        problem.loss.value(np.zeros((12, 15)))
    with pytest.raises(ValueError, match="optimizer.lr: must be finite and > 0"):
        dln.train_factors(obj, w, {"lr": 0})
    with pytest.raises(ValueError, match="stop.max_iter: unknown key"):
        dln.train_factors(obj, w, {"lr": 0.1}, {"max_iter": 3})


def test_optimizer_and_options_objects():
    problem = dln.make_problem(PROBLEM)
    dims = [12, 10, 15]
    obj = dln.Objective(dims, problem.loss)
    w = dln.initialize(dims, seed=3)
    opt = dln.OptimizerOptions()
    opt.name, opt.lr = "gd", 0.3
    stop = dln.StopOptions()
    stop.max_iters = 3
    rec = dln.RecordOptions()
    rec.every = 1
    run = dln.train_factors(obj, w, opt, stop, rec)
    # three manual GD steps give the same factors
    step = dln.Optimizer({"name": "gd", "lr": 0.3}, w)
    for _ in range(3):
        _, g = obj.value_and_gradient(w)
        w = step.step(w, g)
    for a, b in zip(run.factors, w):
        assert np.array_equal(a, b)
    assert run.summary.iterations == 3 and len(run.history["loss"]) == 4


def test_flows_and_end_to_end_at_object_level():
    problem = dln.make_problem({"kind": "regression", "rows": 4, "cols": 5, "samples": 40})
    dims = [5, 5, 4]
    obj = dln.Objective(dims, problem.loss)
    w = dln.initialize(dims, "balanced", 0.1, seed=2)
    flow = dln.train_factors(obj, w, {"name": "gradient_flow", "time": 5.0}, None, {"dt": 1.0})
    assert flow.summary.continuous and "time" in flow.history
    e2e = dln.train_factors(obj, w, {"name": "end_to_end", "time": 5.0}, None, {"dt": 1.0})
    np.testing.assert_allclose(e2e.end_to_end, flow.end_to_end, rtol=1e-5, atol=1e-7)


def test_diagnostics():
    rng = np.random.default_rng(1)
    target = rng.normal(size=(4, 6))
    w = dln.balanced_factors([6, 5, 4], target)
    assert dln.unbalancedness(w) < 1e-12
    np.testing.assert_allclose(dln.end_to_end(w), target, atol=1e-12)
    s = dln.singular_values(target)
    assert s.shape == (4,) and np.all(np.diff(s) <= 0)
    assert 1 <= dln.effective_rank(s) <= 4
    g = rng.normal(size=(4, 6))
    p = dln.materialize_preconditioner(target, 3)
    np.testing.assert_allclose(dln.apply_preconditioner(target, g, 3).ravel(order="F"),
                               p @ g.ravel(order="F"), rtol=1e-10, atol=1e-12)
    vals, vecs = dln.preconditioner_spectrum(target, 3)
    np.testing.assert_allclose(vecs @ np.diag(vals) @ vecs.T, p, atol=1e-10)
    tracker = dln.AnalyticSvdTracker()
    for t in np.linspace(0, 1, 5):
        tracker.update(t, target * (1 - 2 * t))
    assert tracker.sigma_history.shape == (5, 4)
    assert np.all(tracker.sigma < 0)  # passed through zero: signed values
    m = dln.end_to_end_metrics(target, target)
    assert m["recon_mse"] == 0 and m["nuclear_norm"] == pytest.approx(s.sum())


def test_baselines():
    problem = dln.make_problem({"kind": "completion", "rows": 12, "cols": 10, "rank": 1,
                                "observations": 70, "seed": 2})
    r, c, b = problem.observations
    res = dln.min_nuclear_norm_completion(12, 10, r, c, b)
    assert res["termination"] == "converged" and res["max_violation"] < 1e-6
    np.testing.assert_allclose(res["x"][r, c], b, atol=1e-6)
    si = dln.soft_impute(12, 10, r, c, b, 0.1)
    assert isinstance(si["x"], dln.LowRank) and si["x"].dense().shape == (12, 10)
    al = dln.als(12, 10, r, c, b, rank=2, lam=0.01)
    assert al["train_rmse"] < 0.1 * np.sqrt(np.mean(np.square(b)))
    with pytest.raises(ValueError, match="soft_impute.lambda"):
        dln.soft_impute(12, 10, r, c, b, -1.0)
