#!/bin/sh
# Timings of the completion baselines (bench/RESULTS.md, "Minimum nuclear norm baseline" and
# "SoftImpute / ALS"): `dln baseline ...` on seeded synthetic low-rank problems, 1 and 2 BLAS
# threads. Prints one line per run: the problem, the threads, and dln's JSON summary plus the
# relative error ||X - X*||_F / ||X*||_F against the ground truth.
#
#   bench/bench_baselines.sh [path/to/dln]     (default build/dln; Release build expected)
set -eu
DLN=${1:-build/dln}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# name rows cols rank observations seed -> $TMP/name.csv, $TMP/name_truth.npy
$PY - "$TMP" <<'EOF'
import sys
import numpy as np
d = sys.argv[1]
def gen(name, m, n, k, nobs, seed):
    rng = np.random.default_rng(seed)
    s = k ** -0.25  # entries of X* have variance 1
    u = rng.standard_normal((m, k)) * s
    v = rng.standard_normal((n, k)) * s
    idx = rng.choice(m * n, nobs, replace=False)
    r, c = idx // n, idx % n
    vals = np.einsum("ij,ij->i", u[r], v[c])
    np.save(f"{d}/{name}_truth.npy", u @ v.T)
    with open(f"{d}/{name}.csv", "w") as f:
        f.write("row,col,value\n")
        f.writelines(f"{a},{b},{x:.17g}\n" for a, b, x in zip(r, c, vals))
gen("nn2000", 100, 100, 5, 2000, 1)
gen("nn5000", 100, 100, 5, 5000, 2)
gen("big", 2000, 3000, 10, 150000, 3)
EOF

rel_error() {  # rel_error X.npy truth.npy
  $PY -c "import numpy as np,sys; x=np.load(sys.argv[1]); t=np.load(sys.argv[2]); \
print(f'{np.linalg.norm(x-t)/np.linalg.norm(t):.3e} mse {np.mean((x-t)**2):.3e}')" "$1" "$2"
}

run() {  # run NAME THREADS ARGS...
  name=$1
  threads=$2
  shift 2
  json=$("$DLN" baseline "$@" --threads "$threads" --out "$TMP/x.npy")
  echo "$name threads=$threads rel_error $(rel_error "$TMP/x.npy" "$TMP/${name%%:*}_truth.npy")"
  echo "$json" | $PY -c "import json,sys; j=json.load(sys.stdin); p=j.pop('path', []); \
j.pop('out'); print('  ', json.dumps(j)); [print('    lambda %.4g rank %d iters %d s %.2f' % \
(q['lambda'], q['rank'], q['iterations'], q['seconds'])) for q in p]"
}

echo "$("$DLN" gemm-peak --size 1000 --threads 1 --repeats 3)"
echo "$("$DLN" gemm-peak --size 1000 --threads 2 --repeats 3)"
for t in 1 2; do
  for n in nn2000 nn5000; do
    run "$n:eq" $t nuclear-norm --observations "$TMP/$n.csv" --shape 100x100
    run "$n:box" $t nuclear-norm --observations "$TMP/$n.csv" --shape 100x100 --tol 1e-3
  done
done
for t in 1 2; do
  run "big:soft-impute-path" $t soft-impute --observations "$TMP/big.csv" --shape 2000x3000 \
    --path 10 --min-ratio 0.1
  run "big:soft-impute-lambda" $t soft-impute --observations "$TMP/big.csv" --shape 2000x3000 \
    --lambda 2.5
  run "big:als" $t als --observations "$TMP/big.csv" --shape 2000x3000 --rank 10 --lambda 0.01
done
