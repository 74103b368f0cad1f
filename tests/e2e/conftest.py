"""Fixtures for end-to-end tests with real components.

* ``balsam_env`` (session): one real Balsam DB (``hpcnas balsam-init``: ``balsam init`` +
  hardening), the local site settings and the hpcnas apps, owned by an ordinary user; stopped
  and removed at the end of the session with every process it started.
* ``balsam_workflow``: a fresh, unique workflow name per test.
* ``virtual_cluster`` (session, :mod:`tests.support.virtual_cluster`) and ``vcluster_balsam``
  (session): a second DB whose TCP port the virtual nodes may reach.
"""
from __future__ import annotations

import importlib.util
import uuid
from typing import Iterator

import pytest

from tests.support.components import require
from tests.support.virtual_cluster import virtual_cluster  # noqa: F401 - session fixture


@pytest.fixture(scope="session")
def balsam_env() -> Iterator["object"]:
    from tests.support.balsam_env import BalsamEnvError, make_balsam_env

    for module in ("balsam", "django", "psycopg2"):
        require(module, importlib.util.find_spec(module) is not None, "pip install 'hpcnas[balsam]'")
    try:
        env = make_balsam_env()
    except BalsamEnvError as err:  # a misconfigured machine (e.g. repo not traversable): say so
        pytest.fail(f"cannot set up the Balsam test DB: {err}")
    try:
        yield env
    finally:
        env.close()


@pytest.fixture
def balsam_workflow() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def vcluster_balsam(virtual_cluster) -> Iterator["object"]:  # noqa: F811 - the fixture
    """A Balsam DB that the virtual cluster's nodes may reach (``--allow`` its range)."""
    from tests.support.balsam_env import BalsamEnvError, make_balsam_env

    for module in ("balsam", "django", "psycopg2"):
        require(module, importlib.util.find_spec(module) is not None, "pip install 'hpcnas[balsam]'")
    try:
        env = make_balsam_env(allow=[str(virtual_cluster.subnet)])
    except BalsamEnvError as err:
        pytest.fail(f"cannot set up the Balsam test DB: {err}")
    try:
        yield env
    finally:
        env.close()
