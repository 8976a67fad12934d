"""The conformance kit inside a pytest run: its state and its hooks.

:class:`Kit` is registered as a plugin by :mod:`pytest_raycallbacks.plugin` only when
``--raycallbacks-conformance`` (or its ini key) names callbacks. It

* makes the specs importable from where the user runs pytest (invocation folder and rootdir
  on ``sys.path``), after a bounded probe in a fresh interpreter admitted each (:mod:`.admission`:
  a spec whose import hangs or ends the interpreter is never imported here);
* states the run's worst case and holds the run to it (:mod:`.run_bound`; docs/design.md
  §Bounds on user code);
* adds the conformance items (:mod:`.collection`) to whatever else pytest collected (also
  when nothing else was collected), before ``-k``/``-m`` deselection;
* keeps one :class:`~conformance.Subject` per spec (with its ``callback_kwargs``), one
  cluster per name (:mod:`.clusters`) and one cached :class:`~conformance.Bench` per spec
  and cluster, so checks share scenario runs (and the callbacks of one cluster share the
  runs without a callback);
* with ``--raycallbacks-s3``, runs the local S3 (:mod:`.object_store`): started before the
  first check or cluster, its environment in this process and in the runtime env of the
  live cluster's ``initialize_node`` actors, stopped (``os.environ`` restored) at
  ``pytest_unconfigure``;
* attaches each item's record to its reports, folds the reports into
  :class:`~pytest_raycallbacks.report.results.Results` (on the xdist controller too), writes
  the certificate at the end of the session and prints the summary;
* registers the callback-coverage measurer (:mod:`pytest_raycallbacks.coverage`) and, with
  ``--raycallbacks-chain``, the chain plugin (:mod:`pytest_raycallbacks.chain`), handing
  them what they need (the callbacks; the kit itself as the chain's services); both end up
  in the summary and the certificate;
* while it runs, turns SIGTERM into a Ctrl-C and ends the process at a second interrupt
  (:mod:`pytest_raycallbacks.interrupts`); an interrupted run writes its certificate at
  once (what did not run is ``not run``, the verdict ``incomplete``), and again at the end.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Final

import pytest

from pytest_raycallbacks import interrupts
from pytest_raycallbacks.chain.plugin import PLUGIN_NAME as CHAIN_PLUGIN
from pytest_raycallbacks.chain.plugin import ChainPlugin
from pytest_raycallbacks.coverage.measurer import PLUGIN_NAME as COVERAGE_PLUGIN
from pytest_raycallbacks.coverage.measurer import CoverageMeasurer
from pytest_raycallbacks.interrupts import InterruptPlugin
from pytest_raycallbacks.report.results import Results, verdict

from .object_store import RunObjectStore
from .plan import PLAN_KEY, RECORD_KEY, plan_items
from .prewarm import admit_while_importing_ray
from .run_bound import FINISH_S, RunClock, bound_line, run_bound
from .settings import KitSettings, check_callback_kwargs_styles

if TYPE_CHECKING:
    from conformance import Bench, Cluster, Settings, Subject
    from conformance.harness import Run

    from .clusters import FakeCheckCluster

KIT_KEY: Final = pytest.StashKey["Kit"]()
PLUGIN_NAME: Final = "raycallbacks-kit"
INTERRUPT_PLUGIN: Final = "raycallbacks-interrupts"


class Kit:
    """One conformance run (see the module docstring)."""

    def __init__(self, config: pytest.Config, settings: KitSettings) -> None:
        from conformance.bounds import RunBudget

        started = time.monotonic()
        self.config = config
        self.settings = settings
        self.is_xdist_worker = hasattr(config, "workerinput")
        self.import_paths = self._import_paths()
        self._lock = threading.Lock()
        self._subjects: dict[str, Subject] = {}
        self._clusters: dict[str, Cluster] = {}
        self._fake: FakeCheckCluster | None = None
        self._benches: dict[tuple[str, str], Bench] = {}
        self._baselines: dict[str, dict[str, Run]] = {}  # per cluster, shared by its benches
        self._check_settings: Settings | None = None
        self.certificate_path: str | None = None
        self.certificate_error: str | None = None
        self.exit_reason: str | None = None
        for path in reversed(self.import_paths):
            if path not in sys.path:
                sys.path.insert(0, path)
        # Planning needs each spec's style: a bounded probe in a fresh interpreter says it,
        # and refuses a spec whose import hangs or ends the interpreter (.admission). Ray is
        # imported here while that interpreter starts and probes (.prewarm).
        self.admissions = admit_while_importing_ray(
            settings.specs,
            cwd=str(config.invocation_params.dir),
            import_paths=self.import_paths,
            import_limit_s=self.import_limit_s,
        )
        styles = {spec: admission.style for spec, admission in self.admissions.items()}
        self.plans = plan_items(settings.specs, settings.clusters, styles)
        if settings.callback_kwargs:
            check_callback_kwargs_styles(
                settings, {spec: styles.get(spec, "callback") for spec in settings.callback_kwargs}
            )
        self.bound = run_bound(settings, self.plans, import_limit_s=self.import_limit_s)
        self.budget = RunBudget(self.bound.bound_s, started=started, reserve_s=FINISH_S)
        self.object_store = (
            RunObjectStore(dict(settings.s3_buckets)) if settings.s3_buckets else None
        )
        self.results = Results(self.plans)
        manager = config.pluginmanager
        if not manager.is_blocked(COVERAGE_PLUGIN) and not manager.has_plugin(COVERAGE_PLUGIN):
            manager.register(CoverageMeasurer(self.subject), COVERAGE_PLUGIN)
        self.chain: ChainPlugin | None = None
        if settings.chain:
            self.chain = ChainPlugin(settings.specs, self)
            manager.register(self.chain, CHAIN_PLUGIN)
        if not manager.has_plugin(INTERRUPT_PLUGIN):  # SIGTERM as Ctrl-C while the kit runs
            manager.register(InterruptPlugin(), INTERRUPT_PLUGIN)
        manager.register(RunClock(self.budget), f"{PLUGIN_NAME}-clock")

    @property
    def import_limit_s(self) -> float:
        """The import limit (:attr:`conformance.Settings.import_limit_s`)."""
        from conformance.context import IMPORT_LIMIT_S

        return min(IMPORT_LIMIT_S, self.settings.timeout_s)

    def _import_paths(self) -> tuple[str, ...]:
        """Folders a spec may import from: where pytest was invoked, the rootdir, and the
        ``pythonpath`` ini setting."""
        params_dir = str(self.config.invocation_params.dir)
        paths = [params_dir, str(self.config.rootpath)]
        paths += [str(p) for p in self.config.getini("pythonpath") or []]
        return tuple(dict.fromkeys(paths))

    # ------------------------------------------------------------------ state

    def subject(self, spec: str) -> Subject:
        """The callback under test for ``spec`` (one per spec for the whole run)."""
        from conformance import Subject

        with self._lock:
            if spec not in self._subjects:
                entry = self.settings.deployment(spec)
                run = self.settings.run_deployment(spec)
                self._subjects[spec] = Subject(
                    spec,
                    import_paths=self.import_paths,
                    cwd=str(self.config.invocation_params.dir),
                    callback_kwargs=self.settings.kwargs_of(spec),
                    timeout_s=self.settings.timeout_s,
                    import_limit_s=self.import_limit_s,
                    deployment=run[0] if run is not None else None,
                    raise_error_on_callback=entry.raise_error_on_callback if entry else True,
                    label=entry.place if entry is not None else None,
                )
                admission = self.admissions.get(spec)
                if admission is not None and admission.halt is not None:
                    self._subjects[spec].halt(admission.halt)  # never imported here
            return self._subjects[spec]

    def cluster(self, name: str, request: pytest.FixtureRequest) -> Cluster | None:
        """``None`` for ``local`` (the check runs in the test process), else the cluster
        called ``name`` as the checks see it (starting the live one on first use)."""
        if name == "local":
            return None
        with self._lock:
            if name in self._clusters:
                return self._clusters[name]
        from .clusters import FakeCheckCluster, LiveCheckCluster

        env_vars = self.object_store_env_vars()
        cluster: Cluster
        if name == "fake":
            cluster = self._fake = FakeCheckCluster(keep_routed=True)
        elif name == "live":
            cluster = LiveCheckCluster(
                request.getfixturevalue("gpu_ray_cluster"), worker_env_vars=env_vars
            )
        else:
            raise ValueError(f"unknown cluster {name!r}: expected 'local', 'fake' or 'live'")
        with self._lock:
            return self._clusters.setdefault(name, cluster)

    def bench(self, subject: Subject, cluster: Cluster, settings: Settings) -> Bench:
        """The cached scenario runs of ``subject`` on ``cluster`` (the runs without a
        callback shared by all callbacks on that cluster)."""
        from conformance import Bench

        with self._lock:
            key = (subject.spec, cluster.name)
            if key not in self._benches:
                baselines = self._baselines.setdefault(cluster.name, {})
                self._benches[key] = Bench(subject, cluster, settings, baselines=baselines)
            return self._benches[key]

    def object_store_env_vars(self) -> dict[str, str]:
        """The local S3's variables (``{}`` without ``--raycallbacks-s3``), starting it on
        first use: from then on they are in ``os.environ`` too (:mod:`.object_store`)."""
        return self.object_store.worker_env_vars() if self.object_store is not None else {}

    def check_settings(self, tmp_path_factory: pytest.TempPathFactory) -> Settings:
        """The catalogue's settings: timeout, base config, model cache, import paths."""
        self.object_store_env_vars()
        if self._check_settings is None:
            from conformance import Settings

            config, _ = self.settings.config_files()
            cache = tmp_path_factory.mktemp("raycallbacks-models")
            self._check_settings = Settings(
                timeout_s=self.settings.timeout_s,
                config=config,
                cache_dir=str(cache),
                import_paths=self.import_paths,
                cwd=str(self.config.invocation_params.dir),
                budget=self.budget,
            )
        return self._check_settings

    def callback_coverage(self, spec: str) -> dict[str, Any] | None:
        """What the checks left unexercised in ``spec``'s code (``None``: not measured)."""
        from pytest_raycallbacks.coverage.report import callback_coverage

        return callback_coverage(e.record for e in self.results.for_spec(spec))

    # ------------------------------------------------------------------ hooks

    def pytest_report_header(self, config: pytest.Config) -> str:
        line = (
            f"raycallbacks: certifying {len(self.settings.specs)} callback(s) "
            f"({', '.join(self.settings.specs)}) on {', '.join(self.settings.clusters)}"
        )
        if "live" in self.settings.clusters:
            from pytest_raycallbacks.live.warm_session import header_note

            note = header_note(config)  # the warm cluster, when this run uses it
            line += f" ({note})" if note else ""
        return line

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from .collection import collect_suite

        items.extend(collect_suite(session, self.plans))
        if self.chain is not None:
            items.extend(self.chain.collect(session))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if PLAN_KEY in item.stash:
            if interrupts.interrupted():
                # The interrupt hit this check (code under test may have caught it and
                # failed): it did not run to its end, and stays "not run".
                raise KeyboardInterrupt
            report.raycallbacks = dict(item.stash[RECORD_KEY].items())
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.add(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_xdist_worker:
            return
        uncertified = [
            spec
            for spec in self.settings.specs
            if verdict(self.results.for_spec(spec)) != "certified"
        ]
        if self.chain is not None and self.chain.verdict == "incomplete":
            uncertified.append(f"the chain {' -> '.join(self.settings.specs)}")
        inconclusive = [
            spec
            for spec in self.settings.specs
            if verdict(self.results.for_spec(spec)) == "inconclusive"
        ]
        if uncertified and session.exitstatus == pytest.ExitCode.OK and inconclusive:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.exit_reason = (
                f"exit status 1: not certified (inconclusive): {', '.join(inconclusive)}; a "
                "check could not judge the callback here because this environment lacks what "
                "it needs (see the summary): certify in the deployment's image"
            )
            exitstatus = session.exitstatus
        elif uncertified and session.exitstatus == pytest.ExitCode.OK:
            # docs/design.md §The kit: exit 0 only when every requested callback is
            # certified. A run cut short by -k, -x or a skip ran no failing check but
            # certified nothing.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.exit_reason = (
                f"exit status 1: not certified (incomplete): {', '.join(uncertified)}; some "
                "checks were skipped or did not run (-k, -m, -x or --deselect): run the full "
                "suite to certify"
            )
            if self.budget.reached:
                self.exit_reason = (
                    f"exit status 1: not certified (incomplete): {', '.join(uncertified)}; "
                    f"{self.budget.reason.removeprefix('not run: ')} before every check ran "
                    "(a callback near its timeout in every call?)"
                )
            exitstatus = session.exitstatus
        if self.settings.report_path:
            self._write_certificate(self.settings.report_path, exitstatus)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        # Ctrl-C or SIGTERM: write what finished before the session's teardown (the live
        # cluster's) begins; sessionfinish writes it again once that is done.
        if not self.is_xdist_worker and self.settings.report_path:
            self._write_certificate(self.settings.report_path, pytest.ExitCode.INTERRUPTED)

    def _write_certificate(self, path: str, exitstatus: int) -> None:
        from pytest_raycallbacks.report.certificate import build, write_atomically

        try:
            document = build(
                self.settings,
                self.results,
                exitstatus,
                coverage={spec: self.callback_coverage(spec) for spec in self.settings.specs},
                chain=self.chain.certificate_entry() if self.chain is not None else None,
                bound=self.bound.as_dict(),
            )
            write_atomically(path, document)
        except OSError as exc:
            self.certificate_error = f"could not write {path}: {exc}"
        else:
            self.certificate_path = path

    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None) -> None:
        if nextitem is None or PLAN_KEY not in nextitem.stash:
            self._release_fake()

    def _release_fake(self) -> None:
        """Ray's functions back as they were: the fake cluster keeps them routed between
        the kit's scenarios, not into a test of the user's (nor past the run)."""
        if self._fake is not None:
            self._fake.release()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._release_fake()
        if self.object_store is not None:
            self.object_store.close()  # stops the local S3, restores os.environ

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        if self.is_xdist_worker:
            return
        from pytest_raycallbacks.coverage.report import summary_lines
        from pytest_raycallbacks.report.summary import render

        terminalreporter.section("raycallbacks conformance")
        lines = render(
            self.results,
            self.settings.specs,
            lambda spec: summary_lines(self.callback_coverage(spec)),
        )
        if self.chain is not None:
            lines += self.chain.summary_lines()
        for line, markup in lines:
            terminalreporter.write_line(line, **markup)
        terminalreporter.write_line(bound_line(self.bound, self.budget))
        if self.certificate_path:
            terminalreporter.write_line(f"certificate: {self.certificate_path}")
        if self.certificate_error:
            terminalreporter.write_line(f"certificate: {self.certificate_error}", red=True)
        if self.exit_reason:
            terminalreporter.write_line(self.exit_reason, yellow=True)
