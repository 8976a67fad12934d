"""``ray.util.state`` and ``ray.autoscaler.sdk`` are not imported by a fake cluster's start
(they are slow to import and only routed to refuse them), yet still refuse loudly when the
code under test first imports them while the fake is active, and come back as Ray's own
functions afterwards. Run in a fresh interpreter: the test session has imported them."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    import pytest
    from pytest_raycallbacks.fake_ray import FakeRayCluster, FakeRayUnsupported

    LATE = ("ray.util.state", "ray.autoscaler.sdk")
    with FakeRayCluster():
        assert not [m for m in LATE if m in sys.modules], "imported at start"
        import ray.util.state
        from ray.autoscaler.sdk import request_resources
        with pytest.raises(FakeRayUnsupported, match="ray.util.state.list_nodes"):
            ray.util.state.list_nodes()
        with pytest.raises(FakeRayUnsupported, match="request_resources"):
            request_resources(num_cpus=1)
        routed = [ray.util.state.list_nodes]  # in a list: module names are swept back
    assert ray.util.state.list_nodes is not routed[0]
    assert not hasattr(ray.util.state.list_nodes, "__fake_ray_api__")
    import ray.autoscaler.sdk
    assert not hasattr(ray.autoscaler.sdk.request_resources, "__fake_ray_api__")
    assert sys.meta_path[0].__class__.__name__ != "_RouteOnImport"
    with FakeRayCluster():  # loaded now: routed at start like the rest
        with pytest.raises(FakeRayUnsupported, match="ray.util.state.list_nodes"):
            ray.util.state.list_nodes()
    print("ok")
    """
)


def test_late_modules_are_not_imported_at_start_but_still_refuse() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")


KEPT_SCRIPT = textwrap.dedent(
    """
    import pytest
    from pytest_raycallbacks.fake_ray import FakeRayCluster, FakeRayUnsupported, patching

    with FakeRayCluster(keep_routed=True):
        pass
    import ray.util.state  # between kept clusters: routed as soon as it is loaded

    assert hasattr(ray.util.state.list_nodes, "__fake_ray_api__")
    with FakeRayCluster(keep_routed=True):
        with pytest.raises(FakeRayUnsupported, match="ray.util.state.list_nodes"):
            ray.util.state.list_nodes()
    patching.release_routing()
    assert not hasattr(ray.util.state.list_nodes, "__fake_ray_api__")
    print("ok")
    """
)


def test_a_late_module_imported_while_the_routing_is_kept_is_routed_too() -> None:
    done = subprocess.run(
        [sys.executable, "-c", KEPT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")
