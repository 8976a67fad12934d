"""Errors the fake Ray cluster raises on its own behalf (never imports Ray).

Everything Ray itself would raise, the fake raises with Ray's own exception types
(``ray.exceptions.*``, ``ValueError`` ...). The types here cover what only a fake can say:

* :class:`FakeRayUnsupported` -- a Ray function or option the fake does not model. The fake
  refuses rather than guess; the message names the function and how to run the test against
  a live cluster instead.
* :class:`FakeRayDeadlockError` -- a wait with no timeout on something nothing in the
  cluster can ever produce. Real Ray would block forever; the fake fails at once and names
  what is needed against what the cluster has.
* :class:`FakeRayActivationError` -- misuse of the fake itself (activating two fake clusters
  at once, using a handle after its cluster closed).
"""

from __future__ import annotations

from typing import Final

LIVE_HINT: Final = (
    "Run this test against a real Ray cluster instead: request the `gpu_ray_cluster` fixture "
    "(a live, session-scoped cluster), or run the conformance checks with "
    "`--raycallbacks-cluster live`."
)


class FakeRayUnsupported(NotImplementedError):
    """A Ray API (or an option of one) that the in-memory fake does not model.

    ``api`` is the public name of what was called (``"ray.timeline"``).
    """

    def __init__(self, api: str, detail: str = "") -> None:
        self.api = api
        self.detail = detail
        why = f" ({detail})" if detail else ""
        super().__init__(
            f"{api} is not modelled by the in-memory fake Ray cluster (fake_ray_cluster){why}; "
            f"the fake refuses it rather than guess what Ray would do. {LIVE_HINT}"
        )

    def __reduce__(self) -> tuple[type[FakeRayUnsupported], tuple[str, str]]:
        return (type(self), (self.api, self.detail))


class FakeRayDeadlockError(RuntimeError):
    """A wait without timeout that nothing in the fake cluster can ever satisfy.

    Real Ray would block forever here. The message names what the waited-on task or
    placement group needs and what the cluster has in total and available.
    """


class FakeRayActivationError(RuntimeError):
    """The fake cluster was used in a way its lifecycle does not allow."""


class FakeRayLeakWarning(UserWarning):
    """Placement groups, tasks or actors were still alive when a fake cluster closed."""
