"""The options (docs/design.md §The kit): their group in --help, validation (exit 4),
--list-checks."""

from __future__ import annotations

import pytest

from conformance import CATALOGUE

FAKE = ("--raycallbacks-cluster", "fake")


def test_help_lists_every_option_in_its_own_group(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess("--help")
    text = result.stdout.str()
    assert "raycallbacks: certify Ray LLM initialization callbacks:" in text
    for option in (
        "conformance",
        "cluster",
        "gpus",
        "ray-address",
        "timeout",
        "config",
        "report",
        "waive",
        "list-checks",
    ):
        assert f"--raycallbacks-{option}" in text
        assert f"raycallbacks_{option.replace('-', '_')}" in text or option == "list-checks"


def test_list_checks_prints_the_catalogue_and_exits_0(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess("--raycallbacks-list-checks")
    assert result.ret == 0
    lines = result.stdout.lines
    ids = [
        line.split()[0] for line in lines if line and line.split()[0] in {c.id for c in CATALOGUE}
    ]
    assert ids == [c.id for c in CATALOGUE]
    assert "passed" not in result.stdout.str()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--raycallbacks-timeout", "abc"), "is not a positive number of seconds"),
        (("--raycallbacks-timeout", "0"), "is not a positive number of seconds"),
        (("--raycallbacks-timeout", "nan"), "is not a positive number of seconds"),
        (("--raycallbacks-waive", "merge.ownership"), "expected CHECK=REASON"),
        (("--raycallbacks-waive", "merge.ownership=  "), "needs a reason"),
        (("--raycallbacks-waive", "merge.owner=ticket 1"), "did you mean merge.ownership"),
        (("--raycallbacks-config", "missing.yaml"), "not a valid LLMConfig file"),
        (("--raycallbacks-report", "no/such/folder/cert.json"), "does not exist"),
        (("--raycallbacks-conformance", "  "), "empty spec"),
    ],
)
def test_bad_option_values_are_usage_errors(
    project: pytest.Pytester, args: tuple[str, ...], message: str
) -> None:
    result = project.runpytest_inprocess("--raycallbacks-conformance", "mycb.callback", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_bad_cluster_on_the_command_line_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest_inprocess("--raycallbacks-cluster", "cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


@pytest.mark.parametrize(
    ("ini", "message"),
    [
        ("raycallbacks_cluster = cloud", "'cloud' is not one of fake, live, both"),
        ("raycallbacks_gpus = many", "'many' is not one of auto, simulate, physical"),
        ("raycallbacks_timeout = soon", "is not a positive number of seconds"),
        ("raycallbacks_waive = nonsense", "expected CHECK=REASON"),
    ],
)
def test_bad_ini_values_are_usage_errors(project: pytest.Pytester, ini: str, message: str) -> None:
    project.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}\n")
    result = project.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_an_invalid_config_file_is_a_usage_error_naming_the_field(project: pytest.Pytester) -> None:
    project.path.joinpath("bad.yaml").write_text(
        "model_id: x\nengine_kwargs: {tensor_parallel_size: 0}\n"
    )
    result = project.runpytest_inprocess(
        "--raycallbacks-conformance", "mycb.callback", "--raycallbacks-config", "bad.yaml", *FAKE
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "tensor_parallel_size" in result.stderr.str()


def test_ini_names_the_callbacks_without_any_command_line_option(project: pytest.Pytester) -> None:
    project.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "raycallbacks_conformance = mycb.callback\nraycallbacks_cluster = fake\n"
    )
    result = project.runpytest_inprocess("--collect-only", "-q")
    assert "raycallbacks::phases.lifecycle[mycb.callback-fake]" in result.stdout.str()
    assert "raycallbacks::cluster.in-worker" not in result.stdout.str()
