"""``pytest --raycallbacks-serve-config serve.yaml`` run as a user runs it (issue 17).

A user's folder holds a Serve config written like Ray Serve LLM's guide
(``applications[].args.llm_configs[]`` with ``model_loading_config``, ``accelerator_type``
and ``callback_config``) and the callback classes it names (``guide_subjects``, written like
the guide's examples). The kit certifies every entry with a ``callback_config`` as the entry
says, by Ray's own code, with no other option; the certificate names the application and
the model, the file's hash, the entries and what was replaced.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from kit_helpers import pytest_process, run_kit

SUBJECTS = Path(__file__).parents[1] / "ray_callback_base" / "guide_subjects.py"
#: The user's module, named apart from the suite's own copy (``verify`` runs in this process,
#: where ``guide_subjects`` may already be imported from ``tests/ray_callback_base``).
MODULE = "serve_guide_callbacks"
APP = "llm-app"


def llm_config(cls: str, model_id: str = "qwen-0.5b", **callback: Any) -> dict[str, Any]:
    return {
        "model_loading_config": {
            "model_id": model_id,
            "model_source": "Qwen/Qwen2.5-0.5B-Instruct",
        },
        "accelerator_type": "L4",
        "deployment_config": {"autoscaling_config": {"min_replicas": 1, "max_replicas": 2}},
        "engine_kwargs": {"max_model_len": 8192},
        "callback_config": {"callback_class": f"{MODULE}:{cls}", **callback},
    }


def serve_config(*configs: Any) -> str:
    document = {
        "applications": [
            {
                "name": APP,
                "route_prefix": "/",
                "import_path": "ray.serve.llm:build_openai_app",
                "args": {"llm_configs": list(configs)},
            }
        ]
    }
    return json.dumps(document, indent=2)  # JSON is YAML: the kit reads it as serve.yaml


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / f"{MODULE}.py").write_text(SUBJECTS.read_text())
    return tmp_path


def certify_file(project: Path, *options: str) -> Any:
    return run_kit(project, [], ["--raycallbacks-serve-config", "serve.yaml", *options])


def spec(cls: str, model_id: str = "qwen-0.5b") -> str:
    return f"{MODULE}:{cls}@{APP}/{model_id}"


def test_the_guides_serve_config_is_certified_from_the_file_alone(project: Path) -> None:
    (project / "serve.yaml").write_text(
        serve_config(
            llm_config("ReadsItsKwargs", callback_kwargs={"greeting": "hello"}),
            llm_config("ReadsRaysLLMConfig", model_id="second"),
        )
    )
    run = certify_file(project)
    assert run.returncode == 0, run.output[-4000:]
    first = run.callback(spec("ReadsItsKwargs"))
    assert first["verdict"] == "certified"
    assert first["callback_kwargs"] == {"greeting": "hello"}
    deployment = first["deployment"]
    assert deployment["application"] == APP and deployment["model_id"] == "qwen-0.5b"
    assert re.search(
        rf"serve\.yaml:\d+: applications\[0\] '{APP}'\.args\.llm_configs\[0\]$", deployment["place"]
    ), deployment["place"]
    assert deployment["replaced"]["model_source"]["deployed"] == "Qwen/Qwen2.5-0.5B-Instruct"
    assert run.callback(spec("ReadsRaysLLMConfig", "second"))["verdict"] == "certified"
    (recorded,) = run.certificate["run"]["serve_configs"]
    assert recorded["kind"] == "serve config" and len(recorded["sha256"]) == 64
    assert any("vLLM" in s for s in run.certificate["run"]["ray_stand_ins"])
    assert f"{spec('ReadsItsKwargs')}: CERTIFIED" in run.output
    notes = {c["id"]: c["detail"] for c in first["checks"]}
    assert "accelerator_type:L4 hint was left out" in notes["callbackbase.run"]


def test_a_lone_llm_config_file_is_certified(project: Path) -> None:
    (project / "model.yaml").write_text(
        json.dumps(llm_config("PlainDefEverywhere", model_id="lone"))
    )
    run = run_kit(project, [], ["--raycallbacks-serve-config", "model.yaml"])
    assert run.returncode == 0, run.output[-4000:]
    callback = run.callback(f"{MODULE}:PlainDefEverywhere@lone")
    hooks = next(c for c in callback["checks"] if c["id"] == "callbackbase.hooks")
    assert "plain def" in hooks["advice"]


def test_an_entry_given_as_a_file_path_is_read_as_serve_run_reads_it(project: Path) -> None:
    (project / "models").mkdir()
    (project / "models" / "qwen.yaml").write_text(
        json.dumps(llm_config("ReadsItsKwargs", callback_kwargs={"greeting": "hi"}))
    )
    (project / "serve.yaml").write_text(serve_config("models/qwen.yaml"))
    run = certify_file(project)
    assert run.returncode == 0, run.output[-4000:]
    entry = run.callback(spec("ReadsItsKwargs"))["deployment"]
    assert entry["llm_config_file"].endswith("models/qwen.yaml")


def test_a_broken_entry_is_rejected_naming_the_hook_and_its_error(project: Path) -> None:
    (project / "serve.yaml").write_text(serve_config(llm_config("ReadsItsKwargs")))  # no greeting
    run = certify_file(project)
    assert run.returncode == 1
    failure = run.failed(spec("ReadsItsKwargs"))["callbackbase.run"]["failure"]
    assert (
        "the hook on_before_node_init raised Exception: Error running callback method"
        in (failure["happened"])
    )
    assert "caused by KeyError: 'greeting'" in failure["happened"]
    assert "data" not in failure["fix"]


def test_a_hook_that_imports_vllm_is_inconclusive_naming_vllm(project: Path) -> None:
    (project / "serve.yaml").write_text(serve_config(llm_config("ImportsVllmReasoning")))
    run = certify_file(project)
    assert run.returncode == 1
    callback = run.callback(spec("ImportsVllmReasoning"))
    assert callback["verdict"] == "inconclusive"
    (gap,) = [c["inconclusive"] for c in callback["checks"] if c["outcome"] == "inconclusive"]
    assert gap["needs"] == "the package 'vllm'"
    assert "on_after_node_init" in gap["where"] and f"{MODULE}.py" in gap["where"]
    assert "deployment's image" in gap["todo"]
    assert "not certified (inconclusive)" in run.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("applications:\n  - name: a\n    args: [\n", "serve.yaml:4: not valid YAML"),
        (
            serve_config({**llm_config("ReadsItsKwargs"), "accelerator_type": "NOT-A-GPU"}),
            "serve.yaml:9: applications[0] 'llm-app'.args.llm_configs[0]: Ray's LLMConfig "
            "refused it: accelerator_type: Value error, Unsupported accelerator type: NOT-A-GPU",
        ),
        (
            serve_config("models/missing.yaml"),
            "Could not load model config from models/missing.yaml, as the file does not exist",
        ),
        (
            serve_config({**llm_config("X"), "callback_config": {"callback_class": ""}}),
            "callback_config.callback_class: expected the import path",
        ),
    ],
)
def test_a_file_ray_refuses_is_a_usage_error_quoting_ray_and_the_place(
    project: Path, text: str, message: str
) -> None:
    (project / "serve.yaml").write_text(text)
    done = pytest_process(project, "--raycallbacks-serve-config", "serve.yaml")
    assert done.returncode == 4, done.stdout + done.stderr
    assert message in done.stderr, done.stderr


def test_kwargs_on_the_command_line_for_an_entry_say_to_change_the_file(project: Path) -> None:
    (project / "serve.yaml").write_text(serve_config(llm_config("ReadsItsKwargs")))
    done = pytest_process(
        project,
        "--raycallbacks-serve-config",
        "serve.yaml",
        "--raycallbacks-callback-kwargs",
        f'{MODULE}:ReadsItsKwargs={{"greeting": "hi"}}',
    )
    assert done.returncode == 4
    assert "it is certified from a Serve config, whose callback_config gives" in done.stderr


def test_verify_is_the_gate_before_serve_deploy(project: Path) -> None:
    from pytest_raycallbacks.cli import main

    config = llm_config("ReadsItsKwargs", callback_kwargs={"greeting": "hello"})
    (project / "serve.yaml").write_text(serve_config(config))
    run = certify_file(project)
    assert run.returncode == 0, run.output[-4000:]
    gate = ["verify", str(project / "cert.json"), "--path", str(project)]
    assert main([*gate, "--serve-config", str(project / "serve.yaml")]) == 0
    assert main(gate) == 1  # certified from a Serve config: the file must be given
    changed = {
        **config,
        "callback_config": {**config["callback_config"], "callback_kwargs": {"greeting": "bye"}},
    }
    (project / "other.yaml").write_text(serve_config(changed))
    assert main([*gate, "--serve-config", str(project / "other.yaml")]) == 1
    (project / "new.yaml").write_text(serve_config(config, llm_config("PlainDefEverywhere")))
    assert main([*gate, "--serve-config", str(project / "new.yaml")]) == 1  # not certified
    source = project / f"{MODULE}.py"
    source.write_text(source.read_text() + "\n# changed\n")
    assert main([*gate, "--serve-config", str(project / "serve.yaml")]) == 1


@pytest.mark.live
def test_the_guides_serve_config_is_certified_on_live(project: Path) -> None:
    (project / "serve.yaml").write_text(
        serve_config(
            llm_config("ReadsItsKwargs", callback_kwargs={"greeting": "hello"}),
            llm_config("ReadsRaysLLMConfig", model_id="second"),
            llm_config("PlainDefEverywhere", model_id="third"),
        )
    )
    run = run_kit(
        project,
        [],
        [
            "--raycallbacks-serve-config",
            "serve.yaml",
            "--raycallbacks-cluster",
            "both",
            "--raycallbacks-gpus",
            "simulate",
        ],
    )
    assert run.returncode == 0, run.output[-4000:]
    for name, model in [
        ("ReadsItsKwargs", "qwen-0.5b"),
        ("ReadsRaysLLMConfig", "second"),
        ("PlainDefEverywhere", "third"),
    ]:
        callback = run.callback(spec(name, model))
        assert callback["verdict"] == "certified", name
        live = [c for c in callback["checks"] if c["cluster"] == "live"]
        assert {c["id"] for c in live} == {"loading.shippable", "callbackbase.run"}
