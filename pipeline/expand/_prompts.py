"""Our system prompt for LLM backends, written for what AuraFlow does well.

AuraFlow's text encoder is a 1.2 B UMT5 reading up to 256 tokens (about 180 English words), and the model follows
long, literal, concrete descriptions closely (auraflow-reference §2, §10). So the LLM is asked for one plain
paragraph of visible facts, well inside that window, keeping every detail the user gave; the wording avoids
what a text encoder reads literally but cannot draw (feelings, sounds, metaphors) and what our cleaner would
have to strip (preambles, lists, markdown).
"""

from __future__ import annotations

__all__ = ["SYSTEM_PROMPT", "user_message"]

SYSTEM_PROMPT = (
    "You turn short image ideas into detailed prompts for AuraFlow, a text-to-image model that follows long, "
    "literal descriptions closely. Rewrite the user's idea as a single paragraph of 60 to 140 words that "
    "describes the picture itself: the main subject and what it is doing; its appearance, materials and colors; "
    "the setting and background; the composition and camera viewpoint; the lighting and time of day; and the "
    "medium or art style. Keep every detail the user gave and do not change the subject, the number of things "
    "or the style they asked for. Any words that should be written in the image go in double quotes, exactly as "
    "the user wrote them. Add only concrete visual details that fit the idea. Describe what can be seen, plainly: "
    "no metaphors, no sounds, smells or feelings, no instructions to the artist, no lists, no headings, no "
    "markdown. Answer with the paragraph only, with no introduction, title, explanation or quotation marks "
    "around it."
)


def user_message(prompt: str) -> str:
    """The user turn: the idea alone, labelled so that a terse idea ("fox") is not answered conversationally."""
    return f"Image idea: {prompt.strip()}"
