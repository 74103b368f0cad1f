"""Hyper-parameter values never pass through a shell (issue 7, security), local evaluator.

:data:`NASTY` holds categorical values built to do harm if any layer handed them to a shell:
the issue's ``"; rm -rf ~; echo "``, command substitutions and separators that would create
``hpcnas_pwned_*`` marker files, quotes, ``~``, ``$HOME``, a newline, format-string braces. A real
search (``hpcnas hps random``, local evaluator, HOME pointing at a folder with a canary file) must
hand each to ``run`` as the exact string, and nothing may run: no marker file appears anywhere
under the test folder and the canary survives.

The same problem and run function serve the Balsam test (``tests/e2e/test_security_balsam.py``).
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from typing import Any

from hpcnas.problem import HpProblem

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARKER = "hpcnas_pwned_"
NASTY = [
    '"; rm -rf ~; echo "',
    f"$(touch {MARKER}1)",
    f"`touch {MARKER}2`",
    f"x; touch {MARKER}3 #",
    f"' && touch {MARKER}4 && '",
    f"a|touch {MARKER}5",
    "tab\tnew\nline ~ $HOME %s {x} \\ * ?",
]

SecProblem = HpProblem()
SecProblem.add_hyperparameter(list(NASTY), "text")
SecProblem.add_hyperparameter((0.0, 1.0), "y")
for _text in NASTY:
    SecProblem.add_starting_point(text=_text, y=0.5)


def exact_text(config: dict[str, Any]) -> float:
    """The index of ``config["text"]`` in :data:`NASTY`; fails unless the string arrived exactly."""
    text = config["text"]
    if text not in NASTY:
        raise ValueError(f"the value arrived altered: {text!r}")
    return float(NASTY.index(text))


def recorded_texts(results_csv: str) -> list[tuple[str, float]]:
    """(text, objective) of each row of ``results_csv``, cells decoded as hpcnas reads them back
    (strings that start with a quote or hold a line break are written as JSON text)."""
    from hpcnas.search.results_csv import decode

    with open(results_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    hp = SecProblem.space["text"]
    return sorted((decode(r["p:text"], hp), float(r["objective"])) for r in rows)


def markers_under(*folders: str) -> list[str]:
    found = []
    for folder in folders:
        for dirpath, _, files in os.walk(folder):
            found += [os.path.join(dirpath, f) for f in files if f.startswith(MARKER)]
    return found


def test_nasty_values_reach_run_exactly_and_execute_nothing_local(tmp_path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "canary.txt").write_text("still here\n")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=ROOT, HOME=str(home), HPCNAS_DEBUG="")
    proc = subprocess.run(
        [sys.executable, "-m", "hpcnas.cli.main", "hps", "random", "--problem", "tests.unit.test_security.SecProblem",
         "--run", "tests.unit.test_security.exact_text", "--max-evals", str(len(NASTY)), "--num-workers", "2",
         "--output-dir", str(out)],
        capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(NASTY)
    assert all(r["status"] == "DONE" for r in rows), [(r["p:text"], r["error"]) for r in rows]
    # each value arrived exactly (objective = its index) and is recorded exactly in results.csv
    assert recorded_texts(str(out / "results.csv")) == sorted((t, float(i)) for i, t in enumerate(NASTY))
    assert (home / "canary.txt").read_text() == "still here\n"
    assert markers_under(str(tmp_path)) == []


def test_nasty_values_survive_the_balsam_job_command_line() -> None:
    """The Balsam job args carry a config as base64url: no shell or Balsam metacharacter survives in them."""
    import shlex

    from hpcnas.balsam.jobs import decode_config, encode_config

    for text in NASTY:
        token = encode_config({"text": text, "y": 0.5})
        assert shlex.split(token) == [token] and token == os.path.expanduser(token)
        assert set(token[4:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        assert decode_config(token)["text"] == text
