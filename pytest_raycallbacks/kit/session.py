"""The conformance kit inside a pytest run: its state and its hooks.

:class:`Kit` is registered as a plugin by :mod:`pytest_raycallbacks.plugin` only when
``--raycallbacks-conformance`` (or its ini key) names callbacks. It

* makes the specs importable from where the user runs pytest (invocation folder and rootdir
  on ``sys.path``);
* adds the conformance items to whatever else pytest collected (also when nothing else was
  collected), before ``-k``/``-m`` deselection;
* keeps one :class:`~conformance.Subject` per spec and one cached
  :class:`~conformance.Bench` per spec and cluster, so checks share scenario runs;
* attaches each item's record to its reports, folds the reports into :class:`Results` (on
  the xdist controller too), writes the certificate at the end of the session and prints
  the summary.
* through :mod:`.kit_extras`: measures the callback's code with coverage.py while its
  checks run, and with ``--raycallbacks-chain`` adds the chain item; both end up in the
  summary and the certificate.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Final

import pytest

from .results import PLAN_KEY, RECORD_KEY, Results, plan_items
from .settings import KitSettings

if TYPE_CHECKING:
    from conformance import Bench, Host, Settings, Subject

KIT_KEY: Final = pytest.StashKey["Kit"]()
PLUGIN_NAME: Final = "raycallbacks-kit"


class Kit:
    """One conformance run (see the module docstring)."""

    def __init__(self, config: pytest.Config, settings: KitSettings) -> None:
        self.config = config
        self.settings = settings
        self.is_xdist_worker = hasattr(config, "workerinput")
        self.import_paths = self._import_paths()
        self._lock = threading.Lock()
        self._subjects: dict[str, Subject] = {}
        self._hosts: dict[str, Host] = {}
        self._benches: dict[tuple[str, str], Bench] = {}
        self._check_settings: Settings | None = None
        self.certificate_path: str | None = None
        self.certificate_error: str | None = None
        self.exit_reason: str | None = None
        for path in reversed(self.import_paths):
            if path not in sys.path:
                sys.path.insert(0, path)
        # After sys.path: planning imports the specs to tell their style.
        self.plans = plan_items(settings.specs, settings.clusters)
        self.results = Results(self.plans)
        from . import kit_extras  # callback coverage; the chain (--raycallbacks-chain)

        self.chain = kit_extras.register(config, settings)

    def _import_paths(self) -> tuple[str, ...]:
        """Folders a spec may import from: where pytest was invoked, the rootdir, and the
        ``pythonpath`` ini setting."""
        params_dir = str(self.config.invocation_params.dir)
        paths = [params_dir, str(self.config.rootpath)]
        paths += [str(p) for p in self.config.getini("pythonpath") or []]
        return tuple(dict.fromkeys(paths))

    # ------------------------------------------------------------------ state

    def subject(self, spec: str) -> Subject:
        from conformance import Subject

        with self._lock:
            if spec not in self._subjects:
                self._subjects[spec] = Subject(
                    spec, import_paths=self.import_paths, cwd=str(self.config.invocation_params.dir)
                )
            return self._subjects[spec]

    def host(self, where: str, request: pytest.FixtureRequest) -> Host | None:
        """``None`` for local checks, else the cluster (starting the live one on first use)."""
        if where == "local":
            return None
        with self._lock:
            if where in self._hosts:
                return self._hosts[where]
        from .hosts import FakeHost, LiveHost

        host: Host = (
            FakeHost() if where == "fake" else LiveHost(request.getfixturevalue("gpu_ray_cluster"))
        )
        with self._lock:
            return self._hosts.setdefault(where, host)

    def bench(self, subject: Subject, host: Host, settings: Settings) -> Bench:
        from conformance import Bench

        with self._lock:
            key = (subject.spec, host.name)
            if key not in self._benches:
                self._benches[key] = Bench(subject, host, settings)
            return self._benches[key]

    def check_settings(self, tmp_path_factory: pytest.TempPathFactory) -> Settings:
        """The catalogue's settings: timeout, base config, model cache, import paths."""
        if self._check_settings is None:
            from conformance import Settings
            from reference_runner import LLMConfig

            config = (
                LLMConfig.from_file(self.settings.config_path)
                if self.settings.config_path
                else None
            )
            cache = tmp_path_factory.mktemp("raycallbacks-models")
            self._check_settings = Settings(
                timeout_s=self.settings.timeout_s,
                config=config,
                cache_dir=str(cache),
                import_paths=self.import_paths,
                cwd=str(self.config.invocation_params.dir),
            )
        return self._check_settings

    # ------------------------------------------------------------------ hooks

    def pytest_report_header(self, config: pytest.Config) -> str:
        return (
            f"raycallbacks: certifying {len(self.settings.specs)} callback(s) "
            f"({', '.join(self.settings.specs)}) on {', '.join(self.settings.clusters)}"
        )

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        from .suite import collect_suite

        items.extend(collect_suite(session, self.plans))
        from .kit_extras import extra_items

        items.extend(extra_items(session, self.chain))

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if PLAN_KEY in item.stash:
            report.raycallbacks = dict(item.stash[RECORD_KEY].items())
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.results.add(report)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.is_xdist_worker:
            return
        from .results import verdict

        uncertified = [
            spec
            for spec in self.settings.specs
            if verdict(self.results.for_spec(spec)) != "certified"
        ]
        if self.chain is not None and self.chain.verdict == "incomplete":
            uncertified.append(f"the chain {' -> '.join(self.settings.specs)}")
        if uncertified and session.exitstatus == pytest.ExitCode.OK:
            # DESIGN §3: exit 0 only when every requested callback is certified. A run cut
            # short by -k, -x or a skip ran no failing check but certified nothing.
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.exit_reason = (
                f"exit status 1: not certified (incomplete): {', '.join(uncertified)}; some "
                "checks were skipped or did not run (-k, -m, -x or --deselect): run the full "
                "suite to certify"
            )
            exitstatus = session.exitstatus
        if not self.settings.report_path:
            return
        from .certificate import build, write_atomically
        from .kit_extras import amend_certificate

        try:
            document = build(self.settings, self.results, exitstatus)
            amend_certificate(document, self.results, self.chain)
            write_atomically(self.settings.report_path, document)
        except OSError as exc:
            self.certificate_error = f"could not write {self.settings.report_path}: {exc}"
        else:
            self.certificate_path = self.settings.report_path

    def pytest_terminal_summary(
        self, terminalreporter: Any, exitstatus: int, config: pytest.Config
    ) -> None:
        if self.is_xdist_worker:
            return
        from .kit_extras import spec_lines
        from .summary import render

        terminalreporter.section("raycallbacks conformance")
        lines = render(self.results, self.settings.specs, lambda s: spec_lines(self.results, s))
        if self.chain is not None:
            lines += self.chain.summary_lines()
        for line, markup in lines:
            terminalreporter.write_line(line, **markup)
        if self.certificate_path:
            terminalreporter.write_line(f"certificate: {self.certificate_path}")
        if self.certificate_error:
            terminalreporter.write_line(f"certificate: {self.certificate_error}", red=True)
        if self.exit_reason:
            terminalreporter.write_line(self.exit_reason, yellow=True)
