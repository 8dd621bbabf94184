"""Text hygiene for expanded prompts: clean an LLM's answer, count tokens, fit AuraFlow's 256-token window.

Pure string functions, no torch: every backend's output passes through :func:`clean_expansion` (LLM backends
only) and :func:`fit_to_window` (all backends), so the window rule is stated once.

Why the window matters: AuraFlow encodes prompts with its UMT5 tokenizer truncated at 256 tokens, EOS included
(diffusers ``AuraFlowPipeline.encode_prompt``, ``max_sequence_length=256``). Anything past that is silently
dropped there; cutting here, at a sentence or word boundary and with a warning, keeps the end of the prompt
readable and tells the user.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

__all__ = [
    "AURAFLOW_TOKEN_WINDOW",
    "clean_expansion",
    "count_tokens",
    "estimate_tokens",
    "fit_to_window",
    "unusable_reason",
]

#: AuraFlow's text window in tokens, EOS included (diffusers ``max_sequence_length=256``).
AURAFLOW_TOKEN_WINDOW = 256

TokenCounter = Callable[[str], int]

# ---------------------------------------------------------------------------------------------------------------
# Token counting

_ESTIMATE_PIECES = re.compile(r"[A-Za-z]+|\d|\s+|.", re.DOTALL)


def estimate_tokens(text: str) -> int:
    """A conservative (high) estimate of AuraFlow's token count for ``text``, EOS included.

    Used when no tokenizer is at hand (the template and remote backends run without loading AuraFlow's
    tokenizer). AuraFlow's tokenizer is LLaMA's SentencePiece: common English words are one token, long or rare
    words split into pieces of roughly four letters or more, digits are one token each, punctuation one each,
    and characters outside its vocabulary fall back to bytes. So we count ``ceil(len / 4)`` per run of ASCII
    letters, one per digit and per ASCII punctuation mark, two per other character, plus one for EOS. The rule
    is meant to err high, so text that fits by this estimate should fit for real; it has not been measured
    against the real LLaMA tokenizer (none can be downloaded here), only checked to count high in tests.
    """
    total = 1  # the EOS AuraFlow's tokenizer appends
    for piece in _ESTIMATE_PIECES.findall(text):
        if piece.isspace():
            continue
        if piece.isascii() and piece.isalpha():
            total += math.ceil(len(piece) / 4)
        elif piece.isascii():
            total += 1
        else:
            total += 2
    return total


def _counter_for(tokenizer: Any | None) -> tuple[TokenCounter, bool]:
    """Return ``(count, exact)`` for a tokenizer object, a ``str -> int`` callable, or None (estimate)."""
    if tokenizer is None:
        return estimate_tokens, False
    encode = getattr(tokenizer, "encode", None)
    if encode is None:
        if callable(tokenizer):
            return (lambda text: int(tokenizer(text))), True
        raise TypeError("tokenizer must have an encode() method or be a callable returning a token count")

    def count(text: str) -> int:
        try:
            ids = encode(text, add_special_tokens=False)
        except TypeError:  # sentencepiece / tokenizers objects take no such keyword
            ids = encode(text)
        ids = getattr(ids, "ids", ids)  # a tokenizers.Encoding
        return len(ids) + 1  # + the EOS AuraFlow appends

    return count, True


def count_tokens(text: str, tokenizer: Any | None = None) -> tuple[int, bool]:
    """Tokens ``text`` takes in AuraFlow's window (EOS included) and whether the count is exact.

    ``tokenizer`` is AuraFlow's tokenizer (anything with ``encode``: transformers, ``tokenizers``,
    ``sentencepiece``) or a ``str -> int`` callable; without one the count is :func:`estimate_tokens`.
    """
    count, exact = _counter_for(tokenizer)
    return count(text), exact


# ---------------------------------------------------------------------------------------------------------------
# Cutting to the window

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_DANGLING = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to", "with"}


def _tidy_cut(words: list[str]) -> str:
    """Join a word-boundary cut and drop what reads as broken: trailing commas and dangling little words."""
    words = list(words)
    while words:
        last = words[-1].rstrip(",;:-–—")
        if not last or last.lower() in _DANGLING:
            words.pop()
            continue
        words[-1] = last
        break
    text = " ".join(words)
    if text and text[-1] not in ".!?":
        text += "."
    return text


def fit_to_window(text: str, *, tokenizer: Any | None = None,
                  window: int = AURAFLOW_TOKEN_WINDOW) -> tuple[str, bool, int]:
    """Cut ``text`` so it fits ``window`` tokens; return ``(text, was_cut, tokens_before)``.

    The cut falls at the last sentence end that keeps at least half of what fits, otherwise at a word boundary
    (trailing commas and dangling words such as "and", "with" dropped, a full stop added), so the encoder never
    sees half a word. Text that fits is returned unchanged.
    """
    count, _exact = _counter_for(tokenizer)
    before = count(text)
    if before <= window:
        return text, False, before
    words = text.split()
    lo, hi = 0, len(words)  # the longest prefix of words that fits, by bisection (counts grow with length)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid])) <= window - 1:  # one spare token for the full stop a cut may add
            lo = mid
        else:
            hi = mid - 1
    prefix = " ".join(words[:lo])
    ends = [m.end() for m in _SENTENCE_END.finditer(prefix)]
    if ends and ends[-1] >= len(prefix) // 2:
        cut = prefix[: ends[-1]].strip()
    else:
        cut = _tidy_cut(words[:lo])
        while cut and count(cut) > window:  # the added full stop did not fit after all
            lo -= 1
            cut = _tidy_cut(words[:lo])
    return cut, True, before


# ---------------------------------------------------------------------------------------------------------------
# Cleaning an LLM's answer

_THINK_BLOCK = re.compile(r"<(think|thinking|reasoning)>.*?(</\1>|$)", re.IGNORECASE | re.DOTALL)
_FENCE = re.compile(r"^\s*```[\w-]*\s*$", re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)])\s+", re.MULTILINE)
_QUOTE_LINE = re.compile(r"^\s*>\s?", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1")
_PREAMBLES = (
    # "Sure!", "Certainly, ...", "Okay." at the very start
    re.compile(r"^(?:sure|certainly|of course|absolutely|okay|ok|great|alright|gladly)\b[!.,:]*\s*", re.IGNORECASE),
    # "Here is an expanded prompt:" / "Here's a detailed version for AuraFlow:" up to the colon or line end
    re.compile(r"^here(?:'s|’s| is| are)\b[^:\n]{0,120}(?::|\n)\s*", re.IGNORECASE),
    # "Expanded prompt:", "Prompt:", "Image description:"
    re.compile(r"^(?:\w+\s){0,2}(?:prompt|description|output|answer|result)\s*:\s*", re.IGNORECASE),
)
_TRAILERS = re.compile(
    r"(?:^|(?<=[.!?]))\s*(?:let me know\b|i hope\b|feel free\b|hope this\b|this prompt\b|this description\b|note:|"
    r"would you like\b|if you(?:'d| would) like\b).*$",
    re.IGNORECASE | re.DOTALL,
)
_WRAPPING_QUOTES = (('"', '"'), ("“", "”"), ("'", "'"), ("‘", "’"), ("«", "»"), ("„", "“"), ("`", "`"))
_REFUSALS = re.compile(
    r"^(?:i'm sorry|i am sorry|sorry\b|i can(?:not|'t)\b|i am unable|i'm unable|as an ai\b|i won't\b)", re.IGNORECASE
)


def _drop_headings(text: str) -> str:
    """Markdown headings are titles ("# Prompt"): drop them, unless the answer is nothing but a heading."""
    lines = text.splitlines()
    body = [line for line in lines if line.strip() and not _HEADING.match(line)]
    if body:
        return "\n".join(line for line in lines if not _HEADING.match(line))
    return _HEADING.sub("", text)


def _strip_wrapping_quotes(text: str) -> str:
    changed = True
    while changed and len(text) >= 2:
        changed = False
        for left, right in _WRAPPING_QUOTES:
            inner = text[1:-1]
            # strip only quotes that wrap the whole answer, not a quoted word at either end of a sentence
            if text.startswith(left) and text.endswith(right) and left not in inner and right not in inner:
                text = inner.strip()
                changed = True
                break
    return text


def clean_expansion(text: str) -> str:
    """Turn an LLM's answer into one plain paragraph: the prompt only.

    LLMs wrap answers in ways a text encoder would read literally: reasoning blocks (``<think>``), markdown
    (fences, headings, bullets, emphasis), chatty preambles ("Sure! Here is an expanded prompt:"), sign-offs
    ("Let me know if ..."), quotes around the whole answer, and line breaks. All of that is removed; quotes
    inside the text (words to be drawn in the image) are kept.
    """
    text = _THINK_BLOCK.sub(" ", text)
    text = _FENCE.sub("", text)
    text = _drop_headings(text)
    text = _QUOTE_LINE.sub("", text)
    text = _BULLET.sub("", text)
    text = _EMPHASIS.sub(r"\2", text).strip()
    for _ in range(4):  # preambles stack ("Sure! Here's the prompt: Prompt: ...")
        before = text
        for pattern in _PREAMBLES:
            text = pattern.sub("", text, count=1).lstrip()
        text = _strip_wrapping_quotes(text)
        if text == before:
            break
    text = " ".join(text.split())  # newlines and runs of spaces -> one paragraph
    text = _TRAILERS.sub("", text).strip()
    return _strip_wrapping_quotes(text)


def unusable_reason(text: str) -> str | None:
    """Why a cleaned answer cannot serve as a prompt (None when it can): empty, too short, a refusal, or garbage."""
    if not text:
        return "the answer was empty"
    if _REFUSALS.match(text):
        return f"the answer was a refusal ({text[:60]!r})"
    if len(text.split()) < 3:
        return f"the answer was too short to be a prompt ({text!r})"
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters < 0.6 * len(visible):
        return f"the answer does not read as text ({text[:60]!r})"
    return None
