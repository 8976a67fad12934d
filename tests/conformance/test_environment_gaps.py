"""Environment gaps are not defects (issue 17): ``conformance.environment_gaps``."""

from __future__ import annotations

import pickle
import socket

import pytest

from conformance.environment_gaps import environment_gap, missing_package, network_failure
from reference_runner.ray_replica import annotate_chain


def raised(make: object) -> BaseException:
    try:
        make()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def wrapped_like_ray(inner: BaseException) -> Exception:
    """``inner`` behind Ray's run_callback wrapper, as Ray raises it."""
    try:
        raise inner
    except BaseException as exc:
        try:
            raise Exception(
                f"Error running callback method 'on_after_node_init' on X: {exc}"
            ) from exc
        except Exception as outer:
            return outer


def import_missing() -> None:
    import vllm_not_installed_anywhere.reasoning  # type: ignore[import-not-found]  # noqa: F401


def test_a_package_that_is_not_installed_here_is_an_environment_gap() -> None:
    error = wrapped_like_ray(raised(import_missing))
    gap = environment_gap(error, where="the hook on_after_node_init of m:C")
    assert gap is not None
    assert gap.needs == "the package 'vllm_not_installed_anywhere'"
    assert "importing 'vllm_not_installed_anywhere'" in gap.where
    assert "test_environment_gaps.py" in gap.where  # the importing line
    assert "pip install vllm_not_installed_anywhere" in gap.todo


def test_the_gap_survives_the_trip_back_from_a_replica() -> None:
    """Pickling drops __cause__ and tracebacks; the annotated chain keeps what is needed."""
    error = annotate_chain(wrapped_like_ray(raised(import_missing)))
    travelled = pickle.loads(pickle.dumps(error))
    assert travelled.__cause__ is None
    assert missing_package(travelled) is not None


def test_vllm_is_said_to_be_in_every_deployment() -> None:
    def import_vllm() -> None:
        raise ModuleNotFoundError("No module named 'vllm'", name="vllm")

    gap = environment_gap(raised(import_vllm), where="h")
    assert gap is not None and "Ray's engine imports vLLM before any hook runs" in gap.todo


def test_a_module_that_is_installed_is_the_callbacks_bug() -> None:
    def missing_submodule() -> None:
        import json.no_such_submodule  # type: ignore[import-not-found]  # noqa: F401

    assert environment_gap(raised(missing_submodule), where="h") is None
    assert environment_gap(raised(lambda: {}["k"]), where="h") is None


@pytest.mark.parametrize(
    "make",
    [
        lambda: socket.getaddrinfo("models.invalid", 443),
        lambda: (_ for _ in ()).throw(ConnectionRefusedError(111, "refused")),
    ],
)
def test_no_network_is_an_environment_gap(make: object) -> None:
    error = wrapped_like_ray(raised(make))
    assert network_failure(error) is not None
    gap = environment_gap(error, where="h")
    assert gap is not None and gap.needs.startswith("network access")
    assert "--raycallbacks-s3" in gap.todo


def test_a_network_error_by_name_from_a_library_counts() -> None:
    NewConnectionError = type("NewConnectionError", (Exception,), {})
    assert network_failure(NewConnectionError("boom")) is not None
