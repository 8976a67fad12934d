"""The ``gpu_ray_cluster`` fixture: the session's live Ray cluster with GPU nodes.

Contract:

* Session-scoped: one cluster per pytest process (each xdist worker starts its own, see
  ``docs/gpu_ray_cluster.md``), started on first use, closed at the end of the session.
* The mode comes from ``--raycallbacks-gpus`` (``auto``/``simulate``/``physical``) and
  ``--raycallbacks-ray-address`` (or their ini keys); the simulated topology and the remote
  runtime env from ``RAYCALLBACKS_*`` environment variables (:mod:`.config`).
* In a certification run (``--raycallbacks-conformance``), the warm cluster
  ``raycallbacks cluster up`` keeps between runs is used when it is up and healthy
  (:mod:`.warm_session`; the header line says so).
* A cluster that cannot start, or ``physical`` without GPUs, *fails* every test that asks
  for it (an error at setup with the reason), never skips it. The failure is cached: the
  start is not retried for each test.
* Importing this module imports neither Ray nor the cluster code.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from pytest_raycallbacks.options import get_option

if TYPE_CHECKING:
    from .cluster import LiveCluster


@pytest.fixture(scope="session")
def gpu_ray_cluster(request: pytest.FixtureRequest) -> Iterator[LiveCluster]:
    """A live Ray cluster with GPU nodes (physical, simulated, or an existing one).

    The handle says which (``mode``, ``physical``), lists ``nodes()`` and
    ``gpus_per_node()``, adds and removes simulated nodes, checks leaks
    (``leak_check()``), and runs callbacks where they will run
    (``run_initialize_node``, ``check_shippable``). See ``docs/gpu_ray_cluster.md``.
    """
    from .config import config_from_env
    from .errors import LiveClusterError
    from .warm_session import start_session_cluster

    problem = None
    try:
        config = config_from_env(
            gpus=get_option(request.config, "gpus") or "auto",
            address=get_option(request.config, "ray-address") or None,
        )
    except ValueError as exc:
        problem = f"bad configuration: {exc}"
    if problem is None:
        try:
            cluster = start_session_cluster(request.config, config)
        except LiveClusterError as exc:
            notes = "\n".join(getattr(exc, "__notes__", []))
            problem = str(exc) + (f"\n{notes}" if notes else "")
    if problem is not None:  # outside the except blocks: no chained tracebacks
        pytest.fail(f"gpu_ray_cluster: {problem}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.close()
