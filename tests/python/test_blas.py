"""The BLAS kernel in the Python package: chosen and self-tested at import, as the CLI does."""
import json
import os
import subprocess
import sys

import dln


def blas_info_in_fresh_interpreter(**env):
    code = "import numpy, dln, json; print(json.dumps(dln.blas_info()))"
    full = dict(os.environ, **env)
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout), out.stderr


def test_blas_info_reports_a_self_tested_kernel():
    info = dln.blas_info()
    assert info["self_test_passed"] and info["self_test_error"] <= 1.0
    assert info["corename"] and info["reason"] and info["cpu_isa"] in ("sse3", "avx", "avx2", "avx512")


def test_generic_kernel_replaced_after_numpy_loaded_openblas():
    # numpy is imported first and shares the process's OpenBLAS; dln still switches it.
    info, _ = blas_info_in_fresh_interpreter(DLN_BLAS_TEST_OPENBLAS_CHOICE="Prescott",
                                             DLN_BLAS_CORETYPE="")
    assert info["openblas_choice"] == "Prescott"
    best = {"sse3": "Prescott", "avx": "Sandybridge", "avx2": "Haswell", "avx512": "SkylakeX"}
    assert info["corename"] == best[info["cpu_isa"]]
    assert info["override"] == ""


def test_override_and_fall_back_match_the_cli():
    info, _ = blas_info_in_fresh_interpreter(DLN_BLAS_CORETYPE="Prescott")
    assert info["corename"] == "Prescott" and info["override"] == "DLN_BLAS_CORETYPE=Prescott"
    info, err = blas_info_in_fresh_interpreter(DLN_BLAS_CORETYPE="Prescott",
                                               DLN_BLAS_SELFTEST_FAULT="all")
    assert not info["self_test_passed"]
    # Prescott, then OpenBLAS's own choice (where it differs) were tried: one line names them.
    assert err.startswith("dln: warning: BLAS kernel Prescott") and err.count("\n") == 1
    assert err.endswith("failed dln's self-test (wrong products); no kernel passed, "
                        "results may be wrong\n")


def test_unknown_override_fails_the_import_with_the_cli_message():
    full = dict(os.environ, DLN_BLAS_CORETYPE="Pentium4000")
    out = subprocess.run([sys.executable, "-c", "import dln"], env=full, capture_output=True,
                         text=True)
    assert out.returncode != 0
    assert "ImportError: dln: DLN_BLAS_CORETYPE=Pentium4000: not an OpenBLAS kernel" in out.stderr
