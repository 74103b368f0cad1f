"""Pure helpers of the Balsam integration: config transport, state history, reports, env text."""
from __future__ import annotations

import os
import shlex

import pytest

from hpcnas.balsam.jobs import (
    EXIT_FAILED, decode_config, encode_config, env_string, find_marker, outcome_status, parse_state_history,
    run_times,
)
from hpcnas.core.errors import HpcnasError

NASTY = ['"; rm -rf ~; echo "', "a  b ~ $HOME `id` 'q' \\n", "~", "tab\there", "ünïcödé ✓", "$(reboot)", ""]


def balsam_argv(executable: str, args: str) -> list[str]:
    """What Balsam 0.x does to a job's command line (BalsamJob.app_cmd, then shlex.split)."""
    line = f"{executable} {args}"
    return shlex.split(" ".join(os.path.expanduser(w) for w in line.split()))


@pytest.mark.parametrize("text", NASTY)
def test_config_survives_balsam_command_line_handling(text):
    config = {"text": text, "x": 0.1 + 0.2, "n": 3, "flag": True, "nested": None}
    argv = balsam_argv("/venv/bin/python -m hpcnas.balsam.job_runner", f"pkg.run {encode_config(config)} --timeout 5")
    assert argv[:4] == ["/venv/bin/python", "-m", "hpcnas.balsam.job_runner", "pkg.run"]
    assert decode_config(argv[4]) == config
    assert decode_config(argv[4])["text"] == text  # byte-exact


def test_raw_json_would_be_mangled_which_is_why_configs_travel_encoded():
    import json

    raw = json.dumps({"text": "a  b ~ x"})
    argv = balsam_argv("python -m hpcnas.balsam.job_runner", "pkg.run " + shlex.quote(raw))
    assert argv[-1] != raw  # whitespace collapsed inside the quotes
    assert decode_config('{"a": 1}') == {"a": 1}  # plain JSON still accepted by hand


@pytest.mark.parametrize("token", ["b64:!!!", "[1, 2]", "not json", "b64:WzEsMl0"])
def test_bad_config_token_is_a_user_error(token):
    with pytest.raises(HpcnasError):
        decode_config(token)


def test_encode_config_rejects_nan():
    with pytest.raises(ValueError):
        encode_config({"x": float("nan")})


HISTORY = """
[11-23-2026 19:00:00.000000 CREATED]
[11-23-2026 19:00:01.500000 PREPROCESSED]
[11-23-2026 19:00:02.000000 RUNNING]
[11-23-2026 19:00:05.250000 RUN_ERROR] nonzero return -9: Traceback
  line two of the tail
[11-23-2026 19:00:06.000000 FAILED] No error handler: run failed
"""


def test_parse_state_history_utc_and_multiline_messages():
    events = parse_state_history(HISTORY)
    assert [s for _, s, _ in events] == ["CREATED", "PREPROCESSED", "RUNNING", "RUN_ERROR", "FAILED"]
    from datetime import datetime, timezone

    assert events[0][0] == datetime(2026, 11, 23, 19, 0, 0, tzinfo=timezone.utc).timestamp()
    assert "line two of the tail" in events[3][2]


def test_run_times_use_last_run_and_keep_error_message():
    start, end, message = run_times(HISTORY)
    assert end - start == pytest.approx(3.25)
    assert message == "No error handler: run failed"
    rerun = HISTORY.replace("[11-23-2026 19:00:06.000000 FAILED] No error handler: run failed", "") + (
        "[11-23-2026 19:01:00.000000 RESTART_READY]\n[11-23-2026 19:01:10.000000 RUNNING]\n"
        "[11-23-2026 19:01:12.000000 RUN_DONE]\n"
    )
    start2, end2, _ = run_times(rerun)
    assert end2 - start2 == pytest.approx(2.0) and start2 > end


def test_run_times_of_a_job_that_never_ran():
    assert run_times("[11-23-2026 19:00:00.000000 CREATED]")[:2] == (None, None)


def test_find_marker_takes_the_last_valid_line():
    text = 'noise\nHPCNAS_RESULT {"objective": 1}\nHPCNAS_RESULT {broken\nHPCNAS_RESULT {"objective": 2}\ntail'
    assert find_marker(text) == {"objective": 2}
    assert find_marker("nothing here") is None


@pytest.mark.parametrize(
    "report, state, status",
    [
        ({"status": "DONE"}, "RUN_DONE", "DONE"),
        ({"status": "TIMEOUT"}, "RUN_ERROR", "TIMEOUT"),
        ({"status": "FAILED"}, "FAILED", "FAILED"),
        ({"status": "STOPPED"}, "JOB_FINISHED", "STOPPED"),
        (None, "JOB_FINISHED", "DONE"),
        (None, "RUN_ERROR", "FAILED"),
        (None, "USER_KILLED", "FAILED"),
    ],
)
def test_outcome_status(report, state, status):
    assert outcome_status(report, state) == status


def test_env_string_and_its_limits():
    assert env_string({"A": "1", "B_2": "x y"}) == "A=1:B_2=x y"
    with pytest.raises(HpcnasError, match="cannot contain ':'"):
        env_string({"PYTHONPATH": "/a:/b"})
    with pytest.raises(HpcnasError, match="not valid"):
        env_string({"1BAD": "x"})


def test_failed_exit_code_is_not_retried_by_balsam():
    assert EXIT_FAILED not in (-11, 1, 255, 12345)  # balsam serial_mode_timed.Worker.RETRY_CODES
