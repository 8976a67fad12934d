"""The shape of a fake cluster: :class:`NodeSpec` and the default topology.

Default (what ``fake_ray_cluster`` starts with): a CPU-only head node plus two GPU nodes of
8 GPUs each (accelerator type ``A100``)::

    head   CPU 8,  memory 32 GiB,  object store 8 GiB
    gpu-0  CPU 64, GPU 8, memory 512 GiB, object store 64 GiB, accelerator_type:A100 1
    gpu-1  (the same)

A node's resources are what Ray would report for it: ``CPU``, ``GPU``, ``memory``,
``object_store_memory``, ``node:<ip>`` (1), ``node:__internal_head__`` (head only),
``accelerator_type:<type>`` (1, GPU nodes with a type) and any custom resources. Its labels
are ``ray.io/node-id`` plus ``ray.io/accelerator-type`` where it has a type, plus any given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final

GIB: Final = 1024**3

DEFAULT_GPU_NODES: Final = 2
DEFAULT_GPUS_PER_NODE: Final = 8
DEFAULT_CPUS_PER_GPU_NODE: Final = 64
DEFAULT_HEAD_CPUS: Final = 8
DEFAULT_ACCELERATOR_TYPE: Final = "A100"


@dataclass(frozen=True)
class NodeSpec:
    """One node of a fake cluster.

    ``name`` is a handle for tests (``cluster.node("gpu-0")``); Ray never sees it (Ray
    reports the node's ip as ``NodeName``). ``env`` holds environment variables tasks on
    this node see in ``os.environ`` (on top of the process's).
    """

    name: str | None = None
    num_cpus: float = 8
    num_gpus: float = 0
    memory: float = 64 * GIB
    object_store_memory: float = 16 * GIB
    resources: Mapping[str, float] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    accelerator_type: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    head: bool = False

    def __post_init__(self) -> None:
        for key in ("num_cpus", "num_gpus", "memory", "object_store_memory"):
            value = getattr(self, key)
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"NodeSpec.{key} must be a number >= 0, got {value!r}")
        for key in ("CPU", "GPU", "memory", "object_store_memory"):
            if key in self.resources:
                raise ValueError(
                    f"NodeSpec.resources must not hold {key!r}; use the num_cpus / num_gpus / "
                    "memory / object_store_memory fields"
                )

    @classmethod
    def coerce(cls, value: NodeSpec | Mapping[str, Any]) -> NodeSpec:
        """A :class:`NodeSpec` or a mapping of its fields (as a marker passes them)."""
        if isinstance(value, NodeSpec):
            return value
        if not isinstance(value, Mapping):
            raise TypeError(f"a node must be a NodeSpec or a mapping of its fields, got {value!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise TypeError(f"unknown NodeSpec fields {unknown}; known: {sorted(known)}")
        return cls(**dict(value))


def gpu_node(
    name: str | None = None,
    *,
    num_gpus: float = DEFAULT_GPUS_PER_NODE,
    num_cpus: float = DEFAULT_CPUS_PER_GPU_NODE,
    accelerator_type: str | None = DEFAULT_ACCELERATOR_TYPE,
    **more: Any,
) -> NodeSpec:
    """A GPU worker node as the default topology builds it."""
    more.setdefault("memory", 512 * GIB)
    more.setdefault("object_store_memory", 64 * GIB)
    return NodeSpec(
        name=name,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        accelerator_type=accelerator_type,
        **more,
    )


def head_node(num_cpus: float = DEFAULT_HEAD_CPUS, **more: Any) -> NodeSpec:
    """The CPU-only head node of the default topology."""
    more.setdefault("memory", 32 * GIB)
    more.setdefault("object_store_memory", 8 * GIB)
    return NodeSpec(name=more.pop("name", "head"), num_cpus=num_cpus, head=True, **more)


def default_topology(
    *,
    gpu_nodes: int = DEFAULT_GPU_NODES,
    gpus_per_node: float = DEFAULT_GPUS_PER_NODE,
    cpus_per_node: float = DEFAULT_CPUS_PER_GPU_NODE,
    head_cpus: float = DEFAULT_HEAD_CPUS,
    accelerator_type: str | None = DEFAULT_ACCELERATOR_TYPE,
) -> list[NodeSpec]:
    """A CPU head plus ``gpu_nodes`` nodes named ``gpu-0``, ``gpu-1``, ..."""
    if not isinstance(gpu_nodes, int) or gpu_nodes < 0:
        raise ValueError(f"gpu_nodes must be an int >= 0, got {gpu_nodes!r}")
    return [head_node(head_cpus)] + [
        gpu_node(
            f"gpu-{i}",
            num_gpus=gpus_per_node,
            num_cpus=cpus_per_node,
            accelerator_type=accelerator_type,
        )
        for i in range(gpu_nodes)
    ]


def resolve_nodes(
    nodes: Iterable[NodeSpec | Mapping[str, Any]] | None, **defaults: Any
) -> list[NodeSpec]:
    """The node list a cluster starts with: ``nodes`` if given (the first one is the head
    unless one says ``head=True``), else :func:`default_topology` with ``defaults``."""
    if nodes is None:
        return default_topology(**defaults)
    specs: Sequence[NodeSpec] = [NodeSpec.coerce(n) for n in nodes]
    if not specs:
        raise ValueError("a fake cluster needs at least one node (the head)")
    heads = [s for s in specs if s.head]
    if len(heads) > 1:
        raise ValueError("only one node may say head=True")
    if not heads:
        first = specs[0]
        specs = [replace(first, head=True), *specs[1:]]
    return list(specs)
