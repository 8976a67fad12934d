# mypy: disable-error-code="no-untyped-call,no-any-return"
# (Ray's public functions are untyped; scenarios return what Ray returns.)
"""The differential table's harness: topology, outcomes, and the scenario registry.

A scenario is a function ``(Env) -> Outcome`` registered with :func:`scenario`; it drives
Ray only through its public API and returns a normalized, JSON-able outcome, so the same
function runs against a real cluster and against the fake (see the package doc).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import ray

from pytest_raycallbacks.fake_ray.topology import GIB, NodeSpec

Outcome = dict[str, Any]

#: The reference topology, as NodeSpecs (the fake's side of ``differential_ray_cluster``).
REFERENCE_NODES: Final = (
    NodeSpec(name="head", num_cpus=2, memory=4 * GIB, object_store_memory=GIB, head=True),
    NodeSpec(
        name="gpu-a",
        num_cpus=2,
        num_gpus=2,
        memory=4 * GIB,
        object_store_memory=GIB,
        resources={"accelerator_type:A100": 1.0},
    ),
    NodeSpec(name="gpu-b", num_cpus=2, num_gpus=2, memory=4 * GIB, object_store_memory=GIB),
)

HEX_ID = re.compile(r"(?<![0-9a-f])[0-9a-f]{16,}(?![0-9a-f])")


@dataclass(frozen=True)
class Topology:
    """What a scenario needs to know about the cluster it runs on."""

    head: str
    gpu_nodes: tuple[str, ...]
    cpu_nodes: tuple[str, ...]
    gpus_per_node: int
    cpus: dict[str, float]
    accelerator_nodes: tuple[str, ...]

    def kind(self, node_id: str) -> str:
        if node_id == "":
            return "-"
        if node_id == self.head:
            return "head"
        if node_id in self.accelerator_nodes:
            return "gpu-a100"
        if node_id in self.gpu_nodes:
            return "gpu"
        return "cpu"


def discover() -> Topology:
    """The topology of the cluster ``ray`` is connected to (real or fake)."""
    nodes = [n for n in ray.nodes() if n["Alive"]]
    head = next(n["NodeID"] for n in nodes if "node:__internal_head__" in n["Resources"])
    gpu = tuple(n["NodeID"] for n in nodes if n["Resources"].get("GPU", 0) >= 1)
    cpu = tuple(n["NodeID"] for n in nodes if n["NodeID"] not in gpu and n["NodeID"] != head)
    per_node = int(min(n["Resources"]["GPU"] for n in nodes if n["NodeID"] in gpu)) if gpu else 0
    accel = tuple(
        n["NodeID"]
        for n in nodes
        if n["NodeID"] in gpu and any(k.startswith("accelerator_type:") for k in n["Resources"])
    )
    return Topology(
        head=head,
        gpu_nodes=gpu,
        cpu_nodes=cpu,
        gpus_per_node=per_node,
        cpus={n["NodeID"]: n["Resources"].get("CPU", 0.0) for n in nodes},
        accelerator_nodes=accel,
    )


def mirror_nodes(nodes: Iterable[Mapping[str, Any]]) -> list[NodeSpec]:
    """NodeSpecs of a fake cluster shaped like the alive nodes in ``ray.nodes()``."""
    specs = []
    alive = [n for n in nodes if n.get("Alive")]
    alive.sort(key=lambda n: "node:__internal_head__" not in n["Resources"])
    for i, n in enumerate(alive):
        res = dict(n["Resources"])
        head = res.pop("node:__internal_head__", None) is not None
        custom = {
            k: v
            for k, v in res.items()
            if not k.startswith("node:")
            and k not in ("CPU", "GPU", "memory", "object_store_memory")
        }
        labels = {k: v for k, v in (n.get("Labels") or {}).items() if k != "ray.io/node-id"}
        specs.append(
            NodeSpec(
                name="head" if head else f"node-{i}",
                num_cpus=res.get("CPU", 0.0),
                num_gpus=res.get("GPU", 0.0),
                memory=res.get("memory", 0.0),
                object_store_memory=res.get("object_store_memory", 0.0),
                resources=custom,
                labels=labels,
                head=head,
            )
        )
    return specs


_STR_SET = re.compile(r"\{'[^'{}]*'(?:, '[^'{}]*')+\}")


def normalize_message(text: str) -> str:
    """Ids become ``<id>``; a set of strings is listed sorted (set order varies by process)."""
    text = HEX_ID.sub("<id>", text)
    return _STR_SET.sub(lambda m: "{" + ", ".join(sorted(m.group(0)[1:-1].split(", "))) + "}", text)


def error_outcome(exc: BaseException) -> Outcome:
    """An exception as an outcome: its type, whether it is a Ray error, and its message
    (:func:`normalize_message`)."""
    return {
        "error": type(exc).__name__,
        "ray_error": isinstance(exc, ray.exceptions.RayError),
        "message": normalize_message(str(exc)),
    }


def attempt(fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or its exception as an :func:`error_outcome`."""
    try:
        return fn()
    except Exception as exc:
        return error_outcome(exc)


def attempt_until_error(fn: Callable[[], Any], timeout_s: float) -> dict[str, Any]:
    """Call ``fn()`` until it raises (bounded): the error outcome, or ``{"error": None}``.

    ``ray.kill`` is asynchronous on a real cluster: a call made right after it can still be
    served, more so on a loaded machine, so "the actor is dead" is awaited, not sampled.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        outcome = attempt(fn)
        if isinstance(outcome, dict) and outcome.get("error"):
            return outcome
        if time.monotonic() >= deadline:
            return {"error": None, "message": f"still answering after {timeout_s:g} s"}
        time.sleep(0.05)


@dataclass(frozen=True)
class Env:
    """What a scenario gets: the topology and the wait times to use."""

    topology: Topology
    ready_s: float = 20.0
    pending_s: float = 1.0


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[Env], Outcome]
    about: str


SCENARIOS: list[Scenario] = []


def scenario(about: str) -> Callable[[Callable[[Env], Outcome]], Callable[[Env], Outcome]]:
    def register(fn: Callable[[Env], Outcome]) -> Callable[[Env], Outcome]:
        SCENARIOS.append(Scenario(fn.__name__, fn, about))
        return fn

    return register


def gpu_bundles(n: int, amount: float = 1.0) -> list[dict[str, float]]:
    """``n`` bundles of ``amount`` GPU each."""
    return [{"GPU": amount} for _ in range(n)]


def wait_until_idle(timeout_s: float = 10.0) -> None:
    """Wait until available resources equal the totals (a real cluster frees lazily)."""
    deadline = time.monotonic() + timeout_s
    keys = ("CPU", "GPU")
    while time.monotonic() < deadline:
        total, avail = ray.cluster_resources(), ray.available_resources()
        if all(avail.get(k, 0.0) == total.get(k, 0.0) for k in keys):
            return
        time.sleep(0.05)
