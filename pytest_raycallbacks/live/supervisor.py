"""Driving the cluster keeper (:mod:`.keeper`) from the driver process.

Contract: :class:`KeeperProcess` starts ``python -m pytest_raycallbacks.live.keeper
--folder <the cluster's folder>`` with exactly the environment it is given (the cluster's
node environment: ownership token, ``RAY_TMPDIR``, ``PYTHONPATH``,
``CUDA_VISIBLE_DEVICES``...), in a session of its own (a Ctrl-C in the terminal reaches
pytest, which then tears the cluster down in order), with its stderr in a log file.

* :meth:`KeeperProcess.request` sends one request and waits at most ``wait_s`` for the
  answer, raising :class:`~.errors.WaitTimeoutError` naming ``what``; an error answer or a
  keeper that exited raises :class:`~.errors.LiveClusterError` with the keeper's error and
  the tail of its log. A request that timed out or was interrupted leaves the keeper busy
  with it (:attr:`KeeperProcess.in_doubt`): later requests are refused, and teardown
  aborts the keeper instead of asking it.
* :meth:`KeeperProcess.abort` closes the keeper's input: the keeper then ends every process
  of its cluster, removes the cluster's folder and exits, whatever it was doing.
* The keeper's exit status is collected only by :meth:`KeeperProcess.close`: until then its
  pid cannot be reused, so :attr:`KeeperProcess.session` names the cluster's session
  safely (:class:`~.processes.Owner`).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from .errors import LiveClusterError, WaitTimeoutError


class KeeperProcess:
    """One keeper child process and its request/answer pipe."""

    def __init__(self, env: Mapping[str, str], log_path: str, folder: str | None = None) -> None:
        self.log_path = log_path
        self.in_doubt = False
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        command = [sys.executable, "-m", "pytest_raycallbacks.live.keeper"]
        if folder:
            command += ["--folder", folder]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=dict(env),
            text=True,
            start_new_session=True,
        )
        reader = threading.Thread(target=self._read, name="raycallbacks-keeper", daemon=True)
        reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def session(self) -> int | None:
        """The keeper's session id (its pid) while its exit status is uncollected."""
        return self.pid if self.process.returncode is None else None

    def _read(self) -> None:
        assert self.process.stdout is not None
        with contextlib.suppress(ValueError, OSError):  # closed under us by close()
            for line in self.process.stdout:
                self._answers.put(line)
        self._answers.put(None)

    def exited(self) -> bool:
        """Has the keeper exited? (Its exit status is left uncollected.)"""
        if self.process.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def request(self, what: str, wait_s: float, **request: Any) -> dict[str, Any]:
        """Send ``request``, wait at most ``wait_s`` for the keeper's answer, return it."""
        with self._lock:
            if self.in_doubt:
                raise LiveClusterError(
                    f"the cluster keeper (pid {self.pid}) is still busy with an earlier "
                    f"request that timed out or was interrupted; cannot {what}"
                )
            if self.exited():
                raise LiveClusterError(
                    f"the cluster keeper (pid {self.pid}) has exited; cannot {what}.\n"
                    f"{self.log_tail()}"
                )
            assert self.process.stdin is not None
            self.in_doubt = True
            try:
                self.process.stdin.write(json.dumps(request) + "\n")
                self.process.stdin.flush()
            except OSError as exc:
                raise LiveClusterError(f"cannot reach the cluster keeper to {what}: {exc}") from exc
            try:
                line = self._answers.get(timeout=wait_s)
            except queue.Empty:
                raise WaitTimeoutError(what, wait_s, self.log_tail()) from None
            self.in_doubt = False
        if line is None:
            self.wait(10)
            raise LiveClusterError(
                f"the cluster keeper (pid {self.pid}) exited while asked to {what}.\n"
                f"{self.log_tail()}"
            )
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise LiveClusterError(
                f"could not {what}: {answer.get('error')}\n{answer.get('traceback', '')}".rstrip()
            )
        return answer

    def abort(self) -> None:
        """Close the keeper's input: it ends its cluster's processes and folder, and exits."""
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()

    def wait(self, timeout_s: float) -> bool:
        """Wait at most ``timeout_s`` for the keeper to exit; True if it did. Its exit
        status is left uncollected (see the module docstring)."""
        deadline = time.monotonic() + timeout_s
        while not self.exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def kill(self) -> None:
        """SIGKILL the keeper (its exit status is left uncollected; the cluster's processes
        are then ended by the driver, see :mod:`.reap`)."""
        if not self.exited():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.wait(10)

    def close(self) -> None:
        """Collect the keeper's exit status (killing it if it still runs), close the pipes
        and the log."""
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._log.close()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = Path(self.log_path).read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return f"--- cluster keeper log ({self.log_path}), last lines:\n" + "\n".join(text)
