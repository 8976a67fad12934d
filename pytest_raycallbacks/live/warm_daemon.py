"""The warm cluster's keeper: a background process that owns the cluster between runs.

Run as ``python -m pytest_raycallbacks.live.warm_daemon SPEC.json`` by
``raycallbacks cluster up`` (:mod:`.warm`), in a session of its own, detached from the
terminal, with the cluster's node environment (ownership token, ``RAY_TMPDIR``...). Contract:

* it starts the nodes ``SPEC`` describes (``head``/``workers``: ``Cluster.add_node``
  arguments, bounded by ``timeout_s``) through :class:`~.keeper.Keeper`, so every process of
  the cluster is its child and carries the token;
* once they are up it writes the state file (:mod:`.warm_state`) at ``state_path``; that is
  the signal ``cluster up`` waits for. A failed start exits with status 1 and writes nothing
  (the traceback goes to its log);
* on SIGTERM, SIGINT or SIGHUP it stops the nodes, removes the state file (if it is still
  its own) and the cluster's folder, and exits 0. ``raycallbacks cluster down`` sends the
  SIGTERM; whatever a SIGKILL leaves is found by its token (:func:`.warm_state.discard`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from .keeper import Keeper
from .warm_state import WarmState, boot_id, remove_state, write_state

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def serve(spec: dict[str, Any], stop: threading.Event) -> int:
    """Start the cluster ``spec`` describes, publish its state, hold it until ``stop``."""
    import ray

    keeper = Keeper()
    keeper.temp_dir = spec["temp_dir"]
    try:
        started = keeper.start(spec["head"], spec["workers"], float(spec["timeout_s"]))
    except BaseException:
        traceback.print_exc()
        keeper.shutdown()
        return 1
    state = WarmState(
        address=str(started["address"]),
        token=str(spec["token"]),
        temp_dir=str(spec["temp_dir"]),
        pid=os.getpid(),
        boot_id=boot_id(),
        started_at=time.time(),
        topology=str(spec["topology"]),
        node_ids=tuple(str(n["node_id"]) for n in started["nodes"]),
        ray_version=str(ray.__version__),
        python=sys.executable,
        prefix=sys.prefix,
        log_path=str(spec["log_path"]),
    )
    path = Path(spec["state_path"])
    for sig in _STOP_SIGNALS:  # after the start: Ray's own handlers were installed by then
        signal.signal(sig, lambda *_: stop.set())
    write_state(state, path)
    print(f"warm cluster up at {state.address}", file=sys.stderr, flush=True)
    while not stop.wait(1.0):
        pass
    print("stopping the warm cluster", file=sys.stderr, flush=True)
    keeper.shutdown()
    remove_state(state, path)
    shutil.rmtree(state.temp_dir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(Path(args[0]).read_text())
    return serve(spec, threading.Event())


if __name__ == "__main__":
    sys.exit(main())
