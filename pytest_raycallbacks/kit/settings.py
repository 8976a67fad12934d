"""The kit's settings, read from the command line and ini (:mod:`pytest_raycallbacks.options`),
validated once.

Every bad value (command line or ini) is a :class:`pytest.UsageError`, so pytest exits with
status 4 and a message naming the option, the value and what is accepted. Cheap values are
validated on every run; ``--raycallbacks-config`` and waiver ids, which need the kit's
modules, only when given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pytest

from pytest_raycallbacks.options import CLUSTER_CHOICES, GPU_CHOICES, get_option

from .waivers import Waiver, parse_waivers, validate_ids


@dataclass(frozen=True)
class KitSettings:
    """What the user asked the kit for.

    ``clusters`` is the expansion of ``--raycallbacks-cluster`` (``both`` -> fake, live);
    ``chain`` is ``--raycallbacks-chain`` (only with two specs or more).
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

    @property
    def active(self) -> bool:
        """Whether the conformance suite is requested."""
        return bool(self.specs)


def read_settings(config: pytest.Config) -> KitSettings:
    """Read and validate every option (see the module docstring)."""
    specs = _specs(get_option(config, "conformance") or [])
    cluster = _choice("cluster", get_option(config, "cluster"), CLUSTER_CHOICES)
    gpus = _choice("gpus", get_option(config, "gpus"), GPU_CHOICES)
    timeout_s = _timeout(get_option(config, "timeout"))
    config_path = _config_path(config, get_option(config, "config"))
    report_path = _report_path(config, get_option(config, "report"))
    waivers = parse_waivers(get_option(config, "waive") or [])
    if waivers:
        validate_ids(waivers)
    address = get_option(config, "ray-address") or None
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
    from reference_runner import LLMConfig
    from reference_runner.download import resolve_model_source

    try:
        llm_config = LLMConfig.from_file(path)
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
