"""report() from run functions: channels, the runner hook and the policy server."""
from __future__ import annotations

import math
import os
import threading

import pytest

import hpcnas
from hpcnas.core.errors import HpcnasError
from hpcnas.evaluator.base import DONE, FAILED, STOPPED
from hpcnas.evaluator.runner import run_config
from hpcnas.multifidelity import ASHA, SuccessiveHalving, report
from hpcnas.multifidelity.protocol import ADDRESS_ENV, AUTHKEY_ENV
from hpcnas.multifidelity.reporting import Channel, StopEvaluation
from hpcnas.multifidelity.server import PolicyServer


def run_epochs(config):
    """Reports ``x * epoch / 10`` for 9 epochs; swallows ordinary exceptions on purpose."""
    value = 0.0
    for epoch in range(1, 10):
        value = config["x"] * epoch / 10
        try:
            report(epoch, value)
        except Exception:  # noqa: BLE001 - StopEvaluation must get through this
            return -1.0
    return value


def evaluate_in_threads(run, xs):
    """``run_config(run, {"x": x})`` for every ``x`` at once, one thread each; outcomes by ``x``."""
    results = {}

    def evaluate(x):
        results[x] = run_config(run, {"x": x})

    threads = [threading.Thread(target=evaluate, args=(x,)) for x in xs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return results


def run_nan_report(config):
    report(1, float("nan"))
    return 1.0


@pytest.fixture
def server_env(monkeypatch):
    servers = []

    def start(policy, barrier_timeout=0.5):
        server = PolicyServer(policy, host="127.0.0.1", barrier_timeout=barrier_timeout)
        servers.append(server)
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        return server

    yield start
    for server in servers:
        server.close()


def test_report_is_exported_lazily_from_hpcnas():
    assert hpcnas.report is report
    assert hpcnas.StopEvaluation is StopEvaluation
    assert issubclass(StopEvaluation, BaseException) and not issubclass(StopEvaluation, Exception)


def test_report_outside_an_evaluation_only_validates():
    report(1, 0.5)
    with pytest.raises(HpcnasError, match="two numbers"):
        report("one", 0.5)


def test_channel_rejects_decreasing_steps():
    channel = Channel()
    channel.report(2, 0.1)
    with pytest.raises(HpcnasError, match="must not decrease"):
        channel.report(1, 0.2)


def test_runner_carries_reports_without_a_scheduler(monkeypatch):
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    outcome = run_config(run_epochs, {"x": 1.0})
    assert outcome.status == DONE
    assert outcome.objective == pytest.approx(0.9)
    assert [s for s, _ in outcome.reports] == list(range(1, 10))
    assert outcome.reports[2] == (3.0, pytest.approx(0.3))


def test_nan_report_is_kept_and_does_not_fail_a_good_return(monkeypatch):
    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    outcome = run_config(run_nan_report, {})
    assert outcome.status == DONE and outcome.objective == 1.0
    assert math.isnan(outcome.reports[0][1])


def test_runner_stops_evaluations_through_the_policy_server(server_env):
    server = server_env(ASHA(min_resource=1, max_resource=9, reduction_factor=3))
    good = run_config(run_epochs, {"x": 1.0})
    assert good.status == DONE and good.objective == pytest.approx(0.9)
    bad = run_config(run_epochs, {"x": 0.5})
    # second at rung 1 (top 1 of 2): stopped right after its first report, not swallowed
    assert bad.status == STOPPED
    assert bad.objective == pytest.approx(0.05)
    assert bad.reports == [(1.0, pytest.approx(0.05))]
    assert bad.error is None
    assert server.last_objective({"x": 0.5}) == pytest.approx(0.05)
    assert len(server.trials_of({"x": 1.0})) == 1
    trial = server.trials_of({"x": 0.5})[0]
    assert trial in server.policy.ended and trial in server.policy.stopped


def test_synchronous_barrier_waits_in_report_and_is_released_by_timeout(server_env):
    # both trials meet at rung 1 (a 2 s barrier leaves room on a loaded machine); the promoted one
    # then waits alone at rung 3 until the timeout releases it
    server_env(SuccessiveHalving(min_resource=1, max_resource=9, reduction_factor=3, cohort_size=2),
               barrier_timeout=2.0)
    results = evaluate_in_threads(run_epochs, (1.0, 0.5))
    assert results[1.0].status == DONE and results[0.5].status == STOPPED, (results, os.environ.get(ADDRESS_ENV))
    assert len(results[0.5].reports) == 1


def test_unreachable_or_unauthenticated_server_lets_the_evaluation_go_on(monkeypatch, server_env, capfd):
    server = server_env(ASHA(1, 9, 3))
    run_config(run_epochs, {"x": 1.0})
    monkeypatch.setenv(AUTHKEY_ENV, os.urandom(32).hex())  # wrong key
    outcome = run_config(run_epochs, {"x": 0.1})
    assert outcome.status == DONE and len(outcome.reports) == 9
    assert "unreachable" in capfd.readouterr().err
    assert server.trials_of({"x": 0.1}) == []


def test_bad_address_is_a_one_line_error(monkeypatch):
    monkeypatch.setenv(ADDRESS_ENV, "nohostport")
    outcome = run_config(run_epochs, {"x": 1.0})
    assert outcome.status == FAILED and outcome.objective is None
    assert "HPCNAS_MF_ADDRESS='nohostport' is not host:port" in outcome.error


def test_a_silent_connection_does_not_block_the_server(server_env):
    import socket as socketlib

    server = server_env(ASHA(1, 9, 3))
    host, port = server.address.rsplit(":", 1)
    with socketlib.create_connection((host, int(port))):  # connects, never authenticates
        outcome = run_config(run_epochs, {"x": 1.0})
    assert outcome.status == DONE and len(server.trials_of({"x": 1.0})) == 1


def test_address_may_use_a_slash_where_colons_cannot_be_carried(server_env, monkeypatch):
    server = server_env(ASHA(1, 9, 3))
    monkeypatch.setenv(ADDRESS_ENV, server.address.replace(":", "/"))
    run_config(run_epochs, {"x": 1.0})
    assert len(server.trials_of({"x": 1.0})) == 1


def test_balsam_job_runner_puts_reports_and_stops_into_the_job_data(server_env):
    from hpcnas.balsam.job_runner import evaluate

    server_env(ASHA(1, 9, 3))
    good = evaluate(f"{__name__}.run_epochs", {"x": 1.0}, timeout=None)
    weak = evaluate(f"{__name__}.run_epochs", {"x": 0.5}, timeout=None)
    assert good["status"] == DONE and len(good["reports"]) == 9 and "reports" not in good["metadata"]
    assert weak["status"] == STOPPED and weak["objective"] == pytest.approx(0.05)
    assert weak["reports"] == [[1.0, pytest.approx(0.05)]]


def test_balsam_runner_exits_0_for_a_stopped_evaluation_and_1_line_env(server_env, capsys, monkeypatch):
    """A scheduler's stop is a decision, not a job error: Balsam must record RUN_DONE, not RUN_ERROR."""
    from hpcnas.balsam.job_runner import main
    from hpcnas.balsam.jobs import EXIT_FAILED, encode_config, env_string
    from hpcnas.balsam.evaluator import scheduler_environment

    server = server_env(ASHA(1, 9, 3))
    env = scheduler_environment()
    assert env[AUTHKEY_ENV] == os.environ[AUTHKEY_ENV]
    assert env[ADDRESS_ENV] == server.address.replace(":", "/")
    assert env_string(env).count(":") == 1  # only Balsam's own separator between the two variables
    monkeypatch.setenv(ADDRESS_ENV, env[ADDRESS_ENV])  # as the Balsam job sees it
    for key in ("BALSAM_JOB_ID", "BALSAM_DB_PATH"):
        monkeypatch.delenv(key, raising=False)
    assert main([f"{__name__}.run_epochs", encode_config({"x": 1.0})]) == 0
    assert main([f"{__name__}.run_epochs", encode_config({"x": 0.5})]) == 0  # stopped at rung 1
    assert '"status": "STOPPED"' in capsys.readouterr().out
    assert main(["tests.support.run_functions.raise_error", encode_config({})]) == EXIT_FAILED


def test_no_scheduler_no_extra_job_environment(monkeypatch):
    from hpcnas.balsam.evaluator import scheduler_environment

    monkeypatch.delenv(ADDRESS_ENV, raising=False)
    monkeypatch.delenv(AUTHKEY_ENV, raising=False)
    assert scheduler_environment() == {}


def test_evaluations_in_threads_report_into_their_own_channels():
    """Two evaluations interleaving their reports in two threads keep separate learning curves."""
    barrier = threading.Barrier(2)

    def run_interleaved(config):
        for step in range(1, 6):
            barrier.wait(timeout=10)  # both threads report each step at the same moment
            report(step, config["x"] * step)
        return config["x"]

    results = evaluate_in_threads(run_interleaved, (1.0, 2.0))
    for x in (1.0, 2.0):
        assert results[x].status == DONE, results[x]
        assert results[x].reports == [(float(s), x * s) for s in range(1, 6)]


def test_policy_server_connections_send_without_nagle_delay():
    """The client's last handshake message and its request are two small writes in a row: with
    Nagle's algorithm on, each request waited ~40 ms for the server's delayed ACK."""
    import socket
    from multiprocessing.connection import Client, Listener

    from hpcnas.multifidelity.protocol import set_io_timeout

    with Listener(("127.0.0.1", 0)) as listener, Client(listener.address) as conn:
        set_io_timeout(conn, 5.0)
        sock = socket.socket(fileno=conn.fileno())
        try:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        finally:
            sock.detach()
