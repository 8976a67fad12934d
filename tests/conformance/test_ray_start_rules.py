"""``conformance.ray_start_rules``: judging a replica start Ray's code ran."""

from __future__ import annotations

from conformance.failure import CheckFailed, Inconclusive
from conformance.harness import Run
from conformance.ray_start_rules import missing_bucket_note, start_failure
from reference_runner.ray_replica import ReplicaPlacementError


def test_a_missing_bucket_is_named_from_the_callbacks_kwargs() -> None:
    error = Exception("An error occurred (NoSuchBucket) when calling ListObjectsV2")
    kwargs = {"paths": [["s3://no-such-models/extra", "/tmp/x"]]}
    assert "the bucket 'no-such-models' does not exist" in (
        missing_bucket_note(error, kwargs) or ""
    )
    two = {"a": "s3://one/x", "b": ["gs://two/y"]}
    assert "('one', 'two')" in (missing_bucket_note(error, two) or "")
    assert missing_bucket_note(Exception("boom"), kwargs) is None
    named = Exception("NoSuchBucket: the bucket 'no-such-models' does not exist")
    assert missing_bucket_note(named, kwargs) is None  # the error says it already


def test_a_group_the_cluster_cannot_hold_is_inconclusive_not_the_callbacks_fault() -> None:
    error = ReplicaPlacementError("not placed within 5 s", [{"GPU": 64}], "PACK")
    run = Run(scenario="first replica start", calls=[], output=None, error=error)
    verdict = start_failure(run, "m:C")
    assert isinstance(verdict, Inconclusive)
    assert "before Ray built the callback" in verdict.where


def test_an_error_before_any_step_is_rays() -> None:
    run = Run(scenario="first replica start", calls=[], output=None, error=ValueError("x"))
    verdict = start_failure(run, "m:C")
    assert isinstance(verdict, CheckFailed)
    assert verdict.happened.startswith("the replica's start raised ValueError: x")
    assert "data" not in verdict.fix
