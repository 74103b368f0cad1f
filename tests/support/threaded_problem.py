"""A problem module that starts a non-daemon thread at import, which never ends by itself."""
from __future__ import annotations

import threading

from tests.support.toy import Problem  # noqa: F401 - the problem itself is the toy one

_never = threading.Event()
threading.Thread(target=_never.wait, name="problem-module-thread").start()  # daemon=False: keeps Python alive
