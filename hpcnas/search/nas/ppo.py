"""``python -m hpcnas.search.nas.ppo``: DeepHyper's reinforcement-learning NAS (its ``PPO`` Balsam
app) is not part of hpcnas; the command says so in one line and names the searches that are."""
from __future__ import annotations

MESSAGE = ("hpcnas: error: DeepHyper's PPO search (hpcnas.search.nas.ppo) is not in hpcnas: use "
           "python -m hpcnas.search.nas.age (aging evolution, DeepHyper's regevo) or hpcnas nas agebo")

if __name__ == "__main__":
    import sys

    print(MESSAGE, file=sys.stderr)
    sys.exit(2)
