"""``hpcnas hps|nas SEARCH ...`` and ``module_main``: options, plumbing, one-line errors."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

import tests.support.toy  # noqa: F401 - registers the 'toyrandom' search
from hpcnas.cli.main import main
from hpcnas.cli.search_cmd import module_main
from hpcnas.core.errors import HpcnasError

TOY = ["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.run"]


def rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_hps_run_writes_results_and_prints_summary(tmp_path, capsys) -> None:
    code = main(["hps", "toyrandom", *TOY, "--max-evals", "6", "--num-workers", "2", "--seed", "3",
                 "--output-dir", str(tmp_path), "--note", "hello"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0] == f"hpcnas: hps toyrandom | evaluator local, 2 workers | max evals 6 | output {tmp_path}"
    assert out[-1].startswith("hpcnas: 6 evaluations, 0 failed, best objective")
    assert len(rows(tmp_path / "results.csv")) == 6
    meta = json.loads((tmp_path / "search.json").read_text())
    assert meta["search_options"] == {"note": "hello"} and meta["seed"] == 3 and meta["evaluator"] == "local"


def test_same_seed_same_configurations(tmp_path) -> None:
    configs = []
    for name in ("a", "b"):
        assert main(["hps", "toyrandom", *TOY, "--max-evals", "4", "--seed", "7", "--evaluator", "simulated",
                     "--default-duration", "1", "--output-dir", str(tmp_path / name)]) == 0
        configs.append([{k: v for k, v in r.items() if k.startswith("p:")} for r in rows(tmp_path / name / "results.csv")])
    assert configs[0] == configs[1]


def test_evaluator_options_reach_the_evaluator(tmp_path) -> None:
    assert main(["hps", "toyrandom", *TOY, "--max-evals", "3", "--evaluator", "simulated",
                 "--default-duration", "7.5", "--output-dir", str(tmp_path)]) == 0
    assert {float(r["duration"]) for r in rows(tmp_path / "results.csv")} == {7.5}
    assert json.loads((tmp_path / "search.json").read_text())["evaluator_options"] == {"default_duration": 7.5}


def test_resume_through_the_cli(tmp_path, capsys) -> None:
    args = ["hps", "toyrandom", *TOY, "--evaluator", "simulated", "--default-duration", "1", "--output-dir", str(tmp_path)]
    assert main([*args, "--max-evals", "4"]) == 0
    assert main([*args, "--max-evals", "7"]) == 0
    assert len(rows(tmp_path / "results.csv")) == 7
    assert "7 evaluations (4 resumed)" in capsys.readouterr().out


def test_module_main_takes_the_same_options(tmp_path) -> None:
    assert module_main("hps", "toyrandom", [*TOY, "--max-evals", "2", "--output-dir", str(tmp_path)]) == 0
    assert len(rows(tmp_path / "results.csv")) == 2
    assert module_main("hps", "toyrandom", [*TOY, "--max-evals", "0"]) == 2


def test_help_lists_search_and_evaluator_options(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["hps", "toyrandom", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--note" in out and "--output-tail" in out and "--eval-timeout" in out
    with pytest.raises(SystemExit):
        main(["hps", "toyrandom", "--evaluator", "simulated", "--help"])
    out = capsys.readouterr().out
    assert "--default-duration" in out and "--output-tail" not in out


def _other_problem_dir(tmp_path) -> str:
    out = tmp_path / "other"
    assert main(["hps", "toyrandom", "--problem", "tests.support.toy.OtherProblem", "--run", "tests.support.toy.run",
                 "--max-evals", "1", "--evaluator", "simulated", "--default-duration", "1", "--output-dir", str(out)]) == 3
    # (toy.run fails on OtherProblem's configurations: no evaluation succeeded, exit code 3)
    return str(out)


BAD = {
    "unimportable problem": (["--problem", "no_such_pkg.mod.Problem", "--run", "tests.support.toy.run"], "no module named 'no_such_pkg'"),
    "missing attribute": (["--problem", "tests.support.toy.Nope", "--run", "tests.support.toy.run"], "has no attribute 'Nope'"),
    "unimportable run": (["--problem", "tests.support.toy.Problem", "--run", "tests.support.toy.nope"], "run function"),
    "empty space": (["--problem", "tests.support.toy.EmptyProblem", "--run", "tests.support.toy.run"], "no hyper-parameters"),
    "max evals 0": ([*TOY, "--max-evals", "0"], "--max-evals must be at least 1"),
    "num workers 0": ([*TOY, "--num-workers", "0"], "--num-workers must be at least 1"),
    "negative timeout": ([*TOY, "--timeout", "-1"], "--timeout must be positive"),
    "zero eval timeout": ([*TOY, "--eval-timeout", "0"], "--eval-timeout must be positive"),
    "unknown option": ([*TOY, "--kappa", "2"], "unrecognized arguments: --kappa 2"),
    "bad int": ([*TOY, "--max-evals", "ten"], "invalid int value: 'ten'"),
    "abbreviated option": ([*TOY, "--max", "3"], "unrecognized arguments: --max 3"),
    "missing problem": (["--run", "tests.support.toy.run"], "the following arguments are required: --problem"),
    "unknown evaluator": ([*TOY, "--evaluator", "cloud"], "unknown evaluator 'cloud'"),
    "negative sync interval": ([*TOY, "--sync-interval", "-1"], "--sync-interval must be >= 0"),
    "bad evaluator option": ([*TOY, "--output-tail", "-3"], "--output-tail must be >= 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case, tmp_path, capsys) -> None:
    argv, words = BAD[case]
    code = main(["hps", "toyrandom", *argv, "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("hpcnas: error: "), err
    assert words in err and "Traceback" not in err


def test_output_dir_of_another_problem_is_one_line(tmp_path, capsys) -> None:
    other = _other_problem_dir(tmp_path)
    capsys.readouterr()
    code = main(["hps", "toyrandom", *TOY, "--output-dir", other, "--evaluator", "simulated", "--default-duration", "1"])
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1 and "different problem" in captured.err
    assert captured.out == ""  # refused before the start line


@pytest.mark.parametrize(
    "argv, words",
    [(["hps", "nosuch"], "unknown hps search 'nosuch'"), (["hps"], "name a search"), (["frobnicate"], "invalid choice")],
)
def test_command_level_errors_are_one_line(argv, words, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err


def test_debug_shows_the_traceback() -> None:
    with pytest.raises(HpcnasError, match="max-evals"):
        main(["hps", "toyrandom", *TOY, "--max-evals", "0", "--debug"])
    with pytest.raises(HpcnasError, match="max-evals"):
        main(["--debug", "hps", "toyrandom", *TOY, "--max-evals", "0"])


def test_console_entry_point_error_in_a_real_process(tmp_path) -> None:
    env = dict(os.environ, PYTHONPATH=os.getcwd())
    proc = subprocess.run(
        [sys.executable, "-m", "hpcnas.cli.main", "hps", "random", "--problem", "x.y.Problem", "--run", "x.y.run",
         "--output-dir", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("hpcnas: error: ")


def test_resume_derives_a_new_seed_so_proposals_differ(tmp_path) -> None:
    args = ["hps", "toyrandom", *TOY, "--evaluator", "simulated", "--default-duration", "1", "--seed", "11",
            "--output-dir", str(tmp_path)]
    assert main([*args, "--max-evals", "3"]) == 0
    assert main([*args, "--max-evals", "6"]) == 0
    data = rows(tmp_path / "results.csv")
    configs = [tuple(v for k, v in r.items() if k.startswith("p:")) for r in data]
    assert len(set(configs)) == 6
    meta = json.loads((tmp_path / "search.json").read_text())
    assert meta["seed"] == 11 and meta["search_random_state"] not in (None, 11)
    # reproducible: the same two runs elsewhere give the same six configurations
    other = tmp_path / "again"
    args[-1] = str(other)
    assert main([*args, "--max-evals", "3"]) == 0 and main([*args, "--max-evals", "6"]) == 0
    assert [tuple(v for k, v in r.items() if k.startswith("p:")) for r in rows(other / "results.csv")] == configs


def test_warnings_go_to_the_current_stderr_after_an_earlier_stream_closed(monkeypatch) -> None:
    """A command run in-process after another (a notebook, a capturing test) must not log into the
    first one's closed stream ("--- Logging error --- ValueError: I/O operation on closed file")."""
    import io
    import logging

    from hpcnas.cli.search_cmd import _setup_logging

    logger = logging.getLogger("hpcnas")
    monkeypatch.setattr(logger, "handlers", [])
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    _setup_logging()
    logger.warning("one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logger.warning("two")
    assert second.getvalue() == "hpcnas: WARNING: two\n"
