"""The checks, one module per category of :data:`conformance.registry.CATEGORIES`.

Importing this package registers every check (each module registers its own with
:func:`conformance.registry.check`); :mod:`conformance.catalogue` imports it.
"""

from __future__ import annotations

from . import (  # noqa: F401 - registers the checks
    callbackbase,
    cluster,
    errors,
    loading,
    merge,
    phases,
    process,
)
