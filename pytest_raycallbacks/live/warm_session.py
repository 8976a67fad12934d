"""The pytest session's side of the warm cluster: one decision per run, shown and used.

Contract: :func:`session_choice` decides once per pytest process whether the session's live
cluster is the warm one (:func:`.warm_runs.choose`, from the run's options) and keeps the
answer on the config, so the header line (:func:`header_note`) and the ``gpu_ray_cluster``
fixture (:func:`start_session_cluster`) agree. :func:`start_session_cluster` starts the
session's :class:`~.cluster.LiveCluster` on the warm cluster when chosen; if connecting to it
fails after all, it warns and starts a cluster of the run's own instead. Importing this
module imports neither Ray nor the cluster code.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import pytest

from pytest_raycallbacks.options import get_option

from .environment import xdist_worker
from .warm_runs import WarmChoice, choose

if TYPE_CHECKING:
    from .cluster import LiveCluster
    from .config import LiveClusterConfig

_CHOICE = pytest.StashKey[WarmChoice]()


def _under_xdist(config: pytest.Config) -> bool:
    workers = getattr(config.option, "numprocesses", None)
    return xdist_worker() is not None or bool(workers)


def session_choice(config: pytest.Config) -> WarmChoice:
    """Whether this run's live cluster is the warm one (decided once, then remembered)."""
    choice = config.stash.get(_CHOICE, None)
    if choice is None:
        choice = choose(
            certifying=bool(get_option(config, "conformance")),
            gpus=get_option(config, "gpus"),
            address=get_option(config, "ray-address") or None,
            xdist=_under_xdist(config),
        )
        config.stash[_CHOICE] = choice
    return choice


def header_note(config: pytest.Config) -> str | None:
    """What the header line says of the live cluster this run uses (``None``: nothing)."""
    return session_choice(config).header()


def start_session_cluster(config: pytest.Config, cluster_config: LiveClusterConfig) -> LiveCluster:
    """Start the session's live cluster: the warm one when chosen, else one of its own."""
    from .cluster import LiveCluster
    from .errors import LiveClusterError

    warm = session_choice(config).state
    if warm is not None:
        cluster = LiveCluster(cluster_config, warm=warm)
        try:
            return cluster.start()
        except LiveClusterError as exc:
            warnings.warn(
                f"the warm cluster at {warm.address} could not be used ({exc}); starting a "
                "cluster of this run's own. 'raycallbacks cluster status' says what is wrong",
                RuntimeWarning,
                stacklevel=2,
            )
    return LiveCluster(cluster_config).start()
