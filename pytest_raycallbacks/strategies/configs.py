"""Strategies of ``LLMConfig`` parts: callback import paths, runtime envs, engine
arguments, placement group configs, and whole configs.

Contract: everything generated is valid (``LLMConfig`` accepts it and it round-trips
through JSON and YAML), except :func:`callback_paths` with ``importable=False``, which is
well-formed but names a package that does not exist. Imports ``hypothesis``; nothing here
imports Ray.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import Any, Final, Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from pytest_raycallbacks.sample_callbacks import SAMPLE_CALLBACKS
from reference_runner import TINY_MODEL_PATH, LLMConfig
from reference_runner.config import PlacementGroupConfig

#: Placement strategies Ray knows.
PLACEMENT_STRATEGIES: Final = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


def callback_paths(
    *, importable: bool = True, form: Literal["colon", "dot", "any"] = "any"
) -> SearchStrategy[str]:
    """A callback import path in the ``"pkg.mod:attr"`` or ``"pkg.mod.attr"`` form.

    ``importable=True`` (default): one of :data:`~pytest_raycallbacks.sample_callbacks.
    SAMPLE_CALLBACKS`, so ``load_callback`` returns a working callback. ``False``: a
    well-formed path whose top-level package (``raycallbacks_absent_*``) does not exist, so
    ``LLMConfig`` accepts it and ``load_callback`` raises ``CallbackLoadError``.
    """
    if importable:
        colon = st.sampled_from(SAMPLE_CALLBACKS)
    else:
        ident = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
        colon = st.builds(
            lambda pkg, mods, attr: f"raycallbacks_absent_{pkg}.{'.'.join(mods)}:{attr}",
            ident,
            st.lists(ident, min_size=1, max_size=2),
            ident,
        )
    if form == "colon":
        return colon
    dot = colon.map(lambda path: path.replace(":", "."))
    return dot if form == "dot" else st.one_of(colon, dot)


_ENV_NAMES = st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True)
_ENV_VALUES = st.text(alphabet=string.ascii_letters + string.digits + "-_./:", max_size=8)


def runtime_envs() -> SearchStrategy[dict[str, Any]]:
    """A runtime env dict Ray accepts (``ray.runtime_env.RuntimeEnv(**env)`` succeeds) and
    that installs nothing: optional ``env_vars`` (str to str) and optional ``config``
    (``setup_timeout_seconds``); possibly empty."""
    return st.fixed_dictionaries(
        {},
        optional={
            "env_vars": st.dictionaries(_ENV_NAMES, _ENV_VALUES, max_size=3),
            "config": st.fixed_dictionaries({"setup_timeout_seconds": st.integers(1, 600)}),
        },
    )


@st.composite
def engine_kwargs(draw: st.DrawFn, *, max_devices: int = 4) -> dict[str, Any]:
    """Engine arguments ``LLMConfig`` accepts: ``tensor_parallel_size`` and
    ``pipeline_parallel_size`` (each present or absent, product at most ``max_devices``),
    and maybe ``max_model_len``, ``dtype``, ``enforce_eager``."""
    tensor = draw(st.integers(1, max_devices))
    pipeline = draw(st.integers(1, max(1, max_devices // tensor)))
    out: dict[str, Any] = {}
    if tensor > 1 or draw(st.booleans()):
        out["tensor_parallel_size"] = tensor
    if pipeline > 1 or draw(st.booleans()):
        out["pipeline_parallel_size"] = pipeline
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "max_model_len": st.sampled_from([256, 2048, 4096]),
                "dtype": st.sampled_from(["auto", "float16", "bfloat16"]),
                "enforce_eager": st.booleans(),
            },
        )
    )
    return {**out, **extra}


def placement_group_configs(num_devices: int | None = None) -> SearchStrategy[PlacementGroupConfig]:
    """A valid ``PlacementGroupConfig``: one bundle per device (``num_devices``, or 1 to 4
    when ``None``), each ``{"GPU": 1.0}`` plus maybe some CPUs, and a Ray strategy."""
    counts = st.just(num_devices) if num_devices is not None else st.integers(1, 4)
    bundle = st.builds(
        lambda cpus: {"GPU": 1.0, **({"CPU": float(cpus)} if cpus else {})},
        st.integers(0, 4),
    )
    return counts.flatmap(
        lambda n: st.builds(
            PlacementGroupConfig,
            bundles=st.lists(bundle, min_size=n, max_size=n),
            strategy=st.sampled_from(PLACEMENT_STRATEGIES),
        )
    )


@st.composite
def llm_configs(
    draw: st.DrawFn,
    *,
    model_id: str | SearchStrategy[str] | None = None,
    callbacks: SearchStrategy[list[str]] | None = None,
    max_devices: int = 4,
    accelerator_types: Sequence[str] = (),
    model_cache_dir: str | None = None,
) -> LLMConfig:
    """A valid ``LLMConfig`` that round-trips through JSON and YAML.

    ``model_id``: the bundled tiny model (:data:`reference_runner.TINY_MODEL_PATH`) by
    default, or a given id or strategy of ids. ``callbacks``: up to three importable paths
    from :func:`callback_paths` by default. Also :func:`engine_kwargs` (at most
    ``max_devices`` GPUs), no or a matching :func:`placement_group_configs`, no or a
    :func:`runtime_envs`, and an accelerator type from ``accelerator_types`` (default:
    none, so a cluster without accelerator labels can place the group).
    """
    if model_id is None:
        model = TINY_MODEL_PATH
    elif isinstance(model_id, str):
        model = model_id
    else:
        model = draw(model_id)
    kwargs = draw(engine_kwargs(max_devices=max_devices))
    devices = kwargs.get("tensor_parallel_size", 1) * kwargs.get("pipeline_parallel_size", 1)
    specs: list[Any] = draw(
        callbacks if callbacks is not None else st.lists(callback_paths(), max_size=3)
    )
    return LLMConfig(
        model_id=model,
        callbacks=specs,
        engine_kwargs=kwargs,
        placement_group_config=draw(st.none() | placement_group_configs(devices)),
        runtime_env=draw(st.none() | runtime_envs()),
        accelerator_type=draw(st.sampled_from([None, *accelerator_types])),
        model_cache_dir=model_cache_dir,
    )
