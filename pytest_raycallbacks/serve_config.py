"""What users deploy, as the kit reads it: a Ray Serve config file, or one LLMConfig file.

``--raycallbacks-serve-config PATH`` (and ``raycallbacks verify --serve-config PATH``) take

* a **Ray Serve config** (``serve deploy PATH``): every application whose ``args`` hold
  ``llm_configs`` (what ``ray.serve.llm:build_openai_app`` takes: Ray's ``LLMServingArgs``),
  each entry a mapping or the path of an LLMConfig YAML/JSON file, as ``serve run`` accepts
  them (a relative path is looked up from the Serve config's folder, then from the current
  one); or
* **one LLMConfig** YAML/JSON file, as Ray's ``LLMConfig.from_file`` reads it.

:func:`read_serve_config` parses the file and validates every ``llm_config`` with Ray's own
``LLMConfig`` (:func:`reference_runner.ray_llm.build_ray_llm_config`, on a copy whose model
source is the kit's, so that nothing is downloaded); where vLLM is installed, each
application's ``args`` also go through Ray's ``LLMServingArgs``. Every ``llm_config`` with a
``callback_config`` becomes a :class:`DeploymentEntry`: its ``spec`` is
``<callback_class>@<application>/<model_id>`` (:func:`reference_runner.loading.split_label`),
so items and the certificate name the application and the model. A file that does not parse,
an entry Ray refuses, or a ``callback_config`` without a class is a :class:`ServeConfigError`
quoting Ray's message and the place in the file (``serve.yaml:14: applications[0] 'llm-app'
.args.llm_configs[1]``).

:func:`for_the_run` gives the ``llm_config`` a run certifies against: the deployment's own,
its model source replaced by one the kit can serve offline (the bundled tiny model, or
``--raycallbacks-model-source DIR``; an ``s3://`` source whose bucket the run serves with
``--raycallbacks-s3`` is kept), with what was replaced, for the certificate.

Imports PyYAML and the standard library; Ray only to validate.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

#: The fields of Ray's ``CallbackConfig``.
CALLBACK_CONFIG_FIELDS: Final = ("callback_class", "callback_kwargs", "raise_error_on_callback")
#: What a deployment's model source is replaced by when the kit cannot serve it.
REPLACED_KEY: Final = "model_source"
_REMOTE_PREFIXES: Final = ("s3://", "gs://", "abfss://", "azure://", "pyarrow-")


class ServeConfigError(ValueError):
    """A Serve config or LLMConfig file the kit cannot certify from: the message names the
    file, the place in it, and Ray's own words where Ray refused it."""


@dataclass(frozen=True)
class DeploymentEntry:
    """One ``llm_config`` of a deployment that names a ``CallbackBase`` class.

    ``llm_config`` is the mapping as deployed (read from its own file when the Serve config
    gives a path), ``place`` where it is (``file:line: path in the file``), ``application``
    the Serve application's name (``None`` for a lone LLMConfig file).
    """

    file: str
    place: str
    application: str | None
    index: int
    model_id: str
    llm_config: Mapping[str, Any]
    callback_class: str
    callback_kwargs: Mapping[str, Any] = field(default_factory=dict)
    raise_error_on_callback: bool = True
    llm_config_file: str | None = None

    @property
    def label(self) -> str:
        """``<application>/<model_id>`` (``<model_id>`` for a lone LLMConfig file)."""
        return f"{self.application}/{self.model_id}" if self.application else self.model_id

    @property
    def spec(self) -> str:
        """``<callback_class>@<label>``: the spec the kit certifies this entry as."""
        return f"{self.callback_class}@{self.label}"

    def without_callback(self) -> dict[str, Any]:
        """The ``llm_config`` without its ``callback_config`` (a deep copy)."""
        config = copy.deepcopy(dict(self.llm_config))
        config.pop("callback_config", None)
        return config

    def record(self) -> dict[str, Any]:
        """What the certificate and ``verify`` compare (JSON-able)."""
        from pytest_raycallbacks.callback_kwargs import kwargs_sha256, masked

        return {
            "spec": self.spec,
            "application": self.application,
            "model_id": self.model_id,
            "place": self.place,
            "callback_class": self.callback_class,
            "callback_kwargs": masked(dict(self.callback_kwargs)),
            "callback_kwargs_sha256": kwargs_sha256(self.callback_kwargs),
            "raise_error_on_callback": self.raise_error_on_callback,
            "llm_config_file": self.llm_config_file,
            "llm_config_sha256": self.config_sha256(),
        }

    def config_sha256(self) -> str:
        """SHA-256 of the deployed ``llm_config`` (callback_kwargs masked, canonical JSON):
        what ``verify`` compares to tell a changed deployment from the certified one."""
        from pytest_raycallbacks.callback_kwargs import masked

        config = copy.deepcopy(dict(self.llm_config))
        callback = dict(config.get("callback_config") or {})
        callback["callback_kwargs"] = masked(dict(callback.get("callback_kwargs") or {}))
        config["callback_config"] = callback
        text = json.dumps(config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class ServeConfig:
    """A parsed deployment file: its path, SHA-256, kind, and the entries to certify."""

    path: str
    sha256: str
    kind: str  # "serve config" or "llm config"
    entries: tuple[DeploymentEntry, ...]
    #: ``llm_config`` places that name no callback (nothing to certify there).
    without_callback: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "kind": self.kind,
            "entries": [e.record() for e in self.entries],
            "without_callback": list(self.without_callback),
        }


# ---------------------------------------------------------------------- reading


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_document(path: Path, what: str) -> tuple[Any, dict[tuple[Any, ...], int]]:
    """A YAML or JSON file's data and ``{path in the data: line}`` (1-based); raise
    :class:`ServeConfigError` naming the file (and line) when it cannot be read."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ServeConfigError(f"{what} {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ServeConfigError(f"{what} {str(path)!r} cannot be read: {exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text), {}
        except json.JSONDecodeError as exc:
            raise ServeConfigError(
                f"{path}:{exc.lineno}: not valid JSON: {exc.msg} (column {exc.colno})"
            ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ServeConfigError(f"{path}{line}: not valid YAML: {problem}") from None
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _index_lines(node, (), lines)
    return data, lines


def _index_lines(node: Any, at: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> None:
    import yaml

    lines[at] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                _index_lines(value, (*at, key.value), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*at, index), lines)


def _place(path: Path, lines: Mapping[tuple[Any, ...], int], at: tuple[Any, ...], text: str) -> str:
    line = None
    probe = at
    while line is None and probe:
        line = lines.get(probe)
        probe = probe[:-1]
    return f"{path}:{line}: {text}" if line else f"{path}: {text}"


def read_serve_config(
    path: str | os.PathLike[str], *, base_dir: str | None = None, validate: bool = True
) -> ServeConfig:
    """Parse and validate ``path`` (see the module docstring); raise
    :class:`ServeConfigError`. ``base_dir`` resolves a relative ``path``; ``validate=False``
    skips Ray's validation (``verify`` reads the file without importing Ray)."""
    file = Path(path).expanduser()
    if not file.is_absolute() and base_dir is not None:
        file = Path(base_dir) / file
    data, lines = load_document(file, "the Serve config")
    if not isinstance(data, Mapping):
        raise ServeConfigError(
            f"{file}: expected a Ray Serve config (a mapping with 'applications') or an "
            f"LLMConfig (a mapping with 'model_loading_config'); it holds {type(data).__name__}"
        )
    if "applications" in data:
        entries, bare = _serve_entries(file, data, lines, validate)
        kind = "serve config"
    elif "model_loading_config" in data:
        entries, bare = _llm_config_entries(file, data, lines, validate)
        kind = "llm config"
    else:
        raise ServeConfigError(
            f"{file}: neither a Ray Serve config (no 'applications' list) nor an LLMConfig "
            f"(no 'model_loading_config'); its top-level keys are {sorted(map(str, data))}"
        )
    if not entries:
        raise ServeConfigError(
            f"{file}: no llm_config in it has a callback_config, so there is no callback to "
            "certify"
            + (f" (llm_configs at {', '.join(bare)})" if bare else "")
            + "; name the class in callback_config.callback_class, or certify a callback "
            "with --raycallbacks-conformance SPEC"
        )
    return ServeConfig(str(file), _sha256(file), kind, tuple(entries), tuple(bare))


def _serve_entries(
    file: Path, data: Mapping[str, Any], lines: Mapping[tuple[Any, ...], int], validate: bool
) -> tuple[list[DeploymentEntry], list[str]]:
    apps = data.get("applications")
    if not isinstance(apps, list):
        raise ServeConfigError(
            _place(file, lines, ("applications",), "applications: expected a list of applications")
        )
    entries: list[DeploymentEntry] = []
    bare: list[str] = []
    llm_apps = 0
    for a, app in enumerate(apps):
        if not isinstance(app, Mapping):
            raise ServeConfigError(
                _place(file, lines, ("applications", a), f"applications[{a}]: expected a mapping")
            )
        name = str(app.get("name") or f"app{a}")
        args = app.get("args")
        if not isinstance(args, Mapping) or "llm_configs" not in args:
            continue  # not an LLM application: nothing of Ray Serve LLM to certify
        llm_apps += 1
        where = f"applications[{a}] {name!r}.args.llm_configs"
        configs = args["llm_configs"]
        if not isinstance(configs, list):
            raise ServeConfigError(
                _place(
                    file,
                    lines,
                    ("applications", a, "args", "llm_configs"),
                    f"{where}: expected "
                    "a list of LLMConfigs (mappings, or paths of LLMConfig YAML files)",
                )
            )
        if validate:
            _ray_serving_args(file, lines, a, name, args)
        for i, item in enumerate(configs):
            at = ("applications", a, "args", "llm_configs", i)
            here = f"{where}[{i}]"
            config, config_file = _item(file, lines, at, here, item)
            entry = _entry(file, lines, at, here, config, name, i, config_file, validate)
            if entry is None:
                bare.append(_place(file, lines, at, here))
            else:
                entries.append(entry)
    if not llm_apps:
        raise ServeConfigError(
            f"{file}: no application has args.llm_configs (a Ray Serve LLM application built "
            "by ray.serve.llm:build_openai_app), so there is no LLM callback to certify"
        )
    return entries, bare


def _ray_serving_args(
    file: Path, lines: Mapping[tuple[Any, ...], int], a: int, name: str, args: Mapping[str, Any]
) -> None:
    """Ray's own ``LLMServingArgs`` on the application's args, where it can be imported
    (it needs vLLM); each entry is validated by Ray's ``LLMConfig`` either way."""
    import warnings

    try:
        with warnings.catch_warnings():  # Ray Serve's pydantic v1 idioms: Ray's to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            from ray.llm._internal.serve.core.ingress.builder import LLMServingArgs
    except ImportError:
        return
    resolved = dict(args)
    resolved["llm_configs"] = [
        str(_resolve_item(file, item)) if isinstance(item, str) else item
        for item in args.get("llm_configs") or []
    ]
    try:
        LLMServingArgs.model_validate(resolved)
    except Exception as exc:
        from reference_runner.ray_llm import ray_message

        raise ServeConfigError(
            _place(
                file,
                lines,
                ("applications", a, "args"),
                f"applications[{a}] {name!r}.args: Ray's LLMServingArgs refused it: "
                f"{ray_message(exc)}",
            )
        ) from None


def _resolve_item(file: Path, item: str) -> Path:
    candidate = Path(item).expanduser()
    if candidate.is_absolute():
        return candidate
    beside = file.parent / candidate
    return beside if beside.exists() else Path.cwd() / candidate


def _item(
    file: Path, lines: Mapping[tuple[Any, ...], int], at: tuple[Any, ...], here: str, item: Any
) -> tuple[Mapping[str, Any], str | None]:
    """The ``llm_config`` mapping of one entry (read from its file for a path)."""
    if isinstance(item, Mapping):
        return item, None
    if isinstance(item, str):
        config_file = _resolve_item(file, item)
        if not config_file.exists():
            raise ServeConfigError(
                _place(
                    file,
                    lines,
                    at,
                    f"{here}: Could not load model config from {item}, as the file does not "
                    f"exist (looked for {config_file}; Ray's LLMServingArgs' words)",
                )
            )
        data, _ = load_document(config_file, f"the LLMConfig file of {here}")
        if not isinstance(data, Mapping):
            raise ServeConfigError(
                f"{config_file}: expected an LLMConfig mapping (it is {here}); it holds "
                f"{type(data).__name__}"
            )
        return data, str(config_file)
    raise ServeConfigError(
        _place(
            file,
            lines,
            at,
            f"{here}: expected an LLMConfig mapping or the path of an LLMConfig YAML file; "
            f"it is {type(item).__name__} {item!r:.60}",
        )
    )


def _llm_config_entries(
    file: Path, data: Mapping[str, Any], lines: Mapping[tuple[Any, ...], int], validate: bool
) -> tuple[list[DeploymentEntry], list[str]]:
    entry = _entry(file, lines, (), "the LLMConfig", data, None, 0, None, validate)
    return ([entry], []) if entry is not None else ([], [f"{file}: the LLMConfig"])


def _entry(
    file: Path,
    lines: Mapping[tuple[Any, ...], int],
    at: tuple[Any, ...],
    here: str,
    config: Mapping[str, Any],
    application: str | None,
    index: int,
    config_file: str | None,
    validate: bool,
) -> DeploymentEntry | None:
    """Validate one ``llm_config`` with Ray's ``LLMConfig``; its entry, or ``None`` when it
    names no callback."""

    place = _place(file, lines, at, here) if config_file is None else f"{config_file} ({here})"
    if validate:
        from reference_runner.ray_llm import RayConfigError, build_ray_llm_config

        probe = offline_copy(config, model_source=_validation_source())
        probe.pop("callback_config", None)  # the class is imported by the checks, bounded
        try:
            build_ray_llm_config(probe, where=place)
        except RayConfigError as exc:
            raise ServeConfigError(str(exc)) from None
    model_id = _model_id(config)
    callback = config.get("callback_config")
    if callback is None:
        return None
    if not isinstance(callback, Mapping):
        raise ServeConfigError(
            f"{place}: callback_config: expected a mapping, got {callback!r:.60}"
        )
    unknown = sorted(
        set(callback) - {"callback_class", "callback_kwargs", "raise_error_on_callback"}
    )
    if unknown:
        raise ServeConfigError(
            f"{place}: callback_config: Ray's CallbackConfig has no field(s) {unknown} "
            "(it has callback_class, callback_kwargs, raise_error_on_callback)"
        )
    cls = callback.get("callback_class")
    if not isinstance(cls, str) or not cls.strip():
        raise ServeConfigError(
            f"{place}: callback_config.callback_class: expected the import path of a "
            f"CallbackBase subclass ('package.module:Class'); it is {cls!r:.60} (Ray's default "
            "CallbackBase does nothing: there is no callback to certify)"
        )
    kwargs = callback.get("callback_kwargs") or {}
    if not isinstance(kwargs, Mapping) or not all(isinstance(k, str) for k in kwargs):
        raise ServeConfigError(
            f"{place}: callback_config.callback_kwargs: expected a mapping with str keys; it "
            f"is {kwargs!r:.60}"
        )
    raise_error = callback.get("raise_error_on_callback", True)
    if not isinstance(raise_error, bool):
        raise ServeConfigError(
            f"{place}: callback_config.raise_error_on_callback: expected true or false; it "
            f"is {raise_error!r}"
        )
    return DeploymentEntry(
        file=str(file),
        place=place,
        application=application,
        index=index,
        model_id=model_id,
        llm_config=copy.deepcopy(dict(config)),
        callback_class=cls.strip(),
        callback_kwargs=dict(kwargs),
        raise_error_on_callback=raise_error,
        llm_config_file=config_file,
    )


def _model_id(config: Mapping[str, Any]) -> str:
    loading = config.get("model_loading_config")
    if isinstance(loading, Mapping) and loading.get("model_id"):
        return str(loading["model_id"])
    return "model"


def _validation_source() -> str:
    from reference_runner import TINY_MODEL_PATH

    return TINY_MODEL_PATH


# ---------------------------------------------------------------------- for the run


def is_remote(source: Any) -> bool:
    return isinstance(source, str) and source.startswith(_REMOTE_PREFIXES)


def _bucket(uri: str) -> str:
    return uri.split("://", 1)[1].split("/", 1)[0]


def offline_copy(
    config: Mapping[str, Any],
    *,
    model_source: str,
    served_buckets: Sequence[str] = (),
) -> dict[str, Any]:
    """A deep copy of ``config`` whose model source the kit can serve offline (see
    :func:`for_the_run`)."""
    return for_the_run(config, model_source=model_source, served_buckets=served_buckets)[0]


def for_the_run(
    config: Mapping[str, Any],
    *,
    model_source: str,
    served_buckets: Sequence[str] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(llm_config for the run, what was replaced)``: the model source becomes
    ``model_source`` unless it is a local folder that exists here, or a remote URI whose
    bucket is in ``served_buckets`` (the run's ``--raycallbacks-s3`` buckets); a
    ``CloudMirrorConfig`` mapping (``bucket_uri``) is judged by its bucket the same way."""
    run = copy.deepcopy(dict(config))
    loading = dict(run.get("model_loading_config") or {})
    source = loading.get("model_source")
    keep = False
    if isinstance(source, str):
        keep = (is_remote(source) and _bucket(source) in served_buckets) or (
            not is_remote(source) and Path(source).expanduser().is_dir()
        )
    elif isinstance(source, Mapping):
        uri = source.get("bucket_uri")
        keep = is_remote(uri) and _bucket(str(uri)) in served_buckets
    replaced: dict[str, Any] = {}
    if not keep:
        loading["model_source"] = model_source
        replaced[REPLACED_KEY] = {"deployed": source, "certified_with": model_source}
    run["model_loading_config"] = loading
    return run, replaced
