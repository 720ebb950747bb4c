#!/usr/bin/python3
"""Synthetic rating files for `dln complete` (docs/complete.md).

Truth: a low-rank matrix L = U V^T (U users x rank, V items x rank, i.i.d. normal, scaled so that
the entries of L have standard deviation --signal) around a global mean --mean. A rating is
round(mean + L[u, i] + N(0, noise^2)) clipped to [--min-rating, --max-rating] (integer stars).

Which pairs are rated: users and items have power-law activity (weight of the k-th most active
one is (k + 1)^(-alpha), with --alpha), every user and item gets at least --min-per-user /
--min-per-item ratings, the rest are drawn by weight without replacement. Lines come in a shuffled
order; ids are strings like u0012 / m0345 (or integers with --int-ids), in a shuffled order too.

--truth FILE writes --truth-pairs unobserved pairs as `user,item,rating,expected`: `rating` drawn
like the observed ones, `expected` = mean + L[u, i] (noiseless, unrounded); --pairs FILE writes
the same pairs as `user,item` (input for `dln complete --predict`).

Run with Debian's /usr/bin/python3 (numpy), e.g.
  /usr/bin/python3 scripts/generate_ratings.py --users 943 --items 1682 --ratings 100000 \\
      --rank 8 --seed 1 --out /tmp/ml100k.csv --truth /tmp/ml100k_truth.csv
"""
import argparse
import sys

import numpy as np


def weights(n, alpha, rng):
    w = (np.arange(n) + 1.0) ** (-alpha)
    rng.shuffle(w)  # activity not tied to the index
    return w / w.sum()


def sample_pairs(users, items, m, alpha, min_user, min_item, rng, taken=None):
    """m distinct (user, item) pairs, none in `taken` (a set of keys u * items + i)."""
    keys = np.empty(0, dtype=np.int64)
    blocked = np.array(sorted(taken), dtype=np.int64) if taken else np.empty(0, dtype=np.int64)

    def add(new):
        nonlocal keys
        new = np.setdiff1d(np.unique(new), blocked, assume_unique=False)
        keys = np.union1d(keys, new)

    pu, pi = weights(users, alpha, rng), weights(items, alpha, rng)
    if min_user > 0:  # every user rates min_user items, every item gets min_item users
        add(np.repeat(np.arange(users), min_user) * items
            + rng.choice(items, size=users * min_user, p=pi))
    if min_item > 0:
        add(rng.choice(users, size=items * min_item, p=pu) * items
            + np.repeat(np.arange(items), min_item))
    if keys.size > m:
        raise SystemExit(f"--ratings {m}: below the minimum activity ({keys.size} pairs)")
    while keys.size < m:
        need = m - keys.size
        batch = max(2 * need, 1000)
        add(rng.choice(users, size=batch, p=pu) * items + rng.choice(items, size=batch, p=pi))
    if keys.size > m:  # drop random extras among the weighted draws
        keys = rng.choice(keys, size=m, replace=False)
    keys = rng.permutation(keys)
    return keys // items, keys % items


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, required=True)
    ap.add_argument("--items", type=int, required=True)
    ap.add_argument("--ratings", type=int, required=True)
    ap.add_argument("--rank", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="ratings CSV to write")
    ap.add_argument("--mean", type=float, default=3.5)
    ap.add_argument("--signal", type=float, default=1.0, help="std of the low-rank part")
    ap.add_argument("--noise", type=float, default=0.3, help="std of the noise before rounding")
    ap.add_argument("--min-rating", type=int, default=1)
    ap.add_argument("--max-rating", type=int, default=5)
    ap.add_argument("--alpha", type=float, default=0.8, help="power-law exponent of activity")
    ap.add_argument("--min-per-user", type=int, default=3)
    ap.add_argument("--min-per-item", type=int, default=1)
    ap.add_argument("--int-ids", action="store_true", help="integer ids instead of u0012/m0345")
    ap.add_argument("--no-header", action="store_true")
    ap.add_argument("--truth", help="held-out pairs with ratings and noiseless expected values")
    ap.add_argument("--pairs", help="the held-out pairs as user,item (for --predict)")
    ap.add_argument("--truth-pairs", type=int, default=1000)
    a = ap.parse_args()
    if a.users < 1 or a.items < 1 or a.rank < 1 or a.ratings < 1:
        sys.exit("--users, --items, --rank, --ratings: must be >= 1")
    if a.ratings + (a.truth_pairs if (a.truth or a.pairs) else 0) > a.users * a.items:
        sys.exit("--ratings: more than the matrix has cells")
    rng = np.random.default_rng(a.seed)
    u = rng.standard_normal((a.users, a.rank))
    v = rng.standard_normal((a.items, a.rank))
    scale = a.signal / np.sqrt(a.rank)  # entries of U V^T have variance rank
    u *= np.sqrt(scale)
    v *= np.sqrt(scale)

    def rate(r, c):
        expected = a.mean + np.einsum("ij,ij->i", u[r], v[c])
        noisy = expected + a.noise * rng.standard_normal(r.size)
        return np.clip(np.rint(noisy), a.min_rating, a.max_rating).astype(int), expected

    r, c = sample_pairs(a.users, a.items, a.ratings, a.alpha, a.min_per_user, a.min_per_item, rng)
    stars, _ = rate(r, c)
    uw, iw = max(4, len(str(a.users - 1))), max(4, len(str(a.items - 1)))
    uperm, iperm = rng.permutation(a.users), rng.permutation(a.items)  # id of index k
    if a.int_ids:
        uid = [str(10 * k + 7) for k in uperm]
        iid = [str(100000 + k) for k in iperm]
    else:
        uid = [f"u{k:0{uw}d}" for k in uperm]
        iid = [f"m{k:0{iw}d}" for k in iperm]
    with open(a.out, "w") as f:
        if not a.no_header:
            f.write("user,item,rating\n")
        f.writelines(f"{uid[x]},{iid[y]},{s}\n" for x, y, s in zip(r, c, stars))
    if a.truth or a.pairs:
        taken = set((r * a.items + c).tolist())
        tr, tc = sample_pairs(a.users, a.items, a.truth_pairs, a.alpha, 0, 0, rng, taken)
        tstars, expected = rate(tr, tc)
        if a.truth:
            with open(a.truth, "w") as f:
                f.write("user,item,rating,expected\n")
                f.writelines(f"{uid[x]},{iid[y]},{s},{e:.6f}\n"
                             for x, y, s, e in zip(tr, tc, tstars, expected))
        if a.pairs:
            with open(a.pairs, "w") as f:
                f.write("user,item\n")
                f.writelines(f"{uid[x]},{iid[y]}\n" for x, y in zip(tr, tc))


if __name__ == "__main__":
    main()
