"""The kit's additions beyond the per-check catalogue: callback coverage and chains.

The :class:`~pytest_raycallbacks.kit.Kit` calls these few functions; each feature lives in
its own modules (:mod:`.callback_coverage` and :mod:`.coverage_report`;
:mod:`.chain_suite` and :mod:`conformance.chain`).

* :func:`register` installs the coverage measurer (unless ``-p no:raycallbacks-coverage``)
  and, with ``--raycallbacks-chain``, the chain plugin, which it returns.
* :func:`spec_lines` is the coverage block of one callback in the summary.
* :func:`amend_certificate` adds ``coverage`` to each callback entry and the ``chain``
  object to the certificate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .callback_coverage import PLUGIN_NAME as COVERAGE_PLUGIN
from .callback_coverage import CoverageMeasurer
from .results import Results

if TYPE_CHECKING:
    from .chain_suite import ChainPlugin
    from .settings import KitSettings


def register(config: pytest.Config, settings: KitSettings) -> ChainPlugin | None:
    """Register the coverage measurer and (with ``--raycallbacks-chain``) the chain plugin."""
    manager = config.pluginmanager
    if not manager.is_blocked(COVERAGE_PLUGIN) and not manager.has_plugin(COVERAGE_PLUGIN):
        manager.register(CoverageMeasurer(), COVERAGE_PLUGIN)
    if not getattr(settings, "chain", False):
        return None
    from .chain_suite import PLUGIN_NAME, ChainPlugin

    plugin = ChainPlugin(settings.specs)
    manager.register(plugin, PLUGIN_NAME)
    return plugin


def extra_items(session: pytest.Session, chain: ChainPlugin | None) -> list[pytest.Item]:
    """The chain item, when a chain was asked for."""
    if chain is None:
        return []
    from .chain_suite import collect_chain

    return collect_chain(session, chain.specs)


def coverage_of(results: Results, spec: str) -> dict[str, Any] | None:
    """The ``coverage`` object of one callback (see :mod:`.coverage_report`)."""
    from .coverage_report import callback_coverage

    return callback_coverage(e.record for e in results.for_spec(spec))


def spec_lines(results: Results, spec: str) -> list[tuple[str, dict[str, bool]]]:
    """The coverage block of one callback in the summary (nothing when not measured)."""
    from .coverage_report import summary_lines

    return summary_lines(coverage_of(results, spec))


def amend_certificate(
    document: dict[str, Any], results: Results, chain: ChainPlugin | None
) -> dict[str, Any]:
    """``document`` with ``coverage`` per callback and, for a chain, ``chain``."""
    for entry in document.get("callbacks", []):
        entry["coverage"] = coverage_of(results, str(entry["spec"]))
    if chain is not None:
        document["chain"] = chain.certificate_entry()
    return document
