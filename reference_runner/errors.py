"""The errors of the callback system.

Every error the runner raises for a callback's fault derives from :class:`CallbackError`
*and* from the built-in exception a caller would naturally catch (``ImportError`` for
loading, ``TypeError`` for a bad return value, ``TimeoutError`` for a hung call), so code
written against either hierarchy keeps working.
"""

from __future__ import annotations

from typing import Final, Literal


class CallbackError(Exception):
    """Base class of every error the callback system raises about a callback."""


class CallbackLoadError(CallbackError, ImportError):
    """A callback spec could not be turned into a callable.

    The message names the spec, what was tried and why it failed.
    """

    def __init__(self, spec: object, reason: str) -> None:
        self.spec = spec
        self.reason = reason
        super().__init__(f"cannot load callback {spec!r}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:  # survives pickling to and from Ray workers
        return (type(self), (self.spec, self.reason), self.__dict__)


class CallbackReturnError(CallbackError, TypeError):
    """A callback returned, or wrote into ``data``, a value of the wrong type.

    ``callback`` and ``phase`` name the culprit; ``key`` is the offending key, if any.
    """

    def __init__(self, message: str, *, callback: str, phase: str, key: str | None = None) -> None:
        self.callback = callback
        self.phase = phase
        self.key = key
        super().__init__(message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args[0], self.__dict__), None)


#: Why a bounded call overran (see :mod:`reference_runner.bounded`): ``"blocked-loop"`` (a
#: blocking call inside an async callback), ``"ignored-cancel"`` (an async callback that kept
#: going after its cancellation), ``"sync-blocked"`` (a synchronous callback still running),
#: ``"cancelled"`` (a slow async callback, cancelled cleanly), ``"unknown"``.
TimeoutCause = Literal["blocked-loop", "ignored-cancel", "sync-blocked", "cancelled", "unknown"]

_TIMEOUT_CAUSES: Final[dict[str, str]] = {
    "blocked-loop": (
        "the event loop was blocked for more than {t} s inside an async callback: a blocking "
        "call such as time.sleep or a synchronous client inside async def? use await "
        "asyncio.sleep / asyncio.to_thread"
    ),
    "ignored-cancel": (
        "the async callback was cancelled at the deadline and kept running: it catches "
        "asyncio.CancelledError without re-raising it; re-raise CancelledError (after any "
        "cleanup) so a call past its bound can be stopped"
    ),
    "sync-blocked": (
        "the synchronous callback was still running after {t} s: a blocking call (network, "
        "disk, a lock, a sleep)? make it return promptly, move slow work out of the callback, "
        "or raise the bound"
    ),
    "cancelled": (
        "the async callback was still awaiting after {t} s and was cancelled; make it return "
        "promptly (move slow work out of the callback) or raise the bound"
    ),
    "unknown": "make it return promptly (move slow work out of the callback) or raise the bound",
}


class CallbackTimeoutError(CallbackError, TimeoutError):
    """A callback call did not finish within the runner's ``timeout_s``.

    ``cause`` says why (a :data:`TimeoutCause`); the message names the rule and the likely
    cause. The runner never waits on that call again; a call that blocks keeps its (daemon)
    thread until it returns on its own.
    """

    def __init__(
        self, *, callback: str, phase: str, timeout_s: float, cause: TimeoutCause = "unknown"
    ) -> None:
        self.callback = callback
        self.phase = phase
        self.timeout_s = timeout_s
        self.cause = cause
        hint = _TIMEOUT_CAUSES.get(cause, _TIMEOUT_CAUSES["unknown"]).format(t=f"{timeout_s:g}")
        self._message = (
            f"callback {callback} did not finish phase {phase!r} within {timeout_s:g} s (every "
            f"callback call must return within the runner's timeout_s): {hint}"
        )
        super().__init__(self._message)

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self._message, self.__dict__), None)


class InitializationError(CallbackError, RuntimeError):
    """Node initialization cannot go on because of what the callbacks left in ``data``
    (for example ``skip_default_init`` without a ``placement_group``)."""


class PlacementGroupTimeoutError(TimeoutError):
    """A placement group was not ready within its wait bound.

    The message names the bundles and strategy asked for and the resources the cluster has.
    """


class ModelSourceError(FileNotFoundError):
    """The model source (``LLMConfig.model_id``) is not a readable local folder."""


class RayNotConnectedError(RuntimeError):
    """``initialize_node`` needs a connected Ray (``ray.init()`` or a cluster fixture)."""


def _rebuild(cls: type[BaseException], message: str, state: dict[str, object]) -> BaseException:
    """Unpickle an error whose ``__init__`` takes keyword-only arguments."""
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error
