"""Hypothesis strategies for property tests of callbacks and of code around them.

Four families, one module each, all re-exported here (``docs/strategies.md`` has a guide
and a worked downstream test):

* phases (:mod:`.phase_names`): :func:`known_phases`, :func:`unknown_phases`,
  :func:`phases`, :func:`phase_sequences`;
* configs (:mod:`.configs`): :func:`callback_paths`, :func:`runtime_envs`,
  :func:`engine_kwargs`, :func:`placement_group_configs`, :func:`llm_configs`;
* ``data`` (:mod:`.data`): :func:`plain_keys`, :func:`json_values`,
  :func:`download_choices`, :func:`reserved_values`, :func:`valid_reserved_items`,
  :func:`invalid_reserved_items`, :func:`data_dicts`, :func:`placement_group_stand_ins`;
* callbacks (:mod:`.scripted_callbacks`): :func:`callback_returns`,
  :func:`callback_scripts`, :func:`callbacks` (callables described by a
  :class:`CallbackScript` that says what the runner must do with each call).

Generated values are small on purpose (short lists, few keys), so a property runs its
examples in well under a second. This package imports ``hypothesis``; the plugin module
(``pytest_raycallbacks.plugin``) never imports it. Nothing here imports Ray.
"""

from __future__ import annotations

from .configs import (
    PLACEMENT_STRATEGIES,
    callback_paths,
    engine_kwargs,
    llm_configs,
    placement_group_configs,
    runtime_envs,
)
from .data import (
    CALLBACK_KEYS,
    PlacementGroupStandIn,
    data_dicts,
    download_choices,
    invalid_reserved_items,
    json_values,
    placement_group_stand_ins,
    plain_keys,
    reserved_values,
    valid_reserved_items,
)
from .phase_names import known_phases, phase_sequences, phases, unknown_phases
from .scripted_callbacks import (
    ERROR_TYPES,
    CallbackScript,
    Outcome,
    ReturnKind,
    ScriptedCallback,
    ScriptedError,
    callback_returns,
    callback_scripts,
    callbacks,
    is_accepted_return,
)

__all__ = [
    "CALLBACK_KEYS",
    "ERROR_TYPES",
    "PLACEMENT_STRATEGIES",
    "CallbackScript",
    "Outcome",
    "PlacementGroupStandIn",
    "ReturnKind",
    "ScriptedCallback",
    "ScriptedError",
    "callback_paths",
    "callback_returns",
    "callback_scripts",
    "callbacks",
    "data_dicts",
    "download_choices",
    "engine_kwargs",
    "invalid_reserved_items",
    "is_accepted_return",
    "json_values",
    "known_phases",
    "llm_configs",
    "phase_sequences",
    "phases",
    "placement_group_configs",
    "placement_group_stand_ins",
    "plain_keys",
    "reserved_values",
    "runtime_envs",
    "unknown_phases",
    "valid_reserved_items",
]
