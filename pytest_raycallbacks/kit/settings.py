"""The kit's settings, read from the command line and ini (:mod:`pytest_raycallbacks.options`),
validated once.

Every bad value (command line or ini) is a :class:`pytest.UsageError`, so pytest exits with
status 4 and a message naming the option, the value and what is accepted. Cheap values are
validated on every run; ``--raycallbacks-config`` and waiver ids, which need the kit's
modules, only when given.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_raycallbacks.options import CLUSTER_CHOICES, GPU_CHOICES, get_option

from .waivers import Waiver, parse_waivers, validate_ids


@dataclass(frozen=True)
class KitSettings:
    """What the user asked the kit for.

    ``clusters`` is the expansion of ``--raycallbacks-cluster`` (``both`` -> fake, live);
    ``chain`` is ``--raycallbacks-chain`` (only with two specs or more);
    ``callback_kwargs`` maps a spec to its ``--raycallbacks-callback-kwargs`` object;
    ``s3_buckets`` are the ``--raycallbacks-s3`` buckets and their folders (absolute).
    """

    specs: tuple[str, ...]
    clusters: tuple[str, ...]
    gpus: str
    ray_address: str | None
    timeout_s: float
    config_path: str | None
    report_path: str | None
    waivers: tuple[Waiver, ...]
    chain: bool = False
    callback_kwargs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    s3_buckets: tuple[tuple[str, str], ...] = ()
    #: The ``--raycallbacks-serve-config`` files, parsed and validated by Ray
    #: (:mod:`pytest_raycallbacks.serve_config`); their entries' specs are in ``specs``.
    serve_configs: tuple[Any, ...] = ()
    #: ``--raycallbacks-model-source``: the folder served in place of deployed model sources.
    model_source: str | None = None

    def deployment(self, spec: str) -> Any:
        """The :class:`~pytest_raycallbacks.serve_config.DeploymentEntry` ``spec`` came
        from, if it came from a Serve config."""
        for serve_config in self.serve_configs:
            for entry in serve_config.entries:
                if entry.spec == spec:
                    return entry
        return None

    def run_deployment(self, spec: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """``(llm_config to certify against, what was replaced)`` for a spec from a Serve
        config (:func:`pytest_raycallbacks.serve_config.for_the_run`), or from a
        ``--raycallbacks-config`` in Ray's form; else ``None`` (the default deployment)."""
        entry = self.deployment(spec)
        if entry is None:
            ray_form = self.config_files()[1]
            return (ray_form, {}) if ray_form is not None else None
        from pytest_raycallbacks.serve_config import for_the_run
        from reference_runner import TINY_MODEL_PATH

        return for_the_run(
            entry.without_callback(),
            model_source=self.model_source or TINY_MODEL_PATH,
            served_buckets=[bucket for bucket, _ in self.s3_buckets],
        )

    def config_files(self) -> tuple[Any, dict[str, Any] | None]:
        """``--raycallbacks-config`` read (:func:`read_config_file`, once): the reference
        config (``None`` without the option) and, for a file in Ray's form, the
        ``llm_config`` mapping ``CallbackBase`` specs of the command line are certified
        against."""
        return self._config_files

    @functools.cached_property
    def _config_files(self) -> tuple[Any, dict[str, Any] | None]:
        if not self.config_path:
            return None, None
        return read_config_file(self.config_path, self.model_source)

    def kwargs_of(self, spec: str) -> Mapping[str, Any] | None:
        """The ``callback_kwargs`` ``spec`` is built with: its Serve config entry's, else
        ``--raycallbacks-callback-kwargs``'s."""
        entry = self.deployment(spec)
        if entry is not None:
            kwargs: Mapping[str, Any] = entry.callback_kwargs
            return kwargs
        return self.callback_kwargs.get(spec)

    @property
    def active(self) -> bool:
        """Whether the conformance suite is requested."""
        return bool(self.specs)


def read_settings(config: pytest.Config) -> KitSettings:
    """Read and validate every option (see the module docstring)."""
    cli_specs = _specs(get_option(config, "conformance") or [])
    model_source = _model_source(config, get_option(config, "model-source"))
    serve_configs = _serve_configs(config, get_option(config, "serve-config") or [])
    specs = tuple(
        dict.fromkeys([*cli_specs, *(e.spec for sc in serve_configs for e in sc.entries)])
    )
    cluster = _choice("cluster", get_option(config, "cluster"), CLUSTER_CHOICES)
    gpus = _choice("gpus", get_option(config, "gpus"), GPU_CHOICES)
    timeout_s = _timeout(get_option(config, "timeout"))
    config_path = _config_path(config, get_option(config, "config"))
    report_path = _report_path(config, get_option(config, "report"))
    waivers = parse_waivers(get_option(config, "waive") or [])
    if waivers:
        validate_ids(waivers)
    address = get_option(config, "ray-address") or None
    s3_buckets = _s3_buckets(
        config, get_option(config, "s3") or [], address, get_option(config, "s3-endpoint-reachable")
    )
    return KitSettings(
        specs=specs,
        clusters=("fake", "live") if cluster == "both" else (cluster,),
        gpus=gpus,
        ray_address=address.strip() if isinstance(address, str) else None,
        timeout_s=timeout_s,
        config_path=config_path,
        report_path=report_path,
        waivers=waivers,
        chain=_chain(get_option(config, "chain"), specs),
        callback_kwargs=_callback_kwargs(
            config, get_option(config, "callback-kwargs") or [], cli_specs, serve_configs
        ),
        s3_buckets=s3_buckets,
        serve_configs=serve_configs,
        model_source=model_source,
    )


def _specs(values: list[str]) -> tuple[str, ...]:
    specs: list[str] = []
    for value in values:
        spec = value.strip()
        if not spec:
            raise pytest.UsageError(
                "--raycallbacks-conformance: empty spec; give an import path such as "
                "'my_pkg.my_module.my_callback'"
            )
        if spec not in specs:
            specs.append(spec)
    return tuple(specs)


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower()
    if text not in choices:
        raise pytest.UsageError(
            f"--raycallbacks-{name} (or ini raycallbacks_{name}): {value!r} is not one of "
            f"{', '.join(choices)}"
        )
    return text


def _timeout(value: object) -> float:
    try:
        seconds = float(str(value).strip())
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise pytest.UsageError(
            f"--raycallbacks-timeout (or ini raycallbacks_timeout): {value!r} is not a positive "
            "number of seconds"
        )
    return seconds


def _resolve_path(config: pytest.Config, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else config.invocation_params.dir / path


def _config_path(config: pytest.Config, value: object) -> str | None:
    if not value:
        return None
    path = _resolve_path(config, str(value))
    from reference_runner.download import resolve_model_source

    try:
        llm_config, _ = read_config_file(str(path), None)
    except Exception as exc:
        raise pytest.UsageError(
            f"--raycallbacks-config {str(value)!r}: not a valid LLMConfig file: {exc}"
        ) from None
    try:
        resolve_model_source(llm_config.model_id)
    except OSError as exc:
        raise pytest.UsageError(
            f"--raycallbacks-config {str(value)!r}: the kit runs the reference download of the "
            f"config's model, and {exc}"
        ) from None
    return str(path)


def _serve_configs(config: pytest.Config, values: list[str]) -> tuple[Any, ...]:
    """``--raycallbacks-serve-config PATH``: each file parsed and each llm_config validated
    by Ray's own LLMConfig; what Ray refuses is a usage error quoting Ray and the place."""
    values = [str(v).strip() for v in values if str(v).strip()]
    if not values:
        return ()
    from pytest_raycallbacks.serve_config import ServeConfigError, read_serve_config

    parsed = []
    for value in dict.fromkeys(values):
        try:
            parsed.append(read_serve_config(_resolve_path(config, value)))
        except ServeConfigError as exc:
            raise pytest.UsageError(
                f"--raycallbacks-serve-config {value!r} (or ini raycallbacks_serve_config): {exc}"
            ) from None
    return tuple(parsed)


def _model_source(config: pytest.Config, value: object) -> str | None:
    if not value:
        return None
    path = _resolve_path(config, str(value))
    if not path.is_dir():
        raise pytest.UsageError(
            f"--raycallbacks-model-source {str(value)!r}: {str(path)!r} is not a folder; give "
            "a local model folder (config.json, tokenizer files, weights) the kit can serve "
            "offline"
        )
    return str(path)


def read_config_file(path: str, model_source: str | None) -> tuple[Any, dict[str, Any] | None]:
    """``(reference LLMConfig, Ray llm_config mapping or None)`` of a
    ``--raycallbacks-config`` file. A file in Ray's form (``model_loading_config``) is
    validated by Ray's own ``LLMConfig`` with its model source replaced by one the kit serves
    offline (``model_source``, else the bundled tiny model), and gives both: the reference
    config for ``(phase, config, data)`` callbacks, the mapping for ``CallbackBase`` ones
    (its ``callback_config`` dropped: the spec to certify is the command line's). Any other
    file is the reference ``LLMConfig``'s own form. Raises ``ValueError`` naming the cause."""
    from pytest_raycallbacks.serve_config import for_the_run, load_document
    from reference_runner import TINY_MODEL_PATH, LLMConfig

    raw, _ = load_document(Path(path), "the LLMConfig file")
    if not isinstance(raw, dict) or "model_loading_config" not in raw:
        return LLMConfig.from_file(path), None
    from reference_runner.ray_llm import build_ray_llm_config

    offline, _ = for_the_run(raw, model_source=model_source or TINY_MODEL_PATH)
    offline.pop("callback_config", None)
    build_ray_llm_config(offline, where=path)
    return LLMConfig.model_validate(offline), offline


def _report_path(config: pytest.Config, value: object) -> str | None:
    if not value:
        return None
    path = _resolve_path(config, str(value))
    if path.is_dir():
        raise pytest.UsageError(
            f"--raycallbacks-report {str(value)!r} is a folder; give a file path"
        )
    if not path.parent.is_dir():
        raise pytest.UsageError(
            f"--raycallbacks-report {str(value)!r}: folder {str(path.parent)!r} does not exist"
        )
    return str(path)


def _chain(value: object, specs: tuple[str, ...]) -> bool:
    """``--raycallbacks-chain`` needs two specs or more (no spec at all: the kit is off)."""
    chain = value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")
    if chain and len(specs) == 1:
        raise pytest.UsageError(
            "--raycallbacks-chain (or ini raycallbacks_chain) certifies several callbacks as one "
            f"chain: give two or more --raycallbacks-conformance specs (got one: {specs[0]})"
        )
    return chain


def _callback_kwargs(
    config: pytest.Config,
    values: list[str],
    specs: tuple[str, ...],
    serve_configs: tuple[Any, ...] = (),
) -> dict[str, dict[str, Any]]:
    """``--raycallbacks-callback-kwargs SPEC=JSON|@FILE``, read and checked: valid JSON (or
    a readable file), an object, for one of the specs, without Ray's own keywords. Whether
    the spec names a ``CallbackBase`` subclass is checked by the kit once the specs import
    (:func:`check_callback_kwargs_styles`)."""
    from pytest_raycallbacks.callback_kwargs import CallbackKwargsError, parse_all

    try:
        kwargs = parse_all(values, base_dir=config.invocation_params.dir)
    except CallbackKwargsError as exc:
        raise pytest.UsageError(f"{exc} (or ini raycallbacks_callback_kwargs)") from None
    from reference_runner.loading import split_label

    for spec, value in kwargs.items():
        deployed = [
            entry
            for serve_config in serve_configs
            for entry in serve_config.entries
            if split_label(spec)[0] == entry.callback_class
        ]
        if spec not in specs and deployed:
            raise pytest.UsageError(
                f"--raycallbacks-callback-kwargs for {spec}: it is certified from a Serve "
                f"config, whose callback_config gives its callback_kwargs "
                f"({deployed[0].place}); change them there (that is what is deployed), or "
                f"certify the class by spec with --raycallbacks-conformance {spec}"
            )
        if spec not in specs:
            raise pytest.UsageError(
                f"--raycallbacks-callback-kwargs: {spec} is not among the callbacks to certify "
                f"({', '.join(specs) or 'none'}); give the spec exactly as in "
                "--raycallbacks-conformance"
            )
        taken = sorted(set(value) & set(_RAY_CONSTRUCTOR_KEYWORDS))
        if taken:
            raise pytest.UsageError(
                f"--raycallbacks-callback-kwargs for {spec}: {taken} are passed by Ray itself "
                f"({', '.join(_RAY_CONSTRUCTOR_KEYWORDS)}); remove them from callback_kwargs"
            )
    return kwargs


#: Ray's own constructor keywords (``reference_runner.ray_callback_base``, not imported here
#: to keep option validation light).
_RAY_CONSTRUCTOR_KEYWORDS = ("raise_error_on_callback", "llm_config", "ctx_kwargs")


def check_callback_kwargs_styles(settings: KitSettings, styles: Mapping[str, str]) -> None:
    """Refuse (exit 4) ``--raycallbacks-callback-kwargs`` for a spec whose style (as the
    kit's plan found it) is not ``callbackbase``: only Ray's ``CallbackBase`` subclasses
    are built with keyword arguments."""
    for spec in settings.callback_kwargs:
        if styles.get(spec) != "callbackbase":
            raise pytest.UsageError(
                f"--raycallbacks-callback-kwargs for {spec}: it does not name a subclass of "
                "Ray's CallbackBase (ray.llm._internal.common.callbacks.base), so nothing "
                "takes callback_kwargs; a (phase, config, data) callback is called with no "
                "options. Remove the option, or fix the spec"
            )


def _s3_buckets(
    config: pytest.Config, values: list[str], ray_address: object, reachable: object
) -> tuple[tuple[str, str], ...]:
    """``--raycallbacks-s3 BUCKET=DIR``, checked: valid bucket names, existing folders,
    each bucket once, moto installed, and no ``--raycallbacks-ray-address`` cluster unless
    ``--raycallbacks-s3-endpoint-reachable`` says its nodes reach this machine."""
    values = [v for v in values if str(v).strip()]
    if not values:
        return ()
    from pytest_raycallbacks.object_store import ObjectStoreError, parse_bucket_spec
    from pytest_raycallbacks.object_store.buckets import resolve_buckets

    buckets: dict[str, str] = {}
    try:
        for value in values:
            name, folder = parse_bucket_spec(str(value))
            if name in buckets:
                raise ObjectStoreError(f"bucket {name!r} is given twice; give each bucket once")
            buckets[name] = str(_resolve_path(config, str(folder)))
        resolve_buckets(buckets)  # folders exist, keys are valid
    except ObjectStoreError as exc:
        raise pytest.UsageError(f"--raycallbacks-s3 (or ini raycallbacks_s3): {exc}") from None
    if importlib.util.find_spec("moto") is None:
        raise pytest.UsageError(
            "--raycallbacks-s3 needs moto's server and boto3: pip install 'pytest-raycallbacks[s3]'"
        )
    if ray_address and not _truthy(reachable):
        raise pytest.UsageError(
            f"--raycallbacks-s3 with --raycallbacks-ray-address {ray_address}: the local S3 "
            "server listens on 127.0.0.1 of this machine, which that cluster's nodes may not "
            "reach, and the kit never changes a cluster it did not start. If the nodes run "
            "on this machine, add --raycallbacks-s3-endpoint-reachable; otherwise certify "
            "against the kit's own live cluster (drop --raycallbacks-ray-address)"
        )
    return tuple(buckets.items())


def _truthy(value: object) -> bool:
    """An ini or command-line bool."""
    return value if isinstance(value, bool) else str(value).strip().lower() in ("1", "true", "yes")
