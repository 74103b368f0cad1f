"""Can the allocation's nodes reach the hardened DB (:mod:`hpcnas.balsam.reach`)?"""
from __future__ import annotations

import os

import pytest

from hpcnas.balsam.db import hba_text
from hpcnas.balsam.reach import check_slurm_partition, suggested_networks, unreachable
from hpcnas.core.errors import HpcnasError


def _db(tmp_path, text: str) -> str:
    os.makedirs(tmp_path / "db" / "balsamdb")
    (tmp_path / "db" / "balsamdb" / "pg_hba.conf").write_text(text)
    return str(tmp_path / "db")


def test_nodes_outside_this_host_and_the_allowed_networks_are_unreachable(tmp_path):
    db = _db(tmp_path, hba_text(["10.1.0.0/16"]))
    nodes = {"a": "10.1.2.3", "b": "10.9.0.1", "c": "127.0.0.1"}
    assert unreachable(db, nodes) == {"b": "10.9.0.1"}
    assert suggested_networks(["10.9.0.1", "10.9.0.7"]) == ["10.9.0.0/24"]


def test_a_db_not_hardened_by_hpcnas_is_not_checked(tmp_path):
    db = _db(tmp_path, "host all all 0.0.0.0/0 trust\n")
    assert unreachable(db, {"b": "10.9.0.1"}) == {}
    assert unreachable(str(tmp_path / "nodb"), {"b": "10.9.0.1"}) == {}


def test_the_refusal_is_one_line_with_the_command_that_opens_the_db(tmp_path, monkeypatch):
    db = _db(tmp_path, hba_text())
    monkeypatch.setattr("hpcnas.balsam.reach.slurm_partition_nodes",
                        lambda partition, env=None: {"n1": "10.9.0.11", "n2": "10.9.0.12"})
    with pytest.raises(HpcnasError) as err:
        check_slurm_partition(db, "debug")
    text = str(err.value)
    assert "\n" not in text and "n1 (10.9.0.11)" in text and f"hpcnas balsam-harden {db} --allow 10.9.0.0/24" in text


def test_pbs_and_cobalt_submissions_are_warned_about_a_db_open_to_this_host_only(tmp_path):
    from hpcnas.balsam.reach import loopback_only_warning

    closed = _db(tmp_path, hba_text())
    warning = loopback_only_warning(closed)
    assert warning is not None and "\n" not in warning
    assert f"hpcnas balsam-harden {closed} --allow CIDR" in warning
    opened = _db(tmp_path / "o", hba_text(["10.1.0.0/16"]))
    assert loopback_only_warning(opened) is None
    assert loopback_only_warning(str(tmp_path / "nodb")) is None  # not hpcnas's: nothing to say
