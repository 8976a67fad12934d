"""Start-up time and per-test overhead of the live cluster (``gpu_ray_cluster``).

Measured, in one process, on a simulated cluster (the CI mode):

* ``import ray``;
* ``start`` of the default topology (head + 2 GPU nodes) and of a head-only cluster, each
  with the driver connected (what a session pays once; ``--skip-head-only`` to skip it);
* per-test costs once warm: the leak check a test is wrapped in, a trivial task round trip,
  a GPU-view task, ``check_shippable``, ``run_initialize_node`` (the actor that runs
  ``initialize_node`` with the bundled tiny model, first call and warm median);
* ``add_node`` + ``remove_node`` (graceful and killed) and ``close``.

Run: ``python benchmarks/bench_live_cluster.py [--repeat N] [--skip-head-only]``. Prints
seconds per step. Numbers depend on the machine (cores, disk); the docs quote a run on the
CI machine (2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for `examples`

from pytest_raycallbacks.live import LiveCluster, LiveClusterConfig, parse_topology


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def median_of(fn: Callable[[], Any], repeat: int) -> float:
    return statistics.median(timed(fn)[0] for _ in range(repeat))


def noop() -> int:
    return 1


def report(rows: list[tuple[str, float]]) -> None:
    width = max(len(name) for name, _ in rows)
    for name, seconds in rows:
        print(f"  {name:<{width}}  {seconds * 1000:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="repeats of each warm step")
    parser.add_argument("--skip-head-only", action="store_true")
    args = parser.parse_args()

    rows: list[tuple[str, float]] = []
    seconds, _ = timed(lambda: __import__("ray"))
    rows.append(("import ray", seconds))

    if not args.skip_head_only:
        small = LiveCluster(LiveClusterConfig(gpus="simulate", nodes=parse_topology("2")))
        seconds, _ = timed(small.start)
        rows.append(("start: head-only (2 GPUs), driver connected", seconds))
        seconds, _ = timed(small.close)
        rows.append(("close: head-only", seconds))

    cluster = LiveCluster(LiveClusterConfig(gpus="simulate"))
    seconds, _ = timed(cluster.start)
    rows.append(("start: default (head + 2 nodes x 2 GPUs), driver connected", seconds))
    try:
        from examples.stateful_callback import CustomInitializationCallback

        gpu_node = next(n.node_id for n in cluster.nodes() if n.gpus)

        def leak_check() -> None:
            with cluster.leak_check():
                pass

        seconds, _ = timed(lambda: cluster.run_initialize_node([]))
        rows.append(("run_initialize_node: first call", seconds))
        rows.append(
            ("per test: leak check (snapshot + compare)", median_of(leak_check, args.repeat))
        )
        rows.append(
            (
                "per test: trivial task round trip",
                median_of(lambda: cluster.run_remote(noop), args.repeat),
            )
        )
        rows.append(
            (
                "per test: GPU-view task (1 GPU)",
                median_of(lambda: cluster.gpu_view(num_gpus=1), args.repeat),
            )
        )
        rows.append(
            (
                "per test: check_shippable(object)",
                median_of(
                    lambda: cluster.check_shippable(CustomInitializationCallback()), args.repeat
                ),
            )
        )
        rows.append(
            (
                "per test: run_initialize_node (spec, warm)",
                median_of(
                    lambda: cluster.run_initialize_node(
                        ["examples.stateful_callback.CustomInitializationCallback"]
                    ),
                    args.repeat,
                ),
            )
        )
        rows.append(
            (
                "per test: run_initialize_node on a GPU node",
                median_of(lambda: cluster.run_initialize_node([], node_id=gpu_node), args.repeat),
            )
        )
        seconds, node = timed(lambda: cluster.add_node(num_gpus=2))
        rows.append(("add_node (2 GPUs)", seconds))
        seconds, _ = timed(lambda: cluster.remove_node(node.node_id, graceful=True))
        rows.append(("remove_node graceful", seconds))
        node = cluster.add_node(num_gpus=2)
        seconds, _ = timed(lambda: cluster.remove_node(node.node_id))
        rows.append(("remove_node killed (until marked dead)", seconds))
    finally:
        seconds, _ = timed(cluster.close)
        rows.append(("close: default", seconds))
    print(f"live cluster benchmark (median of {args.repeat} for per-test steps):")
    report(rows)


if __name__ == "__main__":
    main()
