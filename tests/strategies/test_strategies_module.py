"""The strategies module: documented, and kept out of the plugin's imports."""

from __future__ import annotations

import inspect
import subprocess
import sys

from hypothesis import strategies as st

from pytest_raycallbacks import strategies as rcs


def test_every_public_name_is_documented() -> None:
    for name in rcs.__all__:
        obj = getattr(rcs, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            doc = inspect.getdoc(obj) or ""
            assert len(doc) > 40, f"{name} needs a docstring saying what it generates"


def test_every_strategy_function_returns_a_strategy() -> None:
    plain = {
        "known_phases": (), "unknown_phases": (), "phases": (), "phase_sequences": (),
        "callback_paths": (), "runtime_envs": (), "engine_kwargs": (),
        "placement_group_configs": (), "llm_configs": (), "download_choices": (),
        "invalid_reserved_items": (), "valid_reserved_items": (), "data_dicts": (),
        "placement_group_stand_ins": (), "callback_returns": (), "callback_scripts": (),
        "callbacks": (), "json_values": (), "plain_keys": (),
        "reserved_values": ("runtime_env",),
    }  # fmt: skip
    for name, args in plain.items():
        assert isinstance(getattr(rcs, name)(*args), st.SearchStrategy), name


def test_the_plugin_does_not_import_the_strategies() -> None:
    code = (
        "import sys, pytest_raycallbacks.plugin\n"
        "print('pytest_raycallbacks.strategies' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "False", out.stderr
