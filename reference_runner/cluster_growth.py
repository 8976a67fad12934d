"""Can the cluster ``ray`` is connected to grow, i.e. could waiting bring new nodes?

:func:`probe_growth` answers with a :class:`Growth`: ``fixed`` (no autoscaler: the nodes
there now are all there will be), ``grows`` (an autoscaler may add nodes) or ``unknown``,
each with the reason in words. It reads what Ray's autoscalers publish in the GCS's key-value
store, through the connection of this worker (a driver, or a Ray actor) to the GCS that
``ray.get_runtime_context()`` names:

* an autoscaling config (``__autoscaler_cluster_config``, published by autoscalers that
  report node groups) with a node group that may have nodes: ``grows``;
* Ray's monitor status (``__autoscaling_status``): its report's node types are all the
  read-only ``node_<id>`` types Ray gives a cluster started by hand (``ray start``,
  ``ray.cluster_utils.Cluster``): ``fixed``; any other node type (a cluster launcher or
  KubeRay config): ``grows``; no report yet (the monitor has just started): ``unknown``;
* nothing published at all: no monitor runs, so nothing adds nodes: ``fixed`` (autoscaler
  v2 publishes no monitor status: ``unknown`` unless it published a config).

A runtime context whose GCS address is not ``host:port`` belongs to an in-process stand-in
for Ray (the kit's fake cluster, ``fake-ray://...``): its nodes change only when a test
changes them, so ``fixed``. Any error while asking: ``unknown``. Never raises.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, Literal

Verdict = Literal["fixed", "grows", "unknown"]

#: Keys Ray's autoscalers write (ray._private.ray_constants / src/ray/common/constants.h).
STATUS_KEY: Final = b"__autoscaling_status"
STATE_NAMESPACE: Final = b"__autoscaler"
CONFIG_KEY: Final = b"__autoscaler_cluster_config"
V2_KEY: Final = b"__autoscaler_v2_enabled"


@dataclass(frozen=True)
class Growth:
    """Whether the cluster can grow (``verdict``) and why we think so (``reason``)."""

    verdict: Verdict
    reason: str

    @property
    def fixed(self) -> bool:
        return self.verdict == "fixed"


def probe_growth(ray: Any) -> Growth:
    """Ask the cluster ``ray`` is connected to whether it can grow (see the module doc)."""
    try:
        address = str(ray.get_runtime_context().gcs_address)
    except Exception as exc:
        return Growth("unknown", f"Ray does not say which cluster this is ({exc})")
    if not _is_gcs_address(address):
        return Growth(
            "fixed",
            f"{address} is an in-process stand-in for Ray, whose nodes change only when a "
            "test changes them",
        )
    try:
        return _ask_gcs(address)
    except Exception as exc:
        return Growth("unknown", f"could not read the autoscaler's state from {address}: {exc}")


def _is_gcs_address(address: str) -> bool:
    host, _, port = address.rpartition(":")
    return bool(host) and port.isdigit() and "://" not in address


def _ask_gcs(address: str) -> Growth:
    # Ray's own client of the GCS this worker is connected to: the one the runtime context
    # names (a client of our own would open a connection, and wait long for a dead GCS).
    from ray.experimental import internal_kv

    if not internal_kv._internal_kv_initialized():  # type: ignore[no-untyped-call]
        return Growth("unknown", f"this process has no connection to the GCS at {address}")
    client = internal_kv.internal_kv_get_gcs_client()  # type: ignore[no-untyped-call]
    connected = str(getattr(client, "address", address))
    if connected != address:
        return Growth(
            "unknown", f"this process is connected to the GCS at {connected}, not at {address}"
        )

    def read(key: bytes, namespace: bytes | None = None) -> bytes | None:
        value = internal_kv._internal_kv_get(key, namespace=namespace)
        return bytes(value) if value else None

    config = read(CONFIG_KEY, STATE_NAMESPACE)
    if config:
        growth = growth_from_config(config)
        if growth is not None:
            return growth
    status = read(STATUS_KEY)
    if status:
        return growth_from_status(json.loads(status))
    if read(V2_KEY, STATE_NAMESPACE) == b"1":
        return Growth(
            "unknown",
            "autoscaler v2 runs but has published no autoscaling config to tell its limits",
        )
    return Growth("fixed", "no autoscaler publishes its state to the GCS (no monitor runs)")


def growth_from_config(serialized: bytes) -> Growth | None:
    """A verdict from a published autoscaling config; ``None`` when it names no node group."""
    from ray.core.generated import autoscaler_pb2

    config = autoscaler_pb2.ClusterConfig.FromString(serialized)  # type: ignore[attr-defined]
    groups = list(config.node_group_configs)
    if not groups:
        return None
    growing = [g for g in groups if g.max_count != 0]
    if not growing:
        return Growth("fixed", "the autoscaling config allows no node of any group")
    names = ", ".join(
        f"{g.name or '?'} (up to {'any number' if g.max_count < 0 else g.max_count})"
        for g in growing
    )
    return Growth("grows", f"an autoscaler may add nodes of the groups {names}")


def growth_from_status(status: dict[str, Any]) -> Growth:
    """A verdict from Ray's monitor status (the ``__autoscaling_status`` JSON)."""
    report = status.get("autoscaler_report")
    if not isinstance(report, dict):
        return Growth("unknown", "Ray's monitor has not reported on the cluster's nodes yet")
    mapping = report.get("node_type_mapping") or {}
    if not isinstance(mapping, dict) or not mapping:
        return Growth("unknown", "Ray's monitor reports no node types yet")
    launched = sorted({str(kind) for node, kind in mapping.items() if str(kind) != f"node_{node}"})
    if launched:
        return Growth("grows", f"an autoscaler manages the node types {', '.join(launched)}")
    return Growth(
        "fixed",
        "Ray's monitor runs read-only: the nodes were started by hand and no autoscaler adds any",
    )
