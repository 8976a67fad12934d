"""Cost per callback call of the reference CallbackRunner, against a bare loop and pluggy.

Compared, on the same callbacks (each returns a one-key dict, as a typical callback that
sets something does):

* ``bare``     - ``for cb in cbs: r = cb(phase, config, data); if r: data.update(r)``
* ``default``  - ``await CallbackRunner(cbs).run(phase, config)`` (the default path: return
                 type and key checks, reserved-key checks of returned and in-place writes,
                 merge, rollback of rejected calls, error notes)
* ``pluggy``   - a pluggy hook with the same number of implementations, results merged
* ``trace`` / ``strict`` - ``CallbackRunner(cbs, trace=True)`` / ``strict=True``
* the bound: ``CallbackRunner(cbs, timeout_s=30)`` (each call on the runner's worker thread
  and loop), for ``def`` callbacks and for ``async def`` ones, against the default path on
  the same callbacks.

Method: the paths are measured in interleaved rounds (A B C A B C ...), each sample a fixed
number of ``run`` calls on one event loop (short, so that few samples are interrupted
by the rest of the machine), and every figure is the *median over rounds*: a
path's ns per call, and each ratio taken within a round (so one noisy moment cannot make or
break a ratio). Goals for the default path: at most 2x the bare loop, at most half of
pluggy's cost per call.

Run: ``python benchmarks/bench_runner.py [--callbacks N] [--rounds R] [--runs M]``; the
default settings take about 20 s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from reference_runner import CallbackRunner

Sample = Callable[[], Awaitable[float]]  # one timed sample: seconds per callback call


def make_callbacks(n: int, *, is_async: bool = False) -> list[Callable[..., Any]]:
    def make(i: int) -> Callable[..., Any]:
        key = f"key_{i}"
        if is_async:

            async def async_callback(
                phase: str, config: Any, data: dict[str, Any]
            ) -> dict[str, Any]:
                return {key: phase}

            return async_callback

        def callback(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
            return {key: phase}

        return callback

    return [make(i) for i in range(n)]


def bare_sample(callbacks: list[Callable[..., Any]], runs: int) -> Sample:
    async def bare_run(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
        for cb in callbacks:
            result = cb(phase, config, data)
            if result:
                data.update(result)
        return data

    async def sample() -> float:
        data: dict[str, Any] = {}
        start = time.perf_counter()
        for _ in range(runs):
            await bare_run("pre_download", None, data)
        return (time.perf_counter() - start) / (runs * len(callbacks))

    return sample


def runner_sample(callbacks: list[Callable[..., Any]], runs: int, **options: Any) -> Sample:
    """A runner kept across samples (its worker thread stays warm), except with a trace:
    then a fresh one per sample, so the records of earlier samples do not pile up."""
    kept = CallbackRunner(callbacks, **options)
    fresh = options.get("trace") or options.get("strict")

    async def sample() -> float:
        runner = CallbackRunner(callbacks, **options) if fresh else kept
        run = runner.run
        start = time.perf_counter()
        for _ in range(runs):
            await run("pre_download", None)
        return (time.perf_counter() - start) / (runs * len(callbacks))

    return sample


def pluggy_sample(callbacks: list[Callable[..., Any]], runs: int) -> Sample:
    import pluggy

    spec = pluggy.HookspecMarker("bench")
    impl = pluggy.HookimplMarker("bench")

    class Spec:
        @spec
        def on_phase(self, phase: str, config: Any, data: dict[str, Any]) -> Any: ...

    def plugin_for(cb: Callable[..., Any]) -> object:
        class Plugin:
            @impl
            def on_phase(self, phase: str, config: Any, data: dict[str, Any]) -> Any:
                return cb(phase, config, data)

        return Plugin()

    pm = pluggy.PluginManager("bench")
    pm.add_hookspecs(Spec)
    for cb in reversed(callbacks):  # pluggy calls the last registered first
        pm.register(plugin_for(cb))
    hook = pm.hook.on_phase

    async def sample() -> float:
        data: dict[str, Any] = {}
        start = time.perf_counter()
        for _ in range(runs):
            for result in hook(phase="pre_download", config=None, data=data):
                data.update(result)
        return (time.perf_counter() - start) / (runs * len(callbacks))

    return sample


def interleaved(
    loop: asyncio.AbstractEventLoop, samples: dict[str, Sample], rounds: int
) -> dict[str, list[float]]:
    """Run one sample of every path per round, in turn; return the seconds per call of each
    path, one value per round."""
    for sample in samples.values():  # warm-up: first calls, worker threads, caches
        loop.run_until_complete(sample())
    out: dict[str, list[float]] = {name: [] for name in samples}
    for _ in range(rounds):
        for name, sample in samples.items():
            out[name].append(loop.run_until_complete(sample()))
    return out


def median_ratio(times: dict[str, list[float]], num: str, den: str) -> float:
    return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))


def goal(label: str, value: float, limit: float) -> str:
    verdict = "OK" if value <= limit else "MISSED"
    return f"{label} <= {limit:g}x: {value:.2f}x {verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=10, help="callbacks per run")
    parser.add_argument("--rounds", type=int, default=301, help="interleaved rounds")
    parser.add_argument("--runs", type=int, default=100, help="runs per sample (fast paths)")
    args = parser.parse_args()
    n, rounds, runs = args.callbacks, args.rounds, args.runs
    bounded_runs = max(1, runs // 20)
    sync_cbs = make_callbacks(n)
    async_cbs = make_callbacks(n, is_async=True)
    loop = asyncio.new_event_loop()
    started = time.perf_counter()

    fast: dict[str, Sample] = {
        "bare": bare_sample(sync_cbs, runs),
        "default": runner_sample(sync_cbs, runs),
    }
    try:
        fast["pluggy"] = pluggy_sample(sync_cbs, runs)
    except ImportError:
        print("pluggy is not installed: pip install pluggy (a benchmark-only dependency)")
    fast["trace"] = runner_sample(sync_cbs, runs, trace=True)
    fast["strict"] = runner_sample(sync_cbs, runs, strict=True)
    fast_times = interleaved(loop, fast, rounds)

    bound: dict[str, Sample] = {
        "default def": runner_sample(sync_cbs, bounded_runs),
        "bounded def": runner_sample(sync_cbs, bounded_runs, timeout_s=30),
        "default async": runner_sample(async_cbs, bounded_runs),
        "bounded async": runner_sample(async_cbs, bounded_runs, timeout_s=30),
    }
    bound_times = interleaved(loop, bound, rounds)
    loop.close()

    print(
        f"{n} callbacks; {rounds} interleaved rounds; a sample = {runs} runs "
        f"({bounded_runs} for the bound); medians over rounds"
    )
    print(f"{'path':<14} {'ns/call':>10}")
    for name, values in {**fast_times, **bound_times}.items():
        print(f"{name:<14} {statistics.median(values) * 1e9:10.0f}")
    print()
    print(goal("default/bare", median_ratio(fast_times, "default", "bare"), 2.0))
    if "pluggy" in fast_times:
        print(goal("default/pluggy", median_ratio(fast_times, "default", "pluggy"), 0.5))
    for kind in ("def", "async"):
        extra = statistics.median(
            b - d
            for b, d in zip(
                bound_times[f"bounded {kind}"], bound_times[f"default {kind}"], strict=True
            )
        )
        ratio = median_ratio(bound_times, f"bounded {kind}", f"default {kind}")
        print(
            f"the bound, {kind} callbacks: +{extra * 1e6:.1f} us per call "
            f"({ratio:.0f}x the default path)"
        )
    print(f"(took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
