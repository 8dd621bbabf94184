"""Text Encode -> Sampler -> Decode and Generate: same pictures as the core, progress, previews, Cancel, errors."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import pytest
import torch
from testkit.fake_comfy import FakeComfy, InterruptProcessingException

ARGS = {"seed": 7, "steps": 3, "cfg": 3.5, "width": 64, "height": 48}


@pytest.fixture(scope="module")
def errors(pack: ModuleType) -> ModuleType:
    return importlib.import_module(f"{pack.__name__}.pipeline.errors")


def _cond(sampling: ModuleType, model: Any, prompt: str = "a lighthouse at dusk", negative: str = "") -> Any:
    (cond,) = sampling.AuraFlowTextEncode().encode(model, prompt, negative)
    return cond


def _sample(sampling: ModuleType, model: Any, cond: Any, *, batch_size: int = 1, denoise: float = 1.0,
            latent: dict[str, Any] | None = None, **overrides: Any) -> torch.Tensor:
    args = {**ARGS, **overrides}
    (out,) = sampling.AuraFlowSampler().sample(model, cond, args["seed"], args["steps"], args["cfg"], 1.73,
                                               args["width"], args["height"], batch_size, denoise, latent, "5")
    return out["samples"]


def test_three_nodes_equal_generate_node_and_core(sampling: ModuleType, model: Any) -> None:
    cond = _cond(sampling, model, negative="blurry")
    samples = _sample(sampling, model, cond, batch_size=2)
    assert samples.shape == (2, 4, 6, 8) and samples.dtype == torch.float32 and samples.device.type == "cpu"
    (images,) = sampling.AuraFlowDecode().decode(model, {"samples": samples})
    assert images.shape == (2, 48, 64, 3) and images.dtype == torch.float32 and images.device.type == "cpu"
    assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0

    out = sampling.AuraFlowGenerate().generate(model, "a lighthouse at dusk", 2, ARGS["seed"], ARGS["cfg"],
                                               ARGS["steps"], False, ARGS["width"], ARGS["height"], "blurry")
    assert out[1] == ARGS["seed"] and out[2] == "a lighthouse at dusk"
    torch.testing.assert_close(out[0], images, rtol=0, atol=1e-6)

    core = model.generate("a lighthouse at dusk", negative_prompt="blurry", num_images=2, seed=ARGS["seed"],
                          guidance_scale=ARGS["cfg"], num_inference_steps=ARGS["steps"], width=64, height=48,
                          output_type="latent")
    torch.testing.assert_close(core.latents, samples, rtol=0, atol=0)


def test_progress_every_step_with_previews_and_room_made(sampling: ModuleType, model: Any,
                                                         fake_comfy: FakeComfy) -> None:
    _sample(sampling, model, _cond(sampling, model), steps=4)
    assert [(value, total) for value, total, _ in fake_comfy.progress] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(preview == ("JPEG", "image", 512) for *_, preview in fake_comfy.progress)
    assert fake_comfy.previews == 4
    assert fake_comfy.memory_calls and fake_comfy.memory_calls[0][0] == "free"


def test_broken_previewer_never_stops_sampling(sampling: ModuleType, model: Any, fake_comfy: FakeComfy) -> None:
    def explode(_: int) -> None:
        raise RuntimeError("no preview today")

    fake_comfy.on_preview = explode
    _sample(sampling, model, _cond(sampling, model))
    assert [p for _, _, p in fake_comfy.progress] == [None, None, None]  # previews dropped after the failure


def test_cancel_stops_within_one_step_and_the_queue_goes_on(sampling: ModuleType, model: Any,
                                                            fake_comfy: FakeComfy) -> None:
    def cancel_during_step_two(count: int) -> None:
        if count == 2:
            fake_comfy.interrupted = True  # the user presses Cancel while step 2 runs

    fake_comfy.on_preview = cancel_during_step_two
    cond = _cond(sampling, model)
    with pytest.raises(InterruptProcessingException):
        _sample(sampling, model, cond, steps=10)
    assert [value for value, _, _ in fake_comfy.progress] == [1]
    assert not fake_comfy.interrupted  # ComfyUI's exception cleared the flag
    fake_comfy.on_preview, fake_comfy.progress = None, []
    _sample(sampling, model, cond, steps=2)
    assert [value for value, _, _ in fake_comfy.progress] == [1, 2]


def test_interrupt_flag_raises_comfys_exception_from_our_cancel(sampling: ModuleType, model: Any,
                                                                fake_comfy: FakeComfy) -> None:
    """Our callback polls the flag itself too (ComfyUI's bar may be absent): CancelledError -> ComfyUI's interrupt."""
    fake_comfy.interrupted = True
    with pytest.raises(InterruptProcessingException):
        sampling.AuraFlowGenerate().generate(model, "x", 1, 0, 3.5, 5, False, 64, 64)
    assert fake_comfy.progress == [] and not fake_comfy.interrupted


def test_cancel_outside_comfyui_is_our_cancelled_error(sampling: ModuleType, model: Any, errors: ModuleType,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    calls = iter([False, True])
    monkeypatch.setattr(sampling, "interrupt_requested", lambda: next(calls))
    with pytest.raises(errors.CancelledError, match="after step 2 of 6"):
        _sample(sampling, model, _cond(sampling, model), steps=6)


@pytest.mark.parametrize("overrides, expected", [
    ({"width": 512}, ["AuraFlow Sampler:", "width=512", "at most 256 px", "Change the widget"]),
    ({"height": 40}, ["AuraFlow Sampler:", "height=40", "multiple of 16"]),
])
def test_sizes_the_model_cannot_do_name_the_node_and_fix(sampling: ModuleType, model: Any, common: ModuleType,
                                                         overrides: dict[str, int], expected: list[str]) -> None:
    with pytest.raises(common.AuraFlowNodeError) as caught:
        _sample(sampling, model, _cond(sampling, model), **overrides)
    for text in expected:
        assert text in str(caught.value)


def test_generate_size_error_and_denoise_without_latent(sampling: ModuleType, model: Any, common: ModuleType) -> None:
    with pytest.raises(common.AuraFlowNodeError, match="AuraFlow Generate: height=1024"):
        sampling.AuraFlowGenerate().generate(model, "x", 1, 0, 3.5, 2, False, 64, 1024)
    with pytest.raises(common.AuraFlowNodeError, match="AuraFlow Sampler: denoise=0.5.*latent"):
        _sample(sampling, model, _cond(sampling, model), denoise=0.5)


def test_generate_expands_the_prompt_and_reports_what_was_used(sampling: ModuleType, model: Any) -> None:
    images, seed, used = sampling.AuraFlowGenerate().generate(model, "a red fox", 1, 3, 1.0, 2, True, 64, 64, "",
                                                              "template")
    assert seed == 3 and used != "a red fox" and "red fox" in used
    assert images.shape == (1, 64, 64, 3)
    again = sampling.AuraFlowGenerate().generate(model, "a red fox", 1, 3, 1.0, 2, True, 64, 64, "", "template")
    assert again[2] == used
    torch.testing.assert_close(again[0], images, rtol=0, atol=0)


def test_conditioning_is_reused_across_seeds(sampling: ModuleType, model: Any, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    cond = _cond(sampling, model)
    monkeypatch.setattr(model, "encode_prompt", lambda *_: pytest.fail("re-encoded"))
    first = _sample(sampling, model, cond, seed=1)
    second = _sample(sampling, model, cond, seed=2)
    assert not torch.equal(first, second)
