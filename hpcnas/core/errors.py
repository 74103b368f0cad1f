"""User-facing errors.

Every problem a user can fix (bad option, unimportable problem, missing extra, unreachable
database) is raised as :class:`HpcnasError` with a one-line message that names the cause
and the fix. The CLI prints ``hpcnas: error: <message>`` and exits with code 2 (no
traceback unless ``--debug`` or ``HPCNAS_DEBUG=1``). Anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations


class HpcnasError(Exception):
    """An error the user can fix; ``str(err)`` is a single line naming cause and fix."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class UsageError(HpcnasError):
    """Invalid or contradictory command-line / API arguments."""


class MissingExtraError(HpcnasError):
    """An optional dependency is not installed."""


class SearchFailed(HpcnasError):
    """A search that ran but failed: no evaluation succeeded, or failures stopped it
    (``--max-failure-ratio``). Exit code 3, as a failed evaluation's Balsam job (1 would make
    Balsam run a search job again); its finished evaluations are in ``results`` (a DataFrame,
    when known) and in ``results.csv``."""

    exit_code = 3  # hpcnas.balsam.jobs.EXIT_FAILED

    def __init__(self, message: str, results: object = None) -> None:
        super().__init__(message)
        self.results = results
