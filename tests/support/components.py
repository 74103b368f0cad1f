"""Checks for real components (Postgres, MPI, Slurm, Ray, TF, Chromium).

``require(name, available, why)``: skip the test when the component is missing on a
developer's machine, but *fail* when ``CI=true`` -- CI must run every real test.
"""
from __future__ import annotations

import os
import shutil

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(name: str, available: bool, why: str = "") -> None:
    if available:
        return
    message = f"{name} is not available{': ' + why if why else ''}"
    if IN_CI:
        pytest.fail(f"CI=true but {message} (CI must run this test; fix the install in .ci/run)")
    pytest.skip(message)


def require_executable(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    require(", ".join(missing) or "executables", not missing, "not on PATH")


def require_module(module: str, extra: str) -> None:
    import importlib.util

    require(module, importlib.util.find_spec(module) is not None, f"pip install 'hpcnas[{extra}]'")
