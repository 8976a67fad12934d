"""Cost per callback call of the reference CallbackRunner, side by side in one process.

Compared, on the same callbacks (each returns a one-key dict, as a typical callback that
sets something does):

* ``bare loop``  - ``for cb in cbs: r = cb(phase, config, data); if r: data.update(r)``
* ``runner``     - ``await CallbackRunner(cbs).run(phase, config)`` (default path: return
                   type and key checks, reserved-key checks of returned and in-place
                   writes, merge, error notes)
* ``runner trace`` - ``CallbackRunner(cbs, trace=True)`` (adds a trace record per call)
* ``runner strict`` - ``CallbackRunner(cbs, strict=True)`` (trace plus a snapshot of data
                   per call, to see changes inside values)
* ``runner timeout`` - ``CallbackRunner(cbs, timeout_s=30)`` (each sync call in a thread)
* ``pluggy``     - a pluggy hook with the same number of implementations, results merged

Run: ``python benchmarks/bench_runner.py [--callbacks N] [--rounds R]``. Prints ns per
callback call (best of 5 repeats) and the ratios the README quotes. Targets for the default
path: at most 2x the bare loop and at most half of pluggy's cost per call.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from reference_runner import CallbackRunner


def make_callbacks(n: int) -> list[Callable[..., Any]]:
    def make(i: int) -> Callable[..., Any]:
        key = f"key_{i}"

        def callback(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any]:
            return {key: phase}

        return callback

    return [make(i) for i in range(n)]


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeats))


def bench_bare(callbacks: list[Callable[..., Any]], rounds: int) -> float:
    async def go() -> float:
        data: dict[str, Any] = {}
        start = time.perf_counter()
        for _ in range(rounds):
            await bare_run(callbacks, "pre_download", None, data)
        return time.perf_counter() - start

    async def bare_run(
        cbs: list[Callable[..., Any]], phase: str, config: Any, data: dict[str, Any]
    ) -> dict[str, Any]:
        for cb in cbs:
            result = cb(phase, config, data)
            if result:
                data.update(result)
        return data

    return asyncio.run(go())


def bench_runner(callbacks: list[Callable[..., Any]], rounds: int, **options: Any) -> float:
    async def go() -> float:
        runner = CallbackRunner(callbacks, **options)
        start = time.perf_counter()
        for _ in range(rounds):
            await runner.run("pre_download", None)
        return time.perf_counter() - start

    return asyncio.run(go())


def bench_pluggy(callbacks: list[Callable[..., Any]], rounds: int) -> float:
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

    async def go() -> float:
        data: dict[str, Any] = {}
        start = time.perf_counter()
        for _ in range(rounds):
            for result in hook(phase="pre_download", config=None, data=data):
                data.update(result)
        return time.perf_counter() - start

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callbacks", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    callbacks = make_callbacks(args.callbacks)
    calls = args.callbacks * args.rounds
    timeout_rounds = max(1, args.rounds // 100)

    results = {
        "bare loop": best_of(args.repeats, lambda: bench_bare(callbacks, args.rounds)) / calls,
        "runner": best_of(args.repeats, lambda: bench_runner(callbacks, args.rounds)) / calls,
        "runner trace": best_of(
            args.repeats, lambda: bench_runner(callbacks, args.rounds, trace=True)
        )
        / calls,
        "runner strict": best_of(
            args.repeats, lambda: bench_runner(callbacks, args.rounds, strict=True)
        )
        / calls,
        "runner timeout": best_of(
            args.repeats, lambda: bench_runner(callbacks, timeout_rounds, timeout_s=30)
        )
        / (args.callbacks * timeout_rounds),
    }
    try:
        results["pluggy"] = (
            best_of(args.repeats, lambda: bench_pluggy(callbacks, args.rounds)) / calls
        )
    except ImportError:
        print("pluggy is not installed: pip install pluggy (a benchmark-only dependency)")

    bare = results["bare loop"]
    print(f"{args.callbacks} callbacks x {args.rounds} rounds, best of {args.repeats}")
    print(f"{'path':<16} {'ns/call':>9} {'x bare':>7} {'x pluggy':>9}")
    for name, seconds in results.items():
        vs_pluggy = f"{seconds / results['pluggy']:9.2f}" if "pluggy" in results else "        -"
        print(f"{name:<16} {seconds * 1e9:9.0f} {seconds / bare:7.2f} {vs_pluggy}")


if __name__ == "__main__":
    main()
