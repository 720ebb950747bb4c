"""Section 5 from Python: tensor runs through dln.train, CP-ALS, the CP-rank estimate, dense
tensors and component norms (docs/tensors.md)."""
import numpy as np
import pytest

import dln

BASE = {
    "problem": {"kind": "tensor_completion", "shape": [5, 4, 3], "rank": 2, "observations": 40},
    "network": {"model": "cp", "components": 6, "init_scale": 0.2},
    "optimizer": {"name": "gd", "lr": 0.5},
    "stop": {"max_iters": 300},
    "record": {"every": 50, "components": 4},
}


def test_cp_run_matches_its_run_directory(tmp_path):
    r = dln.train(BASE, out=tmp_path / "run")
    assert isinstance(r, dln.TensorResult) and r.model == "cp"
    assert r.end_to_end.shape == (5, 4, 3)
    np.testing.assert_allclose(dln.dense_tensor(r.factors, [5, 4, 3]), r.end_to_end, atol=1e-14)
    saved = [np.load(tmp_path / "run" / "factors" / f"U{k}.npy") for k in (1, 2, 3)]
    for a, b in zip(saved, r.factors):
        np.testing.assert_array_equal(a, b)
    # The last record's top component norms are the sorted norms of the final factors.
    norms = np.sort(dln.component_norms(saved, [5, 4, 3])[0])[::-1][:4]
    np.testing.assert_allclose(r.history["component_norms"][-1], norms, rtol=1e-12)
    assert r.summary["iterations"] == 300
    gt = np.load(tmp_path / "run" / "data" / "ground_truth.npy")
    err = np.linalg.norm(r.end_to_end - gt) / np.linalg.norm(gt)
    assert err == pytest.approx(r.history["recon_rel_error"][-1], rel=1e-12)


def test_observations_from_arrays_equal_the_csv_route(tmp_path):
    rng = np.random.default_rng(0)
    flat = rng.choice(60, size=25, replace=False)
    idx = np.stack(np.unravel_index(flat, (5, 4, 3)), axis=1)
    vals = rng.normal(size=25)
    csv = tmp_path / "obs.csv"
    csv.write_text("i1,i2,i3,value\n" + "".join(f"{a},{b},{c},{v!r}\n" for (a, b, c), v in zip(idx, vals)))
    from_arrays = dln.train(BASE, observations=(idx, vals))
    cfg = {**BASE, "problem": {**BASE["problem"], "observations_file": str(csv)}}
    from_file = dln.train(cfg)
    for a, b in zip(from_arrays.factors, from_file.factors):
        np.testing.assert_array_equal(a, b)
    assert from_arrays.ground_truth is None


def test_hierarchical_run_and_local_component_norms():
    cfg = {**BASE, "network": {"model": "hierarchical", "widths": [3, 4], "init_scale": 0.5},
           "problem": {**BASE["problem"], "shape": [3, 2, 3, 2], "observations": 20}}
    r = dln.train(cfg)
    assert r.model == "hierarchical" and len(r.factors) == 7
    norms = dln.component_norms(r.factors, [3, 2, 3, 2], model="hierarchical", widths=[3, 4])
    assert [len(n) for n in norms] == [3, 3, 4]  # two level-1 nodes (R_0 = 3), the root (R_1 = 4)
    # Root local component r: ||column r of each child|| * |root weight r|.
    h = r.factors
    want = np.linalg.norm(h[4], axis=0) * np.linalg.norm(h[5], axis=0) * np.abs(h[6][:, 0])
    np.testing.assert_allclose(norms[2], want, rtol=1e-13)


def test_cp_als_and_rank_estimate_recover_a_planted_rank():
    rng = np.random.default_rng(1)
    u = [rng.normal(size=(d, 3)) for d in (6, 5, 4)]
    t = np.einsum("ar,br,cr->abc", *u)
    _, err = dln.cp_als(t, 3)
    assert err < 1e-8
    est = dln.estimate_cp_rank(t, tol=1e-6)
    assert est["rank"] == 3 and est["errors"][1] > 1e-3
    idx = np.stack(np.unravel_index(rng.choice(120, 80, replace=False), t.shape), axis=1)
    f, err = dln.cp_als_completion(idx, t[tuple(idx.T)], list(t.shape), 3)
    assert np.linalg.norm(dln.dense_tensor(f, list(t.shape)) - t) / np.linalg.norm(t) < 1e-6


@pytest.mark.parametrize("bad,message", [
    (np.array([[0, 0, 0], [0, 0, 0]]), "observations: entry 1: duplicate of entry 0 (0, 0, 0)"),
    (np.array([[0, 9, 0], [0, 0, 1]]), "observations: entry 0: index i2 = 9 out of range [0, 4)"),
    (np.array([[0, 0], [1, 1]]),
     "observations[0] (indices): expected an m x 3 array (the order of the shape)"),
])
def test_bad_observations_name_the_entry(bad, message):
    with pytest.raises(ValueError) as e:
        dln.train(BASE, observations=(bad, np.array([1.0, 2.0])))
    assert str(e.value) == message


def test_bad_tensor_configs_raise_the_cli_message():
    with pytest.raises(ValueError, match=r"^problem.shape: order 1 < 2"):
        dln.train({**BASE, "problem": {**BASE["problem"], "shape": [5]}})
    with pytest.raises(ValueError, match=r"^problem.rank: the ground truth's CP rank 7 exceeds"):
        dln.train({**BASE, "problem": {**BASE["problem"], "rank": 7}})
