"""Benchmark of the in-memory fake Ray cluster (``fake_ray_cluster``).

Run from the repository root::

    python benchmarks/bench_fake_ray.py              # fake vs real Ray, then scale
    python benchmarks/bench_fake_ray.py --no-real    # scale only (no Ray processes)

Two measurements, side by side in one run:

1. **Fake vs real** on one small scenario, the same code against both: on a cluster of a
   2-CPU head and two nodes of 2 CPUs and 2 logical GPUs, create a PACK placement group of
   two GPU bundles, wait for it, run one task in each bundle (reading node id and GPU ids),
   get the results and remove the group. Also ``initialize_node`` with the bundled tiny
   model and tensor_parallel_size=2. Prints the median time per iteration on each and the
   ratio (real / fake). The real cluster (``ray.cluster_utils.Cluster``) runs under a
   private ``RAY_TMPDIR`` and is shut down at the end; its start-up time is printed apart.
2. **Placement growth**: clusters of 10, 100, 1,000 and 10,000 nodes of 8 GPUs; the time
   to place (``ray.util.placement_group`` returning a created group) a STRICT_SPREAD group
   of min(512, nodes) one-GPU bundles, a PACK group of 8 one-GPU bundles and a SPREAD group
   of 64, median and worst of ``--repeat`` runs (a worst case far above the median is
   usually a full garbage collection of the process, not placement).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def small_scenario() -> None:
    """The small scenario, written against Ray's public API only."""
    import ray
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from tests.fake_ray.differential import where_am_i

    pg = ray.util.placement_group([{"GPU": 1}, {"GPU": 1}], strategy="PACK")
    assert pg.wait(30)
    refs = [
        where_am_i.options(
            num_gpus=1, num_cpus=0, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, i)
        ).remote()
        for i in range(2)
    ]
    infos = ray.get(refs, timeout=30)
    assert sorted(i["gpu_ids"][0] for i in infos) == [0, 1], infos
    ray.util.remove_placement_group(pg)


def init_scenario(cache_dir: str) -> None:
    """``initialize_node`` with the bundled tiny model, tensor_parallel_size=2."""
    import ray

    from reference_runner import TINY_MODEL_PATH, LLMConfig, initialize_node

    config = LLMConfig(
        model_id=TINY_MODEL_PATH,
        engine_kwargs={"tensor_parallel_size": 2},
        model_cache_dir=cache_dir,
    )
    out = asyncio.run(initialize_node(config, callback_timeout_s=None))
    ray.util.remove_placement_group(out.placement_group)


def timed(
    fn: Callable[[], Any], repeat: int, settle: Callable[[], None] | None = None
) -> list[float]:
    times = []
    for _ in range(repeat):
        if settle is not None:
            settle()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:9.2f} ms" if ms < 10_000 else f"{ms / 1000:9.2f} s "


def reference_nodes() -> list[Any]:
    from tests.fake_ray.differential import REFERENCE_NODES

    return list(REFERENCE_NODES)


def bench_fake_vs_real(repeat: int, with_real: bool) -> None:
    from pytest_raycallbacks.fake_ray import FakeRayCluster

    cache = tempfile.mkdtemp(prefix="bench-fake-ray-cache-")
    rows: list[tuple[str, list[float], list[float] | None]] = []
    first_start = fake_start = 0.0
    real_start: float | None = None
    try:
        start = time.perf_counter()
        with FakeRayCluster(reference_nodes()):  # the first start imports what it needs
            first_start = time.perf_counter() - start
        start = time.perf_counter()
        with FakeRayCluster(reference_nodes()):
            fake_start = time.perf_counter() - start
            fake_small = timed(small_scenario, repeat)
            fake_init = timed(lambda: init_scenario(cache), repeat)
        real_small = real_init = None
        if with_real:
            real_start, real_small, real_init = run_real(repeat, cache)
        rows = [
            ("placement group + 2 bundle tasks", fake_small, real_small),
            ("initialize_node (tiny model, TP=2)", fake_init, real_init),
        ]
    finally:
        shutil.rmtree(cache, ignore_errors=True)

    print(
        f"== fake vs real Ray: the same scenario, median per iteration ({repeat} iterations each)"
    )
    print(f"{'scenario':38} {'fake':>12} {'real':>12} {'real/fake':>10}")
    for name, fake, real in rows:
        f = statistics.median(fake)
        if real is None:
            print(f"{name:38} {fmt_ms(f):>12} {'-':>12} {'-':>10}")
        else:
            r = statistics.median(real)
            print(f"{name:38} {fmt_ms(f):>12} {fmt_ms(r):>12} {r / f:9.0f}x")
    first = "fake: first start in the process"
    print(f"{first:38} {fmt_ms(first_start):>12}  (imports the Ray modules it routes)")
    line = f"{'cluster start (head + 2 GPU nodes)':38} {fmt_ms(fake_start):>12}"
    if real_start is not None:
        line += f" {fmt_ms(real_start):>12} {real_start / fake_start:9.0f}x"
    print(line)
    print()


def run_real(repeat: int, cache: str) -> tuple[float, list[float], list[float]]:
    import ray
    from ray.cluster_utils import Cluster

    from tests.fake_ray.differential import wait_until_idle

    temp = tempfile.mkdtemp(prefix="rcb-bench-", dir="/tmp")
    saved = {k: os.environ.get(k) for k in ("RAY_TMPDIR", "CUDA_VISIBLE_DEVICES", "PYTHONPATH")}
    os.environ["RAY_TMPDIR"] = temp
    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved["PYTHONPATH"]) if p)
    cluster = None
    try:
        start = time.perf_counter()
        cluster = Cluster(
            initialize_head=True, head_node_args={"num_cpus": 2, "include_dashboard": False}
        )
        cluster.add_node(num_cpus=2, num_gpus=2, resources={"accelerator_type:A100": 1})
        cluster.add_node(num_cpus=2, num_gpus=2)
        ray.init(address=cluster.address, log_to_driver=False)
        cluster.wait_for_nodes()
        real_start = time.perf_counter() - start
        small_scenario()  # warm the workers up once, as a long-lived cluster would be
        small = timed(small_scenario, repeat, settle=wait_until_idle)
        init = timed(lambda: init_scenario(cache), repeat, settle=wait_until_idle)
        return real_start, small, init
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp, ignore_errors=True)


def bench_scale(sizes: list[int], repeat: int) -> None:
    import ray

    from pytest_raycallbacks.fake_ray import FakeRayCluster

    print(f"== placement time vs cluster size (nodes of 8 GPUs; median / worst of {repeat})")
    spread = "STRICT_SPREAD min(512,n)"
    header = f"{'nodes':>7} {'build':>10} {spread:>26} {'PACK 8':>22} {'SPREAD 64':>22}"
    print(header)
    for n in sizes:
        start = time.perf_counter()
        cluster = FakeRayCluster(gpu_nodes=n, model_cache_dir=False)
        cluster.start()
        build = time.perf_counter() - start
        try:
            cells = []
            for bundles, strategy in ((min(512, n), "STRICT_SPREAD"), (8, "PACK"), (64, "SPREAD")):

                def place(bundles: int = bundles, strategy: str = strategy) -> None:
                    pg = ray.util.placement_group([{"GPU": 1}] * bundles, strategy=strategy)
                    place.last = pg  # type: ignore[attr-defined]

                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    place()
                    times.append(time.perf_counter() - t0)
                    pg = place.last  # type: ignore[attr-defined]
                    assert pg.wait(0), f"{strategy} of {bundles} was not placed on {n} nodes"
                    ray.util.remove_placement_group(pg)
                cells.append(
                    f"{fmt_ms(statistics.median(times)).strip()} / {fmt_ms(max(times)).strip()}"
                )
            print(f"{n:>7} {fmt_ms(build):>10} {cells[0]:>26} {cells[1]:>22} {cells[2]:>22}")
        finally:
            cluster.stop()
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-real", action="store_true", help="skip the real Ray cluster")
    parser.add_argument("--repeat", type=int, default=10, help="iterations per measurement")
    parser.add_argument(
        "--sizes", default="10,100,1000,10000", help="cluster sizes for the scale table"
    )
    args = parser.parse_args(argv)
    bench_fake_vs_real(args.repeat, with_real=not args.no_real)
    bench_scale([int(s) for s in args.sizes.split(",")], args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
