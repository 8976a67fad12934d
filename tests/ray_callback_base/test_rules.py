"""The rule functions for ``CallbackBase`` subclasses (``conformance.callbackbase_rules``,
and the ``ctx`` field validation the adapter enforces, ``reference_runner.ray_callback_ctx``):
empty for the good class, a problem that says what was expected, what happened and how to
fix it for each broken one."""

from __future__ import annotations

from typing import Any

import pytest
import ray_callback_subjects as S
from ray.llm._internal.common.callbacks.base import CallbackBase, CallbackCtx

from conformance import CATALOGUE
from conformance.callbackbase_rules import (
    constructor_problems,
    hook_advice,
    hook_problems,
    loading_problems,
    shipping_problems,
    static_problems,
)
from conformance.checks.callbackbase import RULES
from reference_runner import TINY_MODEL_PATH, LLMConfig
from reference_runner.ray_callback_ctx import (
    ctx_field_problems,
    placement_group_problems,
    ray_ctx_kwargs,
    runtime_env_problems,
    to_ctx_download_choice,
    unplaced_placement_group,
)

CONFIG = LLMConfig(model_id=TINY_MODEL_PATH)
GOOD = (S.GoodCallback, S.OwnGroupCallback, S.NoInitNodeCallback, S.ReadsWhatOthersSet)


@pytest.mark.parametrize("cls", [*GOOD, CallbackBase])
def test_good_classes_break_no_static_rule(cls: type) -> None:
    spec = f"{cls.__module__}:{cls.__qualname__}"
    assert loading_problems(spec) == []
    assert loading_problems(cls) == []
    assert constructor_problems(cls, CONFIG) == []
    assert hook_problems(cls) == []
    assert shipping_problems(cls(llm_config=CONFIG, ctx_kwargs=ray_ctx_kwargs())) == []


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ray_callback_subjects:Outer.Inner", "Ray's load_class"),
        ("ray_callback_subjects:NotACallbackBase", "subclass of Ray's CallbackBase"),
        ("ray_callback_subjects:Missing", "has no attribute 'Missing'"),
        ("no_such_module_xyz.Thing", "to import"),
    ],
)
def test_loading(spec: str, expected: str) -> None:
    problems = loading_problems(spec)
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize(
    ("cls", "kwargs", "expected"),
    [
        (S.DifferentSignature, {}, "missing a required argument: 'config'"),
        (S.NoSuperInit, {}, "Call super().__init__(**kwargs)"),
        (S.NeedsOption, {}, "requires callback_kwargs['bucket']"),
    ],
)
def test_constructor(cls: type, kwargs: dict[str, Any], expected: str) -> None:
    problems = constructor_problems(cls, CONFIG, callback_kwargs=kwargs)
    assert problems and expected in problems[0], problems
    assert "expected" in problems[0]


def test_constructor_with_the_options_it_needs() -> None:
    assert constructor_problems(S.NeedsOption, CONFIG, callback_kwargs={"bucket": "b"}) == []


def test_constructor_with_options_ray_cannot_pass() -> None:
    (problem,) = constructor_problems(S.GoodCallback, CONFIG, callback_kwargs={"llm_config": 1})
    assert "callback_kwargs that Ray can pass to GoodCallback" in problem
    assert "may not hold ['llm_config']" in problem


def test_constructor_that_rewrites_ctx_kwargs() -> None:
    class Rewrites(CallbackBase):
        def __init__(self, **kwargs: Any) -> None:
            kwargs["ctx_kwargs"] = {}
            super().__init__(**kwargs)

    problems = constructor_problems(Rewrites, CONFIG)
    assert any("ctx.placement_group to be what Ray passed" in p for p in problems)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (S.TakesArgument, "it requires ['ready']"),
        (S.MisspeltHook, "did you mean 'on_before_node_init'?"),
        (S.DownloadHookChangesCtx, "writes self.ctx.worker_node_download_model"),
    ],
)
def test_hooks_ray_cannot_call_or_never_calls_are_problems(cls: type, expected: str) -> None:
    problems = hook_problems(cls)
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (S.SyncAwaitedHook, "on_before_node_init is a plain def"),
        (S.BlocksLoop, "on_before_node_init is a plain def"),
        (S.ReturnsCoroutine, "on_after_node_init is a plain def"),
        (S.AsyncDownloadHook, "is 'async def': Ray's run_callback_sync runs it"),
        (S.OverridesDispatch, "overrides CallbackBase.run_callback"),
    ],
)
def test_hook_forms_ray_runs_are_advice_not_problems(cls: type, expected: str) -> None:
    """Ray 2.60's run_callback calls a plain def inline and run_callback_sync runs an async
    download hook with asyncio.run: forms Ray runs are never failures (issue 17)."""
    assert hook_problems(cls) == []
    advice = hook_advice(cls)
    assert any(expected in a for a in advice), advice


def test_a_helper_named_on_something_is_advice_and_a_near_miss_a_problem() -> None:
    class Helper(CallbackBase):
        def on_model_ready(self) -> None:
            pass

    assert hook_problems(Helper) == []
    assert any("on_model_ready is not one of Ray's hooks" in a for a in hook_advice(Helper))


def test_a_hook_that_is_not_a_method() -> None:
    class NotAMethod(CallbackBase):
        on_after_node_init = None  # type: ignore[assignment]

    assert "to be a method" in hook_problems(NotAMethod)[0]


def test_shipping_an_unpicklable_instance() -> None:
    instance = S.Unpicklable(llm_config=CONFIG, ctx_kwargs=ray_ctx_kwargs())
    problems = shipping_problems(instance)
    assert len(problems) == 1 and "lock" in problems[0] and "lazily" in problems[0]


def ctx(**fields: Any) -> Any:
    return CallbackCtx(**{**ray_ctx_kwargs(), **fields})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (ctx(worker_node_download_model="MODEL_AND_TOKENIZER"), "downloads the whole model"),
        (ctx(worker_node_download_model=None), "NodeModelDownloadable member"),
        (ctx(placement_group={"bundles": [{"GPU": 1}]}), "not its id, name or bundles"),
        (ctx(runtime_env=["pip"]), "a dict Ray accepts"),
        (ctx(runtime_env={"pip": 3}), "Ray rejected it"),
        (ctx(custom_data=None), "dict with str keys"),
        (ctx(custom_data={1: "x"}), "dict with str keys"),
        (ctx(run_init_node="false"), "a bool is expected"),
        ({"placement_group": None}, "rather than replacing it"),
    ],
)
def test_ctx_fields(value: Any, expected: str) -> None:
    problems = ctx_field_problems(value)
    assert len(problems) == 1 and expected in problems[0], problems


def test_good_ctx_fields() -> None:
    assert ctx_field_problems(ctx()) == []
    assert ctx_field_problems(CallbackCtx(), placement_group_required=False) == [
        "ctx.worker_node_download_model = NoneType None, where a NodeModelDownloadable member "
        "(MODEL_AND_TOKENIZER, TOKENIZER_ONLY, EXCLUDE_SAFETENSORS, NONE) is expected: Ray "
        "compares it with its enum, so anything else downloads the whole model. Assign "
        "NodeModelDownloadable.<NAME> from ray.llm._internal.common.utils.download_utils"
    ]
    good = ctx(worker_node_download_model=to_ctx_download_choice("NONE"), runtime_env=None)
    assert ctx_field_problems(good, placement_group_required=True) == []


def test_placement_group_and_runtime_env() -> None:
    assert placement_group_problems(unplaced_placement_group(), required=True) == []
    assert placement_group_problems(None) == []
    assert "right after on_before_node_init" in placement_group_problems(None, required=True)[0]
    assert runtime_env_problems(None) == []
    assert (
        runtime_env_problems({"env_vars": {"A": "1"}, "config": {"setup_timeout_seconds": 9}}) == []
    )
    assert (
        "cannot be specified at the same time"
        in runtime_env_problems({"pip": ["a"], "conda": "env"})[0]
    )


def test_each_rule_has_one_text_the_catalogue_shows() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids)) == 7
    catalogue = {c.id: c for c in CATALOGUE if c.category == "callbackbase"}
    assert list(catalogue) == ids
    for rule in RULES:
        check = catalogue[rule.id]
        assert (check.rule, check.why) == (rule.rule, " ".join(rule.why.split()))
        assert rule.fix and "\n" not in rule.rule


def test_static_problems_run_every_static_rule_in_order() -> None:
    good = static_problems("ray_callback_subjects:GoodCallback", CONFIG)
    assert good == {
        "callbackbase.loading": [],
        "callbackbase.constructor": [],
        "callbackbase.hooks": [],
        "callbackbase.shippable": [],
    }
    assert list(static_problems("ray_callback_subjects:NotACallbackBase", CONFIG)) == [
        "callbackbase.loading"
    ]
    needs = static_problems(S.NeedsOption, CONFIG)
    assert needs["callbackbase.constructor"] and "callbackbase.shippable" not in needs
    assert static_problems(S.NeedsOption, CONFIG, callback_kwargs={"bucket": "b"}) == good
    unpicklable = static_problems(S.Unpicklable, CONFIG)
    assert unpicklable["callbackbase.shippable"] and not unpicklable["callbackbase.hooks"]
    inner = static_problems("ray_callback_subjects:Outer.Inner", CONFIG)
    assert inner["callbackbase.loading"] and inner["callbackbase.hooks"] == []
    assert set(good) < {rule.id for rule in RULES}


def test_rays_own_subclass_passes_the_static_rules() -> None:
    from ray.llm._internal.common.callbacks.cloud_downloader import CloudDownloader

    spec = "ray.llm._internal.common.callbacks.cloud_downloader:CloudDownloader"
    kwargs = {"paths": [("s3://bucket/file", "/tmp/file")]}
    assert all(p == [] for p in static_problems(spec, CONFIG, callback_kwargs=kwargs).values())
    missing = constructor_problems(CloudDownloader, CONFIG)
    assert "CloudDownloader requires 'paths'" in missing[0]
