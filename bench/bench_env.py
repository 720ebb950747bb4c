"""Environment helpers shared by the benchmark scripts (bench_completion.py, bench_authors.py)."""

from __future__ import annotations

import ctypes
import os
import re


def loaded_libraries(pattern: str) -> list[str]:
    """Shared libraries mapped into this process whose file name matches pattern (Linux only)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if re.search(pattern, os.path.basename(p)))


def openblas_handle() -> ctypes.CDLL | None:
    """The OpenBLAS already loaded in this process (torch's / numpy's), if any."""
    for path in loaded_libraries(r"openblas|libblas"):
        try:
            lib = ctypes.CDLL(path)
            lib.openblas_get_num_threads  # noqa: B018 - raises AttributeError if not OpenBLAS
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return lib
        except (OSError, AttributeError):
            continue
    return None


def write_json_atomic(path, data: dict) -> None:
    """Writes data as JSON through a temporary file, so an interrupted run keeps the last one."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def work_directory(keep, prefix: str):
    """A context manager yielding the directory for run directories: `keep` if given (created,
    kept), else a temporary directory removed afterwards."""
    import contextlib
    import tempfile

    if keep:
        keep.mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext(str(keep))
    return tempfile.TemporaryDirectory(prefix=prefix)
