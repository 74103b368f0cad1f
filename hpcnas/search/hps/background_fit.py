"""A surrogate fit in a background thread, so that asks go on from the last fitted model.

On a real clock a refit of AMBS (0.3--3 s for a forest) would stall every ask behind it while
workers sit idle. :class:`BackgroundFit` runs the fit in a daemon thread instead (scikit-learn
builds trees and solves the GP's linear algebra without the GIL); the search keeps asking from
the model it has and installs the new one at its first call after the fit ended. Only the
thread touches the new model until then; it receives copies of the training data.

Asks then depend on how long a fit takes, so a search is reproducible only with synchronous
fits: the search master turns background fits on for evaluators on the real clock (local,
Ray, Balsam), never for the simulated one.
"""
from __future__ import annotations

import threading
from typing import Any, Callable


class BackgroundFit:
    """One fit ``build() -> result`` running in a daemon thread."""

    def __init__(self, build: Callable[[], Any], tag: Any = None) -> None:
        self.tag = tag  # what the caller needs with the result (e.g. the number of points fitted)
        self._result: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(build,), name="hpcnas-surrogate-fit", daemon=True)
        self._thread.start()

    def _run(self, build: Callable[[], Any]) -> None:
        try:
            self._result = build()
        except BaseException as err:  # noqa: BLE001 - re-raised in the search's thread by result()
            self._error = err

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> Any:
        """Wait for the fit; its result (or its exception, raised here)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result
