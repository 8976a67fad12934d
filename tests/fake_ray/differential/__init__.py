"""The differential scenario table: evidence that the fake behaves as Ray does.

Each :class:`~.harness.Scenario` drives Ray only through its public API (``import ray``),
so the same function runs against a real cluster and against ``FakeRayCluster``, and
returns a normalized *outcome* (a JSON-able dict: states, errors with their types and
messages, which kinds of node things landed on, GPU ids ...). The differential test
(``tests/fake_ray/test_differential.py``) runs every scenario on a real multi-node cluster
with logical GPUs and on a fake cluster that mirrors its nodes (:func:`mirror_nodes`), and
asserts equal outcomes.

Scenarios size themselves from the cluster they find (:class:`~.harness.Topology`), so they
need only: a head node, at least two GPU nodes with at least two GPUs each, and an idle
cluster (each scenario removes what it creates). The reference topology (what
``differential_ray_cluster`` starts and :data:`REFERENCE_NODES` describes) is a 2-CPU head
plus two nodes of 2 CPUs and 2 GPUs, the first with ``accelerator_type:A100``.

Modules: :mod:`.harness` (topology, outcomes, the registry), :mod:`.remote` (task bodies
and the actor), :mod:`.group_scenarios` and :mod:`.task_scenarios` (the table, registered
in that order). Grow the table whenever the fake grows.
"""

from __future__ import annotations

from . import group_scenarios, task_scenarios
from .harness import (
    REFERENCE_NODES,
    SCENARIOS,
    Env,
    Scenario,
    discover,
    mirror_nodes,
    wait_until_idle,
)
from .remote import where_am_i

__all__ = [
    "REFERENCE_NODES",
    "SCENARIOS",
    "Env",
    "Scenario",
    "discover",
    "group_scenarios",
    "mirror_nodes",
    "task_scenarios",
    "wait_until_idle",
    "where_am_i",
]
