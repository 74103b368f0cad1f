"""hpcnas.core.environment: the one table and reader of hpcnas's environment variables."""
from __future__ import annotations

import os
import re

import pytest

from hpcnas.core import environment
from hpcnas.core.errors import UsageError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: names in settings.json or job-script templates, not in the environment of an hpcnas process
NOT_ENVIRONMENT = {"HPCNAS_SITE", "HPCNAS_SUBMIT", "HPCNAS_SRUN_MPI", "HPCNAS_SRUN_CPU_BIND", "HPCNAS_RUN",
                   "HPCNAS_RESULT", "HPCNAS_TIMINGS", "HPCNAS_MF_"}


def test_every_variable_the_package_names_is_in_the_table():
    named = set()
    for folder, _, files in os.walk(os.path.join(ROOT, "hpcnas")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as fh:
                    named.update(re.findall(r"[\"'](HPCNAS_[A-Z_]+)[\"']", fh.read()))
    assert named - NOT_ENVIRONMENT <= set(environment.VARIABLES), sorted(named - NOT_ENVIRONMENT - set(environment.VARIABLES))


def test_text_flag_and_number_read_the_table_defaults():
    env = {"HPCNAS_DEBUG": "0", "HPCNAS_DB_RETRY_S": "", "HPCNAS_ENSEMBLE_PORT": "23456"}
    assert environment.text("HPCNAS_MF_BIND", env) == "0.0.0.0" and environment.text("HPCNAS_MF_HOST", env) is None
    assert not environment.flag("HPCNAS_DEBUG", env) and environment.flag("HPCNAS_DEBUG", {"HPCNAS_DEBUG": "1"})
    assert environment.number("HPCNAS_DB_RETRY_S", env) == 900.0  # empty: the default
    assert environment.number("HPCNAS_ENSEMBLE_PORT", env, minimum=1, integer=True) == 23456
    with pytest.raises(KeyError, match="declare it"):
        environment.text("HPCNAS_NO_SUCH", env)


@pytest.mark.parametrize("value", ["abc", "-1", "nan"])
def test_a_bad_number_is_one_line_naming_the_variable_and_the_fix(value):
    with pytest.raises(UsageError) as err:
        environment.number("HPCNAS_DB_RETRY_S", {"HPCNAS_DB_RETRY_S": value})
    message = str(err.value)
    assert "\n" not in message and f"HPCNAS_DB_RETRY_S={value!r}" in message and "unset it or give a number" in message


def test_a_bad_db_retry_is_a_usage_error_when_the_balsam_evaluator_is_built(monkeypatch):
    """It was read when the module was imported: a ValueError traceback from any command naming balsam."""
    from hpcnas.balsam.evaluator import BalsamEvaluator

    monkeypatch.setenv("HPCNAS_DB_RETRY_S", "abc")
    with pytest.raises(UsageError, match="HPCNAS_DB_RETRY_S='abc'"):
        BalsamEvaluator("tests.support.run_functions.quadratic")


def test_a_bad_ensemble_port_is_a_usage_error(monkeypatch):
    from hpcnas.balsam.launch import ensemble_port

    monkeypatch.setenv("HPCNAS_ENSEMBLE_PORT", "70000.5")
    with pytest.raises(UsageError, match="HPCNAS_ENSEMBLE_PORT"):
        ensemble_port("localhost")
