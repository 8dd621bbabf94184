"""The local backend: a transformers causal LM from a folder (ComfyUI ``models/LLM/<name>``) or the HF cache.

Nothing is ever downloaded (``local_files_only=True``). The model is prompted through its own chat template,
samples with a seeded generator inside :func:`torch.random.fork_rng` (so the same seed gives the same text and
the caller's random state is untouched), and generation stops at ``max_tokens`` new tokens.

One model stays loaded between calls (loading a 1-3 B LM takes longer than using it); on a GPU it is moved back
to the CPU after each answer by default, because ComfyUI's memory manager does not know about it and the
diffusion model needs the VRAM next. :func:`free_local_model` drops it.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CancelledError, MissingComponentError, ModelLoadError
from ._prompts import user_message

__all__ = ["Generated", "free_local_model", "generate", "loaded_model", "resolve_model"]

log = logging.getLogger("ComfyUI-AuraFlow.expand")

# Sampling settings: enough variety that seeds differ, low enough to stay on the user's idea.
TEMPERATURE = 0.7
TOP_P = 0.9
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Generated:
    """A local answer: the decoded new text, how many tokens were generated, and notes for the user."""

    text: str
    new_tokens: int
    warnings: tuple[str, ...] = ()


@dataclass
class _Loaded:
    source: str
    device: str
    dtype: Any
    model: Any
    tokenizer: Any
    on_device: bool = field(default=True)


_lock = threading.RLock()
_loaded: _Loaded | None = None


def resolve_model(model: str | Path | None) -> str:
    """A model folder path, or a Hugging Face repo id to look up in the local cache; says why when neither.

    Raises :class:`MissingComponentError` when no model is configured or a folder is not a transformers model,
    :class:`ModelLoadError` for a path that does not exist.
    """
    if model is None or str(model).strip() in ("", "none"):
        raise MissingComponentError(
            "language model", "no local language model is configured: choose a model folder from ComfyUI's "
            "models/LLM (a transformers causal LM saved with save_pretrained), give the id of a model already in "
            "the Hugging Face cache, or pick another backend",
        )
    text = str(model).strip()
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MissingComponentError("config", f"{path} has no config.json: it is not a transformers model "
                                        "folder (single-file .gguf models are not supported)", path=path)
        return str(path)
    if path.exists():
        raise ModelLoadError(f"{path} is a file; the local backend needs a transformers model folder "
                             "(config.json, tokenizer files, weights)", path=path)
    if _REPO_ID.match(text) and not text.startswith((".", "/", "~")):
        return text  # a repo id: from_pretrained(local_files_only=True) finds it in the cache or says it is absent
    raise ModelLoadError(f"no model folder at {text!r} (and it is not a Hugging Face repo id)", path=text)


def _pick_device(device: Any | None) -> tuple[str, Any]:
    """The device and dtype: the caller's device if given, else CUDA when present; half precision on GPUs."""
    import torch

    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    elif dev.type == "mps":
        dtype = torch.float16
    else:
        dtype = torch.float32  # CPUs run half precision slowly or not at all
    return str(dev), dtype


def _load(source: str, device: str, dtype: Any) -> _Loaded:
    try:
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:  # pragma: no cover - transformers is a dependency
        raise MissingComponentError("transformers", "the local backend needs the transformers package") from exc
    # transformers >= 4.56 names the argument ``dtype``; older versions only know ``torch_dtype``
    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (major, minor) >= (4, 56) else "torch_dtype"
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(source, local_files_only=True, **{dtype_kw: dtype})
    except (OSError, ValueError, KeyError) as exc:
        raise ModelLoadError(
            f"could not load a causal language model from {source!r} (local files only, nothing is downloaded): "
            f"{exc}", path=source,
        ) from exc
    model.eval()
    model.to(device)
    log.info("prompt expansion: loaded %s on %s (%s)", source, device, dtype)
    return _Loaded(source, device, dtype, model, tokenizer)


def loaded_model() -> str | None:
    """The model folder or id currently held in memory, if any."""
    with _lock:
        return None if _loaded is None else _loaded.source


def free_local_model() -> bool:
    """Drop the cached LM and return its memory (GPU cache included); True if one was loaded."""
    global _loaded
    with _lock:
        had = _loaded is not None
        _loaded = None
    if had:
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return had


def _get(source: str, device: Any | None) -> _Loaded:
    global _loaded
    dev, dtype = _pick_device(device)
    if _loaded is not None and (_loaded.source, _loaded.device, _loaded.dtype) == (source, dev, dtype):
        if not _loaded.on_device:
            _loaded.model.to(dev)
            _loaded.on_device = True
        return _loaded
    free_local_model()
    _loaded = _load(source, dev, dtype)
    return _loaded


def _chat_input(tokenizer: Any, system_prompt: str, prompt: str) -> tuple[str, tuple[str, ...]]:
    """The model's own chat format for (system, user); merged into one user turn if it has no system role."""
    user = user_message(prompt)
    if not getattr(tokenizer, "chat_template", None):
        note = ("the local model has no chat template (a base model?); it was prompted with plain text and may "
                "answer poorly, an instruction-tuned model works better")
        return f"{system_prompt}\n\n{user}\nPrompt:", (note,)
    turns = [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]
    # enable_thinking=False asks templates that support it (Qwen3) for an answer without a reasoning block
    try:
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True,
                                             enable_thinking=False), ()
    except Exception:  # templates without a system role raise (Gemma: "System role not supported")
        merged = [{"role": "user", "content": f"{system_prompt}\n\n{user}"}]
        return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True,
                                             enable_thinking=False), ()


def generate(prompt: str, *, model: str | Path | None, seed: int, max_tokens: int, system_prompt: str,
             device: Any | None = None, should_cancel: Callable[[], bool] | None = None,
             offload: bool = True) -> Generated:
    """Expand ``prompt`` with the local LM; deterministic for (model, device, seed), at most ``max_tokens`` new.

    ``should_cancel`` is checked after every generated token (a stopping criterion); when it returns True the
    call raises :class:`CancelledError`. ``offload`` moves a GPU model back to the CPU afterwards.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class _StopOnCancel(StoppingCriteria):
        def __init__(self) -> None:
            self.cancelled = False

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
            self.cancelled = self.cancelled or bool(should_cancel is not None and should_cancel())
            return torch.full((input_ids.shape[0],), self.cancelled, dtype=torch.bool, device=input_ids.device)

    source = resolve_model(model)
    with _lock:
        loaded = _get(source, device)
        tokenizer, lm = loaded.tokenizer, loaded.model
        text, notes = _chat_input(tokenizer, system_prompt, prompt)
        # the chat template already holds BOS and the like; adding special tokens again would double them
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(loaded.device)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        stop = _StopOnCancel()
        dev = torch.device(loaded.device)
        cuda_devices = []
        if dev.type == "cuda":
            cuda_devices = [dev.index if dev.index is not None else torch.cuda.current_device()]
        try:
            with torch.random.fork_rng(devices=cuda_devices), torch.inference_mode():
                torch.manual_seed(seed)
                # only ids and mask: some tokenizers also return token_type_ids, which decoder LMs reject
                out = lm.generate(
                    input_ids=enc["input_ids"], attention_mask=enc.get("attention_mask"),
                    max_new_tokens=max_tokens, do_sample=True, temperature=TEMPERATURE, top_p=TOP_P,
                    pad_token_id=pad_id, stopping_criteria=StoppingCriteriaList([stop]),
                )
        finally:
            if offload and dev.type != "cpu":
                lm.to("cpu")
                loaded.on_device = False
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
        if stop.cancelled:
            raise CancelledError("prompt expansion was cancelled")
        new_ids = out[0, enc["input_ids"].shape[1]:]
        answer = tokenizer.decode(new_ids, skip_special_tokens=True)
    return Generated(answer, int(new_ids.shape[0]), notes)
