"""``python -m hpcnas.ray_cluster.wait --address HOST:PORT --nodes N``: wait for a Ray cluster.

Used by the ``ray-submit`` job scripts between ``ray start`` and the search: connects as a
driver (``RAY_AUTH_MODE``/``RAY_AUTH_TOKEN`` from the environment), polls until ``N`` nodes are
alive, prints the cluster's resources and exits 0; exits 1 with one line after ``--timeout``.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence


def alive_nodes(ray) -> int:
    return sum(1 for node in ray.nodes() if node.get("Alive"))


def wait_for_nodes(address: str, nodes: int, timeout: float, poll: float = 1.0) -> int:
    """Return the number of alive nodes once it reaches ``nodes``; raise ``TimeoutError``."""
    import ray

    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if not ray.is_initialized():
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            count = alive_nodes(ray)
            if count >= nodes:
                return count
        except Exception as err:  # noqa: BLE001 - the head may still be starting
            last_error = err
            if ray.is_initialized():
                ray.shutdown()
        time.sleep(poll)
    raise TimeoutError(f"{nodes} Ray node(s) not up at {address} after {timeout:g} s"
                       + (f" (last error: {last_error})" if last_error else ""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hpcnas.ray_cluster.wait")
    parser.add_argument("--address", required=True)
    parser.add_argument("--nodes", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        count = wait_for_nodes(args.address, args.nodes, args.timeout)
    except TimeoutError as err:
        print(f"hpcnas: error: {err}", file=sys.stderr)
        return 1
    import ray

    resources = {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")}
    print(f"hpcnas: {count} Ray node(s) up at {args.address} after {time.monotonic() - start:.1f} s: {resources}",
          flush=True)
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
