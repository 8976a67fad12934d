"""The conformance items' fixture. Importing this module imports nothing of the kit."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def raycallbacks_check(request: pytest.FixtureRequest) -> Any:
    """One conformance check for one callback on one cluster, ready to ``run()``.

    Used by the items ``pytest --raycallbacks-conformance SPEC`` collects (named
    ``<check id>[<spec>-<local|fake|live>]``); it builds the check's context (the callback,
    the cluster, the settings) and turns the check's outcome into the item's: failed with
    the rule's message, waived (xfail), skipped, or passed.
    """
    from .checkrun import CheckRun

    return CheckRun.for_item(request)
