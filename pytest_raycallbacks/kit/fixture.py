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
    from .check_item import CheckRun
    from .plan import PLAN_KEY, RECORD_KEY
    from .session import KIT_KEY

    kit = request.config.stash.get(KIT_KEY, None)
    plan = request.node.stash.get(PLAN_KEY, None)
    if kit is None or plan is None:
        raise pytest.UsageError(
            "raycallbacks_check belongs to the items of --raycallbacks-conformance; use "
            "callback_runner, fake_ray_cluster or gpu_ray_cluster in your own tests"
        )
    return CheckRun.prepare(kit, plan, request.node.stash[RECORD_KEY], request)
