#!/usr/bin/python3
"""Independent cross-check of dln's minimum nuclear norm baseline (notes Section 4.1, Eq. 10)
against CVXOPT's interior-point SDP solver.

The SDP is the standard lifting (Recht, Fazel, Parrilo 2010):
    min (tr W1 + tr W2) / 2  s.t.  [[W1, X], [X^T, W2]] PSD,  <A_i, X> = b_i  (or |.. - b_i| <= tol)
whose optimal value is min ||X||_*. For random small completion and sensing instances, with
equality and box constraints, this script runs dln (through the driver binary given as argv[1]),
then checks independently with numpy: the returned X meets the constraints, its nuclear norm is
what dln printed, dln's dual bound lies below CVXOPT's optimum, and the two optima agree to 1e-6
relative.

Usage: /usr/bin/python3 tests/nuclear_norm_cvxopt.py PATH/TO/dln_nuclear_norm_driver
Exit 0: all pass; 1: a check failed; 77: skipped (numpy or cvxopt missing).
"""

import os
import subprocess
import sys
import tempfile

# These SDPs are tiny: threaded OpenBLAS only adds spin-waits, and on a loaded 2-core machine its
# threads stalled cvxopt's solves for minutes (the test timed out). One thread; before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:
    import numpy as np
    from cvxopt import matrix, solvers, spmatrix
except ImportError as e:  # pragma: no cover
    print(f"SKIP: {e} (install python3-numpy and python3-cvxopt)")
    sys.exit(77)

REL_TOL = 1e-6  # agreement required between dln and CVXOPT optima


def sdp_min_nuclear_norm(rows, cols, a, b, tol):
    """min ||X||_* s.t. A vec(X) = b (tol = 0) or |A vec(X) - b| <= tol, via CVXOPT's sdp.

    a: m x (rows*cols), row i = vec(A_i) column-first. Returns (optimum, X)."""
    p, q = rows, cols
    n_dim = p + q
    nx = p * q
    # Variables: vec(X) column-first, then the lower triangles of W1 (p x p) and W2 (q x q).
    tri1 = [(k, l) for l in range(p) for k in range(l, p)]
    tri2 = [(k, l) for l in range(q) for k in range(l, q)]
    nvar = nx + len(tri1) + len(tri2)

    c = np.zeros(nvar)
    # Gs x = -vec(M(x)), M = [[W1, X], [X^T, W2]] (both triangles filled, column-major).
    gi, gj, gv = [], [], []

    def put(r, cc, var):
        gi.append(r + cc * n_dim)
        gj.append(var)
        gv.append(-1.0)

    for j in range(q):
        for i in range(p):
            var = i + j * p
            put(i, p + j, var)
            put(p + j, i, var)
    for t, (k, l) in enumerate(tri1):
        var = nx + t
        put(k, l, var)
        if k != l:
            put(l, k, var)
        else:
            c[var] = 0.5
    for t, (k, l) in enumerate(tri2):
        var = nx + len(tri1) + t
        put(p + k, p + l, var)
        if k != l:
            put(p + l, p + k, var)
        else:
            c[var] = 0.5
    gs = spmatrix(gv, gi, gj, (n_dim * n_dim, nvar))
    hs = matrix(0.0, (n_dim, n_dim))

    m = a.shape[0]
    a_full = np.zeros((m, nvar))
    a_full[:, :nx] = a
    kwargs = {}
    if tol == 0:
        kwargs["A"] = matrix(a_full)
        kwargs["b"] = matrix(b.astype(float))
    else:
        kwargs["Gl"] = matrix(np.vstack([a_full, -a_full]))
        kwargs["hl"] = matrix(np.concatenate([b + tol, -(b - tol)]))
    # Very tight tolerances can break CVXOPT's scaling update (division by zero); fall back to
    # looser ones. Even 1e-8 leaves a 100x margin below REL_TOL.
    sol, err = None, None
    for t in (1e-10, 1e-9, 1e-8):
        solvers.options.update({"show_progress": False, "abstol": t, "reltol": t, "feastol": t,
                                "maxiters": 200})
        try:
            sol = solvers.sdp(matrix(c), Gs=[gs], hs=[hs], **kwargs)
        except (ArithmeticError, ValueError) as e:
            err = e
            continue
        if sol["status"] == "optimal":
            break
    if sol is None or sol["x"] is None:
        raise RuntimeError(f"cvxopt failed: {err}")
    x = np.array(sol["x"]).ravel()
    xm = x[:nx].reshape((p, q), order="F")
    return sol["primal objective"], sol["dual objective"], sol["status"], xm


def run_dln(driver, workdir, kind, rows, cols, a, b, tol, obs=None):
    out = os.path.join(workdir, "x.npy")
    if kind == "completion":
        path = os.path.join(workdir, "obs.csv")
        with open(path, "w") as f:
            f.write("row,col,value\n")
            for (i, j), v in zip(obs, b):
                f.write(f"{i},{j},{v!r}\n")
        cmd = [driver, "completion", path, str(rows), str(cols), repr(tol), out, "1e-9"]
    else:
        pa, pb = os.path.join(workdir, "A.npy"), os.path.join(workdir, "b.npy")
        np.save(pa, a)
        np.save(pb, b)
        cmd = [driver, "sensing", pa, pb, str(rows), str(cols), repr(tol), out, "1e-9"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    info = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    return info, np.load(out)


def make_instance(rng, kind, rows, cols, m, rank):
    truth = rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, cols))
    if kind == "completion":
        flat = rng.choice(rows * cols, size=m, replace=False)
        obs = [(int(k % rows), int(k // rows)) for k in flat]  # column-major offsets
        a = np.zeros((m, rows * cols))
        a[np.arange(m), flat] = 1.0
    else:
        obs = None
        a = rng.standard_normal((m, rows * cols)) / np.sqrt(rows * cols)
    b = a @ truth.ravel(order="F")
    return a, b, obs


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    driver = sys.argv[1]
    cases = [  # kind, rows, cols, m, rank, tol, seed
        ("completion", 6, 5, 15, 2, 0.0, 1),
        ("completion", 6, 5, 15, 2, 1e-2, 2),
        ("completion", 8, 8, 30, 2, 0.0, 3),
        ("completion", 8, 8, 30, 2, 1e-3, 4),
        ("completion", 8, 8, 30, 3, 0.0, 5),
        ("completion", 7, 9, 40, 2, 5e-2, 6),
        ("sensing", 5, 4, 8, 1, 0.0, 7),
        ("sensing", 6, 6, 20, 2, 1e-2, 8),
    ]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="dln_nuclear_norm_") as workdir:
        for kind, rows, cols, m, rank, tol, seed in cases:
            rng = np.random.default_rng(seed)
            a, b, obs = make_instance(rng, kind, rows, cols, m, rank)
            info, x = run_dln(driver, workdir, kind, rows, cols, a, b, tol, obs)
            dln_nn = float(info["nuclear_norm"])
            dln_lb = float(info["dual_bound"])
            cvx_primal, cvx_dual, status, cvx_x = sdp_min_nuclear_norm(rows, cols, a, b, tol)
            cvx_nn = np.linalg.svd(cvx_x, compute_uv=False).sum()

            viol = np.max(np.abs(a @ x.ravel(order="F") - b)) - tol
            nn_numpy = np.linalg.svd(x, compute_uv=False).sum()
            checks = {
                "converged": info["termination"] == "converged",
                "feasible": x.shape == (rows, cols) and viol <= 1e-8,
                "printed nuclear norm": abs(nn_numpy - dln_nn) <= 1e-10 * dln_nn,
                "weak duality vs cvxopt": dln_lb <= cvx_primal * (1 + 1e-9),
                # "unknown" (iteration limit, all tolerances tried) is no reference to compare to
                "cvxopt status optimal": status == "optimal",
                "agrees with cvxopt": abs(dln_nn - cvx_primal) <= REL_TOL * cvx_primal,
            }
            ok = all(checks.values())
            failures += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {kind} {rows}x{cols} m={m} tol={tol:g}: "
                  f"dln {dln_nn:.10f} (bound {dln_lb:.10f}, {info['iterations']} it, "
                  f"{float(info['seconds']) * 1e3:.1f} ms)  cvxopt {cvx_primal:.10f} "
                  f"[dual {cvx_dual:.10f}, ||X||_* {cvx_nn:.10f}, {status}]  "
                  f"rel diff {abs(dln_nn - cvx_primal) / cvx_primal:.1e}  viol {max(viol, 0):.1e}")
            for name, passed in checks.items():
                if not passed:
                    print(f"     failed: {name}")
    print("PASS" if failures == 0 else f"{failures} case(s) FAILED")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
