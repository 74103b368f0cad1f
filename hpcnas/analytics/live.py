"""The state of a running search, for ``hpcnas-analytics serve``: what the live page shows.

:class:`LiveState` reads the source again when it changed: a results.csv when its size or
modification time moved (checked at each request, a ``stat``; only complete lines are read, a
row being appended is read on the next refresh), a Balsam DB at most once per ``interval``
seconds.
It renders a :class:`Snapshot`: an HTML fragment (status line, search curve, utilization, best
configurations) and the PNG figures in memory, numbered by ``version``. Reading is plain
``open``/``read`` and SQL ``COPY``: no lock that could block the search.

Figures and tables come from the commands' own modules (:mod:`.search`, :mod:`.topk`,
:mod:`.utilization`), written into ``out``.
"""
from __future__ import annotations

import html
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from hpcnas.analytics.experiment import Experiment
from hpcnas.core.errors import HpcnasError

FIGURES = ("search.png", "utilization.png")


@dataclass
class Snapshot:
    """One rendering of the state: ``html`` (the ``#live`` fragment) and ``images`` (name -> PNG)."""

    version: int
    html: str
    images: dict[str, bytes] = field(default_factory=dict)
    finished: int = 0


def search_process(directory: str | None) -> str:
    """Whether a search master holds ``directory`` (its ``search.lock`` record), in words."""
    from hpcnas.search.output_lock import LOCK_FILE, owner_is_dead

    if directory is None:
        return ""
    try:
        with open(os.path.join(directory, LOCK_FILE), "rb") as fh:
            owner = json.loads(fh.read().decode("utf-8"))
    except FileNotFoundError:
        return "no search holds this directory now (finished, stopped, or not started)"
    except (OSError, ValueError):
        return "search.lock is there but cannot be read"
    if not isinstance(owner, dict):
        return "search.lock is there but cannot be read"
    who = f"pid {owner.get('pid', '?')} on {owner.get('host', '?')} since {owner.get('since_text', '?')}"
    return (f"the search that held this directory ({who}) is gone" if owner_is_dead(owner)
            else f"search running ({who})")


def _fmt(v: object) -> str:
    return f"{v:.6g}" if isinstance(v, float) else "" if v is None else str(v)


class LiveState:
    """Re-reads an experiment when it changed; :meth:`current` gives the latest :class:`Snapshot`.

    ``load()`` builds the experiment; ``changed()`` returns a key that differs when the source
    changed (``None``: re-read every ``interval``); ``directory`` is the search's output directory
    (for its ``search.lock``), when known.
    """

    def __init__(self, load: Callable[[], Experiment | None], changed: Callable[[], object] | None,
                 out: str, label: str, directory: str | None = None, interval: float = 5.0, k: int = 10,
                 maximize: bool = True) -> None:
        self.load, self.changed, self.out, self.label = load, changed, out, label
        self.directory, self.interval, self.k, self.maximize = directory, interval, k, maximize
        self._lock = threading.Lock()  # in this process only: one refresh at a time
        self._key: object = object()
        self._checked = -float("inf")
        self._snapshot = Snapshot(0, "<p>reading the results…</p>")
        self._read_at: float | None = None

    def current(self) -> Snapshot:
        with self._lock:
            now = time.monotonic()
            if self.changed is not None:  # a stat per request: cheap, and never a stale page
                key = self.changed()
            elif now - self._checked >= self.interval:
                self._checked = key = now
            else:
                key = self._key
            if key != self._key:
                self._key = key
                self._refresh()
            return self._snapshot

    # ----------------------------------------------------------------- rendering
    def _refresh(self) -> None:
        version = self._snapshot.version + 1
        try:
            exp = self.load()
        except HpcnasError as err:  # e.g. an edit in progress: keep what was shown, say why
            if self._snapshot.version == 0:
                self._snapshot = Snapshot(version, f'<p class="note">{html.escape(str(err))}</p>')
            else:
                note = (f'<p class="note">could not read the results at {time.strftime("%H:%M:%S")} '
                        f"({html.escape(str(err))}); showing the state read at {self._read_at_text()}</p>")
                old = self._snapshot
                self._snapshot = Snapshot(version, note + old.html.split("<!--state-->", 1)[-1],
                                          old.images, old.finished)
            return
        self._read_at = time.time()
        self._snapshot = self._render(exp, version)

    def _read_at_text(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self._read_at)) if self._read_at else "?"

    def _render(self, exp: Experiment | None, version: int) -> Snapshot:
        from hpcnas.analytics.utilization import write_utilization

        process = search_process(self.directory)
        head = (f'<p class="muted">Read {html.escape(self._read_at_text())} (v{version})'
                + (f"; {html.escape(process)}" if process else "") + ".</p><!--state-->")
        results = exp.results if exp is not None else None
        has_runs = exp is not None and not exp.runs.empty
        if (results is None or not len(results)) and not has_runs:
            waiting = ("no results.csv yet" if exp is None else "no row yet")
            return Snapshot(version, head + '<p id="finished" data-finished="0" data-failed="0">Waiting for '
                            f"the first evaluation to finish ({waiting}).</p>")
        parts, images, finished = [head], [], 0
        if results is None:  # a Balsam workflow without the search's results.csv
            parts.append('<p class="note">no objectives: give the search\'s output directory too (DIR '
                         "--workflow WF) for the search curve and the best configurations</p>")
        elif len(results):
            finished = self._search_part(exp, version, parts, images)
        if has_runs:
            try:
                u = write_utilization(exp, self.out)
            except HpcnasError as err:
                parts.append(f'<h2>Utilization</h2><p class="note">{html.escape(str(err))}</p>')
            else:
                unit = "nodes" if "Balsam DB" in exp.source else "workers"
                parts.append(
                    f"<h2>Utilization</h2><p id=\"utilization\">{u['utilization_percent']:.1f}% of "
                    f"{u['nodes']:g} {unit} busy over {u['wall_seconds']:.1f} s "
                    f"({html.escape(_fmt(u['nodes_source']))}, {u['num_runs']} runs); evaluations count once "
                    "they finished.</p>"
                    f'<img alt="utilization" src="utilization.png?v={version}">')
                images.append("utilization.png")
        data = {}
        for name in images:
            with open(os.path.join(self.out, name), "rb") as fh:
                data[name] = fh.read()
        return Snapshot(version, "\n".join(parts), data, finished)

    def _search_part(self, exp: Experiment, version: int, parts: list[str], images: list[str]) -> int:
        from hpcnas.analytics.search import write_search
        from hpcnas.analytics.topk import write_topk

        s = write_search(exp, self.out, maximize=self.maximize)
        rate = (60.0 * s["num_evaluations"] / s["wall_seconds"]) if s["wall_seconds"] > 0 else None
        best = (f"best objective <b>{s['best_objective']:.6g}</b> (evaluation {s['best_at_evaluation']}, "
                f"after {s['best_at_elapsed_s']:.1f} s)" if s["best_objective"] is not None
                else "no successful evaluation yet")
        parts.append(f'<p id="finished" data-finished="{s["num_evaluations"]}" data-failed="{s["num_failed"]}">'
                     f"<b>{s['num_evaluations']}</b> evaluations finished, {s['num_failed']} failed; {best}"
                     + (f"; {rate:.3g} per minute" if rate else "") + ".</p>")
        parts.append(f'<h2>Search</h2><img alt="search curve" src="search.png?v={version}">')
        images.append("search.png")
        if s["best_objective"] is not None:
            table = write_topk(exp, self.out, self.k, maximize=self.maximize)
            parts.append(f"<h2>Best {len(table)} configurations</h2>"
                         + table.to_html(index=False, na_rep="", table_id="best",
                                         float_format=lambda x: f"{x:.6g}"))
        return int(s["num_evaluations"])
