"""Claim 1 (Section 3.2 of the notes) in Python: l* by Newton, iterations to epsilon, the
best-rate search with a Python run function, and the discrete end-to-end update."""
import math

import numpy as np
import pytest

import dln


def lp_data(d0=6, m=50, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(d0, m)), rng.normal(size=(1, m))


def test_lp_optimum_p2_is_least_squares():
    x, y = lp_data()
    r = dln.lp_regression_optimum(x, y, 2)
    w = np.linalg.lstsq(x.T, y.T, rcond=None)[0].T
    assert r["converged"]
    np.testing.assert_allclose(r["w"], w, rtol=1e-10, atol=1e-12)
    assert r["loss"] == pytest.approx(np.mean((w @ x - y) ** 2), rel=1e-12)
    assert r["w"].shape == (1, 6)


def test_lp_optimum_p4_is_certified():
    x, y = lp_data(seed=1)
    r = dln.lp_regression_optimum(x, y, 4)
    assert r["converged"] and r["iterations"] > 0
    assert r["grad_norm"] <= 1e-10
    # The certificate is the gradient of l at w: recompute it here (l = 1/m sum r^4).
    res = r["w"] @ x - y
    assert r["loss"] == pytest.approx(np.mean(res ** 4), rel=1e-12)
    assert np.linalg.norm(4 * (res ** 3) @ x.T / x.shape[1]) <= 1e-10
    # It agrees with the built-in loss and no nearby point is lower.
    loss = dln.LpRegressionLoss(x, y, 4)
    assert loss.value(r["w"]) == pytest.approx(r["loss"], rel=1e-12)
    rng = np.random.default_rng(2)
    for _ in range(5):
        assert loss.value(r["w"] + 1e-3 * rng.normal(size=(1, 6))) > r["loss"]


def test_lp_optimum_errors():
    x, y = lp_data()
    with pytest.raises(ValueError, match="problem.p: must be an even integer >= 2, got 3"):
        dln.lp_regression_optimum(x, y, 3)
    with pytest.raises(ValueError, match=r"lp optimum: grad_tol: must be finite and >= 0"):
        dln.lp_regression_optimum(x, y, 4, grad_tol=-1)
    with pytest.raises(ValueError, match=r"Y: expected shape \(\*, 50\), got \(1, 49\)"):
        dln.lp_regression_optimum(x, y[:, :49], 4)


def test_iterations_to_epsilon_on_a_hand_history():
    it = [0, 10, 20, 30]
    loss = [2.0, 1.5, 1.01, 1.0001]
    assert dln.iterations_to_epsilon(it, loss, 1.0, 0.1) == 20
    assert dln.iterations_to_epsilon(it, loss, 1.0, 1.0) == 0
    assert dln.iterations_to_epsilon(it, loss, 1.0, 1e-3) == 30
    assert dln.iterations_to_epsilon(it, loss, 1.0, 1e-5) is None  # t = infinity
    # NaN records never count; numpy arrays work as lists do.
    assert dln.iterations_to_epsilon(np.array([0, 5]), np.array([np.nan, 0.5]), 0.0, 1.0) == 5
    # A history dict (as TrainResult.history) or an object with .history.
    assert dln.iterations_to_epsilon({"iteration": it, "loss": loss}, 1.0, 0.1) == 20
    assert dln.iterations_to_epsilon({"history": {"iteration": it, "loss": loss}}, 1.0, 0.1) == 20
    with pytest.raises(ValueError, match="iterations_to_epsilon: 4 iterations but 3 losses"):
        dln.iterations_to_epsilon(it, loss[:3], 1.0, 0.1)
    with pytest.raises(ValueError, match="iterations_to_epsilon: epsilon must be > 0, got 0"):
        dln.iterations_to_epsilon(it, loss, 1.0, 0.0)
    with pytest.raises(ValueError, match="history: expected a dict with 'iteration' and 'loss'"):
        dln.iterations_to_epsilon({"loss": loss}, 1.0, 0.1)


def test_iterations_to_epsilon_on_a_train_result():
    x, y = lp_data()
    loss = dln.LpRegressionLoss(x, y, 4)
    opt = dln.lp_regression_optimum(x, y, 4)
    run = dln.train_factors(dln.Objective([6, 1], loss), [np.zeros((1, 6))],
                            {"name": "gd", "lr": 0.02}, {"max_iters": 400}, {"every": 1})
    t = dln.iterations_to_epsilon(run, opt["loss"], 1e-3)
    h = run.history
    assert t == dln.iterations_to_epsilon(h["iteration"], h["loss"], opt["loss"], 1e-3)
    assert t is not None and 0 < t < 400
    assert h["loss"][t] - opt["loss"] <= 1e-3 < h["loss"][t - 1] - opt["loss"]


def gd_on_quadratic(eta, steps=20):
    """GD on l(w) = (w - 1)^2 from w = 0: the error is multiplied by (1 - 2 eta) each step, so
    eta = 0.5 is exact after one step and eta >= 1 never converges."""
    w = 0.0
    for _ in range(steps):
        w -= eta * 2 * (w - 1)
    loss = (w - 1) ** 2
    return loss, steps, not math.isfinite(loss) or loss > 1e10


def test_search_best_rate_picks_one_half():
    s = dln.search_best_rate(gd_on_quadratic, 0.125)
    assert s["best_rate"] == 0.5
    assert s["points"][s["best"]] == {"rate": 0.5, "final_loss": 0.0, "iterations": 20,
                                      "diverged": False}
    assert s["interior"]
    rates = [p["rate"] for p in s["points"]]
    assert rates[:5] == [0.125, 0.25, 0.5, 1.0, 2.0]  # upward first, then down from the start
    assert s["points"][rates.index(1.0)]["final_loss"] == 1.0  # |1 - 2 eta| = 1: stuck
    assert s["points"][rates.index(2.0)]["diverged"]
    # Bounds, and the dict form of a run's report.
    s = dln.search_best_rate(lambda eta: {"final_loss": gd_on_quadratic(eta)[0]}, 0.125,
                             max_rate=0.25)
    assert s["best_rate"] == 0.25 and not s["interior"]
    g = dln.best_rate_on_grid(gd_on_quadratic, [0.1, 0.5, 1.0, 3.0])
    assert g["best"] == 1 and g["best_rate"] == 0.5 and g["interior"]
    assert dln.grid_index(0.5, 0.125, 2.0) == 2


def test_search_best_rate_with_train_results():
    x, y = lp_data()
    objective = dln.Objective([6, 1], dln.LpRegressionLoss(x, y, 4))

    def run(lr):
        return dln.train_factors(objective, [np.zeros((1, 6))], {"name": "gd", "lr": lr},
                                 {"max_iters": 100}, {"every": 100})

    s = dln.search_best_rate(run, 0.01, max_points=12)
    assert s["best"] is not None
    best = s["points"][s["best"]]
    assert best["iterations"] == 100 and not best["diverged"]
    assert any(p["diverged"] for p in s["points"])  # too large a rate blows up


def test_search_best_rate_errors_propagate():
    calls = []

    def boom(eta):
        calls.append(eta)
        if len(calls) == 3:
            raise ZeroDivisionError("from run")
        return gd_on_quadratic(eta)

    with pytest.raises(ZeroDivisionError, match="from run"):
        dln.search_best_rate(boom, 0.125)
    assert len(calls) == 3
    with pytest.raises(KeyboardInterrupt):
        dln.best_rate_on_grid(lambda eta: (_ for _ in ()).throw(KeyboardInterrupt), [0.1])
    with pytest.raises(ValueError, match=r"run\(0.125\): expected \(final_loss, iterations, "):
        dln.search_best_rate(lambda eta: "nope", 0.125)
    with pytest.raises(ValueError, match=r"run\(0.125\): the dict has no 'final_loss'"):
        dln.search_best_rate(lambda eta: {"loss": 1.0}, 0.125)
    with pytest.raises(ValueError, match=r"run: expected a callable"):
        dln.search_best_rate(3, 0.125)
    with pytest.raises(ValueError, match="rate search: factor must be finite and > 1, got 1"):
        dln.search_best_rate(gd_on_quadratic, 0.125, factor=1.0)
    with pytest.raises(ValueError, match="rate search: the grid is empty"):
        dln.best_rate_on_grid(gd_on_quadratic, [])


def test_end_to_end_step_one_output():
    """For a 1 x d W, P(W) G = ||W||^{2-2/n} (G + (n - 1) (G . w_hat) w_hat) (Claim 1)."""
    rng = np.random.default_rng(3)
    w, g = rng.normal(size=(1, 7)), rng.normal(size=(1, 7))
    hat = w / np.linalg.norm(w)
    for n in (1, 2, 3, 5):
        p = np.linalg.norm(w) ** (2 - 2 / n) * (g + (n - 1) * (g @ hat.T) * hat)
        np.testing.assert_allclose(dln.end_to_end_step(w, g, n, 0.3), w - 0.3 * p, rtol=0,
                                   atol=1e-12)
        np.testing.assert_allclose(dln.apply_preconditioner(w, g, n), p, rtol=0, atol=1e-12)


def quartic_loss(x, y):
    """A user's loss: l_4 regression, (l(W), grad l(W))."""
    m = x.shape[1]

    def grad_fn(w):
        res = w @ x - y
        return float(np.mean(res ** 4)), 4 * (res ** 3) @ x.T / m

    return grad_fn


def test_end_to_end_descent_depth1_is_gd():
    """Depth 1: P(W) = I, so the update is W - zeta grad, GD with lr = zeta."""
    x, y = lp_data()
    grad_fn = quartic_loss(x, y)
    w0 = np.full((1, 6), 0.01)
    d = dln.end_to_end_descent(w0, grad_fn, 1, 0.02, 50)
    assert np.array_equal(d["iteration"], np.arange(51))
    assert d["iterations"] == 50 and not d["diverged"] and d["final_loss"] == d["loss"][-1]
    # The engine's GD on the same user loss: bit for bit (same update W -= lr * g).
    gd = dln.train_factors(dln.Objective([6, 1], dln.PythonLoss(1, 6, value_and_gradient=grad_fn)),
                           [w0], {"name": "gd", "lr": 0.02}, {"max_iters": 50}, {"every": 1})
    assert np.array_equal(gd.history["iteration"], d["iteration"])
    assert np.array_equal(gd.history["loss"], d["loss"])
    assert np.array_equal(gd.end_to_end, d["W"])
    # GD in numpy: equal to rounding (the engine's -march build may fuse W - lr g into an FMA).
    w, losses = w0.copy(), []
    for t in range(51):
        loss, g = grad_fn(w)
        losses.append(loss)
        if t < 50:
            w = w - 0.02 * g
    np.testing.assert_allclose(d["loss"], losses, rtol=1e-13, atol=0)
    np.testing.assert_allclose(d["W"], w, rtol=1e-13, atol=0)


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning")  # the rate search's diverged runs
def test_end_to_end_descent_records_and_claim1_quantities():
    x, y = lp_data()
    grad_fn = quartic_loss(x, y)
    l_star = dln.lp_regression_optimum(x, y, 4)["loss"]
    w0 = np.full((1, 6), 0.05)
    d = dln.end_to_end_descent(w0, grad_fn, 3, 0.02, 200, record_every=7)
    assert list(d["iteration"][:3]) == [0, 7, 14] and d["iteration"][-1] == 200
    # Each step is Claim 1's update: one more step by hand from the same point.
    full = dln.end_to_end_descent(w0, grad_fn, 3, 0.02, 1)
    np.testing.assert_array_equal(full["W"], dln.end_to_end_step(w0, grad_fn(w0)[1], 3, 0.02))
    t = dln.iterations_to_epsilon(d, l_star, 0.1)
    assert t is not None and t % 7 == 0
    # Its result is a run report for the rate search as well.
    s = dln.search_best_rate(lambda z: dln.end_to_end_descent(w0, grad_fn, 3, z, 100), 0.01,
                             max_points=10)
    assert s["best"] is not None and s["points"][s["best"]]["iterations"] == 100
    # Divergence stops early and is reported.
    big = dln.end_to_end_descent(w0, grad_fn, 1, 100.0, 1000)
    assert big["diverged"] and big["iterations"] < 1000
    assert not big["final_loss"] <= 1e100  # NaN, Inf or above the threshold
    assert big["iteration"][-1] == big["iterations"] and big["loss"][-1] == big["final_loss"]


def test_end_to_end_descent_errors():
    x, y = lp_data()
    w0 = np.zeros((1, 6))
    with pytest.raises(ValueError, match="end_to_end_descent: zeta must be finite and > 0"):
        dln.end_to_end_descent(w0, quartic_loss(x, y), 2, 0.0, 10)
    with pytest.raises(ValueError, match="grad_fn: must return \\(loss, gradient\\)"):
        dln.end_to_end_descent(w0, lambda w: 1.0, 2, 0.1, 10)
    with pytest.raises(ValueError, match=r"grad_fn: the gradient: expected shape \(1, 6\)"):
        dln.end_to_end_descent(w0, lambda w: (1.0, np.zeros((6, 1))), 2, 0.1, 10)
    with pytest.raises(RuntimeError, match="mine"):
        dln.end_to_end_descent(w0, lambda w: (_ for _ in ()).throw(RuntimeError("mine")), 2, 0.1,
                               10)
