"""Start ``hpcnas`` with a random search whose ``ask`` swallows ``KeyboardInterrupt`` (as some
library code on the master's path may): ``python -m tests.support.swallowing_search FLAG hps ...``.

Once ``ask`` has been called after the first result, it writes FLAG and waits there; a SIGINT
then lands inside ``ask``, which catches it and proposes nothing more, so the master ends its
loop as "exhausted" and the command returns 0 unless hpcnas remembers the signal."""
from __future__ import annotations

import sys
import time


def _patch(flag: str) -> None:
    from hpcnas.search.hps.random_search import RandomSearch

    original = RandomSearch.ask
    state = {"swallowed": False}

    def swallowing_ask(self, n=1):  # type: ignore[no-untyped-def]
        if state["swallowed"]:
            return []
        if self.num_told == 0:
            return original(self, n)
        open(flag, "w").close()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                time.sleep(0.01)
        except KeyboardInterrupt:
            state["swallowed"] = True
        return []

    RandomSearch.ask = swallowing_ask  # type: ignore[method-assign]


if __name__ == "__main__":
    _patch(sys.argv[1])
    from hpcnas.cli.main import main

    sys.argv = ["hpcnas", *sys.argv[2:]]
    sys.exit(main())
