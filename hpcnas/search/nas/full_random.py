"""``python -m hpcnas.search.nas.full_random``: DeepHyper's random NAS (its ``RAN`` Balsam app) is
``hpcnas nas random`` (same options)."""
from __future__ import annotations

if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    print("hpcnas: note: hpcnas.search.nas.full_random is DeepHyper's name; hpcnas runs it as hpcnas nas random",
          file=sys.stderr, flush=True)
    sys.exit(module_main("nas", "random"))
