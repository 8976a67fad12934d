"""Verdicts that match what happens in a deployment (issue 11; issue 10 item 4).

One kit run, as a user runs it, over callbacks written differently from the corpus ones
(``bad_callbacks/``, ``good_callbacks/`` hold one of each per rule), so no rule is tied to
one spelling:

* process-global side effects are rejected by the ``process.*`` rule of what they change,
  and by no other ``process.*`` rule;
* a placement group swapped in after the system last served one leaves nodes without the
  model (``cluster.final-group-has-model``); a download choice widened in
  ``pre_engine_init``, which the system still serves, is certified;
* a classmethod spec (a new bound method on every attribute access) and a class spec whose
  instances hold a lock are certified, the latter with advice from ``loading.shippable``;
* one bad callback poisons nothing: a callback that grows ``sys.path`` at every call, and one
  that calls ``ray.shutdown()`` and ``ray.init()``, run with a good one, which is certified,
  and every callback's import-time and shipping checks pass, in sane time.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from kit_helpers import KitRun, run_kit

MODULES = {
    "reconnects": """
        import ray

        class Reconnect:
            def __call__(self, phase, config, data):
                if phase == "pre_engine_init":
                    address = ray.get_runtime_context().gcs_address
                    ray.shutdown()
                    ray.init(address=address)
                return None

        callback = Reconnect()
    """,
    "async_shutdown": """
        import ray

        async def callback(phase, config, data):
            if phase == "post_download":
                ray.shutdown()
    """,
    "env_update": """
        import os

        def callback(phase, config, data):
            if phase == "pre_initialization":
                os.environ.update({"NCCL_DEBUG": "INFO", "MY_TEAM": "1"})
    """,
    "env_putenv": """
        import os

        class Callback:
            def __call__(self, phase, config, data):
                if phase == "post_placement_group":
                    os.putenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
                    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    """,
    "chdir_parent": """
        import os
        from pathlib import Path

        class Loader:
            def __call__(self, phase, config, data):
                if phase == "post_download":
                    os.chdir(Path(__file__).resolve().parent.parent)

        callback = Loader()
    """,
    "path_append": """
        import os
        import sys

        def callback(phase, config, data):
            sys.path.append(os.path.join(os.path.dirname(__file__), "vendor-" + phase))
    """,
    "path_site": """
        import os
        import site

        def callback(phase, config, data):
            if phase == "pre_download":
                site.addsitedir(os.path.join(os.path.dirname(__file__), "site-vendor"))
    """,
    "late_group": """
        from ray.util import placement_group

        def callback(phase, config, data):
            if phase == "post_initialization":
                return {"placement_group": placement_group([{"GPU": 8}], strategy="STRICT_PACK")}
            return None
    """,
    "chdir_restored": """
        import contextlib
        import os
        import tempfile

        def callback(phase, config, data):
            if phase == "pre_download":
                with contextlib.chdir(tempfile.gettempdir()):
                    return {"myteam.tmp_entries": len(os.listdir("."))}
            return None
    """,
    "env_reader": """
        import os

        def callback(phase, config, data):
            if phase == "pre_engine_init":
                env = {**(data.get("runtime_env") or {})}
                env_vars = dict(env.get("env_vars") or {})
                env_vars.setdefault("NCCL_DEBUG", os.environ.get("MY_NCCL_DEBUG", "WARN"))
                return {"runtime_env": {**env, "env_vars": env_vars}}
            return None
    """,
    "registry": """
        class Registry:
            phases = []

            @classmethod
            def on_phase(cls, phase, config, data):
                cls.phases.append(phase)
                return None
    """,
    "locked_class": """
        import threading

        class LockedCallback:
            def __init__(self):
                self._lock = threading.RLock()

            def __call__(self, phase, config, data):
                with self._lock:
                    return None
    """,
    "widens": """
        def callback(phase, config, data):
            if phase == "pre_download":
                return {"worker_node_download_model": "TOKENIZER_ONLY"}
            if phase == "pre_engine_init":  # served again after this phase: still in time
                return {"worker_node_download_model": "MODEL_AND_TOKENIZER"}
            return None
    """,
    "fine": """
        def callback(phase, config, data):
            return {"myteam.seen": phase} if phase == "post_initialization" else None
    """,
}

#: Each rejected callback and the one rule that must reject it among the process rules.
REJECTED = {
    "reconnects.callback": "process.ray-connection",
    "async_shutdown.callback": "process.ray-connection",
    "env_update.callback": "process.environment",
    "env_putenv:Callback": "process.environment",
    "chdir_parent.callback": "process.working-directory",
    "path_append.callback": "process.import-path",
    "path_site.callback": "process.import-path",
    "late_group.callback": "cluster.final-group-has-model",
}
CERTIFIED = [
    "chdir_restored.callback",
    "env_reader.callback",
    "registry:Registry.on_phase",
    "registry.Registry.on_phase",
    "locked_class:LockedCallback",
    "widens.callback",
    "fine.callback",
]


#: A plugin (``-p state_probe``): after each check, the state of the kit's process.
STATE_PROBE = """
    import json, os, pathlib, sys

    SEEN = []
    WATCHED = ("NCCL_DEBUG", "MY_TEAM", "CUDA_DEVICE_ORDER")

    def pytest_runtest_teardown(item):
        watched = sorted(k for k in os.environ if k in WATCHED)
        SEEN.append([item.name, list(sys.path), os.getcwd(), watched])

    def pytest_sessionfinish(session):
        out = pathlib.Path(__file__).resolve().parent / "states.json"
        out.write_text(json.dumps(SEEN))
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[KitRun, float, Path]:
    project = tmp_path_factory.mktemp("deployment-project")
    for name, source in MODULES.items():
        (project / f"{name}.py").write_text(textwrap.dedent(source).lstrip())
    (project / "state_probe.py").write_text(textwrap.dedent(STATE_PROBE).lstrip())
    started = time.monotonic()
    result = run_kit(project, [*REJECTED, *CERTIFIED], ["-p", "state_probe"])
    return result, time.monotonic() - started, project


def _checks(run: KitRun, spec: str) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in run.callback(spec)["checks"]}


@pytest.mark.parametrize(("spec", "rule"), REJECTED.items())
def test_rejected_by_the_rule_of_what_it_changes(
    spec: str, rule: str, run: tuple[KitRun, float, Path]
) -> None:
    kit = run[0]
    failed = kit.failed(spec)
    assert rule in failed, f"{spec}: failed {sorted(failed)}"
    assert {r for r in failed if r.startswith("process.")} <= {rule}
    failure = failed[rule]["failure"]
    assert failure["expected"] and failure["happened"] and failure["fix"]
    if rule.startswith("process."):
        assert "in phase '" in failure["happened"]


def test_the_fixes_name_what_reaches_the_workers(run: tuple[KitRun, float, Path]) -> None:
    kit = run[0]
    assert "env_vars" in kit.failed("env_update.callback")["process.environment"]["failure"]["fix"]
    path_fix = kit.failed("path_append.callback")["process.import-path"]["failure"]["fix"]
    assert "py_modules" in path_fix and "working_dir" in path_fix
    cwd_fix = kit.failed("chdir_parent.callback")["process.working-directory"]["failure"]["fix"]
    assert "working_dir" in cwd_fix


def test_a_new_connection_is_told_apart_from_the_old_one(run: tuple[KitRun, float, Path]) -> None:
    happened = run[0].failed("reconnects.callback")["process.ray-connection"]["failure"]
    assert "as job 01000000 to connected to" in happened["happened"]


def test_a_group_swapped_in_after_the_last_download_lacks_the_model(
    run: tuple[KitRun, float, Path],
) -> None:
    failure = run[0].failed("late_group.callback")["cluster.final-group-has-model"]["failure"]
    assert "no download ran on it" in failure["happened"]
    assert "pre_engine_init" in failure["fix"]


@pytest.mark.parametrize("spec", CERTIFIED)
def test_certified(spec: str, run: tuple[KitRun, float, Path]) -> None:
    callback = run[0].callback(spec)
    assert callback["verdict"] == "certified", run[0].failed(spec)


def test_unpicklable_state_of_a_spec_is_advice(run: tuple[KitRun, float, Path]) -> None:
    kit = run[0]
    shippable = _checks(kit, "locked_class:LockedCallback")["loading.shippable"]
    assert shippable["outcome"] == "passed"
    assert "RLock" in shippable["advice"] and "LLMConfig.callbacks" in shippable["advice"]
    assert "advice loading.shippable [fake]: the object 'locked_class:LockedCallback'" in (
        kit.output
    )
    assert _checks(kit, "fine.callback")["loading.shippable"]["advice"] is None


def test_every_check_starts_from_the_state_the_kit_set_up(
    run: tuple[KitRun, float, Path],
) -> None:
    states = json.loads((run[2] / "states.json").read_text())
    assert len(states) > 100
    first_path, first_cwd = states[0][1], states[0][2]
    for name, path, cwd, watched in states:
        assert (path, cwd, watched) == (first_path, first_cwd, []), name


def test_no_callback_poisons_the_checks_of_another(run: tuple[KitRun, float, Path]) -> None:
    kit, took, _ = run
    for spec in [*REJECTED, *CERTIFIED]:
        checks = _checks(kit, spec)
        for unrelated in ("loading.import-time", "loading.shippable", "loading.importable"):
            assert checks[unrelated]["outcome"] == "passed", (spec, checks[unrelated])
    grows = sum(c["duration_s"] for c in kit.callback("path_append.callback")["checks"])
    assert grows < 60, f"the sys.path-growing callback's checks took {grows:.0f} s"
    assert took < 400, f"the whole run took {took:.0f} s"
