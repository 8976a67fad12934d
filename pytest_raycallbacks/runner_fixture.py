"""The ``callback_runner`` fixture: a factory of reference ``CallbackRunner``\\ s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pytest


class CallbackRunnerFactory(Protocol):
    """``callback_runner(*callbacks, **runner_options)`` -> ``CallbackRunner``."""

    def __call__(self, *callbacks: str | Callable[..., Any], **options: Any) -> Any: ...


@pytest.fixture
def callback_runner() -> CallbackRunnerFactory:
    """Build a reference ``CallbackRunner`` from callables or import-path specs.

    ``callback_runner(cb1, "pkg.mod:cb2", timeout_s=5, error_policy="continue")`` loads the
    specs with ``load_callback`` and returns the runner; ``await runner.run(phase, config)``
    or ``await runner.run_all(config)`` drives it, and ``runner.trace`` /
    ``runner.key_origins()`` show who set which key in which phase (tracing is on by
    default here; pass ``trace=False`` to measure the default path).
    """
    from reference_runner import CallbackRunner, load_callback

    def build(*callbacks: str | Callable[..., Any], **options: Any) -> Any:
        options.setdefault("trace", True)
        return CallbackRunner([load_callback(cb) for cb in callbacks], **options)

    return build
