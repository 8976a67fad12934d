"""``CallbackBaseAdapter``: Ray 2.60 ``CallbackBase`` subclasses run by ``CallbackRunner``
through every phase, with ``ctx`` mapped onto ``data`` and back."""

from __future__ import annotations

import asyncio
import gc
import pickle
import subprocess
import sys
import warnings
from typing import Any

import pytest
import ray_callback_subjects as S
from ray.llm._internal.common.callbacks.base import CallbackBase, CallbackCtx

from conformance.callbackbase_rules import run_problems
from reference_runner import (
    PHASES,
    TINY_MODEL_PATH,
    CallbackLoadError,
    CallbackReturnError,
    CallbackRunner,
    CallbackTimeoutError,
    LLMConfig,
    NodeModelDownloadable,
)
from reference_runner.ray_callback_base import (
    HOOK_PHASES,
    CallbackBaseAdapter,
    RayCallbackContractError,
    construct_as_ray,
    is_callback_base_class,
    ray_constructor_kwargs,
    resolve_callback_base_class,
)
from reference_runner.ray_callback_ctx import (
    CUSTOM_DATA_KEY,
    CtxState,
    apply_data_to_ctx,
    data_from_ctx,
    data_view,
    is_download_choice,
    ray_runtime_env,
    to_ctx_download_choice,
    to_data_download_choice,
    unplaced_placement_group,
)

NONE = NodeModelDownloadable.NONE
CONFIG = LLMConfig(model_id=TINY_MODEL_PATH, runtime_env={"env_vars": {"A": "1"}})


def run_all(
    callbacks: list[Any], data: dict[str, Any] | None = None, **kwargs: Any
) -> CallbackRunner:
    runner = CallbackRunner(callbacks, trace=True, data=data, **kwargs)
    asyncio.run(runner.run_all(CONFIG))
    return runner


def adapter(cls: type, **kwargs: Any) -> CallbackBaseAdapter:
    return CallbackBaseAdapter(cls, **kwargs)


# ---------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (S.GoodCallback, True),
        (CallbackBase, True),
        ("ray_callback_subjects:GoodCallback", True),
        ("ray_callback_subjects.GoodCallback", True),
        ("ray_callback_subjects:Outer.Inner", True),
        (S.NotACallbackBase, False),
        ("ray_callback_subjects:NotACallbackBase", False),
        ("no_such_module_xyz:Thing", False),
        ("not a spec", False),
        (42, False),
    ],
)
def test_detection(obj: object, expected: bool) -> None:
    assert is_callback_base_class(obj) is expected


def test_an_instance_is_not_a_class() -> None:
    assert not is_callback_base_class(S.GoodCallback(llm_config=CONFIG))


def test_resolving_a_non_subclass_says_what_it_names() -> None:
    with pytest.raises(CallbackLoadError, match="NotACallbackBase, which is not a subclass"):
        resolve_callback_base_class("ray_callback_subjects:NotACallbackBase")
    with pytest.raises(CallbackLoadError, match="no module named"):
        CallbackBaseAdapter("no_such_module_xyz:Thing")


def test_importing_and_detecting_never_import_ray() -> None:
    code = (
        "import sys\n"
        "import reference_runner.ray_callback_base as b, reference_runner.ray_callback_ctx\n"
        "assert not b.is_callback_base_class('json:JSONDecoder')\n"
        "assert not b.is_callback_base_class(dict)\n"
        "print(sorted(m for m in ('ray', 'pytest') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]", out.stderr


# ---------------------------------------------------------------------- a good class


def test_good_class_through_every_phase() -> None:
    hooked = adapter(S.GoodCallback, callback_kwargs={"marker": "m"})
    runner = run_all([hooked], data={"runtime_env": {"env_vars": {"A": "1"}}})
    assert dict(runner.data) == {
        "runtime_env": {"env_vars": {"A": "1", "GOOD": "1"}},
        "worker_node_download_model": NodeModelDownloadable.TOKENIZER_ONLY,
        CUSTOM_DATA_KEY: {"marker": "m", "after": True},
    }
    origins = {k: (o.callback, o.phase) for k, o in runner.key_origins().items()}
    name = "ray_callback_subjects:GoodCallback (CallbackBase)"
    assert origins == {
        "runtime_env": (name, "pre_initialization"),
        "worker_node_download_model": (name, "pre_initialization"),
        CUSTOM_DATA_KEY: (name, "post_initialization"),
    }
    assert [(c.phase, c.hook, c.ray_call, c.awaited) for c in hooked.calls] == [
        ("pre_initialization", "on_before_node_init", "run_callback", True),
        ("pre_download", S.GoodCallback.on_before_download_model_files_distributed.__name__,
         "run_callback_sync", False),
        ("post_initialization", "on_after_node_init", "run_callback", True),
    ]  # fmt: skip
    assert {c.hook: c.phase for c in hooked.calls} == dict(HOOK_PHASES)
    assert hooked.instance.seen == ["before", "after"]  # the download hook ran on a copy
    assert run_problems(hooked) == []


def test_constructed_as_ray_does() -> None:
    hooked = adapter(S.GoodCallback, callback_kwargs={"marker": "x"}, raise_error_on_callback=False)
    asyncio.run(hooked("pre_initialization", CONFIG, {}))
    instance = hooked.instance
    assert instance.llm_config is CONFIG
    assert instance.raise_error_on_callback is False
    assert instance.kwargs == {"marker": "x"}
    assert isinstance(instance.ctx, CallbackCtx)


def test_construct_as_ray_passes_callback_kwargs_by_keyword() -> None:
    ctx_kwargs = {"worker_node_download_model": to_ctx_download_choice("NONE")}
    instance = construct_as_ray(
        S.NeedsOption,
        CONFIG,
        ctx_kwargs=ctx_kwargs,
        callback_kwargs={"bucket": "s3://b", "retries": 3},
        raise_error_on_callback=False,
    )
    assert instance.kwargs == {"bucket": "s3://b", "retries": 3}
    assert instance.llm_config is CONFIG and instance.raise_error_on_callback is False
    assert instance.ctx.worker_node_download_model.name == "NONE"
    assert ray_constructor_kwargs(CONFIG, ctx_kwargs={}, callback_kwargs={"a": 1}) == {
        "raise_error_on_callback": True,
        "llm_config": CONFIG,
        "ctx_kwargs": {},
        "a": 1,
    }


def test_construct_as_ray_without_the_options_the_class_needs() -> None:
    with pytest.raises(ValueError, match="requires callback_kwargs") as info:
        construct_as_ray(S.NeedsOption, CONFIG, ctx_kwargs={})
    assert any("with callback_kwargs []" in note for note in info.value.__notes__)


def test_rays_own_subclass_gets_its_callback_kwargs() -> None:
    from ray.llm._internal.common.callbacks.cloud_downloader import CloudDownloader

    paths = [("s3://bucket/file", "/tmp/file")]
    hooked = adapter(CloudDownloader, callback_kwargs={"paths": paths})
    instance = hooked.construct(CONFIG, {})
    assert instance.kwargs == {"paths": paths}
    assert pickle.loads(pickle.dumps(hooked)).callback_kwargs == {"paths": paths}


@pytest.mark.parametrize(
    ("callback_kwargs", "expected"),
    [
        ({"llm_config": None}, r"may not hold \['llm_config'\]: Ray passes"),
        ({"ctx_kwargs": {}, "x": 1}, r"may not hold \['ctx_kwargs'\]"),
        ({"raise_error_on_callback": False}, "Set raise_error_on_callback through callback_config"),
        ({1: "x"}, r"keys must be str .* got \[1\]"),
    ],
)
def test_callback_kwargs_ray_could_not_pass_are_refused_at_once(
    callback_kwargs: dict[Any, Any], expected: str
) -> None:
    with pytest.raises(TypeError, match=expected):
        adapter(S.GoodCallback, callback_kwargs=callback_kwargs)
    with pytest.raises(TypeError, match=expected):
        construct_as_ray(S.GoodCallback, CONFIG, ctx_kwargs={}, callback_kwargs=callback_kwargs)


def test_ctx_starts_from_data_then_the_config() -> None:
    hooked = adapter(S.GoodCallback)
    assert hooked.ctx_kwargs_for(CONFIG, {}) == {
        "worker_node_download_model": to_ctx_download_choice("MODEL_AND_TOKENIZER"),
        "placement_group": None,
        "runtime_env": {"env_vars": {"A": "1"}},
    }
    group = unplaced_placement_group()
    kwargs = hooked.ctx_kwargs_for(
        CONFIG,
        {"worker_node_download_model": "NONE", "placement_group": group, "runtime_env": {}},
    )
    assert kwargs["worker_node_download_model"].name == "NONE"
    assert kwargs["placement_group"] is group
    assert kwargs["runtime_env"] == {"env_vars": {}}  # Ray completes it


def test_the_runtime_env_is_completed_as_ray_completes_it() -> None:
    environ = {"HF_TOKEN": "t", "OTHER": "x"}
    given = {"env_vars": {"A": "1"}, "pip": ["x"]}
    assert ray_runtime_env(given, environ=environ) == {
        "env_vars": {"A": "1", "HF_TOKEN": "t"},
        "pip": ["x"],
    }
    assert given == {"env_vars": {"A": "1"}, "pip": ["x"]}  # not written into
    assert ray_runtime_env(None, environ={}) == {"env_vars": {}}
    assert ray_runtime_env(None, bundles=[{"CPU": 1}, {"GPU": 0.5}], environ={}) == {
        "env_vars": {"VLLM_RAY_PER_WORKER_GPUS": "0.5"}
    }
    assert ray_runtime_env(None, bundles=[{"GPU": 1}, {"GPU": 0.5}], environ={}) == {"env_vars": {}}


def test_ctx_keeps_what_the_class_left_unless_data_changed_since() -> None:
    ctx = CallbackCtx(runtime_env={"env_vars": {"HF_TOKEN": "t"}})
    ctx.worker_node_download_model = to_ctx_download_choice("TOKENIZER_ONLY")
    reflected = data_view({"worker_node_download_model": NONE, "runtime_env": {"env_vars": {}}})
    apply_data_to_ctx(
        ctx,
        {"worker_node_download_model": "NONE", "runtime_env": {"env_vars": {}}},
        reflected=reflected,
    )
    assert ctx.worker_node_download_model.name == "TOKENIZER_ONLY"
    assert ctx.runtime_env == {"env_vars": {"HF_TOKEN": "t"}}
    apply_data_to_ctx(
        ctx, {"worker_node_download_model": "EXCLUDE_SAFETENSORS"}, reflected=reflected
    )
    assert ctx.worker_node_download_model.name == "EXCLUDE_SAFETENSORS"


def test_download_hook_on_the_instance_when_not_shipped() -> None:
    hooked = adapter(S.GoodCallback, ship_download_hook=False)
    run_all([hooked])
    assert hooked.instance.seen == ["before", "download", "after"]
    assert not any(c.on_worker_copy for c in hooked.calls)


def test_a_placement_group_set_in_ctx_reaches_data() -> None:
    hooked = adapter(S.OwnGroupCallback)
    runner = run_all([hooked])
    group = runner.data["placement_group"]
    assert group is hooked.instance.ctx.placement_group
    assert runner.key_origins()["placement_group"].phase == "pre_initialization"


def test_run_init_node_false_means_no_download_at_node_init() -> None:
    hooked = adapter(S.NoInitNodeCallback)
    runner = run_all([hooked])
    assert runner.data["local_node_download_model"] is NONE
    assert runner.data["worker_node_download_model"] is NONE
    assert [c.hook for c in hooked.calls] == ["on_before_node_init", "on_after_node_init"]


def test_skip_default_init_in_data_turns_node_init_off() -> None:
    hooked = adapter(S.GoodCallback, ship_download_hook=False)
    run_all([hooked], data={"skip_default_init": True})
    assert hooked.instance.ctx.run_init_node is False
    assert hooked.instance.seen == ["before", "after"]


def test_ctx_sees_what_other_callbacks_set() -> None:
    group = unplaced_placement_group()

    def sets(phase: str, config: Any, data: dict[str, Any]) -> dict[str, Any] | None:
        if phase == "pre_download":
            return {"worker_node_download_model": "EXCLUDE_SAFETENSORS"}
        if phase == "post_download":
            return {"placement_group": group}
        return None

    hooked = adapter(S.ReadsWhatOthersSet)
    runner = run_all([sets, hooked])
    assert runner.data[CUSTOM_DATA_KEY] == {
        "saw_group": True,
        "saw_choice": "EXCLUDE_SAFETENSORS",
    }
    assert hooked.instance.ctx.placement_group is group


def test_other_phases_and_unknown_phases_call_no_hook() -> None:
    hooked = adapter(S.GoodCallback)
    runner = CallbackRunner([hooked])
    for phase in ("post_download", "post_placement_group", "pre_engine_init", "pre_warmup"):
        asyncio.run(runner.run(phase, CONFIG))
    assert hooked.calls == []
    assert hooked.instance is None  # Ray builds it lazily, at the first hook


def test_the_adapter_is_a_coroutine_callable_so_timeouts_apply() -> None:
    runner = CallbackRunner([adapter(S.BlocksLoop)], timeout_s=0.3)
    with pytest.raises(CallbackTimeoutError, match="pre_initialization"):
        asyncio.run(runner.run_all(CONFIG))


# ---------------------------------------------------------------------- broken classes


@pytest.mark.parametrize(
    ("cls", "data", "match"),
    [
        (S.WrongCtxType, {}, r"ctx\.worker_node_download_model = str 'TOKENIZER_ONLY'"),
        (S.GroupIdInsteadOfGroup, {}, r"ctx\.placement_group = str 'pg-0123'.*not its id"),
        (S.BadRuntimeEnv, {}, r"ctx\.runtime_env = .*env_vars.*Dict\[str, str\]"),
        (S.RemovesGroup, {"placement_group": "group"}, r"ctx\.placement_group = None"),
    ],
)
def test_wrong_ctx_field_types_are_return_errors(
    cls: type, data: dict[str, Any], match: str
) -> None:
    if data.get("placement_group") == "group":
        data = {"placement_group": unplaced_placement_group()}
    with pytest.raises(CallbackReturnError, match=match) as info:
        run_all([adapter(cls)], data=data)
    assert cls.__qualname__ in str(info.value)


def test_replacing_ctx_breaks_the_contract() -> None:
    with pytest.raises(RayCallbackContractError, match="rather than replacing it"):
        run_all([adapter(S.ReplacesCtx)])


def test_a_raising_hook_surfaces_as_ray_wraps_it() -> None:
    hooked = adapter(S.RaisingHook)
    runner = CallbackRunner([hooked])
    with pytest.raises(Exception, match="boom") as info:
        asyncio.run(runner.run_all(CONFIG))
    error = info.value
    assert type(error) is Exception  # Ray's run_callback re-raises as a plain Exception
    assert str(error) == "Error running callback method 'on_before_node_init' on RaisingHook: boom"
    assert isinstance(error.__cause__, ValueError)
    assert any("phase 'pre_initialization'" in note for note in error.__notes__)
    assert hooked.calls[0].raised is error.__cause__
    assert hooked.calls[0].surfaced is error


def test_raise_error_on_callback_false_logs_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    hooked = adapter(S.RaisingHook, raise_error_on_callback=False)
    runner = run_all([hooked])
    assert runner.data[CUSTOM_DATA_KEY] == {"half": True}  # as the hook left ctx
    assert "Error running callback method 'on_before_node_init'" in caplog.text
    assert hooked.calls[0].surfaced is None
    assert any("raised ValueError: boom" in p for p in run_problems(hooked))


def test_a_base_exception_passes_through_untouched() -> None:
    hooked = adapter(S.RaisesBaseException)
    with pytest.raises(S.Abort):
        run_all([hooked])
    assert any("raise only Exceptions" in p for p in run_problems(hooked))


def test_unpicklable_error_is_reported() -> None:
    hooked = adapter(S.RaisesUnpicklableError, raise_error_on_callback=False)
    run_all([hooked])
    problems = run_problems(hooked)
    assert any("survive pickling" in p and "TwoArgError" in p for p in problems)


def test_a_sync_hook_where_ray_awaits_still_runs() -> None:
    hooked = adapter(S.SyncAwaitedHook)
    runner = run_all([hooked])
    assert runner.data[CUSTOM_DATA_KEY] == {"sync": True}
    assert hooked.calls[0].awaited is False


def test_a_coroutine_returned_by_a_plain_def_is_never_awaited() -> None:
    hooked = adapter(S.ReturnsCoroutine)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        runner = run_all([hooked])
        gc.collect()
    assert CUSTOM_DATA_KEY not in runner.data
    assert any("never runs" in p for p in run_problems(hooked))


def test_an_async_download_hook_runs_as_ray_runs_it_on_a_worker() -> None:
    hooked = adapter(S.AsyncDownloadHook)
    run_all([hooked])
    call = hooked.calls[1]
    assert (call.ray_call, call.awaited, call.raised) == ("run_callback_sync", True, None)


def test_a_constructor_with_another_signature_fails_as_in_ray() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument") as info:
        run_all([adapter(S.DifferentSignature)])
    assert any("as Ray does" in note for note in info.value.__notes__)


def test_a_constructor_without_super_init_breaks_the_contract() -> None:
    with pytest.raises(RayCallbackContractError, match=r"super\(\).__init__"):
        run_all([adapter(S.NoSuperInit)])


def test_an_unpicklable_instance_cannot_reach_the_workers() -> None:
    with pytest.raises(RayCallbackContractError, match="cannot be sent to worker nodes"):
        run_all([adapter(S.Unpicklable)])
    run_all([adapter(S.Unpicklable, ship_download_hook=False)])


def test_download_hook_changes_are_lost_as_in_ray() -> None:
    hooked = adapter(S.DownloadHookChangesCtx)
    runner = run_all([hooked])
    assert "worker_node_download_model" not in runner.data
    assert hooked.calls[1].lost == ("worker_node_download_model",)
    assert any("never reaches the replica" in p for p in run_problems(hooked))

    unshipped = adapter(S.DownloadHookChangesCtx, ship_download_hook=False)
    assert run_all([unshipped]).data["worker_node_download_model"] is NONE


def test_a_returned_value_is_dropped_and_reported() -> None:
    hooked = adapter(S.ReturnsValue)
    runner = run_all([hooked])
    assert "placement_group" not in runner.data
    assert any("Ray discards" in p for p in run_problems(hooked))


# ---------------------------------------------------------------------- mapping


def test_download_choices_convert_by_name() -> None:
    for member in NodeModelDownloadable:
        ctx_value = to_ctx_download_choice(member)
        assert is_download_choice(ctx_value)
        assert to_data_download_choice(ctx_value) is member
        assert to_ctx_download_choice(member.name).name == member.name
    assert to_ctx_download_choice("tokenizer_only") == "tokenizer_only"
    assert not is_download_choice("TOKENIZER_ONLY")


def test_data_to_ctx_and_back() -> None:
    ctx = CallbackCtx(runtime_env={"env_vars": {}})
    group = unplaced_placement_group()
    data = {
        "worker_node_download_model": "NONE",
        "placement_group": group,
        "runtime_env": {"env_vars": {"B": "2"}},
        CUSTOM_DATA_KEY: {"k": 1},
    }
    apply_data_to_ctx(ctx, data)
    assert ctx.worker_node_download_model.name == "NONE"
    assert ctx.placement_group is group
    assert ctx.runtime_env == {"env_vars": {"B": "2"}}
    assert ctx.runtime_env is not data["runtime_env"]
    assert ctx.custom_data == {"k": 1} and ctx.custom_data is not data[CUSTOM_DATA_KEY]
    before = CtxState.of(ctx)
    ctx.runtime_env["env_vars"]["C"] = "3"  # in place, inside the value
    ctx.run_init_node = False
    changed = before.changed_fields(ctx)
    assert changed == ("runtime_env", "run_init_node")
    mapped, unmapped = data_from_ctx(before, ctx, changed)
    assert mapped == {
        "runtime_env": {"env_vars": {"B": "2", "C": "3"}},
        "local_node_download_model": NONE,
        "worker_node_download_model": NONE,
    }
    assert unmapped == ()


def test_what_does_not_map_is_noted() -> None:
    ctx = CallbackCtx(runtime_env={"env_vars": {}}, run_init_node=False)
    before = CtxState.of(ctx)
    ctx.runtime_env = None
    ctx.run_init_node = True
    mapped, unmapped = data_from_ctx(before, ctx, before.changed_fields(ctx))
    assert mapped == {}
    assert "cannot remove a runtime env" in unmapped[0]
    assert "went back to True" in unmapped[1]


def test_phases_cover_every_hook() -> None:
    assert set(HOOK_PHASES.values()) <= set(PHASES)
    assert pickle.loads(pickle.dumps(CallbackCtx())) == CallbackCtx()


def test_an_adapter_pickles_as_a_fresh_one() -> None:
    hooked = adapter(S.GoodCallback, callback_kwargs={"marker": "p"}, ship_download_hook=False)
    run_all([hooked])
    copy = pickle.loads(pickle.dumps(hooked))
    assert (copy.callback_class, copy.callback_kwargs, copy.ship_download_hook) == (
        S.GoodCallback,
        {"marker": "p"},
        False,
    )
    assert copy.instance is None and copy.calls == []


def test_a_config_holding_the_adapter_still_ships_the_instance() -> None:
    hooked = adapter(S.RaisesUnpicklableError, raise_error_on_callback=False)
    config = LLMConfig(model_id=TINY_MODEL_PATH, callbacks=[hooked])
    runner = CallbackRunner([hooked])
    for _ in range(2):  # the second lifecycle ships an instance whose adapter saw an error
        asyncio.run(runner.run_all(config))
    assert [c.hook for c in hooked.calls].count("on_before_download_model_files_distributed") == 2


def test_a_timed_out_async_hook_is_a_timeout_not_a_hook_error() -> None:
    hooked = adapter(S.SlowAsyncHook)
    runner = CallbackRunner([hooked], timeout_s=0.2)
    with pytest.raises(CallbackTimeoutError, match="post_initialization"):
        asyncio.run(runner.run_all(CONFIG))
    assert [c.hook for c in hooked.calls] == [
        "on_before_node_init",
        "on_before_download_model_files_distributed",
    ]
    assert run_problems(hooked) == []
