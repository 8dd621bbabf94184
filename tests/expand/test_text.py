"""Cleaning LLM answers, counting tokens, and fitting AuraFlow's 256-token window."""

from __future__ import annotations

import pytest

from pipeline.expand import AURAFLOW_TOKEN_WINDOW, clean_expansion, count_tokens, estimate_tokens, fit_to_window
from pipeline.expand._text import unusable_reason

PARAGRAPH = "A red fox sits in deep snow. Soft golden light falls from the left."


@pytest.mark.parametrize("raw", [
    PARAGRAPH,
    f"Sure! Here is an expanded prompt:\n\n{PARAGRAPH}",
    f"Certainly. Here's a detailed version for AuraFlow:\n{PARAGRAPH}",
    f'"{PARAGRAPH}"',
    f"“{PARAGRAPH}”",
    f"**Expanded prompt:** {PARAGRAPH}",
    f"Prompt: {PARAGRAPH}",
    f"```\n{PARAGRAPH}\n```",
    f"<think>The user wants a fox. Let me think.</think>\n{PARAGRAPH}",
    "A red fox sits in deep snow.\n\nSoft golden light falls from the left.\n\nLet me know if you want changes!",
    f"# Prompt\n{PARAGRAPH} I hope this helps.",
    "- A red fox sits in deep snow.\n- Soft golden light falls from the left.",
])
def test_clean_expansion_leaves_one_plain_paragraph(raw: str) -> None:
    assert clean_expansion(raw) == PARAGRAPH


def test_clean_expansion_keeps_quoted_words_and_emphasis_text() -> None:
    raw = 'A neon sign that reads "OPEN LATE" above a *rainy* street.'
    assert clean_expansion(raw) == 'A neon sign that reads "OPEN LATE" above a rainy street.'


def test_clean_expansion_drops_an_unfinished_reasoning_block() -> None:
    assert clean_expansion("<think>I should describe a fox and then") == ""


@pytest.mark.parametrize(("text", "problem"), [
    ("", "empty"),
    ("I'm sorry, but I can't help with that.", "refusal"),
    ("fox", "too short"),
    ("## ** -- 1234 5678 %%%% ////", "does not read as text"),
])
def test_unusable_answers_are_recognised(text: str, problem: str) -> None:
    reason = unusable_reason(text)
    assert reason is not None and problem in reason


def test_a_real_paragraph_is_usable() -> None:
    assert unusable_reason(PARAGRAPH) is None


def test_estimate_is_conservative_for_plain_english() -> None:
    """Never below one token per word plus EOS: short English words are one LLaMA token each."""
    text = "a red fox sits in the snow at golden hour"
    assert estimate_tokens(text) >= len(text.split()) + 1
    assert estimate_tokens("") == 1
    assert count_tokens(text) == (estimate_tokens(text), False)


class _WordTokenizer:
    """One token per whitespace word; encode() like transformers' (add_special_tokens keyword)."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(range(len(text.split()) + (1 if add_special_tokens else 0)))


def test_count_with_a_tokenizer_is_exact_and_adds_eos() -> None:
    assert count_tokens("one two three", _WordTokenizer()) == (4, True)
    assert count_tokens("one two three", lambda text: 7) == (7, True)


def test_fit_to_window_leaves_short_text_alone() -> None:
    assert fit_to_window(PARAGRAPH) == (PARAGRAPH, False, estimate_tokens(PARAGRAPH))


def test_fit_to_window_cuts_at_a_sentence_end() -> None:
    sentence = "The quick brown fox jumps over the lazy dog near the river bank."  # 13 words
    text = " ".join([sentence] * 30)
    cut, truncated, before = fit_to_window(text, tokenizer=_WordTokenizer())
    assert truncated and before == 13 * 30 + 1
    assert cut.endswith("bank.")
    assert count_tokens(cut, _WordTokenizer())[0] <= AURAFLOW_TOKEN_WINDOW
    assert len(cut.split()) == 13 * 19  # 19 whole sentences (247 words) fit in 255 tokens


def test_fit_to_window_cuts_a_run_on_sentence_at_a_word_boundary() -> None:
    text = ", ".join(f"a small detail number {i} with" for i in range(80))
    cut, truncated, _ = fit_to_window(text, tokenizer=_WordTokenizer(), window=40)
    assert truncated
    assert cut.endswith(".") and not cut.endswith(",.") and not cut.endswith("with.")
    assert count_tokens(cut, _WordTokenizer())[0] <= 40
    assert text.startswith(cut[:-1])
