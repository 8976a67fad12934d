"""The ``fake_ray_cluster`` pytest fixture and its marker.

::

    def test_pack(fake_ray_cluster):
        pg = ray.util.placement_group([{"GPU": 1}] * 8)   # served in memory
        assert pg.wait(1)

    @pytest.mark.fake_ray_cluster(gpu_nodes=4, gpus_per_node=2, leaks="fail")
    def test_small_nodes(fake_ray_cluster): ...

The marker's keyword arguments are :class:`~.cluster.FakeRayCluster`'s (``nodes``,
``gpu_nodes``, ``gpus_per_node``, ``cpus_per_node``, ``head_cpus``, ``accelerator_type``,
``seed``, ``autojump``, ``serialize``, ``connected``, ``model_cache_dir``), plus ``leaks``:
what teardown does with groups, tasks or actors still alive: ``"warn"`` (default, a
:class:`~.errors.FakeRayLeakWarning`), ``"fail"`` (a teardown error) or ``"ignore"``.
A single positional argument is taken as ``nodes``.

Importing this module does not import Ray.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import pytest

from .errors import FakeRayLeakWarning

if TYPE_CHECKING:
    from .cluster import FakeRayCluster

MARKER: Final = "fake_ray_cluster"
_LEAK_POLICIES: Final = ("warn", "fail", "ignore")


def cluster_options(request: pytest.FixtureRequest) -> tuple[dict[str, Any], str]:
    """The FakeRayCluster keyword arguments and leak policy for ``request``'s test."""
    marker = request.node.get_closest_marker(MARKER)
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker is not None else {}
    if marker is not None and marker.args:
        if len(marker.args) != 1 or "nodes" in kwargs:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER} takes at most one positional argument (the nodes)"
            )
        kwargs["nodes"] = marker.args[0]
    leaks = kwargs.pop("leaks", "warn")
    if leaks not in _LEAK_POLICIES:
        raise pytest.UsageError(
            f"@pytest.mark.{MARKER}(leaks=...) must be one of {_LEAK_POLICIES}, got {leaks!r}"
        )
    return kwargs, leaks


@pytest.fixture
def fake_ray_cluster(request: pytest.FixtureRequest) -> Iterator[FakeRayCluster]:
    """An in-memory Ray cluster for one test: Ray's API is served from memory, no Ray
    process starts and no port opens. Shape it with ``@pytest.mark.fake_ray_cluster(...)``
    or at run time with ``add_node`` / ``remove_node``; inject faults with ``fail_task`` /
    ``slow_task`` / ``fail_download`` / ``fail_node``; read back ``placement_groups``,
    ``tasks``, ``downloads``, ``calls`` and ``leaks()``. Ray's API is restored on teardown,
    also when the test fails."""
    from .cluster import FakeRayCluster

    kwargs, leaks = cluster_options(request)
    try:
        cluster = FakeRayCluster(**kwargs)
    except TypeError as exc:
        raise pytest.UsageError(f"@pytest.mark.{MARKER}: {exc}") from exc
    with cluster:
        yield cluster
    report = cluster.leak_report
    if report and leaks == "fail":
        pytest.fail(f"fake_ray_cluster leaked: {report.describe()}", pytrace=False)
    if report and leaks == "warn":
        warnings.warn(
            f"fake_ray_cluster leaked: {report.describe()}", FakeRayLeakWarning, stacklevel=1
        )
