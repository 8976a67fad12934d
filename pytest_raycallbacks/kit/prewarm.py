"""Importing what every certification needs while the probe server starts.

Admitting the specs at configure time (:mod:`.admission`) waits for the run's probe server:
a fresh interpreter that imports ``reference_runner`` and Ray before it serves. The test
process needs Ray too, a little later, whatever the run certifies: Ray's cloudpickle ships
the callback (``loading.shippable``), the fake cluster routes Ray's own functions, the live
one connects with it. :func:`start_probe_server_and_import_ray` starts the server first and
imports Ray here while it boots, so the two interpreters do that work side by side instead
of one after the other. It changes what is imported when, never what runs or how.
"""

from __future__ import annotations

import importlib


def start_probe_server_and_import_ray() -> None:
    """Start this process's probe server (idempotent: admission then uses it) and import
    Ray meanwhile."""
    from conformance.probe_host import shared_server

    shared_server()
    importlib.import_module("ray")
