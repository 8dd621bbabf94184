"""Prompt expansion nodes: AuraFlowPromptExpand, and :func:`expand_for_generation` for the generation nodes.

Wraps :func:`pipeline.expand.expand_prompt`. Local language models live in ComfyUI's ``models/LLM`` folder (one
sub-folder per model, as transformers saves it), registered here if no other pack has done so; outside ComfyUI
the list is empty and only paths typed by scripts reach the local backend.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..pipeline.expand import (
    BACKENDS,
    DEFAULT_FAL_ENDPOINT,
    DEFAULT_FAL_MODELS,
    DEFAULT_MAX_TOKENS,
    FAL_ENDPOINTS,
    expand_prompt,
)
from ._common import CATEGORY_ROOT, SEED_MAX, interrupt_requested, node_errors, send_progress_text

log = logging.getLogger("ComfyUI-AuraFlow")

LLM_FOLDER = "LLM"
NO_MODEL = "none"
WARNING_MARK = "⚠ "


# ---------------------------------------------------------------------------------------------------------------
# ComfyUI's models/LLM folder


def _llm_roots() -> list[str]:
    """The folders ComfyUI knows for ``LLM`` (registering ``models/LLM`` if absent); [] outside ComfyUI."""
    try:
        import folder_paths
    except ImportError:
        return []
    try:
        if LLM_FOLDER not in folder_paths.folder_names_and_paths:
            folder_paths.add_model_folder_path(LLM_FOLDER, os.path.join(folder_paths.models_dir, LLM_FOLDER))
        return list(folder_paths.get_folder_paths(LLM_FOLDER))
    except Exception:  # an unusual folder_paths must not stop the node from loading
        log.warning("could not register the models/%s folder", LLM_FOLDER, exc_info=True)
        return []


def _model_dirs(root: Path) -> list[Path]:
    """Model folders (holding config.json) directly under ``root`` or one level deeper (``org/name``)."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):
        if not child.is_dir():
            continue
        if (child / "config.json").is_file():
            found.append(child)
        else:
            found.extend(sub for sub in sorted(child.iterdir()) if sub.is_dir() and (sub / "config.json").is_file())
    return found


def local_model_names(roots: list[str] | None = None) -> list[str]:
    """The choices of the local model input: ``none`` and each model folder, relative to its LLM folder."""
    names: list[str] = [NO_MODEL]
    for root in _llm_roots() if roots is None else roots:
        for folder in _model_dirs(Path(root)):
            name = folder.relative_to(root).as_posix()
            if name not in names:
                names.append(name)
    return names


def resolve_local_model(name: str | None, roots: list[str] | None = None) -> str | None:
    """A model name from the list -> its folder; a path or repo id passes through; ``none`` -> None."""
    if not name or name == NO_MODEL:
        return None
    for root in _llm_roots() if roots is None else roots:
        candidate = Path(root) / name
        if (candidate / "config.json").is_file():
            return str(candidate)
    return name


def _torch_device() -> Any | None:
    """ComfyUI's compute device inside ComfyUI (it honours --cpu and the chosen GPU); None lets the core pick."""
    try:
        import comfy.model_management as mm
    except ImportError:
        return None
    return mm.get_torch_device()


def _expand_kwargs(options: Mapping[str, Any]) -> dict[str, Any]:
    """Node-level options -> expand_prompt keywords (model names resolved, empty strings meaning default)."""
    kwargs: dict[str, Any] = {"backend": options.get("backend", "template")}
    if options.get("max_tokens") is not None:
        kwargs["max_tokens"] = int(options["max_tokens"])
    if options.get("system_prompt"):
        kwargs["system_prompt"] = options["system_prompt"]
    kwargs["local_model"] = resolve_local_model(options.get("local_model"))
    if options.get("fal_endpoint"):
        kwargs["fal_endpoint"] = options["fal_endpoint"]
    if options.get("fal_model") and str(options["fal_model"]).strip():
        kwargs["fal_model"] = str(options["fal_model"]).strip()
    if options.get("timeout") is not None:
        kwargs["timeout"] = float(options["timeout"])
    if kwargs["backend"] == "local":
        kwargs["device"] = _torch_device()
    return kwargs


def expand_for_generation(prompt: str, seed: int, options: Mapping[str, Any] | None = None, *,
                          tokenizer: Any | None = None, node_id: str | None = None) -> tuple[str, tuple[str, ...]]:
    """The prompt a generation node should use, and warnings to show: never fails the generation.

    For AuraFlowGenerate's ``expand_prompt=True``: ``options`` carries ``backend`` and optionally
    ``max_tokens``, ``system_prompt``, ``local_model`` (a name from models/LLM or a path), ``fal_endpoint``,
    ``fal_model``, ``timeout``. Every backend failure falls back to ``prompt`` with a warning (strict off); pass
    AuraFlow's ``tokenizer`` so the 256-token window is counted exactly. A user's Cancel still stops the node.
    """
    kwargs = _expand_kwargs(options or {})
    send_progress_text(f"expanding the prompt ({kwargs['backend']})…", node_id)
    with node_errors("Prompt expansion"):
        result = expand_prompt(prompt, seed=seed, tokenizer=tokenizer, strict=False,
                               should_cancel=interrupt_requested, **kwargs)
    return result.prompt, result.warnings


# ---------------------------------------------------------------------------------------------------------------
# AuraFlowPromptExpand


class AuraFlowPromptExpand:
    """Expand a short prompt into a long, concrete one (template, local LM or fal LLM) and show it on the node."""

    NODE_ID = "AuraFlowPromptExpand"
    DISPLAY_NAME = "AuraFlow Prompt Expand"
    CATEGORY = f"{CATEGORY_ROOT}/prompt"
    DESCRIPTION = (
        "Turns a short idea into the kind of long, concrete description AuraFlow follows best (fal reports a "
        "clear quality gain from prompt expansion). template: offline word lists, instant, reproducible per seed. "
        "local: a language model from models/LLM, reproducible per seed. fal: an LLM on fal.ai (needs FAL_KEY; "
        "not reproducible). The result is cut to AuraFlow's 256-token window; the text and any warnings are shown "
        "on the node."
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, Any]:
        return {
            "required": {
                "prompt": ("STRING", {
                    "multiline": True, "default": "",
                    "tooltip": "Your idea, short or long. Prompts of 40 words or more pass through the template "
                               "backend unchanged; LLM backends keep every detail you give.",
                }),
                "backend": (list(BACKENDS), {
                    "default": "template",
                    "tooltip": "template: offline, instant, adds composition, lighting, medium and detail cues. "
                               "local: a language model from models/LLM (slower, more varied; GPU if available). "
                               "fal: an LLM on fal.ai (needs FAL_KEY in the environment; costs a little per call).",
                }),
                "seed": ("INT", {
                    "default": 0, "min": 0, "max": SEED_MAX, "control_after_generate": True,
                    "tooltip": "Picks the variation. The same seed gives the same text with template and local; "
                               "fal's LLMs take no seed, so their answer can differ each run.",
                }),
                "max_tokens": ("INT", {
                    "default": DEFAULT_MAX_TOKENS, "min": 16, "max": 4096, "step": 16,
                    "tooltip": "Most tokens the LLM may write (its own tokens; local and fal). Around 256 suits "
                               "AuraFlow, whose text window is 256 tokens; longer answers are cut to fit anyway.",
                }),
            },
            "optional": {
                "system_prompt": ("STRING", {
                    "multiline": True, "default": "",
                    "tooltip": "Instructions for the LLM (local and fal). Empty uses ours: one plain, visual "
                               "paragraph of 60-140 words that keeps all your details.",
                }),
                "local_model": (local_model_names(), {
                    "default": NO_MODEL,
                    "tooltip": "For backend=local: a model folder under ComfyUI/models/LLM (a transformers "
                               "instruction-tuned causal LM, e.g. a 0.5-3 B Qwen or Llama saved with "
                               "save_pretrained). Nothing is downloaded.",
                }),
                "fal_model": ("STRING", {
                    "default": DEFAULT_FAL_MODELS[DEFAULT_FAL_ENDPOINT],
                    "tooltip": "For backend=fal: the model id. openrouter/router takes any OpenRouter id (e.g. "
                               f"{DEFAULT_FAL_MODELS['openrouter/router']}); fal-ai/any-llm only its own list "
                               f"(e.g. {DEFAULT_FAL_MODELS['fal-ai/any-llm']}). Empty = the endpoint's default.",
                }),
                "fal_endpoint": (list(FAL_ENDPOINTS), {
                    "default": DEFAULT_FAL_ENDPOINT,
                    "tooltip": "For backend=fal: openrouter/router (current, any model) or fal-ai/any-llm "
                               "(older, fixed model list).",
                }),
                "fail_if_unavailable": ("BOOLEAN", {
                    "default": True,
                    "tooltip": "On: stop with an error saying why when the chosen backend cannot work at all "
                               "(no local model, no FAL_KEY, refused key, unknown model id). Off: pass the prompt "
                               "through with a warning. Timeouts and empty answers always pass it through.",
                }),
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        }

    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("prompt",)
    OUTPUT_TOOLTIPS = ("The expanded prompt (or your prompt unchanged, with a warning on the node, if the "
                       "backend failed), within AuraFlow's 256-token window.",)
    FUNCTION = "expand"
    OUTPUT_NODE = True  # runs (and shows its text) even when nothing is connected to it yet

    def expand(self, prompt: str, backend: str, seed: int, max_tokens: int, system_prompt: str = "",
               local_model: str = NO_MODEL, fal_model: str = DEFAULT_FAL_MODELS[DEFAULT_FAL_ENDPOINT],
               fal_endpoint: str = DEFAULT_FAL_ENDPOINT, fail_if_unavailable: bool = True,
               unique_id: str | None = None) -> dict[str, Any]:
        options = {"backend": backend, "max_tokens": max_tokens, "system_prompt": system_prompt,
                   "local_model": local_model, "fal_model": fal_model, "fal_endpoint": fal_endpoint}
        kwargs = _expand_kwargs(options)
        send_progress_text(f"expanding the prompt ({backend})…", unique_id)
        with node_errors(self.DISPLAY_NAME):
            result = expand_prompt(prompt, seed=seed, strict=fail_if_unavailable,
                                   should_cancel=interrupt_requested, **kwargs)
        shown = [result.prompt, *(WARNING_MARK + w for w in result.warnings)]
        return {"ui": {"text": shown}, "result": (result.prompt,)}


NODES = (AuraFlowPromptExpand,)
