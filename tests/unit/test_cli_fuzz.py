"""Property-based fuzz test of ``hpcnas hps {random,ambs,age}`` (issue 12).

Random argument lists are drawn from the real options of each search's parser (common,
search and local evaluator options, read from :func:`hpcnas.cli.search_cmd.build_parser`)
with random values: numbers, ``inf``, ``nan``, negatives, huge, strings, empty. Each runs a
real search on a tiny problem with at most 3 evaluations. Property: the exit code is 0, 2 or 3,
with 2 stderr is exactly one ``hpcnas: error: ...`` line, and there is never a traceback.

Bounded for CI on 2 cores (about 30 s in all): derandomized, a fixed number of examples.
``HPCNAS_FUZZ_EXAMPLES=N`` runs N random (not derandomized) examples instead, to explore.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from typing import Any

from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from hpcnas.cli.main import main
from hpcnas.cli.search_cmd import build_parser

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SEARCHES = ("random", "ambs", "age")
#: a tiny problem, and a run function whose module imports nothing heavy (fast worker start)
FIXED = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.run_functions.quadratic", "--no-progress"]
#: options not fuzzed: fixed above, set per example (--output-dir), or meant to print help / tracebacks
NOT_FUZZED = {"--problem", "--run", "--output-dir", "--no-progress", "--help", "-h", "--debug", "--evaluator"}
MAX_EVALS = 3
_EXPLORE = int(os.environ.get("HPCNAS_FUZZ_EXAMPLES", "0") or 0)


def real_options(search: str) -> dict[str, Any]:
    """``{option string: argparse action}`` of ``hpcnas hps SEARCH`` with the local evaluator."""
    parser, _, _ = build_parser("hps", search, [])
    return {
        action.option_strings[-1]: action
        for action in parser._actions
        if action.option_strings and not set(action.option_strings) & NOT_FUZZED
    }


NUMBERS = st.one_of(
    st.integers(-3, 12).map(str),
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["1e300", "-1e300", "1e-300", "5e-324", "1e6", "2592000", "31536001", "100000000000",
                     "2147483648", "9223372036854775808", "100000000000000000000"]),
)
WORDS = st.one_of(
    st.sampled_from(["inf", "-inf", "Infinity", "nan", "NaN", "", " ", "0", "-0", "1_0", "0x10", "abc",
                     "--", "-", "--max-evals", "RF", "GP", "ET", "UCB", "EI", "PI", "cl_max", "none", "None"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
)


@st.composite
def value_for(draw: Any, action: Any) -> str:
    """Half the time a plausible value of the option's type (so searches run), else anything."""
    if draw(st.booleans()):
        if action.choices:
            return str(draw(st.sampled_from(list(action.choices))))
        if getattr(action.type, "__name__", None) == "int":  # int, or the CLI's bounded int
            return str(draw(st.integers(0, 4)))
        return repr(draw(st.floats(0.001, 5.0)))
    return draw(st.one_of(NUMBERS, WORDS))


@st.composite
def command_lines(draw: Any) -> tuple[str, list[str]]:
    search = draw(st.sampled_from(SEARCHES))
    options = real_options(search)
    argv: list[str] = []
    for name in draw(st.lists(st.sampled_from(sorted(options)), max_size=4)):
        action = options[name]
        argv.append(name)
        if action.nargs == 0:
            continue
        value = draw(value_for(action))
        if name == "--max-evals":
            value = _small_max_evals(value)
        argv.append(value)
    return search, argv


def _small_max_evals(value: str) -> str:
    """Keep every search tiny: a --max-evals that argparse reads as more than MAX_EVALS becomes MAX_EVALS."""
    try:
        return str(MAX_EVALS) if int(value) > MAX_EVALS else value
    except ValueError:
        return value


def check_outcome(code: int, stderr: str, argv: list[str]) -> None:
    assert "Traceback" not in stderr, f"{argv}: traceback on stderr:\n{stderr}"
    assert code in (0, 2, 3), f"{argv}: exit code {code}; stderr:\n{stderr}"
    if code in (2, 3):  # 3: the search ran and failed (every evaluation timed out, ...)
        lines = stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("hpcnas: error: "), f"{argv}: stderr is not one line: {stderr!r}"


def _fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=_EXPLORE or examples,
        derandomize=not _EXPLORE,
        deadline=None,
        database=None,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@_fuzz_settings(examples=60)
@given(command_lines())
def test_cli_exit_code_is_0_or_2_with_one_line(capsys, monkeypatch, command: tuple[str, list[str]]) -> None:
    search, options = command
    monkeypatch.delenv("HPCNAS_DEBUG", raising=False)
    with tempfile.TemporaryDirectory(prefix="hpcnas-fuzz-") as out:
        argv = ["hps", search, *FIXED, "--max-evals", str(MAX_EVALS), *options, "--output-dir", out]
        capsys.readouterr()
        code = main(argv)
        event(f"exit {code}")
        check_outcome(code, capsys.readouterr().err, argv)


@_fuzz_settings(examples=4)
@given(command_lines())
def test_cli_in_a_real_process(command: tuple[str, list[str]]) -> None:
    """A few in a real interpreter: warnings and logging reach the real stderr there."""
    search, options = command
    env = dict(os.environ, PYTHONPATH=ROOT, HPCNAS_DEBUG="")
    with tempfile.TemporaryDirectory(prefix="hpcnas-fuzz-") as out:
        argv = ["hps", search, *FIXED, "--max-evals", str(MAX_EVALS), *options, "--output-dir", out]
        proc = subprocess.run([sys.executable, "-m", "hpcnas.cli.main", *argv], capture_output=True, text=True,
                              env=env, cwd=out, timeout=120)
        check_outcome(proc.returncode, proc.stderr, argv)


def test_the_fuzzed_options_are_the_real_ones() -> None:
    """The strategy reads the parser: an option added to a search is fuzzed without editing this file."""
    assert {"--max-evals", "--num-workers", "--seed", "--timeout", "--eval-timeout", "--sync-interval",
            "--output-tail", "--evals-per-worker"} <= set(real_options("random"))
    assert {"--kappa", "--surrogate-model", "--n-initial-points"} <= set(real_options("ambs"))
    assert {"--population-size", "--sample-size", "--mutation-scale"} <= set(real_options("age"))
    assert not set(real_options("age")) & NOT_FUZZED
