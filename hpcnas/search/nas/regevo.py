"""``python -m hpcnas.search.nas.regevo``: DeepHyper's regularized evolution (its ``EVO`` Balsam app)
is hpcnas's aging evolution, ``hpcnas nas age`` (same options)."""
from __future__ import annotations

if __name__ == "__main__":
    import sys

    from hpcnas.cli.search_cmd import module_main

    print("hpcnas: note: hpcnas.search.nas.regevo is DeepHyper's name; hpcnas runs it as hpcnas nas age "
          "(aging = regularized evolution)", file=sys.stderr, flush=True)
    sys.exit(module_main("nas", "age"))
