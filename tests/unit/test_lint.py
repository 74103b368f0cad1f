"""The code passes its linters: ruff over the whole tree, mypy over the packages pyproject.toml
names (``[tool.mypy] files``). Both read their settings from pyproject.toml, so what a developer
runs by hand (``.venv/bin/ruff check``, ``.venv/bin/mypy``) is what this test runs."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support.components import require_module

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing() -> None:
    require_module("ruff", "dev")
    proc = _run("ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_mypy_finds_nothing_in_the_typed_packages() -> None:
    require_module("mypy", "dev")
    proc = _run("mypy", "--no-incremental")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout


def test_no_two_test_modules_share_a_name() -> None:
    """pytest imports the test folders' modules by their base name (no package ``__init__``): a
    second ``test_x.py`` in another folder stops the whole collection with an import mismatch."""
    import collections
    import glob

    names = collections.Counter(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "tests", "**", "test_*.py"),
                                                                       recursive=True))
    assert not [name for name, count in names.items() if count > 1]
