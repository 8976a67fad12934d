"""What live cluster to run: the mode, the simulated topology, the bounds.

Contract:

* :class:`LiveClusterConfig` is plain data (no Ray, no pytest). ``gpus`` is the requested
  mode (``auto``, ``simulate``, ``physical``); a non-empty ``address`` selects address mode
  whatever ``gpus`` says.
* The simulated topology defaults to a head node without GPUs plus two nodes of 2 GPUs, the
  first of them an ``A100`` (:data:`DEFAULT_SIMULATED_NODES`, the same shape as the fake
  cluster's reference topology). ``$RAYCALLBACKS_SIMULATE_NODES`` overrides it:
  comma-separated ``GPUS[:CPUS[:ACCELERATOR]]`` per node, head first, e.g.
  ``"0:2,2:2:A100,2:2"`` (the default), ``"2"`` (a single head node with 2 GPUs, the
  cheapest) or ``"0,4:8:H100"``. An accelerator adds the ``accelerator_type:<name>``
  resource Ray gives real GPU nodes.
* ``$RAYCALLBACKS_RUNTIME_ENV`` (JSON) is the job's runtime env, the way to ship code to a
  remote cluster (``{"working_dir": ".", "py_modules": [...]}``).
* ``$RAYCALLBACKS_RAY_TMPDIR`` is the folder under which the cluster's own temporary
  folder is made (default ``/tmp``; Ray's socket paths must stay under ~100 characters).
* ``$RAYCALLBACKS_LIVE_START_TIMEOUT`` bounds the cluster start (seconds, default 120).
* :func:`config_from_env` raises ``ValueError`` naming the variable and the expected form.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

RequestedGpus = Literal["auto", "simulate", "physical"]
Mode = Literal["simulate", "physical", "address"]

TOPOLOGY_ENV: Final = "RAYCALLBACKS_SIMULATE_NODES"
RUNTIME_ENV_ENV: Final = "RAYCALLBACKS_RUNTIME_ENV"
TMPDIR_ENV: Final = "RAYCALLBACKS_RAY_TMPDIR"
START_TIMEOUT_ENV: Final = "RAYCALLBACKS_LIVE_START_TIMEOUT"
REQUESTED_CHOICES: Final = ("auto", "simulate", "physical")


@dataclass(frozen=True)
class NodeSpec:
    """One simulated node: logical GPUs, logical CPUs and extra custom resources."""

    num_gpus: int = 0
    num_cpus: int = 1
    resources: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.num_gpus < 0 or self.num_cpus < 0:
            raise ValueError(f"a node needs GPUs and CPUs >= 0, got {self}")


#: Head (no GPU, 2 CPUs) + two nodes of 2 GPUs and 2 CPUs, the first an A100.
DEFAULT_SIMULATED_NODES: Final = (
    NodeSpec(0, 2),
    NodeSpec(2, 2, {"accelerator_type:A100": 1.0}),
    NodeSpec(2, 2),
)

#: GCS health checks of a simulated cluster: a killed node is declared dead in ~4 s (Ray's
#: defaults take ~17 s), yet a node must miss 4 checks of 2 s in a row to be declared dead.
SIMULATED_HEALTH_CHECKS: Final[Mapping[str, int]] = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 1000,
    "health_check_timeout_ms": 2000,
    "health_check_failure_threshold": 4,
}


@dataclass(frozen=True)
class LiveClusterConfig:
    """How to get a live cluster. See the module docstring for the environment variables.

    ``gpus``: the requested mode. ``address``: an existing cluster's GCS address
    (``host:port``); when set, nothing is started. ``nodes``: the simulated topology,
    head first. ``runtime_env``: the driver job's runtime env. The ``*_timeout_s`` fields
    bound each kind of wait. ``system_config``: Ray ``_system_config`` of a cluster we
    start (default: :data:`SIMULATED_HEALTH_CHECKS` in simulate mode, nothing otherwise).
    """

    gpus: RequestedGpus = "auto"
    address: str | None = None
    nodes: tuple[NodeSpec, ...] = DEFAULT_SIMULATED_NODES
    runtime_env: Mapping[str, Any] | None = None
    tmp_root: str = "/tmp"
    namespace: str | None = None
    start_timeout_s: float = 120.0
    node_timeout_s: float = 60.0
    task_timeout_s: float = 120.0
    placement_group_timeout_s: float = 60.0
    object_store_memory: int = 150 * 1024 * 1024
    log_to_driver: bool = False
    system_config: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.gpus not in REQUESTED_CHOICES:
            raise ValueError(
                f"gpus must be one of {', '.join(REQUESTED_CHOICES)}, got {self.gpus!r}"
            )
        if not self.nodes:
            raise ValueError("a simulated cluster needs at least a head node")
        for name in ("start_timeout_s", "node_timeout_s", "task_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")

    @property
    def wanted_mode(self) -> Mode | Literal["auto"]:
        """``address`` when an address is given, else the requested GPU mode."""
        if self.address:
            return "address"
        return "auto" if self.gpus == "auto" else self.gpus

    def with_overrides(self, **changes: Any) -> LiveClusterConfig:
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)


def parse_topology(text: str, *, source: str = TOPOLOGY_ENV) -> tuple[NodeSpec, ...]:
    """Parse ``"GPUS[:CPUS[:ACCELERATOR]],..."`` (head first) into node specs.

    A node's CPUs default to 1 for the head and to ``max(1, GPUS)`` for the others.
    """
    entries = [e.strip() for e in text.split(",")]
    if not text.strip() or any(not e for e in entries):
        raise ValueError(
            f"{source}={text!r}: expected comma-separated GPUS[:CPUS[:ACCELERATOR]] per node, "
            "head first, e.g. '0:2,2:2:A100,2:2' (a head without GPUs and two nodes of 2 GPUs)"
        )
    nodes = []
    for i, entry in enumerate(entries):
        fields = entry.split(":")
        if len(fields) > 3:
            raise ValueError(f"{source}={text!r}: node #{i} {entry!r} has more than 3 fields")
        gpus_text, cpus_text, accelerator = [*fields, "", ""][:3]
        try:
            gpus = int(gpus_text)
            cpus = int(cpus_text) if cpus_text else (1 if i == 0 else max(1, gpus))
        except ValueError:
            raise ValueError(
                f"{source}={text!r}: node #{i} {entry!r} is not GPUS[:CPUS[:ACCELERATOR]] "
                "with integer counts"
            ) from None
        if gpus < 0 or cpus < 0:
            raise ValueError(f"{source}={text!r}: node #{i} {entry!r} has a negative count")
        resources = {f"accelerator_type:{accelerator}": 1.0} if accelerator else {}
        nodes.append(NodeSpec(gpus, cpus, resources))
    return tuple(nodes)


def config_from_env(env: Mapping[str, str] | None = None, **fields: Any) -> LiveClusterConfig:
    """A :class:`LiveClusterConfig` from ``fields`` plus the ``RAYCALLBACKS_*`` variables.

    Explicit ``fields`` win over the environment.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if env.get(TOPOLOGY_ENV):
        values["nodes"] = parse_topology(env[TOPOLOGY_ENV])
    if env.get(RUNTIME_ENV_ENV):
        try:
            runtime_env = json.loads(env[RUNTIME_ENV_ENV])
        except json.JSONDecodeError as exc:
            raise ValueError(f"{RUNTIME_ENV_ENV} is not valid JSON: {exc}") from exc
        if not isinstance(runtime_env, dict):
            raise ValueError(
                f"{RUNTIME_ENV_ENV} must be a JSON object such as "
                f'{{"working_dir": "."}}, got {type(runtime_env).__name__}'
            )
        values["runtime_env"] = runtime_env
    if env.get(TMPDIR_ENV):
        values["tmp_root"] = env[TMPDIR_ENV]
    if env.get(START_TIMEOUT_ENV):
        try:
            values["start_timeout_s"] = float(env[START_TIMEOUT_ENV])
        except ValueError:
            raise ValueError(
                f"{START_TIMEOUT_ENV}={env[START_TIMEOUT_ENV]!r} is not a number of seconds"
            ) from None
    values.update({k: v for k, v in fields.items() if v is not None})
    return LiveClusterConfig(**values)
