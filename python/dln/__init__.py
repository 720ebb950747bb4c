"""dln: deep linear neural networks (deep matrix factorization), Python bindings.

Two levels (docs/python.md):

* config level: ``result = dln.train(config)`` with ``config`` the nested dict of the TOML
  file; the same validation, the same run and the same run directory as ``dln train``;
* object level: losses (built-in or Python callables), ``Objective``, initializers,
  optimizers, ``train_factors`` with Python callbacks, diagnostics and baselines;
* Claim 1 (Section 3.2): ``lp_regression_optimum``, ``iterations_to_epsilon``,
  ``search_best_rate`` / ``best_rate_on_grid`` and ``end_to_end_descent`` on a user's loss.

Plotting lives in ``dln.plot`` (matplotlib, imported on demand); linear overparameterization
of torch.nn networks in ``dln.torch`` (import it explicitly: ``import dln.torch``).
"""
from ._dln import *  # noqa: F401,F403
from ._dln import __version__  # noqa: F401


class Callback:
    """Optional base class for training callbacks (duck typing works as well).

    Define ``on_step(iteration, loss)`` (called every ``every`` optimizer steps) and/or
    ``on_record(row, factors)`` (called at every record, ``row`` a dict with the columns of
    history.csv plus ``singular_values``, ``factors`` copies of W_1..W_n). Returning ``False``
    stops the run with termination ``"callback"``; ``None``/``True`` continue. An exception
    stops the run and propagates out of ``dln.train`` / ``dln.train_factors``.
    """

    every = 1


def load_run(directory):
    """Reads a run directory (docs/run-directory.md) into a dict: ``summary``, ``config``,
    ``history`` (dict of numpy columns), ``singular_values`` (records x K), ``end_to_end``,
    ``factors``, ``init`` and, when present, ``analytic_singular_values``."""
    import csv
    import json
    import os
    import tomllib

    import numpy as np

    def table(name):
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            return None
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        cols = {}
        for j, h in enumerate(header):
            vals = [float(r[j]) if j < len(r) and r[j] != "" else float("nan") for r in body]
            cols[h] = np.array(vals, dtype=np.int64 if h == "iteration" else np.float64)
        return cols

    def factors(sub):
        d = os.path.join(directory, sub)
        out, j = [], 1
        while os.path.exists(os.path.join(d, f"W{j}.npy")):
            out.append(np.load(os.path.join(d, f"W{j}.npy")))
            j += 1
        return out

    def matrix(cols, prefix):
        if cols is None:
            return None
        keys = [k for k in cols if k.startswith(prefix) and k[len(prefix):].isdigit()]
        keys.sort(key=lambda k: int(k[len(prefix):]))
        return np.column_stack([cols[k] for k in keys]) if keys else np.zeros((0, 0))

    run = {}
    with open(os.path.join(directory, "summary.json")) as f:
        run["summary"] = json.load(f)
    with open(os.path.join(directory, "config.toml"), "rb") as f:
        run["config"] = tomllib.load(f)
    run["history"] = table("history.csv")
    sv = table("singular_values.csv")
    run["singular_values"] = matrix(sv, "s")
    run["singular_values_iteration"] = sv["iteration"] if sv else None
    asv = table("analytic_singular_values.csv")
    if asv is not None:
        run["analytic_singular_values"] = matrix(asv, "sigma")
    run["end_to_end"] = np.load(os.path.join(directory, "end_to_end.npy"))
    run["factors"] = factors("factors")
    run["init"] = factors("init")
    return run
