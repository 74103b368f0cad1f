"""Which Postgres serves a Balsam DB (issue 14): always the major version in its PG_VERSION."""
from __future__ import annotations

import os

import pytest

from hpcnas.balsam import pg_binaries
from hpcnas.core.errors import HpcnasError


def fake_pg(folder, version: str) -> str:
    """A folder of fake Postgres tools whose ``pg_ctl --version`` says ``version``."""
    os.makedirs(folder, exist_ok=True)
    for tool in pg_binaries.PG_TOOLS:
        path = os.path.join(folder, tool)
        with open(path, "w") as fh:
            fh.write(f"#!/bin/sh\necho '{tool} (PostgreSQL) {version}'\n")
        os.chmod(path, 0o755)
    return str(folder)


@pytest.fixture
def two_versions(tmp_path, monkeypatch):
    v15 = fake_pg(tmp_path / "pg15", "15.18 (Debian 15.18-0+deb12u1)")
    v16 = fake_pg(tmp_path / "pg16", "16.14")
    monkeypatch.setattr(pg_binaries, "SYSTEM_GLOB", str(tmp_path / "none" / "*"))
    monkeypatch.setattr(pg_binaries, "pgserver_bin_dir", lambda: v16)
    pg_binaries.major_version.cache_clear()
    yield v15, v16
    pg_binaries.major_version.cache_clear()


def make_db(tmp_path, version: str) -> str:
    db = tmp_path / "db"
    (db / "balsamdb").mkdir(parents=True)
    (db / "balsamdb" / "PG_VERSION").write_text(version + "\n")
    return str(db)


def test_major_version_parses_debian_and_plain_builds(two_versions):
    v15, v16 = two_versions
    assert pg_binaries.major_version(v15) == "15" and pg_binaries.major_version(v16) == "16"


def test_a_db_is_served_by_its_version_whatever_path_finds_first(two_versions, tmp_path):
    v15, v16 = two_versions
    db = make_db(tmp_path, "16")
    assert pg_binaries.bin_dir_for_db(os.path.join(db, "balsamdb"), v15) == v16
    assert pg_binaries.with_bin_dir(v15, v16).split(os.pathsep)[0] == v16
    assert pg_binaries.activate_command(db, v15) == f'eval "$(hpcnas balsam-env {db})" && source balsamactivate {db}'
    assert pg_binaries.activate_command(db, v16 + os.pathsep + v15) == f"source balsamactivate {db}"


def test_new_db_uses_path_first_then_the_wheel(two_versions, tmp_path):
    v15, v16 = two_versions
    assert pg_binaries.new_db_bin_dir(v15 + os.pathsep + v16) == v15
    assert pg_binaries.new_db_bin_dir(str(tmp_path / "empty")) == v16


def test_a_version_that_is_not_installed_is_one_line(two_versions, tmp_path):
    v15, _ = two_versions
    db = make_db(tmp_path, "13")
    with pytest.raises(HpcnasError, match=r"made by PostgreSQL 13.*found: 15 .*16 .*apt-get install postgresql-13"):
        pg_binaries.bin_dir_for_db(os.path.join(db, "balsamdb"), v15)


def test_postgres_env_of_a_db_puts_its_binaries_first(two_versions, tmp_path):
    from hpcnas.balsam.db import postgres_env

    v15, v16 = two_versions
    db = make_db(tmp_path, "16")
    assert postgres_env({"PATH": v15}, db)["PATH"].split(os.pathsep)[0] == v16
    assert postgres_env({"PATH": v16 + os.pathsep + v15}, db)["PATH"] == v16 + os.pathsep + v15
