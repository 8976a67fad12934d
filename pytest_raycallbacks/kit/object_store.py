"""The run's local S3 (``--raycallbacks-s3 BUCKET=DIR``), for callbacks that read from S3.

:class:`RunObjectStore` starts :class:`~pytest_raycallbacks.object_store.LocalS3` on first
use (in the process that runs the checks: each xdist worker has its own), creates each
bucket from its folder (every file becomes an object keyed by its relative path), and
points clients at it:

* the test process: :meth:`LocalS3.applied_environment` is entered (``os.environ`` gets
  ``AWS_ENDPOINT_URL_S3`` and the rest, and loses the variables that could send a client
  elsewhere) until :meth:`RunObjectStore.close`, which restores it exactly. The fake
  cluster, and every check that runs in the test process, run there.
* the live cluster: :meth:`RunObjectStore.worker_env_vars` go into the ``runtime_env``
  (``{"env_vars": ...}``) of every actor the kit runs ``initialize_node`` in: that actor's
  worker process is where the hooks, the download hook included, run. A runtime env
  reaches that process whether the kit started the cluster or found it running (the
  session's ``gpu_ray_cluster``), and carries this process's endpoint under xdist too;
  Ray merges its ``env_vars`` with the job's runtime env (``RAYCALLBACKS_RUNTIME_ENV``).

moto's state is per process: starting empties it (buckets an earlier server of this
process left), and the ``s3_object_store`` fixture, which empties it around each test,
must not run between the kit's checks (the kit's items run after the session's own tests).

The server listens on 127.0.0.1 only: a cluster given with ``--raycallbacks-ray-address``
reaches it only if its nodes run on this machine, which the user must confirm
(``--raycallbacks-s3-endpoint-reachable``; :mod:`.settings` refuses the option otherwise).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_raycallbacks.object_store import LocalS3


class RunObjectStore:
    """The local S3 of one run: ``buckets`` maps each bucket to the folder it is made from."""

    def __init__(self, buckets: Mapping[str, str]) -> None:
        self.buckets = dict(buckets)
        self._lock = threading.Lock()
        self._server: LocalS3 | None = None
        self._stack = contextlib.ExitStack()

    @property
    def started(self) -> bool:
        return self._server is not None

    def start(self) -> LocalS3:
        """Start the server, create the buckets and apply the environment (once; later
        calls return the running server). Raises
        :class:`~pytest_raycallbacks.object_store.ObjectStoreError` naming what failed."""
        with self._lock:
            if self._server is not None:
                return self._server
            from pytest_raycallbacks.object_store import LocalS3

            server = LocalS3()
            stack = contextlib.ExitStack()
            try:
                stack.enter_context(server)
                server.reset()  # moto's state is per process: no bucket of an earlier server
                server.add_buckets(self.buckets)
                stack.enter_context(server.applied_environment())
            except BaseException:
                stack.close()
                raise
            self._stack = stack
            self._server = server
            return server

    def worker_env_vars(self) -> dict[str, str]:
        """The variables a live worker needs to reach the server (starts it if needed)."""
        return self.start().environment()

    def describe(self) -> dict[str, object]:
        """For the certificate: the buckets, their folders and (once started) the
        endpoint."""
        endpoint = self._server.endpoint_url if self._server is not None else None
        return {"buckets": dict(self.buckets), "endpoint": endpoint}

    def close(self) -> None:
        """Restore ``os.environ`` and stop the server (a no-op when never started)."""
        with self._lock:
            stack, self._stack, self._server = self._stack, contextlib.ExitStack(), None
        stack.close()


__all__ = ["RunObjectStore"]
