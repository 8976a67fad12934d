"""The plugin's command-line options and their ini equivalents (docs/design.md §The kit).

Each ``--raycallbacks-x`` option has an ini key ``raycallbacks_x``; the command line wins.
:func:`get_option` reads the effective value. The options serve both the kit
(:mod:`pytest_raycallbacks.kit.settings` validates them all) and the fixtures
(``gpu_ray_cluster`` reads ``--raycallbacks-gpus`` and ``--raycallbacks-ray-address``), so
this module sits beside :mod:`pytest_raycallbacks.plugin`. Importing it imports neither Ray
nor any part of the kit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import pytest

GROUP: Final = "raycallbacks"
CLUSTER_CHOICES: Final = ("fake", "live", "both")
GPU_CHOICES: Final = ("auto", "simulate", "physical")
DEFAULT_TIMEOUT_S: Final = 30.0


@dataclass(frozen=True)
class _Option:
    name: str  # without the leading --raycallbacks-
    help: str
    ini_type: str | None  # "string", "linelist", "bool" or None (command line only)
    default: Any = None
    action: str = "store"
    choices: tuple[str, ...] | None = None
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return f"--raycallbacks-{self.name}"

    @property
    def dest(self) -> str:
        return "raycallbacks_" + self.name.replace("-", "_")


OPTIONS: Final[tuple[_Option, ...]] = (
    _Option(
        "conformance",
        "certify the callback at this import path ('pkg.mod.cb' or 'pkg.mod:cb'); "
        "repeatable. The conformance suite is collected even with no test paths.",
        "linelist",
        default=None,
        action="append",
        metavar="SPEC",
    ),
    _Option(
        "cluster",
        "which clusters the cluster checks run on: fake (in memory), live (real Ray) or "
        "both (default: both)",
        "string",
        default="both",
        choices=CLUSTER_CHOICES,
    ),
    _Option(
        "gpus",
        "GPUs of the live cluster: auto (physical if present, else simulated; default), "
        "simulate (always logical GPU resources) or physical (fail when there are none)",
        "string",
        default="auto",
        choices=GPU_CHOICES,
    ),
    _Option(
        "ray-address",
        "use the existing Ray cluster at ADDR instead of starting one (RAY_ADDRESS is "
        "never used silently)",
        "string",
        metavar="ADDR",
    ),
    _Option(
        "timeout",
        f"per-callback-call timeout in seconds in the checks (default {DEFAULT_TIMEOUT_S:g})",
        "string",
        default=str(DEFAULT_TIMEOUT_S),
        metavar="SECONDS",
    ),
    _Option(
        "config",
        "a YAML or JSON LLMConfig to certify against (default: a built-in config with the "
        "bundled tiny model)",
        "string",
        metavar="PATH",
    ),
    _Option(
        "serve-config",
        "certify every CallbackBase callback that the Ray Serve config (or LLMConfig file) "
        "at PATH deploys, as its callback_config says, by Ray's own code; repeatable",
        "linelist",
        default=None,
        action="append",
        metavar="PATH",
    ),
    _Option(
        "model-source",
        "serve the model from DIR (a local model folder) in place of the deployment's model "
        "source when certifying a Serve config (default: the bundled tiny model)",
        "string",
        metavar="DIR",
    ),
    _Option("report", "write the certificate (JSON) to PATH", "string", metavar="PATH"),
    _Option(
        "waive",
        "accept a known failure of check CHECK for REASON, recorded in the certificate; repeatable",
        "linelist",
        default=None,
        action="append",
        metavar="CHECK=REASON",
    ),
    _Option(
        "chain",
        "with several --raycallbacks-conformance specs, also certify them as one chain in "
        "the given order: key collisions between them, and whether the outcome depends on "
        "their order",
        "bool",
        default=False,
        action="store_true",
    ),
    _Option(
        "callback-kwargs",
        "give the Ray CallbackBase subclass SPEC its callback_kwargs (Ray's "
        "callback_config.callback_kwargs): a JSON object, or @FILE (.json, .yaml, .yml); "
        "repeatable, one per spec",
        "linelist",
        default=None,
        action="append",
        metavar="SPEC=JSON",
    ),
    _Option(
        "s3",
        "serve the files under DIR as S3 bucket BUCKET from a local S3 server for the run, "
        "and point clients (this process, the live cluster's workers) at it; repeatable",
        "linelist",
        default=None,
        action="append",
        metavar="BUCKET=DIR",
    ),
    _Option(
        "s3-endpoint-reachable",
        "with --raycallbacks-ray-address: confirm that the cluster's nodes can reach the "
        "local S3 server of --raycallbacks-s3 (it listens on 127.0.0.1 of this machine)",
        "bool",
        default=False,
        action="store_true",
    ),
    _Option(
        "list-checks",
        "print the conformance catalogue (id, category, rule) and exit",
        None,
        default=False,
        action="store_true",
    ),
)


def add_options(parser: pytest.Parser) -> None:
    """Register every option in its own ``raycallbacks`` group, with ini equivalents."""
    group = parser.getgroup(GROUP, "raycallbacks: certify Ray LLM initialization callbacks")
    for option in OPTIONS:
        kwargs: dict[str, Any] = {"action": option.action, "dest": option.dest, "help": option.help}
        if option.action not in ("store_true",):
            kwargs["metavar"] = option.metavar or option.name.upper().replace("-", "_")
        if option.choices:
            kwargs["choices"] = option.choices
        kwargs["default"] = None if option.ini_type else option.default
        group.addoption(option.flag, **kwargs)
        if option.ini_type:
            parser.addini(
                option.dest,
                f"{option.help} [ini equivalent of {option.flag}]",
                type=option.ini_type,  # type: ignore[arg-type]
                default=option.default if option.ini_type != "linelist" else [],
            )


def get_option(config: pytest.Config, name: str) -> Any:
    """The effective value of ``--raycallbacks-<name>``: command line, else ini, else default."""
    option = next((o for o in OPTIONS if o.name == name), None)
    if option is None:
        raise KeyError(f"unknown raycallbacks option {name!r}")
    value = config.getoption(option.dest, default=None)
    if value not in (None, [], False) or option.ini_type is None:
        return value if value is not None else option.default
    ini_value = config.getini(option.dest)
    if option.ini_type == "linelist":
        return list(ini_value) or []
    return ini_value if ini_value not in (None, "") else option.default
