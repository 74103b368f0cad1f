"""The master-side policy server: evaluations anywhere ask one policy object for decisions.

:class:`PolicyServer` listens on a TCP port (``multiprocessing.connection`` with a random
authkey, so only holders of the key can talk to it) in a daemon thread of the master. Each
report from an evaluation's :class:`~hpcnas.multifidelity.reporting.Channel` is one short
connection of :mod:`~hpcnas.multifidelity.protocol` (``report``, ``poll`` or ``end``; the answer
``"continue"``, ``"stop"`` or ``"wait"``). Decisions are
made under a lock by the single policy object, so they are consistent across processes and
nodes. Each connection is authenticated and served in its own short-lived thread with socket
timeouts, so a stalled or hostile client cannot block the others. A trial that waits at a synchronous barrier longer than ``barrier_timeout`` seconds
makes the server release the barrier on the members present (``policy.release()``).
"""
from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from multiprocessing.connection import Connection, Listener
from typing import Any

from hpcnas.core import environment
from hpcnas.multifidelity import protocol
from hpcnas.multifidelity.policy import Decision, StoppingPolicy
from hpcnas.multifidelity.protocol import ADDRESS_ENV, AUTHKEY_ENV


def config_key(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, default=str)


class PolicyServer:
    """Serve ``policy`` decisions to evaluation processes (see the module docstring)."""

    def __init__(
        self,
        policy: StoppingPolicy,
        host: str | None = None,
        advertise: str | None = None,
        barrier_timeout: float = 30.0,
    ) -> None:
        self.policy = policy
        self.barrier_timeout = barrier_timeout
        self.lock = threading.RLock()
        self.configs: dict[str, dict[str, Any]] = {}
        self.trials_by_config: dict[str, list[str]] = {}
        self._wait_since: dict[str, float] = {}
        self._authkey = secrets.token_bytes(32)
        bind = host or environment.text("HPCNAS_MF_BIND") or "0.0.0.0"
        self._listener = Listener((bind, 0))  # authentication per connection, in its thread
        port = self._listener.address[1]
        self.host = advertise or environment.text("HPCNAS_MF_HOST") or _advertised_host(bind)
        self.address = f"{self.host}:{port}"
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="hpcnas-policy-server", daemon=True)
        self._thread.start()

    def env(self) -> dict[str, str]:
        """Environment variables that make evaluations talk to this server."""
        return {ADDRESS_ENV: self.address, AUTHKEY_ENV: self._authkey.hex()}

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass

    # ----------------------------------------------------------------- master side
    def trials_of(self, config: dict[str, Any]) -> list[str]:
        with self.lock:
            return list(self.trials_by_config.get(config_key(config), []))

    def last_objective(self, config: dict[str, Any]) -> float | None:
        """Last reported objective of the latest trial of ``config`` (None: no reports)."""
        with self.lock:
            for trial in reversed(self.trials_by_config.get(config_key(config), [])):
                curve = self.policy.curves.get(trial)
                if curve:
                    return curve[-1][1]
        return None

    def stopped_objective(self, config: dict[str, Any]) -> float | None:
        """Last reported objective of ``config``'s latest trial if the policy stopped it, else None."""
        with self.lock:
            trials = self.trials_by_config.get(config_key(config), [])
            if trials and trials[-1] in self.policy.stopped:
                curve = self.policy.curves.get(trials[-1])
                return curve[-1][1] if curve else None
        return None

    def end_config(self, config: dict[str, Any]) -> None:
        with self.lock:
            for trial in self.trials_by_config.get(config_key(config), []):
                self.policy.end(trial)

    # ----------------------------------------------------------------- serving
    def handle(self, kind: str, payload: tuple) -> str:
        with self.lock:
            if kind == protocol.REPORT:
                trial, config, step, objective = payload
                if trial not in self.configs:
                    self.configs[trial] = config
                    self.trials_by_config.setdefault(config_key(config), []).append(trial)
                decision = self.policy.report(trial, step, objective)
            elif kind == protocol.POLL:
                (trial,) = payload
                decision = self.policy.poll(trial)
                if decision == Decision.WAIT and self._waited_too_long(trial):
                    release = getattr(self.policy, "release", None)
                    if release is not None:
                        release()
                    decision = self.policy.poll(trial)
            elif kind == protocol.END:
                (trial,) = payload
                self.policy.end(trial)
                self._wait_since.pop(trial, None)
                return Decision.CONTINUE.value
            else:
                return "error: unknown message"
            if decision == Decision.WAIT:
                self._wait_since.setdefault(trial, time.monotonic())
            else:
                self._wait_since.pop(trial, None)
            return Decision(decision).value

    def _waited_too_long(self, trial: str) -> bool:
        since = self._wait_since.get(trial)
        return since is not None and time.monotonic() - since > self.barrier_timeout

    def _serve(self) -> None:
        while not self._closed:
            try:
                conn = self._listener.accept()
            except (OSError, EOFError):
                if self._closed:
                    return
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: Connection) -> None:
        try:
            with conn:
                kind, payload = protocol.receive(conn, self._authkey)
                conn.send(self.handle(kind, payload))
        except Exception:  # noqa: BLE001 - failed authentication, timeouts, bad clients
            return


def _advertised_host(bind: str) -> str:
    if bind not in ("0.0.0.0", ""):
        return bind
    try:
        name = socket.gethostname()
        address = socket.gethostbyname(name)
        if not address.startswith("127."):
            return address
    except OSError:
        pass
    return "127.0.0.1"
