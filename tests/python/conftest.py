"""Shared fixtures of the Python package tests (run by CTest as python_package, or by hand:
PYTHONPATH=build/python DLN_BIN=build/dln /usr/bin/python3 -m pytest -q tests/python)."""
import os
import subprocess

import pytest


def toml_text(config):
    """A nested dict as TOML text (enough for dln configs: scalars, strings, lists)."""

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, float):
            return repr(v)
        return str(v)

    out = []
    for section, table in config.items():
        out.append(f"[{section}]")
        out.extend(f"{k} = {value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


@pytest.fixture(scope="session")
def dln_bin():
    path = os.environ.get("DLN_BIN")
    if not path or not os.path.exists(path):
        pytest.skip("DLN_BIN (the dln CLI) not set")
    return path


@pytest.fixture
def cli(dln_bin, tmp_path):
    """cli(config_dict, out_name, *extra) -> CompletedProcess of `dln train`."""

    def run(config, name="cli", *extra):
        cfg = tmp_path / f"{name}.toml"
        cfg.write_text(toml_text(config))
        return subprocess.run([dln_bin, "train", "--config", str(cfg), "--out",
                               str(tmp_path / name), "--quiet", *extra],
                              capture_output=True, text=True)

    return run
