"""conformance: the check catalogue of pytest-raycallbacks.

Each check is a documented rule (stable id, category, one-line rule, why it matters on a
cluster) implemented as a function of a :class:`CheckContext`. The catalogue knows nothing of
pytest's plugin: it receives the callback under test (:class:`Subject`), the cluster
(:class:`~conformance.host.Host`) and the settings as arguments.
"""

from __future__ import annotations

from .catalogue import (
    CATALOGUE,
    CATALOGUE_VERSION,
    checks_for,
    get_check,
    markdown_table,
    text_listing,
)
from .context import Bench, CheckContext, Settings
from .failure import CheckFailed, CheckSkipped
from .host import FAULTS, Host, HostScope, LiveHost, WorkerRun
from .loading import start_probe_early
from .registry import CALLBACK, CALLBACKBASE, CATEGORIES, CLUSTERS, STYLES, Check
from .subject import Subject, style_of

__all__ = [
    "CALLBACK",
    "CALLBACKBASE",
    "CATALOGUE",
    "CATALOGUE_VERSION",
    "CATEGORIES",
    "CLUSTERS",
    "FAULTS",
    "STYLES",
    "Bench",
    "Check",
    "CheckContext",
    "CheckFailed",
    "CheckSkipped",
    "Host",
    "HostScope",
    "LiveHost",
    "Settings",
    "Subject",
    "WorkerRun",
    "checks_for",
    "get_check",
    "markdown_table",
    "start_probe_early",
    "style_of",
    "text_listing",
]
