#!/usr/bin/python3
"""A small Figure 3 of the notes (Section 4.3, Theorem 3) from Python: singular values of the
end-to-end matrix during gradient descent for depth 1, 2 and 3 on 30x30 rank-3 matrix sensing
(400 Gaussian measurements), identity init W(0) = 1e-3 I, learning rates 100, 2 and 0.5 (the
[quick] table of experiments/fig3.toml). Depth 1 learns every singular value at once; depth 2
and 3 learn them one at a time, more sharply with depth.

    PYTHONPATH=build/python /usr/bin/python3 examples/fig3_small.py [OUT.png]
"""
import sys
import time

import dln
import dln.plot

DEPTHS = {1: dict(lr=100.0, max_iters=1000, every=1),
          2: dict(lr=2.0, max_iters=3000, every=5),
          3: dict(lr=0.5, max_iters=8000, every=5)}


def main(out="fig3_small.png"):
    results, labels = [], []
    for depth, p in DEPTHS.items():
        config = {
            "problem": {"kind": "sensing", "rows": 30, "cols": 30, "rank": 3,
                        "observations": 400, "seed": 1},
            "network": {"depth": depth, "width": 30, "init": "identity",
                        "init_scale": 1e-3 ** (1.0 / depth), "seed": 1001},
            "optimizer": {"name": "gd", "lr": p["lr"]},
            "stop": {"max_iters": p["max_iters"], "loss_tol": 1e-9},
            "record": {"every": p["every"], "singular_values": 10},
        }
        start = time.perf_counter()
        result = dln.train(config)
        s = result.summary
        print(f"depth {depth}: {s['iterations']} iterations, loss {s['final_loss']:.3g}, "
              f"relative error {s['final']['recon_rel_error']:.3g}, "
              f"{time.perf_counter() - start:.2f} s")
        results.append(result)
        labels.append(f"depth {depth} (lr {p['lr']:g})")
    fig = dln.plot.singular_values(results, labels=labels, top=5)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(*sys.argv[1:])
