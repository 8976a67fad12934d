"""Stopping what a cluster started, and leaving an existing cluster as we found it.

Contract:

* :func:`disconnect` shuts the driver down if it is connected (errors ignored: teardown
  goes on).
* :func:`stop_keeper` stops a local cluster's nodes: ``orderly`` asks the keeper to stop
  them (bounded) and waits for it to exit; either way the keeper is then killed and its
  pipes closed. Whatever it left behind carries the cluster's token.
* :func:`end_token_processes` ends every process still carrying the token (a few rounds,
  for processes spawned meanwhile) and returns those that would not end. Never
  ``ray stop``: other clusters on the machine are left alone.
* :func:`remove_folder` removes the cluster's folder, warning when it cannot.
* :func:`leave_address` removes, on an existing cluster, what our driver jobs created,
  warning when it cannot, then disconnects.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from .errors import LiveClusterError
from .processes import OwnedProcess, processes_with_token, terminate

if TYPE_CHECKING:
    from .supervisor import KeeperProcess

#: How long the keeper may take to stop the nodes, then to exit.
KEEPER_STOP_S: Final = 60.0
KEEPER_EXIT_S: Final = 10.0
#: Rounds of ending token processes (a worker may spawn while the others end).
_END_ROUNDS: Final = 3


def disconnect(ray: Any) -> None:
    """``ray.shutdown()`` when the driver is connected; its errors are ignored."""
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            ray.shutdown()


def stop_keeper(keeper: KeeperProcess, *, orderly: bool) -> None:
    """Stop the keeper's nodes (``orderly``) or not, then kill the keeper and close it."""
    try:
        if orderly:
            keeper.request("stop the cluster's nodes", KEEPER_STOP_S, op="shutdown")
            keeper.wait(KEEPER_EXIT_S)
    except LiveClusterError:
        pass  # whatever is left carries the token: end_token_processes ends it
    finally:
        keeper.kill()
        keeper.close()


def end_token_processes(token: str) -> list[OwnedProcess]:
    """End every live process carrying ``token``; return those still alive afterwards."""
    if not token:
        return []
    for _ in range(_END_ROUNDS):
        found = processes_with_token(token)
        if not found:
            return []
        terminate(token, [p.pid for p in found])
    return processes_with_token(token)


def remove_folder(path: str) -> None:
    """Remove the cluster's folder; a ``RuntimeWarning`` when it is still there."""
    shutil.rmtree(path, ignore_errors=True)
    if os.path.exists(path):
        warnings.warn(
            f"could not remove the live cluster's folder {path}",
            RuntimeWarning,
            stacklevel=4,  # the caller of LiveCluster.close() or .start()
        )


def leave_address(ray: Any, cleanup: Callable[[], object], address: str) -> None:
    """Run ``cleanup`` (remove what our jobs created on the cluster at ``address``) and
    disconnect; nothing to do when the driver is not connected."""
    if ray is None or not ray.is_initialized():
        return
    try:
        cleanup()
    except Exception as exc:
        warnings.warn(
            "could not remove the placement groups / actors this session created on the "
            f"cluster at {address}: {exc}",
            RuntimeWarning,
            stacklevel=4,  # the caller of LiveCluster.close()
        )
    disconnect(ray)
