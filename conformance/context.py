"""What a check receives: the callback under test, the cluster it runs on, the settings.

:class:`CheckContext` is built by the kit for one check item; :class:`Settings` holds the
run's options (timeouts, the config to certify against, the fresh interpreter's paths).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from reference_runner import TINY_MODEL_PATH, LLMConfig

from .registry import LOCAL
from .subject import Subject

if TYPE_CHECKING:
    from .bench import Bench
    from .bounds import RunBudget
    from .cluster_api import Cluster

#: Upper bound on the import time of a callback's module in a fresh interpreter.
IMPORT_LIMIT_S: Final = 10.0


@dataclass(frozen=True)
class Settings:
    """The run's settings: per-call timeout, the config to certify against, where a fresh
    interpreter gets its ``sys.path`` from."""

    timeout_s: float = 30.0
    config: LLMConfig | None = None
    cache_dir: str | None = None
    import_paths: tuple[str, ...] = ()
    cwd: str = "."
    #: The run's bound (docs/design.md §Bounds on user code); ``None``: unbounded.
    budget: RunBudget | None = field(default=None, compare=False)
    #: How many generated unknown phase names ``phases.unknown-names`` tries (besides the
    #: hand-picked future names), all in one run.
    unknown_phase_names: int = 24

    @property
    def import_limit_s(self) -> float:
        """The import limit of a fresh interpreter: :data:`IMPORT_LIMIT_S`, or the timeout
        if lower."""
        return min(IMPORT_LIMIT_S, self.timeout_s)

    def torch_home(self) -> str | None:
        """Where torch's cache stand-in goes for Ray's download (under the run's folder)."""
        if self.cache_dir is None:
            return None
        import os

        return os.path.join(os.path.dirname(self.cache_dir.rstrip(os.sep)), "torch-home")

    def base_config(self) -> LLMConfig:
        """The config every scenario starts from: the user's, else the tiny bundled model;
        a model cache under the run's temporary folder when none is set."""
        config = self.config or LLMConfig(model_id=TINY_MODEL_PATH)
        if config.model_cache_dir is None and self.cache_dir is not None:
            config = config.model_copy(update={"model_cache_dir": self.cache_dir})
        return config


@dataclass
class CheckContext:
    """What one check item gets: the callback, the cluster it runs on, the settings.

    ``cluster`` is ``None`` for the checks that run on the driver alone; ``bench`` is the
    cached scenario runner for the callback on ``cluster``.
    """

    subject: Subject
    settings: Settings
    cluster: Cluster | None = None
    bench: Bench | None = None

    @property
    def cluster_name(self) -> str:
        """``"local"`` (the driver, no cluster), ``"fake"`` or ``"live"``."""
        return LOCAL if self.cluster is None else self.cluster.name

    def require_bench(self) -> Bench:
        """The bench; ``RuntimeError`` for a check that runs on no cluster."""
        if self.bench is None:
            raise RuntimeError(f"this check needs a cluster, but it runs {self.cluster_name!r}")
        return self.bench

    def require_cluster(self) -> Cluster:
        """The cluster; ``RuntimeError`` for a check that runs on no cluster."""
        if self.cluster is None:
            raise RuntimeError(f"this check needs a cluster, but it runs {self.cluster_name!r}")
        return self.cluster
