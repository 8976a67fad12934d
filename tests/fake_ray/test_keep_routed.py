"""``keep_routed``: fake clusters started one after another keep Ray's functions routed in
between (calling real Ray while none is active), and :func:`patching.release_routing` (or
a plain cluster starting) gives every name back exactly, modules imported meanwhile
included."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from conformance.cluster_api import DOWNLOAD_FAILS
from pytest_raycallbacks.fake_ray import FakeRayCluster, active, patching

ORIGINAL = [ray.is_initialized, ray.get]  # in a list: module names are rebound while routed


def routed(fn: object) -> bool:
    return hasattr(fn, "__fake_ray_api__")


@pytest.fixture(autouse=True)
def _released() -> Iterator[None]:
    yield
    patching.release_routing()
    assert ray.is_initialized is ORIGINAL[0] and ray.get is ORIGINAL[1]


def test_between_kept_clusters_the_functions_stay_routed_and_reach_real_ray() -> None:
    with FakeRayCluster(keep_routed=True):
        assert ray.is_initialized() is True  # the fake's driver is connected
    assert not active.is_active()
    assert routed(ray.is_initialized)
    # no fake active: real Ray answers (whatever it says: a live driver of this session
    # may be connected)
    assert ray.is_initialized() is ORIGINAL[0]()
    with FakeRayCluster(keep_routed=True, gpu_nodes=1) as second:
        assert ray.is_initialized() is True
        resources = ray.cluster_resources()  # type: ignore[no-untyped-call]  # Ray's stub
        assert resources["GPU"] == second.cluster_resources()["GPU"] == 8  # the second one
    patching.release_routing()
    assert ray.is_initialized is ORIGINAL[0]
    assert not routed(ray.get)


def test_a_module_imported_between_kept_clusters_is_routed_then_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "late_user_module.py").write_text(
        textwrap.dedent(
            """
            from ray import get as ray_get
            from ray.util.placement_group import placement_group
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with FakeRayCluster(keep_routed=True):
        pass
    import late_user_module

    try:
        with FakeRayCluster(keep_routed=True):
            assert routed(late_user_module.ray_get)
            assert routed(late_user_module.placement_group)
        patching.release_routing()
        assert late_user_module.ray_get is ORIGINAL[1]
        assert not routed(late_user_module.placement_group)
    finally:
        sys.modules.pop("late_user_module", None)


def test_a_plain_cluster_ends_the_kept_routing_first() -> None:
    with FakeRayCluster(keep_routed=True):
        pass
    assert routed(ray.get)
    with FakeRayCluster():  # a user's cluster: exact restore at its end
        assert ray.is_initialized() is True
    assert ray.get is ORIGINAL[1] and ray.is_initialized is ORIGINAL[0]


def test_the_kits_fake_cluster_releases() -> None:
    from pytest_raycallbacks.kit.clusters import FakeCheckCluster

    cluster = FakeCheckCluster(keep_routed=True)
    for fault in (None, DOWNLOAD_FAILS):
        with cluster.scope(fault) as scope:
            assert scope.leaks() == []
    assert routed(ray.get)
    cluster.release()
    assert ray.get is ORIGINAL[1]
    cluster.release()  # idempotent
