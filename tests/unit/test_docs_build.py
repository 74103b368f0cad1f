"""The documentation builds without warnings; README's commands are the ones CI and users run."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_sphinx_builds_with_warnings_as_errors(tmp_path) -> None:
    pytest.importorskip("sphinx")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), os.path.join(ROOT, "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for page in ("index", "quickstart", "cli", "evaluators"):
        assert (tmp_path / "html" / f"{page}.html").exists()
    assert "SearchMaster" in (tmp_path / "html" / "quickstart.html").read_text()


def _readme_commands() -> list[str]:
    with open(os.path.join(ROOT, "README.rst"), encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.startswith("    sh tests/install_system_packages.sh")]


def test_readme_starts_with_the_two_commands() -> None:
    search, tests = _readme_commands()[:2]
    assert "--minimal" in search and "/usr/bin/python3 -m venv .venv" in search
    assert re.search(r"\.venv/bin/hpcnas hps ambs --problem hpcnas\.benchmark\.polynome2\.Problem "
                     r"--run hpcnas\.benchmark\.polynome2\.run", search)
    assert tests == ("sh tests/install_system_packages.sh && /usr/bin/python3 -m venv .venv && "
                     ".venv/bin/pip install -e '.[all]' && bash tests/install_horovod_env.sh && "
                     ".venv/bin/python -m pytest")


def test_ci_runs_only_the_readme_command() -> None:
    """What a newcomer runs from README is all CI runs: no extra environment built or exported."""
    script = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    code = [line for line in script.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert not [line for line in code if "install_" in line and "grep" not in line]
    assert not [line for line in code if "export" in line and "CI=true" not in line]


def test_ci_runs_the_readme_test_command_and_fails_on_no_tests(tmp_path) -> None:
    script = open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8").read()
    assert "grep -m1 '^    sh tests/install_system_packages.sh && ' README.rst" in script
    # run .ci/run on a copy whose README command is replaced by a pytest-like "no tests" exit
    (tmp_path / ".ci").mkdir()
    (tmp_path / "tests").mkdir()
    for helper in set(re.findall(r"tests/[\w.-]+\.sh", script)) | {"tests/install_system_packages.sh"}:
        (tmp_path / helper).write_text("echo stand-in\n")  # the real ones install packages
    (tmp_path / ".ci" / "run").write_text(script)
    (tmp_path / "README.rst").write_text("x\n\n    sh tests/install_system_packages.sh && exit 5\n")
    proc = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 5 and "no tests" in proc.stderr
    (tmp_path / "README.rst").write_text("nothing here\n")
    proc = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "missing from README" in proc.stderr
