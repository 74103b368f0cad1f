"""Fuzzing results.csv damage (issue 12): random cuts, byte edits and inserted lines of a real file.

Property: resuming either proceeds -- every line of the damaged file is either kept in
results.csv or moved to results.csv.damaged (none lost), the rows kept that were rows of the
original are read back intact, and rows appended afterwards start on a clean line -- or fails
with one line (``HpcnasError`` / ``hpcnas: error: ...``, exit 2) leaving the file as it was.
Never a traceback.

Derandomized and bounded (about 20 s on 2 cores); ``HPCNAS_FUZZ_EXAMPLES=N`` explores N random
examples per test instead.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
from collections import Counter

import pandas as pd
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from hpcnas.cli.main import main as cli
from hpcnas.core.errors import HpcnasError
from hpcnas.evaluator.base import DONE, FAILED, STOPPED, EvalResult
from hpcnas.search.results_store import DAMAGED_FILE, RESULTS_FILE, ResultsStore, recorded_count
from tests.support.damage_problem import Problem as FuzzProblem
from tests.support.damage_problem import run as fuzz_run

_EXPLORE = int(os.environ.get("HPCNAS_FUZZ_EXAMPLES", "0") or 0)

def _norm(line: bytes) -> bytes:
    return line.rstrip(b"\r\n")


def _pristine() -> tuple[bytes, dict[bytes, EvalResult]]:
    """A results.csv of 8 evaluations (failed and stopped ones, quoted errors, reports) and its rows."""
    configs = FuzzProblem.sample(8, 7)
    configs[0], configs[1] = dict(configs[0], kind=""), dict(configs[1], kind='"q",x')
    configs[0].pop("lr", None), configs[1].pop("lr", None)
    results = [
        EvalResult(f"job{i}", c, None if i % 3 == 1 else fuzz_run(c), FAILED if i % 3 == 1 else DONE,
                   error='exit 1, "boom"\r\nline two' if i % 3 == 1 else None, submit_time=10.0 + i,
                   start_time=11.0 + i, end_time=12.5 + i, worker=f"w{i % 2}",
                   reports=[(1.0, 0.5), (2.0, 0.75)] if i == 5 else [])
        for i, c in enumerate(configs)
    ]
    results[7].status = STOPPED
    with tempfile.TemporaryDirectory() as d:
        store = ResultsStore(d, FuzzProblem)
        store.append(results[:5])
        store.append(results[5:])
        store.close()
        with open(os.path.join(d, RESULTS_FILE), "rb") as fh:
            raw = fh.read()
    lines = raw.splitlines(keepends=True)
    return raw, {_norm(line): r for line, r in zip(lines[1:], results)}


PRISTINE, ROWS = _pristine()
INTERESTING = [b'"', b",", b"\n", b"\r", b"\x00", b"a", b"\xff", b"1", b"-", b"\t"]


@st.composite
def damaged(draw) -> bytes:
    data = bytearray(PRISTINE)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["cut", "byte", "insert", "delete"]))
        if op == "cut":
            del data[draw(st.integers(0, len(data))):]
        elif op == "byte" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.sampled_from(INTERESTING))[0]
        elif op == "insert":
            lines = bytes(data).splitlines(keepends=True)
            at = draw(st.integers(0, len(lines)))
            source = draw(st.sampled_from(["copy", "garbage", "half"]))
            if source == "garbage" or not lines:
                new = draw(st.binary(max_size=30)) + b"\r\n"
            else:
                line = draw(st.sampled_from(lines))
                new = line if source == "copy" else line[: len(line) // 2] + b"\r\n"
            data[:] = b"".join(lines[:at] + [new] + lines[at:])
        elif op == "delete" and data:
            start = draw(st.integers(0, len(data) - 1))
            del data[start:start + draw(st.integers(1, 40))]
    return bytes(data)


def _lines(raw: bytes) -> list[bytes]:
    """The non-blank lines of a file (a UTF-8 byte-order mark removed), without their line breaks."""
    raw = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    return [_norm(line) for line in raw.split(b"\n") if line.strip(b"\r\n \t")]


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def check_nothing_lost(out: str, before: bytes, loaded: list[EvalResult]) -> None:
    path, damaged_path = os.path.join(out, RESULTS_FILE), os.path.join(out, DAMAGED_FILE)
    after = _read(path)
    aside = _read(damaged_path) if os.path.exists(damaged_path) else b""
    if after == before:
        assert aside == b"", "lines moved aside but results.csv unchanged"
    else:
        assert sorted(_lines(after) + _lines(aside)) == sorted(_lines(before)), "a line was lost"
        assert after.endswith(b"\n") or after == b""
    if after:
        rows = [r for r in csv.reader(io.StringIO(after.decode("utf-8-sig"), newline="")) if r]
        assert len(rows) - 1 == len(loaded)
        assert len(pd.read_csv(io.BytesIO(after))) == len(loaded)
    fields = {(r.job_id, repr(r.config), r.objective, r.status, tuple(r.reports)) for r in loaded}
    for line in _lines(after)[1:]:  # a row kept as it was is read back as it was
        if line in ROWS:
            o = ROWS[line]
            assert (o.job_id, repr(o.config), o.objective, o.status, tuple(o.reports)) in fields, o


def _settings(examples: int) -> settings:
    return settings(max_examples=_EXPLORE or examples, derandomize=not _EXPLORE, deadline=None, database=None,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink),
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_settings(examples=200)
@given(damaged())
def test_a_damaged_results_csv_keeps_every_line_or_is_refused_in_one_line(data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="hpcnas-fuzz-") as out:
        path = os.path.join(out, RESULTS_FILE)
        with open(path, "wb") as fh:
            fh.write(data)
        try:
            recorded_count(out)
            store = ResultsStore(out, FuzzProblem)
            store.check_compatible()
            loaded = store.load()
        except HpcnasError as err:
            event("refused")
            assert "\n" not in str(err) and str(err).strip()
            assert _read(path) == data and not os.path.exists(os.path.join(out, DAMAGED_FILE))
            return
        event("moved lines aside" if os.path.exists(os.path.join(out, DAMAGED_FILE)) else "read as it was")
        check_nothing_lost(out, data, loaded)
        store.append([EvalResult("fresh", {"kind": "adam", "units": 3, "drop": 0.5}, 1.0)])
        store.close()
        again = ResultsStore(out, FuzzProblem).load()
        assert [r.job_id for r in again] == [r.job_id for r in loaded] + ["fresh"]


@_settings(examples=40)
@given(damaged())
def test_resuming_a_damaged_results_csv_exits_0_or_2_with_one_line(capsys, monkeypatch, data: bytes) -> None:
    monkeypatch.delenv("HPCNAS_DEBUG", raising=False)
    with tempfile.TemporaryDirectory(prefix="hpcnas-fuzz-") as out:
        with open(os.path.join(out, RESULTS_FILE), "wb") as fh:
            fh.write(data)
        capsys.readouterr()
        code = cli(["hps", "random", "--problem", "tests.support.damage_problem.Problem",
                    "--run", "tests.support.damage_problem.run",
                    "--evaluator", "simulated", "--default-duration", "1", "--no-progress", "--seed", "1",
                    "--max-evals", "12", "--output-dir", out])
        err = capsys.readouterr().err
        event(f"exit {code}")
        assert "Traceback" not in err
        assert code in (0, 2), err
        if code == 2:
            assert len(err.splitlines()) == 1 and err.startswith("hpcnas: error: "), err
            assert _read(os.path.join(out, RESULTS_FILE)) == data
            return
        after = _read(os.path.join(out, RESULTS_FILE))
        aside = os.path.join(out, DAMAGED_FILE)
        aside_lines = _lines(_read(aside)) if os.path.exists(aside) else []
        assert not Counter(_lines(data)) - Counter(_lines(after)) - Counter(aside_lines), "a line was lost"
        assert len(pd.read_csv(io.BytesIO(after))) >= 12  # the rows kept, then new ones up to --max-evals
