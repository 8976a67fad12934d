"""Stopping what a cluster started, and leaving an existing cluster as we found it.

Contract:

* :func:`disconnect` shuts the driver down if it is connected (errors ignored: teardown
  goes on).
* :func:`stop_local` stops a local cluster, bounded, and leaves nothing of it: the driver
  is disconnected; ``orderly`` (and the keeper not busy with an interrupted request), the
  keeper is asked to stop the nodes (:data:`KEEPER_STOP_S`); then the keeper is aborted (it
  ends every process of the cluster and removes its folder, :mod:`.keeper`) and awaited
  (:data:`KEEPER_EXIT_S`). A keeper that does not exit is killed, and the driver ends the
  cluster's processes itself (:func:`~.reap.reap` by token and session). The folder is
  removed, and the processes that would not end are returned (normally none).
  A ``KeyboardInterrupt`` during the orderly part skips to the abort and is re-raised
  once the cluster is gone; one during the abort is raised at once (the keeper, aborted
  first, still ends the cluster by itself). Never ``ray stop``: other clusters on the
  machine are left alone.
* :func:`end_token_processes` ends every process still carrying a token (until none has
  been seen for a moment, bounded) and returns those that would not end.
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
from .processes import OwnedProcess, Owner
from .reap import reap

if TYPE_CHECKING:
    from .supervisor import KeeperProcess

#: How long the keeper may take to stop the nodes, then to end the rest and exit.
KEEPER_STOP_S: Final = 15.0
KEEPER_EXIT_S: Final = 20.0
#: How long the driver waits for quiet after a keeper that ended its cluster has exited.
_CHECK_SETTLE_S: Final = 0.2


def disconnect(ray: Any) -> None:
    """``ray.shutdown()`` when the driver is connected; its errors are ignored."""
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            ray.shutdown()


def stop_local(
    ray: Any,
    keeper: KeeperProcess | None,
    token: str,
    folder: str | None,
    *,
    orderly: bool,
) -> list[OwnedProcess]:
    """Stop a local cluster and remove its folder; see the module docstring."""
    interrupt: BaseException | None = None
    try:
        disconnect(ray)
        if orderly and keeper is not None and not keeper.in_doubt:
            keeper.request("stop the cluster's nodes", KEEPER_STOP_S, op="shutdown")
    except KeyboardInterrupt as exc:
        interrupt = exc
    except LiveClusterError:
        pass  # the abort below ends what is left
    left = _end_cluster(keeper, token)
    if folder is not None:
        remove_folder(folder)
    if interrupt is not None:
        raise interrupt
    return left


def _end_cluster(keeper: KeeperProcess | None, token: str) -> list[OwnedProcess]:
    """Abort the keeper and wait for it; end by ourselves what it did not."""
    if keeper is None:
        return reap(Owner(token))
    try:
        keeper.abort()
        exited = keeper.wait(KEEPER_EXIT_S)
        if not exited:
            keeper.kill()
        owner = Owner(token, keeper.session)
        return reap(owner, settle_s=_CHECK_SETTLE_S) if exited else reap(owner)
    finally:
        keeper.close()


def end_token_processes(token: str) -> list[OwnedProcess]:
    """End every live process carrying ``token``; return those still alive afterwards."""
    return reap(Owner(token)) if token else []


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
