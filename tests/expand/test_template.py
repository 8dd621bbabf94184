"""The template backend: offline, deterministic per seed, varied across seeds, clean, within the window."""

from __future__ import annotations

import re

import pytest

from pipeline import ExpansionResult, InvalidInputError, expand_prompt
from pipeline.expand import AURAFLOW_TOKEN_WINDOW, estimate_tokens
from pipeline.expand._template import DETAILED_WORDS, template_expand

SHORT_PROMPTS = ["a red fox in the snow", "portrait of an old fisherman", "a cup of coffee", "Tokyo street at night",
                 "a dragon over the mountains", "an astronaut riding a horse", "a glass bottle", "something strange"]


@pytest.mark.parametrize("prompt", SHORT_PROMPTS)
def test_same_seed_same_text_and_seeds_vary(prompt: str) -> None:
    first = expand_prompt(prompt, backend="template", seed=7)
    assert first == expand_prompt(prompt, backend="template", seed=7)
    variants = {expand_prompt(prompt, backend="template", seed=s).prompt for s in range(8)}
    assert len(variants) >= 4
    assert first.expanded and not first.truncated and first.warnings == ()


@pytest.mark.parametrize("prompt", SHORT_PROMPTS)
def test_expansion_is_one_clean_paragraph_that_starts_with_the_prompt(prompt: str) -> None:
    text = template_expand(prompt, 3)
    assert text.lower().startswith(prompt.lower())
    assert "\n" not in text and "  " not in text and '"' not in text and "*" not in text
    assert text.endswith(".")
    assert not re.search(r"\.\.|,\.|\s[.,]", text)
    assert len(text.split()) > 3 * len(prompt.split())
    assert estimate_tokens(text) < AURAFLOW_TOKEN_WINDOW


def test_the_medium_and_light_the_user_named_are_kept() -> None:
    for seed in range(10):
        text = template_expand("a harbor at dusk, watercolor painting", seed)
        assert "photograph" not in text and "3D" not in text  # no second medium
        assert "Lit by" not in text and "lit by" not in text  # "dusk" already sets the light


def test_detailed_prompts_are_left_alone() -> None:
    prompt = " ".join(["a lighthouse on a rocky cliff above a stormy sea, waves crashing,"] * 4)
    assert len(prompt.split()) >= DETAILED_WORDS
    assert template_expand(prompt, 1) == prompt
    result = expand_prompt(prompt + "  ", backend="template", seed=1)
    assert result.prompt == prompt and result.warnings == ()


def test_a_prompt_longer_than_the_window_is_cut_with_a_warning() -> None:
    prompt = " ".join(f"Sentence {i} describes one more detail of the old stone bridge." for i in range(40))
    result = expand_prompt(prompt, backend="template", seed=0)
    assert result.truncated
    assert estimate_tokens(result.prompt) <= AURAFLOW_TOKEN_WINDOW
    assert result.prompt.endswith(".") and prompt.startswith(result.prompt)
    assert len(result.warnings) == 1 and "256-token window" in result.warnings[0]
    assert "(estimated)" in result.warnings[0]


def test_empty_prompt_comes_back_with_a_note() -> None:
    result = expand_prompt("   ", backend="template", seed=0)
    assert result == ExpansionResult("   ", "template", ("the prompt is empty: nothing to expand",), False, False)


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"backend": "magic", "seed": 0}, "backend"),
    ({"backend": "template", "seed": -1}, "seed"),
    ({"backend": "template", "seed": 0, "max_tokens": 0}, "max_tokens"),
])
def test_bad_arguments_are_rejected_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        expand_prompt("a fox", **kwargs)
    assert info.value.field == field
