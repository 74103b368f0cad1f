"""The wire protocol between an evaluation's report channel and the master's policy server.

Both ends import it; nothing here imports either end.

* **Finding the server.** The master's :class:`~hpcnas.multifidelity.server.PolicyServer`
  publishes its address and key in two environment variables, :data:`ADDRESS_ENV` (``host:port``,
  or ``host/port`` where ``:`` cannot be carried, as in Balsam 0.x ``environ_vars``) and
  :data:`AUTHKEY_ENV` (the key in hex); the evaluators carry them to the run side.
* **One message per connection.** A ``multiprocessing.connection`` connection, authenticated
  both ways with the key (the server challenges first), carries one request
  ``(kind, payload)`` and one answer:

  ========== ======================================= ==========================================
  kind       payload                                 answer
  ========== ======================================= ==========================================
  ``report`` ``(trial, config, step, objective)``    ``continue``, ``stop``, ``wait``, ``finish``
  ``poll``   ``(trial,)``: waiting at a barrier       the same
  ``end``    ``(trial,)``: the evaluation ended       ``continue``
  ========== ======================================= ==========================================

* **Timeouts.** Either end drops a connection silent for :data:`IO_TIMEOUT` seconds.
"""
from __future__ import annotations

import socket
import struct
from typing import TYPE_CHECKING, Any

from hpcnas.core.errors import HpcnasError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

ADDRESS_ENV = "HPCNAS_MF_ADDRESS"
AUTHKEY_ENV = "HPCNAS_MF_AUTHKEY"
#: seconds a connection may stay silent before it is dropped (both ends)
IO_TIMEOUT = 30.0
REPORT, POLL, END = "report", "poll", "end"


def set_io_timeout(conn: Connection, seconds: float) -> None:
    """Make blocking reads and writes on ``conn`` fail after ``seconds`` (``SO_RCVTIMEO``/``SO_SNDTIMEO``),
    and send each message at once (``TCP_NODELAY``).

    Without ``TCP_NODELAY`` the client's last handshake message and its request, two small
    writes in a row, met Nagle's algorithm and the server's delayed ACK: every request waited
    about 40 ms (44 ms measured on loopback; 0.4 ms with it)."""
    sock = socket.socket(fileno=conn.fileno())
    try:
        value = struct.pack("ll", int(seconds), int((seconds % 1) * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    finally:
        sock.detach()


def parse_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``host/port`` -> ``(host, port)``; a one-line error otherwise."""
    host, _, port = address.rpartition("/" if "/" in address else ":")
    if not host or not port.isdigit():
        raise HpcnasError(f"{ADDRESS_ENV}={address!r} is not host:port: unset it or give the policy server's address")
    return host, int(port)


def carried_environment(env: dict[str, str]) -> dict[str, str]:
    """The server's variables of ``env`` in a form Balsam 0.x can carry (``host/port``)."""
    out = {k: env[k] for k in (ADDRESS_ENV, AUTHKEY_ENV) if env.get(k)}
    if ADDRESS_ENV in out:
        host, _, port = out[ADDRESS_ENV].rpartition(":")
        out[ADDRESS_ENV] = f"{host}/{port}" if host else out[ADDRESS_ENV]
    return out


def request(host: str, port: int, key: bytes, kind: str, payload: tuple) -> str:
    """Client end: one authenticated request, its answer (``OSError``/``EOFError``/
    ``AuthenticationError`` when the server cannot be reached or refuses the key)."""
    from multiprocessing.connection import Client, answer_challenge, deliver_challenge

    with Client((host, port)) as conn:
        set_io_timeout(conn, IO_TIMEOUT)
        answer_challenge(conn, key)
        deliver_challenge(conn, key)
        conn.send((kind, payload))
        return str(conn.recv())


def receive(conn: Connection, key: bytes) -> tuple[str, Any]:
    """Server end: authenticate the client (challenging first) and read its request."""
    from multiprocessing.connection import answer_challenge, deliver_challenge

    set_io_timeout(conn, IO_TIMEOUT)
    deliver_challenge(conn, key)
    answer_challenge(conn, key)
    kind, payload = conn.recv()
    return kind, payload
