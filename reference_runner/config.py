"""``LLMConfig``: the configuration a node is initialized from (pydantic v2).

Contract (docs/design.md §The callback contract): unknown fields are rejected; callback
specs are checked for form when the config is built and loaded lazily (on the node, by
``initialize_node``); a config whose callbacks are all import paths round-trips through JSON
and YAML; dumping one that holds an object with no import path (a lambda, an instance) fails
with a message saying to use an import path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from .loading import import_path_of, spec_form_problem

PlacementStrategy = Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]


def _serialize_callback(value: Any) -> str:
    if isinstance(value, str):
        return value
    path = import_path_of(value)
    if path is None:
        raise ValueError(
            f"callback {value!r} cannot be serialized: it has no import path (lambdas, "
            "closures, instances and objects defined in __main__ have none). Put it in a "
            "module and list it as an import path such as 'my_pkg.my_module:my_callback'"
        )
    return path


CallbackSpec = Annotated[
    str | Callable[..., Any],
    PlainSerializer(_serialize_callback, return_type=str, when_used="always"),
]


class PlacementGroupConfig(BaseModel):
    """The placement group ``initialize_node`` creates by default.

    As in Ray's ``placement_group_config``: either ``bundles`` (one per bundle), or
    ``bundle_per_worker`` (one bundle, repeated for each device the engine starts:
    :meth:`LLMConfig.placement_bundles`)."""

    model_config = ConfigDict(extra="forbid")

    bundles: list[dict[str, float]] = Field(
        default_factory=list,
        description="One resource dict per bundle, e.g. [{'GPU': 1, 'CPU': 1}].",
    )
    bundle_per_worker: dict[str, float] | None = Field(
        default=None,
        description="Ray's alternative to bundles: this bundle once per device "
        "(tensor_parallel_size x pipeline_parallel_size).",
    )
    strategy: PlacementStrategy = Field(default="PACK", description="Ray placement strategy.")

    @model_validator(mode="after")
    def _one_of_bundles(self) -> PlacementGroupConfig:
        if self.bundle_per_worker is not None:
            if self.bundles:
                raise ValueError(
                    "placement_group_config: give bundles or bundle_per_worker, not both"
                )
            if not self.bundle_per_worker or all(v == 0 for v in self.bundle_per_worker.values()):
                raise ValueError(
                    "placement_group_config.bundle_per_worker asks for no resources; give it "
                    "at least one positive resource such as {'GPU': 1}"
                )
            return self
        type(self)._bundles_not_empty(self.bundles)
        return self

    @classmethod
    def _bundles_not_empty(cls, bundles: list[dict[str, float]]) -> list[dict[str, float]]:
        if not bundles:
            raise ValueError("placement_group_config.bundles must list at least one bundle")
        for i, bundle in enumerate(bundles):
            if not bundle or all(v == 0 for v in bundle.values()):
                raise ValueError(
                    f"bundle #{i} {bundle!r} asks for no resources; give each bundle at "
                    "least one positive resource such as {'GPU': 1}"
                )
            negative = {k: v for k, v in bundle.items() if v < 0}
            if negative:
                raise ValueError(f"bundle #{i} has negative resources {negative!r}")
        return bundles


#: Ray's own ``LLMConfig`` fields (Ray 2.60) that the reference config takes as they are,
#: beyond the ones it acts on (``model_id``, ``engine_kwargs``, ``accelerator_type``,
#: ``placement_group_config``, ``runtime_env``): one config file can then carry Ray's fields
#: and ``callbacks``, the one field the source design adds (docs/design.md §Ray is the
#: judge). The reference runner carries them for the callbacks to read and acts on none.
RAY_ONLY_FIELDS: Final = (
    "model_loading_config",
    "llm_engine",
    "accelerator_config",
    "lora_config",
    "deployment_config",
    "server_cls",
    "experimental_configs",
    "log_engine_metrics",
    "callback_config",
)


class LLMConfig(BaseModel):
    """What a node needs to initialize an LLM engine, plus the callbacks that customize it.

    It also takes Ray's ``LLMConfig`` fields as they are (:data:`RAY_ONLY_FIELDS`): with
    ``model_loading_config`` and no ``model_id``, the model is its ``model_source`` when that
    is a string (a local folder or URI), else its ``model_id``.
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), validate_assignment=True)

    model_id: str = Field(
        description="The model to serve. For the reference download: a local folder or a "
        "file:// URI of one."
    )
    model_loading_config: dict[str, Any] | None = Field(
        default=None, description="Ray's: model_id (the served name) and model_source."
    )
    llm_engine: str | None = Field(default=None, description="Ray's: the engine (vLLM).")
    accelerator_config: dict[str, Any] | None = Field(default=None, description="Ray's.")
    lora_config: dict[str, Any] | None = Field(default=None, description="Ray's.")
    deployment_config: dict[str, Any] = Field(
        default_factory=dict, description="Ray's: the Serve deployment options."
    )
    server_cls: str | None = Field(default=None, description="Ray's.")
    experimental_configs: dict[str, Any] = Field(default_factory=dict, description="Ray's.")
    log_engine_metrics: bool | None = Field(default=None, description="Ray's.")
    callback_config: dict[str, Any] | None = Field(
        default=None,
        description="Ray's: a CallbackBase class (callback_class, callback_kwargs, "
        "raise_error_on_callback). The reference runner does not run it; the kit certifies "
        "it by Ray's own code (--raycallbacks-serve-config).",
    )
    callbacks: list[CallbackSpec] = Field(
        default_factory=list,
        description="Callbacks run at each phase of node initialization: import paths "
        "('pkg.mod.func' or 'pkg.mod:func') or callables. Each receives (phase, config, "
        "data) and returns None or a dict to merge into data.",
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Engine arguments; tensor_parallel_size x pipeline_parallel_size sets "
        "the number of GPUs of the default placement group.",
    )
    accelerator_type: str | None = Field(
        default=None,
        description="Ray accelerator type (e.g. 'A100'); adds the "
        "'accelerator_type:<type>' resource to each default bundle.",
    )
    placement_group_config: PlacementGroupConfig | None = Field(
        default=None,
        description="Explicit bundles and strategy of the default placement group. "
        "Default: one {'GPU': 1} bundle per device, strategy PACK.",
    )
    runtime_env: dict[str, Any] | None = Field(
        default=None, description="Ray runtime env for the engine's workers."
    )
    model_cache_dir: str | None = Field(
        default=None,
        description="Where nodes keep downloaded models (default: $RAYCALLBACKS_MODEL_CACHE "
        "or ~/.cache/raycallbacks/models).",
    )

    @model_validator(mode="before")
    @classmethod
    def _model_id_from_rays_fields(cls, values: Any) -> Any:
        if not isinstance(values, dict) or values.get("model_id") is not None:
            return values
        loading = values.get("model_loading_config")
        if isinstance(loading, dict):
            source = loading.get("model_source")
            model = source if isinstance(source, str) and source else loading.get("model_id")
            if isinstance(model, str) and model:
                return {**values, "model_id": model}
        return values

    @field_validator("callbacks")
    @classmethod
    def _check_callback_specs(cls, callbacks: list[Any]) -> list[Any]:
        for i, spec in enumerate(callbacks):
            if isinstance(spec, str):
                problem = spec_form_problem(spec)
                if problem is not None:
                    raise ValueError(f"callbacks[{i}] = {spec!r}: {problem}")
            elif not callable(spec):
                raise ValueError(
                    f"callbacks[{i}] must be an import path str or a callable, got "
                    f"{type(spec).__name__}"
                )
        return callbacks

    @model_validator(mode="after")
    def _check_devices(self) -> LLMConfig:
        self.num_devices  # noqa: B018 - validates the parallel sizes
        return self

    @property
    def num_devices(self) -> int:
        """GPUs one replica needs: tensor_parallel_size x pipeline_parallel_size."""
        sizes = []
        for key in ("tensor_parallel_size", "pipeline_parallel_size"):
            value = self.engine_kwargs.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"engine_kwargs[{key!r}] must be a positive int, got {value!r}")
            sizes.append(value)
        return sizes[0] * sizes[1]

    def placement_bundles(self) -> list[dict[str, float]]:
        """The default placement group's bundles (as Ray Serve LLM builds them for GPUs)."""
        accelerator = (
            {f"accelerator_type:{self.accelerator_type}": 0.001} if self.accelerator_type else {}
        )
        group = self.placement_group_config
        if group is not None and group.bundle_per_worker is not None:
            return [{**accelerator, **group.bundle_per_worker} for _ in range(self.num_devices)]
        if group is not None:
            return [{**accelerator, **b} for b in group.bundles]
        return [{"GPU": 1.0, **accelerator} for _ in range(self.num_devices)]

    def placement_strategy(self) -> PlacementStrategy:
        """The default placement group's strategy."""
        if self.placement_group_config is not None:
            return self.placement_group_config.strategy
        return "PACK"

    # ------------------------------------------------------------------ files

    @classmethod
    def from_file(cls, path: str | Path) -> LLMConfig:
        """Load a config from a ``.yaml``/``.yml`` or ``.json`` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"cannot read LLMConfig file {str(path)!r}: {exc}") from exc
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            try:
                raw = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"{str(path)!r} is not valid YAML: {exc}") from exc
        elif path.suffix.lower() == ".json":
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{str(path)!r} is not valid JSON: {exc}") from exc
        else:
            raise ValueError(
                f"cannot tell the format of {str(path)!r}: use a .yaml, .yml or .json file"
            )
        if not isinstance(raw, dict):
            raise ValueError(
                f"{str(path)!r} must hold a mapping of LLMConfig fields, got {type(raw).__name__}"
            )
        return cls.model_validate(raw)

    def to_yaml(self) -> str:
        """Dump as YAML (fails, naming the callback, if one has no import path)."""
        import yaml

        dumped: str = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
        return dumped

    @classmethod
    def from_yaml(cls, text: str) -> LLMConfig:
        """Parse YAML produced by :meth:`to_yaml` (or written by hand)."""
        import yaml

        return cls.model_validate(yaml.safe_load(text))
