"""Driving the cluster keeper (:mod:`.keeper`) from the driver process.

Contract: :class:`KeeperProcess` starts ``python -m pytest_raycallbacks.live.keeper`` with
exactly the environment it is given (the cluster's node environment: ownership token,
``RAY_TMPDIR``, ``PYTHONPATH``, ``CUDA_VISIBLE_DEVICES``...), in a session of its own (a
Ctrl-C in the terminal reaches pytest, which then tears the cluster down in order), with its
stderr in a log file. :meth:`KeeperProcess.request` sends one request and waits at most
``wait_s`` for the answer, raising :class:`~.errors.WaitTimeoutError` naming ``what``;
an error answer or a keeper that exited raises :class:`~.errors.LiveClusterError` with the
keeper's error and the tail of its log.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from .errors import LiveClusterError, WaitTimeoutError


class KeeperProcess:
    """One keeper child process and its request/answer pipe."""

    def __init__(self, env: Mapping[str, str], log_path: str) -> None:
        self.log_path = log_path
        self._answers: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pytest_raycallbacks.live.keeper"],
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

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._answers.put(line)
        self._answers.put(None)

    def request(self, what: str, wait_s: float, **request: Any) -> dict[str, Any]:
        """Send ``request``, wait at most ``wait_s`` for the keeper's answer, return it."""
        with self._lock:
            if self.process.poll() is not None:
                raise LiveClusterError(
                    f"the cluster keeper (pid {self.pid}) has exited with code "
                    f"{self.process.returncode}; cannot {what}.\n{self.log_tail()}"
                )
            assert self.process.stdin is not None
            try:
                self.process.stdin.write(json.dumps(request) + "\n")
                self.process.stdin.flush()
            except OSError as exc:
                raise LiveClusterError(f"cannot reach the cluster keeper to {what}: {exc}") from exc
            try:
                line = self._answers.get(timeout=wait_s)
            except queue.Empty:
                raise WaitTimeoutError(what, wait_s, self.log_tail()) from None
        if line is None:
            self.process.wait(timeout=10)
            raise LiveClusterError(
                f"the cluster keeper (pid {self.pid}) exited with code "
                f"{self.process.returncode} while asked to {what}.\n{self.log_tail()}"
            )
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            raise LiveClusterError(
                f"could not {what}: {answer.get('error')}\n{answer.get('traceback', '')}".rstrip()
            )
        return answer

    def wait(self, timeout_s: float) -> bool:
        """Wait for the keeper to exit; True if it did."""
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def kill(self) -> None:
        """SIGKILL the keeper (its nodes are then ended by token, see :mod:`.processes`)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def close(self) -> None:
        """Close the pipes and the log (after the keeper exited or was killed)."""
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
