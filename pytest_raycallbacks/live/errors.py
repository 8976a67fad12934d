"""The errors of the live cluster (``gpu_ray_cluster``).

Every error says what was asked, what was found and what to do. Waits raise
:class:`WaitTimeoutError`, a ``TimeoutError`` naming what was waited for and for how long.
All of them survive pickling (they cross process boundaries on Ray), attributes and notes
included.
"""

from __future__ import annotations

from typing import Any

from reference_runner.errors import CallbackLoadError


def rebuild_exception(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> Any:
    """An instance of ``cls`` with ``args`` and attributes ``state``, without calling its
    ``__init__`` (so any signature works). Used to unpickle exceptions by state."""
    exc: Any = None
    for base in cls.__mro__:  # the builtin exception whose layout the class has
        if base.__module__ == "builtins" and issubclass(base, BaseException):
            try:
                exc = base.__new__(cls, *args)
                break
            except TypeError:
                continue
    exc.args = args
    exc.__dict__.update(state)
    return exc


class _PicklableError:
    """Mixin for exceptions: pickle by state, so any ``__init__`` signature round-trips."""

    args: tuple[Any, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        return (rebuild_exception, (type(self), self.args, dict(self.__dict__)))


class LiveClusterError(_PicklableError, RuntimeError):
    """Base class of the live cluster's own errors (not of the callbacks it runs)."""


class ClusterStartError(LiveClusterError):
    """The cluster could not be started or connected to; nothing of it is left running."""


class NoPhysicalGPUError(ClusterStartError):
    """Physical GPUs were required (``--raycallbacks-gpus=physical``) but none were found."""


class DriverBusyError(ClusterStartError):
    """This process's Ray driver is already connected elsewhere.

    One process can drive only one Ray cluster; in a pytest session everything shares the
    session's ``gpu_ray_cluster``.
    """


class ModeError(LiveClusterError):
    """An operation that the cluster's mode does not allow (``add_node`` on a physical or
    existing cluster, removing the head node, ...)."""


class WaitTimeoutError(LiveClusterError, TimeoutError):
    """A bounded wait expired. ``what`` names what was waited for, ``timeout_s`` the bound."""

    def __init__(self, what: str, timeout_s: float, detail: str = "") -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.detail = detail
        message = f"timed out after {timeout_s:g} s waiting for {what}"
        super().__init__(message + (f": {detail}" if detail else ""))


class NotShippableError(LiveClusterError):
    """An object cannot be used on a Ray worker.

    ``stage`` is ``"pickle"`` (it does not even pickle in the driver) or ``"unpickle"``
    (it pickled, but a worker could not rebuild it); ``cause`` is the underlying error text.
    """

    def __init__(self, message: str, *, stage: str, cause: str) -> None:
        self.stage = stage
        self.cause = cause
        super().__init__(message)


class ClusterImportError(_PicklableError, CallbackLoadError):
    """A callback spec loads in the driver but not on the Ray cluster.

    It is a :class:`~reference_runner.CallbackLoadError` (so an ``ImportError``): the
    message names the spec, where it loads in the driver, the worker's error and the fix.
    """


class LeakError(_PicklableError, AssertionError):
    """Placement groups or actors a test created are still alive after it.

    ``leaks`` is the :class:`~pytest_raycallbacks.live.inventory.Leaks` found.
    """

    def __init__(self, message: str, leaks: Any = None) -> None:
        self.leaks = leaks
        super().__init__(message)


class RemoteError(LiveClusterError):
    """An exception raised on a Ray worker that could not be rebuilt in the driver.

    ``type_name`` is its qualified class name; the message holds its text and the remote
    traceback.
    """

    def __init__(self, message: str, *, type_name: str = "") -> None:
        self.type_name = type_name
        super().__init__(message)


class RayAddressIgnoredWarning(UserWarning):
    """``RAY_ADDRESS`` was set in the environment and is not used (nor left in place) while
    the live cluster runs; pass ``--raycallbacks-ray-address`` to use that cluster."""
