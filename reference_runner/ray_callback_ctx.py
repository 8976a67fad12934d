"""How a Ray 2.60 ``CallbackCtx`` maps onto our shared ``data`` dict, in both directions.

==============================  ==============================================================
``ctx`` field                   ``data`` key
==============================  ==============================================================
worker_node_download_model      ``worker_node_download_model`` (Ray's enum <-> ours, by name)
placement_group                 ``placement_group``
runtime_env                     ``runtime_env``
custom_data                     :data:`CUSTOM_DATA_KEY` (``"custom_data"``)
run_init_node=False             ``local_node_download_model`` and
                                ``worker_node_download_model`` = ``NONE`` (Ray then skips
                                ``initialize_node``: no model download at node init);
                                ``skip_default_init=True`` in ``data`` -> ``False``
==============================  ==============================================================

:func:`apply_data_to_ctx` copies ``data`` onto ``ctx`` before a hook; :class:`CtxState`
snapshots ``ctx`` so that :func:`data_from_ctx` turns the fields a hook *changed* into the
mapping merged into ``data``. What ``data`` cannot express is returned as notes. In Ray
``ctx`` is the only state, so the adapter copies onto ``ctx`` only what someone else changed
in ``data`` since ``ctx`` last reflected it (``reflected=``, a :func:`data_view`): what the
class left in ``ctx`` stays as it left it, as in Ray (e.g. ``worker_node_download_model``
after ``run_init_node = False``, whose mapping sets it to ``NONE`` in ``data`` only).

Also here, as the one owner of "Ray's ``CallbackCtx``": where Ray defines it and how to
import it (:func:`ray_callback_api`), the ``ctx_kwargs`` Ray builds it from
(:func:`ray_ctx_kwargs`), and what each field must hold for Ray to use it
(:func:`ctx_field_problems`, which the adapter enforces after every hook). Importing this
module does not import Ray; the functions that need Ray import it.
"""

from __future__ import annotations

import copy
import enum
import importlib
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .downloadable import NodeModelDownloadable
from .loading import describe_value
from .reserved import (
    LOCAL_NODE_DOWNLOAD_MODEL,
    PLACEMENT_GROUP,
    RUNTIME_ENV,
    SKIP_DEFAULT_INIT,
    WORKER_NODE_DOWNLOAD_MODEL,
    is_placement_group,
    reserved_key_problem,
)
from .shared_data import MISSING

#: Where Ray 2.60 defines ``CallbackBase`` and ``CallbackCtx``.
RAY_CALLBACK_BASE_MODULE: Final = "ray.llm._internal.common.callbacks.base"
#: Where Ray 2.60 defines its ``NodeModelDownloadable`` (needs pyarrow to import).
RAY_DOWNLOAD_UTILS_MODULE: Final = "ray.llm._internal.common.utils.download_utils"

#: The ``data`` key ``ctx.custom_data`` maps to.
CUSTOM_DATA_KEY: Final = "custom_data"
#: The variables Ray 2.60 copies from the replica's environment into
#: ``ctx.runtime_env["env_vars"]`` (``ENV_VARS_TO_PROPAGATE`` in
#: ``ray.llm._internal.serve.constants``).
PROPAGATED_ENV_VARS: Final = ("HUGGING_FACE_HUB_TOKEN", "HF_TOKEN")
#: The variable Ray sets to a fractional GPU share of the placement group's bundles.
PER_WORKER_GPUS_ENV_VAR: Final = "VLLM_RAY_PER_WORKER_GPUS"
#: The ``CallbackCtx`` fields, in declaration order.
CTX_FIELDS: Final = (
    "worker_node_download_model",
    "placement_group",
    "runtime_env",
    "custom_data",
    "run_init_node",
)
#: Which ``data`` key(s) each ``ctx`` field maps to.
CTX_TO_DATA: Final[Mapping[str, tuple[str, ...]]] = {
    "worker_node_download_model": (WORKER_NODE_DOWNLOAD_MODEL,),
    "placement_group": (PLACEMENT_GROUP,),
    "runtime_env": (RUNTIME_ENV,),
    "custom_data": (CUSTOM_DATA_KEY,),
    "run_init_node": (LOCAL_NODE_DOWNLOAD_MODEL, WORKER_NODE_DOWNLOAD_MODEL),
}


# ---------------------------------------------------------------------- Ray's API


class RayCallbackAPIUnavailable(ImportError):
    """Ray's ``CallbackBase`` module could not be imported (Ray missing or not 2.60)."""


@dataclass(frozen=True)
class RayCallbackAPI:
    """Ray's classes, imported on demand by :func:`ray_callback_api`."""

    CallbackBase: type
    CallbackCtx: type


def ray_callback_api() -> RayCallbackAPI:
    """Import ``CallbackBase`` and ``CallbackCtx`` from Ray (this imports ``ray``).

    Raises :class:`RayCallbackAPIUnavailable`, saying why, when they cannot be imported.
    """
    try:
        module = importlib.import_module(RAY_CALLBACK_BASE_MODULE)
        return RayCallbackAPI(module.CallbackBase, module.CallbackCtx)
    except Exception as exc:
        raise RayCallbackAPIUnavailable(
            f"Ray's class-based callback API ({RAY_CALLBACK_BASE_MODULE}) could not be "
            f"imported: {type(exc).__name__}: {exc}. It ships with Ray 2.60: "
            "pip install 'ray>=2.60,<2.61'"
        ) from exc


# ---------------------------------------------------------------------- download choices


def ray_download_enum() -> type[enum.Enum] | None:
    """Ray's own ``NodeModelDownloadable`` if it can be imported (it needs pyarrow), else
    ``None``; the adapter then puts :class:`~reference_runner.NodeModelDownloadable`
    members (same names) into ``ctx``."""
    module = sys.modules.get(RAY_DOWNLOAD_UTILS_MODULE)
    if module is None:
        try:
            module = importlib.import_module(RAY_DOWNLOAD_UTILS_MODULE)
        except Exception:
            return None
    found = getattr(module, "NodeModelDownloadable", None)
    return found if isinstance(found, type) and issubclass(found, enum.Enum) else None


def is_download_choice(value: Any) -> bool:
    """True for a member of Ray's ``NodeModelDownloadable`` or of ours (same names)."""
    if isinstance(value, NodeModelDownloadable):
        return True
    cls = type(value)
    return (
        isinstance(value, enum.Enum)
        and cls.__name__ == "NodeModelDownloadable"
        and cls.__module__ == RAY_DOWNLOAD_UTILS_MODULE
        and value.name in NodeModelDownloadable.__members__
    )


def to_ctx_download_choice(value: Any) -> Any:
    """``data``'s download choice (our member or its name) as Ray's member, or ours when
    Ray's enum cannot be imported. Anything else is returned unchanged."""
    if isinstance(value, str) and value in NodeModelDownloadable.__members__:
        value = NodeModelDownloadable[value]
    if not isinstance(value, NodeModelDownloadable):
        return value
    ray_enum = ray_download_enum()
    return value if ray_enum is None else ray_enum[value.name]


def to_data_download_choice(value: Any) -> Any:
    """A ``ctx`` download choice (Ray's member or ours) as our member; others unchanged."""
    if is_download_choice(value):
        return NodeModelDownloadable[value.name]
    return value


# ---------------------------------------------------------------------- ctx_kwargs


def ray_ctx_kwargs(*, placement_group: Any = None, runtime_env: Any = None) -> dict[str, Any]:
    """The ``ctx_kwargs`` Ray's ``LLMConfig.get_or_create_callback`` passes in a deployment:
    ``MODEL_AND_TOKENIZER``, the replica's placement group (default: a fresh
    :func:`unplaced_placement_group`, as Ray creates the group before the callback) and its
    runtime env as Ray completes it (:func:`ray_runtime_env`: ``{"env_vars": {}}`` plus the
    propagated tokens when ``None``). Imports Ray when no group is given."""
    return {
        "worker_node_download_model": to_ctx_download_choice(
            NodeModelDownloadable.MODEL_AND_TOKENIZER
        ),
        "placement_group": unplaced_placement_group()
        if placement_group is None
        else placement_group,
        "runtime_env": ray_runtime_env(runtime_env),
    }


def ray_runtime_env(
    runtime_env: Mapping[str, Any] | None,
    *,
    bundles: Iterable[Mapping[str, float]] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``runtime_env`` Ray 2.60 puts in ``ctx_kwargs``
    (``VLLMEngineConfig.get_runtime_env_with_local_env_vars``): a copy of ``runtime_env``
    (``{}`` when ``None`` or empty) that always has ``env_vars``, into which each of
    :data:`PROPAGATED_ENV_VARS` set in ``environ`` (default ``os.environ``) is copied, and
    :data:`PER_WORKER_GPUS_ENV_VAR` when not set and the first bundle of the explicit
    placement group config (``bundles``) asking for GPUs asks for a fraction of one.

    Unlike Ray, which writes these into the config's own dict, ``runtime_env`` is left
    unchanged. ``env_vars`` that is not a dict is left as it is (the ``ctx`` validation then
    names it).
    """
    out: dict[str, Any] = snapshot_value(dict(runtime_env)) if runtime_env else {}
    env_vars = out.setdefault("env_vars", {})
    if not isinstance(env_vars, dict):
        return out
    environ = os.environ if environ is None else environ
    for name in PROPAGATED_ENV_VARS:
        if name in environ:
            env_vars[name] = environ[name]
    if PER_WORKER_GPUS_ENV_VAR not in env_vars:
        share = _fractional_gpu(bundles or ())
        if share is not None:
            env_vars[PER_WORKER_GPUS_ENV_VAR] = str(share)
    return out


def _fractional_gpu(bundles: Iterable[Mapping[str, float]]) -> float | None:
    """Ray's ``_detect_fractional_gpu_from_pg`` on a bundle list: the first bundle with a
    ``GPU`` entry decides (a share strictly between 0 and 1, else ``None``)."""
    for bundle in bundles:
        if "GPU" in bundle:
            value = bundle["GPU"]
            return value if 0 < value < 1 else None
    return None


def unplaced_placement_group() -> Any:
    """A real Ray ``PlacementGroup`` handle with a fresh random id that was never created
    on any cluster: right for type checks and pickling, useless for scheduling."""
    from ray._raylet import PlacementGroupID
    from ray.util.placement_group import PlacementGroup

    return PlacementGroup(PlacementGroupID.from_random())


# ---------------------------------------------------------------------- ctx <-> data


def snapshot_value(value: Any) -> Any:
    """A copy to compare a ``ctx`` value against later (deep where it can be)."""
    if isinstance(value, dict | list):
        try:
            return copy.deepcopy(value)
        except Exception:
            return copy.copy(value)
    return value


@dataclass(frozen=True)
class CtxState:
    """The ``ctx`` fields at one moment (``runtime_env``/``custom_data`` copied)."""

    values: Mapping[str, Any]

    @classmethod
    def of(cls, ctx: Any) -> CtxState:
        """Snapshot ``ctx`` (a field it lacks is recorded as missing)."""
        return cls({name: snapshot_value(getattr(ctx, name, MISSING)) for name in CTX_FIELDS})

    def changed_fields(self, ctx: Any) -> tuple[str, ...]:
        """The fields of ``ctx`` that differ from this snapshot."""
        changed = []
        for name in CTX_FIELDS:
            before, after = self.values[name], getattr(ctx, name, MISSING)
            if name == "placement_group":
                differs = before is not after
            else:
                try:
                    differs = bool(before != after) or type(before) is not type(after)
                except Exception:
                    differs = before is not after
            if differs:
                changed.append(name)
        return tuple(changed)


#: The ``data`` keys :func:`apply_data_to_ctx` reads.
DATA_KEYS_ON_CTX: Final = (
    WORKER_NODE_DOWNLOAD_MODEL,
    PLACEMENT_GROUP,
    RUNTIME_ENV,
    CUSTOM_DATA_KEY,
    SKIP_DEFAULT_INIT,
)


def data_view(data: Mapping[str, Any]) -> dict[str, Any]:
    """A snapshot of the keys of :data:`DATA_KEYS_ON_CTX` that ``data`` holds (download
    choices as our enum members), to compare a later ``data`` against (``reflected=`` of
    :func:`apply_data_to_ctx`)."""
    return {key: _normal(key, snapshot_value(data[key])) for key in DATA_KEYS_ON_CTX if key in data}


def _normal(key: str, value: Any) -> Any:
    if key == WORKER_NODE_DOWNLOAD_MODEL:
        if isinstance(value, str) and value in NodeModelDownloadable.__members__:
            return NodeModelDownloadable[value]
        return to_data_download_choice(value)
    return value


def _unchanged(key: str, value: Any, reflected: Mapping[str, Any]) -> bool:
    """True when ``data[key]`` is what ``reflected`` says ``ctx`` already reflects."""
    if key not in reflected:
        return False
    before, now = reflected[key], _normal(key, value)
    if key == PLACEMENT_GROUP:
        return before is now
    try:
        return bool(before == now) and type(before) is type(now)
    except Exception:
        return before is now


def apply_data_to_ctx(
    ctx: Any, data: Mapping[str, Any], *, reflected: Mapping[str, Any] | None = None
) -> None:
    """Copy what ``data`` holds onto ``ctx`` before a hook (see the module's table).

    ``reflected``: a :func:`data_view` of the ``data`` that ``ctx`` already reflects (what
    ``ctx`` was built from, updated with what the hooks returned); a key whose value is
    unchanged from it is not copied, so ``ctx`` keeps what the class left there, as in Ray,
    where ``ctx`` is the only state. ``None`` copies every key.

    ``run_init_node`` is only ever set to ``False`` (by ``skip_default_init=True``); it is
    otherwise the class's own decision, kept between hooks as Ray keeps one instance.
    """
    reflected = {} if reflected is None else reflected

    def changed(key: str) -> bool:
        return key in data and not _unchanged(key, data[key], reflected)

    if changed(WORKER_NODE_DOWNLOAD_MODEL):
        ctx.worker_node_download_model = to_ctx_download_choice(data[WORKER_NODE_DOWNLOAD_MODEL])
    if data.get(PLACEMENT_GROUP) is not None and changed(PLACEMENT_GROUP):
        ctx.placement_group = data[PLACEMENT_GROUP]
    if isinstance(data.get(RUNTIME_ENV), Mapping) and changed(RUNTIME_ENV):
        ctx.runtime_env = snapshot_value(dict(data[RUNTIME_ENV]))
    if isinstance(data.get(CUSTOM_DATA_KEY), dict) and changed(CUSTOM_DATA_KEY):
        ctx.custom_data = dict(data[CUSTOM_DATA_KEY])
    if data.get(SKIP_DEFAULT_INIT) is True and changed(SKIP_DEFAULT_INIT):
        ctx.run_init_node = False


def data_from_ctx(
    before: CtxState, ctx: Any, changed: tuple[str, ...]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The mapping to merge into ``data`` for the ``changed`` fields of ``ctx``, and notes
    on changes ``data`` cannot express."""
    out: dict[str, Any] = {}
    unmapped: list[str] = []
    if "worker_node_download_model" in changed:
        out[WORKER_NODE_DOWNLOAD_MODEL] = to_data_download_choice(ctx.worker_node_download_model)
    if "placement_group" in changed and ctx.placement_group is not None:
        out[PLACEMENT_GROUP] = ctx.placement_group
    if "runtime_env" in changed:
        if ctx.runtime_env is None:
            unmapped.append(
                "ctx.runtime_env was set to None: data cannot remove a runtime env, so "
                f"data['runtime_env'] keeps {before.values['runtime_env']!r}"
            )
        else:
            out[RUNTIME_ENV] = ctx.runtime_env
    if "custom_data" in changed:
        out[CUSTOM_DATA_KEY] = ctx.custom_data
    if "run_init_node" in changed:
        if ctx.run_init_node is False:
            out[LOCAL_NODE_DOWNLOAD_MODEL] = NodeModelDownloadable.NONE
            out[WORKER_NODE_DOWNLOAD_MODEL] = NodeModelDownloadable.NONE
        else:
            unmapped.append(
                "ctx.run_init_node went back to True: downloads follow data's "
                "local_node_download_model and worker_node_download_model as they are"
            )
    return out, tuple(unmapped)


# ---------------------------------------------------------------------- field validity


def placement_group_problems(value: Any, *, required: bool = False) -> list[str]:
    """``ctx.placement_group`` is a Ray placement group (``None`` only while not
    ``required``: Ray reads it for the worker downloads and for the engine)."""
    if value is None:
        if not required:
            return []
        return [
            "ctx.placement_group = None, where a Ray placement group is expected: Ray reads "
            "it right after on_before_node_init (to find the nodes that download the model) "
            "and after on_after_node_init (to start the engine). Leave it, or replace it "
            "with ray.util.placement_group(...)"
        ]
    if is_placement_group(value):
        return []
    return [
        f"ctx.placement_group = {describe_value(value)}, where a Ray placement group is "
        "expected (what ray.util.placement_group(bundles, strategy=...) returns). Assign the "
        "PlacementGroup object itself, not its id, name or bundles"
    ]


def runtime_env_problems(value: Any) -> list[str]:
    """``ctx.runtime_env`` is ``None`` or a dict Ray accepts as a runtime env (Ray passes
    it to the download tasks and to the engine's workers)."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [
            f"ctx.runtime_env = {describe_value(value)}, where a dict Ray accepts as a "
            "runtime env is expected (e.g. {'env_vars': {'HF_HOME': '/data'}})"
        ]
    problem = reserved_key_problem(RUNTIME_ENV, value)
    if problem is None:
        return []
    return [
        f"ctx.runtime_env = {describe_value(value)}, where {problem} is expected. Fix the "
        "field Ray names"
    ]


def ctx_field_problems(
    value: Any, *, placement_group_required: bool = False, judge_custom_data: bool = True
) -> list[str]:
    """What is wrong with a ``CallbackCtx`` for Ray to use it (``[]``: nothing).

    ``value`` must be the ``CallbackCtx`` Ray built (not a replacement);
    ``worker_node_download_model`` a ``NodeModelDownloadable`` member (Ray compares it with
    its enum: a name string or ``None`` silently downloads the whole model);
    ``placement_group`` and ``runtime_env``: see :func:`placement_group_problems` and
    :func:`runtime_env_problems`; ``custom_data`` a dict with str keys; ``run_init_node`` a
    bool (Ray tests its truth; ``"false"`` is true). Each problem names the field, its
    value and how to fix it. Imports Ray (for ``CallbackCtx``). ``judge_custom_data=False``
    leaves ``custom_data`` alone: Ray itself never reads it (only our ``data`` mapping
    needs it to be a dict).
    """
    if not isinstance(value, ray_callback_api().CallbackCtx):
        return [
            f"self.ctx = {describe_value(value)}, where the CallbackCtx Ray built is "
            "expected. Change its fields (self.ctx.placement_group = ...) rather than "
            "replacing it"
        ]
    ctx: Any = value
    problems: list[str] = []
    choice = ctx.worker_node_download_model
    if not is_download_choice(choice):
        names = ", ".join(NodeModelDownloadable.__members__)
        problems.append(
            f"ctx.worker_node_download_model = {describe_value(choice)}, where a "
            f"NodeModelDownloadable member ({names}) is expected: Ray compares it with its "
            "enum, so anything else downloads the whole model. Assign "
            f"NodeModelDownloadable.<NAME> from {RAY_DOWNLOAD_UTILS_MODULE}"
        )
    problems += placement_group_problems(ctx.placement_group, required=placement_group_required)
    problems += runtime_env_problems(ctx.runtime_env)
    custom = ctx.custom_data
    if (judge_custom_data and not isinstance(custom, dict)) or not all(
        isinstance(k, str) for k in custom
    ):
        problems.append(
            f"ctx.custom_data = {describe_value(custom)}, where a dict with str keys is "
            f"expected (it maps to data[{CUSTOM_DATA_KEY!r}]). Store entries in it: "
            "self.ctx.custom_data['my_key'] = value"
        )
    if not isinstance(ctx.run_init_node, bool):
        problems.append(
            f"ctx.run_init_node = {describe_value(ctx.run_init_node)}, where a bool is "
            "expected (Ray tests its truth: 'false', 0.0 or [] do not mean what they say). "
            "Assign True or False"
        )
    return problems


__all__ = [
    "CTX_FIELDS",
    "CTX_TO_DATA",
    "CUSTOM_DATA_KEY",
    "DATA_KEYS_ON_CTX",
    "PER_WORKER_GPUS_ENV_VAR",
    "PROPAGATED_ENV_VARS",
    "RAY_CALLBACK_BASE_MODULE",
    "RAY_DOWNLOAD_UTILS_MODULE",
    "CtxState",
    "RayCallbackAPI",
    "RayCallbackAPIUnavailable",
    "apply_data_to_ctx",
    "ctx_field_problems",
    "data_from_ctx",
    "data_view",
    "is_download_choice",
    "placement_group_problems",
    "ray_callback_api",
    "ray_ctx_kwargs",
    "ray_download_enum",
    "ray_runtime_env",
    "runtime_env_problems",
    "snapshot_value",
    "to_ctx_download_choice",
    "to_data_download_choice",
    "unplaced_placement_group",
]
