"""Finding and opening AuraFlow's tokenizer.

Neither ComfyUI's all-in-one file nor fal's original transformer file holds a tokenizer, so for single files we
look, in order: an explicit path, files beside the weights, ``$AURAFLOW_TOKENIZER`` (the place a user
configures once), a diffusers folder given for the other components, and the local Hugging Face cache of
``fal/AuraFlow-v0.3``. Inside ComfyUI the node layer passes ComfyUI's own bundled Pile-T5 ``tokenizer.model``
explicitly (the core never imports ComfyUI).

A bare SentencePiece ``tokenizer.model`` is opened through transformers with the real model's settings (no BOS,
EOS appended, right padding) so it tokenizes exactly like the diffusers folder's tokenizer.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import MissingComponentError

ENV_VAR = "AURAFLOW_TOKENIZER"
HUB_REPO = "fal/AuraFlow-v0.3"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")

# Real AuraFlow: a LLaMA SentencePiece model read by LlamaTokenizer(Fast): no BOS, EOS appended, pads masked.
SENTENCEPIECE_CONFIG: dict[str, Any] = {
    "tokenizer_class": "LlamaTokenizer",
    "add_bos_token": False,
    "add_eos_token": True,
    "unk_token": "<unk>",
    "bos_token": "<s>",
    "eos_token": "</s>",
    "pad_token": "<unk>",
    "padding_side": "right",
    "model_max_length": 256,
    "legacy": False,
}


def open_tokenizer(path: Path) -> Any:
    """A transformers tokenizer from a tokenizer folder or a bare ``tokenizer.model`` / ``tokenizer.json``."""
    from transformers import AutoTokenizer

    path = Path(path)
    try:
        if path.is_dir():
            return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        with tempfile.TemporaryDirectory(prefix="auraflow-tokenizer-") as tmp:
            shutil.copy(path, Path(tmp) / path.name)
            (Path(tmp) / "tokenizer_config.json").write_text(json.dumps(SENTENCEPIECE_CONFIG))
            return AutoTokenizer.from_pretrained(tmp, local_files_only=True)
    except Exception as exc:  # transformers raises many types for unreadable tokenizer files
        raise MissingComponentError("tokenizer", f"{path} could not be opened as a tokenizer ({exc}).",
                                    path=path) from exc


def _is_tokenizer(path: Path) -> bool:
    if path.is_dir():
        return any((path / name).is_file() for name in TOKENIZER_FILES[:2])
    return path.is_file() and path.name.endswith((".model", ".json")) and path.name != "config.json"


def find_tokenizer(*, explicit: Path | None, weights: Path | None, components: Path | None) -> Path:
    """The first tokenizer found, or an error listing every place we looked and how to provide one."""
    looked: list[str] = []
    candidates: list[Path] = []
    if explicit is not None:
        candidates.append(Path(explicit))
    if weights is not None:
        here = weights.parent
        candidates += [here / "tokenizer", here / f"{weights.stem}_tokenizer", here / "tokenizer.model",
                       here / "tokenizer.json"]
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    if components is not None:
        candidates.append(Path(components) / "tokenizer")
    for candidate in candidates:
        looked.append(str(candidate))
        if _is_tokenizer(candidate):
            return candidate
    hub = _hub_tokenizer()
    looked.append(f"the local Hugging Face cache of {HUB_REPO}")
    if hub is not None:
        return hub
    if explicit is not None:
        raise MissingComponentError("tokenizer", f"tokenizer {explicit} not found or not a tokenizer.", path=explicit)
    raise MissingComponentError(
        "tokenizer",
        "AuraFlow's tokenizer was not found; single-file checkpoints do not contain one. Looked in: "
        + "; ".join(looked)
        + f". Put the `tokenizer/` folder of {HUB_REPO} (or its tokenizer.model) beside the weights, set "
        f"{ENV_VAR} to its path, or pass tokenizer=PATH.",
        path=weights,
    )


def _hub_tokenizer() -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for name in TOKENIZER_FILES[:2]:
        found = try_to_load_from_cache(HUB_REPO, f"tokenizer/{name}")
        if isinstance(found, str):
            return Path(found).parent
    return None
