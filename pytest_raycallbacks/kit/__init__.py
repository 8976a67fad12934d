"""The conformance kit: one ``pytest --raycallbacks-conformance SPEC`` run (docs/design.md
§The kit).

* :mod:`.settings` (with :mod:`.waivers`): what the user asked for, validated once;
* :mod:`.plan`: the items the settings ask for (check x callback x cluster), the keys under
  which each item carries its plan and its record;
* :mod:`.collection`: those items as pytest items; :mod:`.fixture` and :mod:`.check_item`:
  running one of them; :mod:`.clusters`: the fake and live clusters as the checks see them;
* :mod:`.session`: :class:`Kit`, the pytest plugin that holds the run together and hands
  the results to :mod:`pytest_raycallbacks.report`, :mod:`pytest_raycallbacks.coverage` and
  :mod:`pytest_raycallbacks.chain`.

Importing this package imports none of them: the names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_raycallbacks._lazy import lazy_exports

if TYPE_CHECKING:
    from .check_item import StaleWaiverWarning
    from .session import KIT_KEY, PLUGIN_NAME, Kit

__all__ = ["KIT_KEY", "PLUGIN_NAME", "Kit", "StaleWaiverWarning"]

__getattr__ = lazy_exports(
    __name__,
    {
        "KIT_KEY": "session",
        "PLUGIN_NAME": "session",
        "Kit": "session",
        "StaleWaiverWarning": "check_item",
    },
)
