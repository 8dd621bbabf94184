"""The local backend end to end on a tiny random LLaMA and a tokenizer trained in code (nothing downloaded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from testkit.tiny_llm import build_tiny_causal_lm

from pipeline import CancelledError, MissingComponentError, ModelLoadError, expand_prompt
from pipeline.expand import _local, free_local_model, loaded_model


@pytest.fixture(scope="module")
def llm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ComfyUI-shaped models/LLM/<name> folder holding the tiny model."""
    return build_tiny_causal_lm(tmp_path_factory.mktemp("models") / "LLM" / "tiny-llama")


@pytest.fixture(autouse=True)
def _unload() -> Iterator[None]:
    yield
    free_local_model()


def _expand(folder: Path, seed: int, **kwargs: object):
    return expand_prompt("a red fox in the snow", backend="local", local_model=str(folder), seed=seed,
                         max_tokens=kwargs.pop("max_tokens", 24), device="cpu", **kwargs)


def test_expands_through_the_chat_template_and_cleans(llm_folder: Path) -> None:
    result = _expand(llm_folder, seed=1)
    assert result.backend == "local" and result.expanded, result.warnings
    assert result.prompt and "\n" not in result.prompt and "<|" not in result.prompt and "</s>" not in result.prompt
    assert loaded_model() == str(llm_folder)


def test_same_seed_same_text_other_seeds_differ(llm_folder: Path) -> None:
    first = _expand(llm_folder, seed=5)
    assert _expand(llm_folder, seed=5) == first
    others = {_expand(llm_folder, seed=s).prompt for s in (6, 7, 8)}
    assert len(others - {first.prompt}) >= 2


def test_caller_random_state_is_untouched(llm_folder: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _expand(llm_folder, seed=9)
    assert torch.equal(torch.rand(3), expected)


def test_generation_is_bounded_by_max_tokens(llm_folder: Path) -> None:
    for max_tokens in (1, 7, 16):
        generated = _local.generate("a fox", model=str(llm_folder), seed=0, max_tokens=max_tokens,
                                    system_prompt="Describe the image.", device="cpu")
        assert 1 <= generated.new_tokens <= max_tokens


def test_prompt_assembly_uses_the_models_chat_template(llm_folder: Path) -> None:
    loaded = _local._get(str(llm_folder), "cpu")
    text, notes = _local._chat_input(loaded.tokenizer, "SYSTEM TEXT", "a fox")
    assert text == "<|system|>\nSYSTEM TEXT</s>\n<|user|>\nImage idea: a fox</s>\n<|assistant|>\n"
    assert notes == ()


def test_model_is_cached_between_calls_and_freed(llm_folder: Path) -> None:
    first = _local._get(str(llm_folder), "cpu")
    assert _local._get(str(llm_folder), "cpu") is first
    assert free_local_model() is True
    assert loaded_model() is None and free_local_model() is False


def test_a_model_without_chat_template_still_runs_with_a_note(tmp_path: Path) -> None:
    folder = build_tiny_causal_lm(tmp_path / "LLM" / "base-model", chat_template=None)
    result = _expand(folder, seed=1)
    assert any("no chat template" in w for w in result.warnings)


def test_cancel_stops_generation(llm_folder: Path) -> None:
    with pytest.raises(CancelledError):
        _expand(llm_folder, seed=1, should_cancel=lambda: True)


def test_no_model_configured_falls_back_or_says_why_when_strict() -> None:
    result = expand_prompt("a fox", backend="local", seed=0, local_model=None)
    assert result.prompt == "a fox" and not result.expanded
    assert "no local language model is configured" in result.warnings[0]
    with pytest.raises(MissingComponentError, match="models/LLM"):
        expand_prompt("a fox", backend="local", seed=0, local_model="none", strict=True)


def test_folders_that_are_not_models_are_refused_clearly(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingComponentError, match="no config.json"):
        expand_prompt("a fox", backend="local", seed=0, local_model=str(tmp_path / "empty"), strict=True)
    with pytest.raises(ModelLoadError, match="no model folder"):
        expand_prompt("a fox", backend="local", seed=0, local_model=str(tmp_path / "missing"), strict=True)
    with pytest.raises(ModelLoadError, match="nothing is downloaded"):  # a repo id absent from the (empty) cache
        expand_prompt("a fox", backend="local", seed=0, local_model="someone/not-cached-model", strict=True)


def test_a_runtime_failure_falls_back_even_when_strict(llm_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = _local._get(str(llm_folder), "cpu")

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(loaded.model, "generate", out_of_memory)
    result = _expand(llm_folder, seed=1, strict=True)
    assert result.prompt == "a red fox in the snow" and not result.expanded
    assert "OutOfMemoryError" in result.warnings[0]
