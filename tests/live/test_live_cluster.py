"""The ``gpu_ray_cluster`` handle on the session's live cluster (simulate mode in CI):
topology, GPU scheduling, leak checks, node failure, bounded waits, reconnection."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_raycallbacks.live import (
    DriverBusyError,
    LeakError,
    LiveCluster,
    LiveClusterConfig,
    ModeError,
    WaitTimeoutError,
    active_cluster,
)
from pytest_raycallbacks.live.environment import TOKEN_ENV

pytestmark = pytest.mark.live


def test_the_handle_describes_a_multi_node_cluster_with_gpus(cluster: Any) -> None:
    assert active_cluster() is cluster
    assert cluster.address
    assert cluster.namespace.startswith("raycallbacks-")
    nodes = cluster.nodes()
    assert nodes[0].is_head
    assert sum(n.is_head for n in nodes) == 1
    assert cluster.gpus_per_node() == {n.node_id: n.gpus for n in nodes}
    assert cluster.total_gpus == sum(n.gpus for n in nodes) > 0
    described = cluster.describe()
    assert described["mode"] == cluster.mode
    assert described["physical"] is cluster.physical
    assert [n["node_id"] for n in described["nodes"]] == [n.node_id for n in nodes]
    if cluster.mode == "simulate":
        assert cluster.physical is False
        assert len(nodes) >= 3  # the default: a head + two GPU nodes
        assert sorted(n.gpus for n in nodes)[-2:] == [2, 2]
        assert any("accelerator_type:A100" in n.resources for n in nodes)
        assert cluster.ray.cluster_resources()["GPU"] == cluster.total_gpus


def test_gpu_bundles_are_scheduled_like_real_gpus(simulated: Any) -> None:
    ray = simulated.ray
    gpu_nodes = [n for n in simulated.nodes() if n.gpus >= 2]
    group = ray.util.placement_group([{"GPU": 2}, {"GPU": 2}], strategy="STRICT_SPREAD")
    try:
        simulated.wait_placement_group(group)
        table = ray.util.placement_group_table(group)
        assert len(set(table["bundles_to_node_id"].values())) == 2
        assert set(table["bundles_to_node_id"].values()) <= {n.node_id for n in gpu_nodes}
        view = simulated.gpu_view(num_gpus=2, placement_group=group, bundle_index=1)
        assert view.place.node_id == table["bundles_to_node_id"][1]
        assert len(view.visible_devices) == 2
        assert set(view.visible_devices) == set(view.place.ray_gpu_ids)
    finally:
        ray.util.remove_placement_group(group)


def test_a_placement_group_that_cannot_fit_times_out_naming_it(cluster: Any) -> None:
    ray = cluster.ray
    group = ray.util.placement_group([{"GPU": cluster.total_gpus + 1}])
    try:
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError, match=r"placement group \w+ \(bundles") as info:
            cluster.wait_placement_group(group, timeout_s=0.5)
        assert time.monotonic() - started < 5
        assert "available" in str(info.value)
    finally:
        ray.util.remove_placement_group(group)


def nap(seconds: float) -> None:
    time.sleep(seconds)


def test_a_task_that_overruns_its_bound_is_cancelled_and_named(cluster: Any) -> None:
    started = time.monotonic()
    with pytest.raises(WaitTimeoutError, match=r"task nap to finish"):
        cluster.run_remote(nap, 30, timeout_s=0.5)
    assert time.monotonic() - started < 5


def test_the_leak_check_names_and_removes_what_a_test_left(cluster: Any) -> None:
    ray = cluster.ray

    @ray.remote(num_cpus=0)
    class Holder:
        def ping(self) -> int:
            return 1

    before = cluster.snapshot()
    group = ray.util.placement_group([{"CPU": 0.01}], name="left-behind")
    actor = Holder.options(name=f"held-{os.getpid()}", lifetime="detached").remote()
    assert ray.get(actor.ping.remote(), timeout=60) == 1
    with pytest.raises(LeakError) as info:
        cluster.assert_no_leaks(before)
    message = str(info.value)
    assert group.id.hex() in message
    assert "left-behind" in message
    assert "Holder" in message
    assert "detached" in message
    assert not cluster.leaks(before)  # removed by the check
    # Nothing that predates the snapshot, nor anything of other jobs, is touched.
    with cluster.leak_check():
        pass


def test_nodes_can_be_added_and_failed(simulated: Any) -> None:
    ray = simulated.ray
    before = {n.node_id for n in simulated.nodes()}
    with simulated.temporary_node(num_gpus=1, resources={"rcb_extra": 1}) as node:
        assert node.node_id not in before
        assert node.gpus == 1
        assert node.resources["rcb_extra"] == 1
        group = ray.util.placement_group([{"rcb_extra": 1}])
        simulated.wait_placement_group(group)
        assert set(ray.util.placement_group_table(group)["bundles_to_node_id"].values()) == {
            node.node_id
        }
        simulated.remove_node(node.node_id)  # node failure
        assert node.node_id not in {n.node_id for n in simulated.nodes()}
        assert ray.util.placement_group_table(group)["state"] != "CREATED"
        ray.util.remove_placement_group(group)
    assert {n.node_id for n in simulated.nodes()} == before
    extra = simulated.add_node(num_gpus=0)
    assert extra.node_id in {n.node_id for n in simulated.nodes()}
    simulated.restore_topology()  # removes what was added since the start
    assert {n.node_id for n in simulated.nodes()} == before


def test_topology_changes_are_refused_where_they_cannot_work(simulated: Any) -> None:
    head = simulated.nodes()[0]
    with pytest.raises(ModeError, match="head node cannot be removed"):
        simulated.remove_node(head.node_id)
    with pytest.raises(ModeError, match="no node 'nope'"):
        simulated.remove_node("nope")


def test_hygiene_of_the_running_cluster(gpu_ray_cluster: Any) -> None:
    if not gpu_ray_cluster.is_local:
        pytest.skip("an existing cluster's processes are not ours")
    owned = gpu_ray_cluster.owned_processes()
    assert owned, "the cluster's processes carry its token"
    assert os.environ.get(TOKEN_ENV) is None, "the driver itself does not carry the token"
    assert "RAY_ADDRESS" not in os.environ
    temp = Path(gpu_ray_cluster.temp_dir)
    assert temp.is_dir()
    assert len(str(temp)) <= 36
    assert any(temp.glob("session_*/sockets"))
    # Ray always runs its API server; ours loads no dashboard module and no frontend.
    api = [p.cmdline for p in owned if "dashboard/dashboard.py" in p.cmdline]
    assert len(api) == 1
    assert "--disable-frontend" in api[0]
    assert "--modules-to-load=UsageStatsHead" in api[0]


def test_a_second_cluster_in_the_same_process_is_refused(gpu_ray_cluster: Any) -> None:
    with pytest.raises(DriverBusyError, match="one cluster only"):
        LiveCluster(LiveClusterConfig(gpus="simulate")).start()


def test_the_handle_reconnects_after_a_test_shuts_ray_down(cluster: Any) -> None:
    ray = cluster.ray
    jobs = cluster.job_ids
    ray.shutdown()
    assert cluster.nodes()  # reconnects
    assert ray.is_initialized()
    assert len(cluster.job_ids) == len(jobs) + 1
