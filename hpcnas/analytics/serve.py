"""``hpcnas-analytics serve DIR_OR_DB``: a live local web page of a running search.

A standard-library HTTP server on ``127.0.0.1`` (``--port``, 0 = a free port; the URL is printed
as one line on stdout) serves:

* ``/``: the page (status line, search curve, utilization, best configurations); a small script
  fetches ``/state.json`` every ``--interval`` seconds and swaps the content in when it changed
  (no reload, no external resource);
* ``/state.json``: ``{"version", "finished", "html"}`` of the latest :class:`~.live.Snapshot`;
* ``/search.png``, ``/utilization.png``: the snapshot's figures.

The state comes from :class:`~hpcnas.analytics.live.LiveState`: the search's results.csv
(re-read when it changed, complete lines only) or a Balsam DB (a DB directory as DIR_OR_DB,
``--db``, or the active one; one workflow with ``--workflow`` / ``balsam:WF``, else all of
them; re-read every interval). Nothing is locked: the search goes on appending.
Figures are written into ``--output-dir`` when given, else into a temporary directory removed
when the server stops (Ctrl-C, SIGTERM).
"""
from __future__ import annotations

import argparse
import errno
import html
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hpcnas.analytics.live import FIGURES, LiveState
from hpcnas.core.errors import HpcnasError, UsageError

HOST = "127.0.0.1"

_SCRIPT = """
(function () {
  var version = %(version)d, interval = %(interval)d;
  var conn = document.getElementById('connection');
  function tick() {
    fetch('state.json', {cache: 'no-store'}).then(function (r) { return r.json(); }).then(function (s) {
      if (s.version !== version) {
        document.getElementById('live').innerHTML = s.html;
        version = s.version;
        document.body.setAttribute('data-version', String(version));
      }
      conn.textContent = 'live, refreshing every ' + (interval / 1000) + ' s';
    }).catch(function () {
      conn.textContent = 'the server does not answer (stopped?): showing the last state';
    }).then(function () { setTimeout(tick, interval); });
  }
  setTimeout(tick, interval);
})();
"""


def page(state: LiveState) -> str:
    from hpcnas.analytics.report import _SCRIPT as IMAGES_SCRIPT
    from hpcnas.analytics.report import _STYLE

    snap = state.current()
    title = f"hpcnas live: {state.label}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body data-version="{snap.version}"><h1>{html.escape(title)}</h1>'
        f'<p class="muted"><span id="connection">live, refreshing every {state.interval:g} s</span>. '
        'Images loaded: <span id="images-loaded" data-loaded="-1">not yet</span></p>'
        f'<div id="live">{snap.html}</div>'
        f"<script>{IMAGES_SCRIPT}{_SCRIPT % {'version': snap.version, 'interval': int(state.interval * 1000)}}"
        "</script>"
        "</body></html>\n"
    )


class Handler(BaseHTTPRequestHandler):
    server: "LiveServer"

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        path = self.path.split("?", 1)[0]
        state = self.server.state
        try:
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page(state).encode("utf-8"))
            elif path == "/state.json":
                snap = state.current()
                body = json.dumps({"version": snap.version, "finished": snap.finished, "html": snap.html})
                self._send(200, "application/json", body.encode("utf-8"))
            elif path.lstrip("/") in FIGURES and path.lstrip("/") in (images := state.current().images):
                self._send(200, "image/png", images[path.lstrip("/")])  # one snapshot's figure
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's name
        pass  # no line per request


class LiveServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: LiveState, port: int) -> None:
        self.state = state
        try:
            super().__init__((HOST, port), Handler)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {HOST} is in use: choose another with --port, or "
                                 "--port 0 for a free one") from None
            raise HpcnasError(f"cannot listen on {HOST}:{port}: {err.strerror}: choose another --port") from None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"


def state_from_args(args: argparse.Namespace, out: str) -> LiveState:
    """A :class:`LiveState` for a results.csv / output directory, or a Balsam DB (directory) or workflow."""
    from hpcnas.analytics.cli import experiment_from_args
    from hpcnas.analytics.experiment import experiment_from_results, parse_spec

    spec = args.experiment
    common = dict(out=out, interval=args.interval, k=args.k, maximize=not args.minimize)
    label, source = parse_spec(spec) if spec else (None, "")
    if source and os.path.isfile(os.path.join(source, "server-info")) and \
            not os.path.exists(os.path.join(source, "results.csv")):  # a Balsam DB directory
        args = argparse.Namespace(**{**vars(args), "db": source, "experiment": None})
        spec, source = None, ""
    if spec is None or source.startswith("balsam:") or args.workflow is not None:
        from hpcnas.analytics.balsam_db import resolve_db_path

        db_path = resolve_db_path(args.db)  # no DB, or not a DB directory: one line, exit 2
        workflow = source[len("balsam:"):] if source.startswith("balsam:") else args.workflow
        name = label or workflow or os.path.basename(db_path)
        try:
            name = label or experiment_from_args(args).label
        except UsageError:
            raise
        except HpcnasError as err:  # may pass (the DB starts, the workflow's jobs run): the page retries
            print(f"hpcnas-analytics: warning: {err}; the page says so until it can be read",
                  file=sys.stderr, flush=True)
        directory = source if source and os.path.isdir(source) else None
        return LiveState(lambda: experiment_from_args(args), None, label=name, directory=directory,
                         **common)
    if os.path.isdir(source):
        directory, csv_path = source, os.path.join(source, "results.csv")
    elif os.path.isfile(source) or os.path.isdir(os.path.dirname(os.path.abspath(source))) and \
            os.path.basename(source) == "results.csv":
        directory, csv_path = os.path.dirname(os.path.abspath(source)), source
    else:
        raise UsageError(f"'{source}' is neither a directory nor a results.csv: give the search's output "
                         "directory (it may not hold results.csv yet) or balsam:WORKFLOW")
    name = label or os.path.basename(os.path.normpath(os.path.abspath(directory)))

    def changed() -> object:
        keys = []
        for path in (csv_path, os.path.join(directory, "search.json")):
            try:
                st = os.stat(path)
                keys.append((st.st_size, st.st_mtime_ns))
            except OSError:
                keys.append(None)
        return tuple(keys)

    def load():
        if not os.path.isfile(csv_path):
            return None
        if os.path.getsize(csv_path) == 0:
            return None
        return experiment_from_results(csv_path, label=name, nodes=args.nodes, snapshot=True)

    return LiveState(load, changed, label=name, directory=directory, **common)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from hpcnas.analytics.cli import source_parser

    p = sub.add_parser("serve", parents=[source_parser()],
                       help="a live local web page of a running search (curve, utilization, best)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: a free port)")
    p.add_argument("--interval", type=float, default=5.0,
                   help="seconds between refreshes of the page (default 5)")
    p.add_argument("-k", type=int, default=10, help="rows of the best-configurations table (default 10)")
    p.add_argument("--minimize", action="store_true", help="lower objective is better")
    p.set_defaults(func=run, output_dir=None)


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be between 0 and 65535, got {args.port}")
    if not args.interval > 0:
        raise UsageError(f"--interval must be a positive number of seconds, got {args.interval:g}")
    if args.k < 1:
        raise UsageError(f"-k must be at least 1, got {args.k}")
    out = args.output_dir or tempfile.mkdtemp(prefix="hpcnas-serve-")
    try:
        state = state_from_args(args, out)
        state.current()  # the first reading, before the URL is given out
        server = LiveServer(state, args.port)
        def terminate(signum: int, frame: Any) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        previous = signal.signal(signal.SIGTERM, terminate)
        print(server.url, flush=True)
        print(f"hpcnas-analytics: serving {state.label} at {server.url}, refreshing every "
              f"{args.interval:g} s; Ctrl-C stops", file=sys.stderr, flush=True)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()
        return 0
    finally:
        if not args.output_dir:
            shutil.rmtree(out, ignore_errors=True)
