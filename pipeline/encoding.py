"""Prompt encoding: tokenizer + UMT5 encoder -> the context the transformer attends to.

A separate, reusable step so that callers (ComfyUI's cache, the CLI, the server) encode once and sample many
times. Matches ``AuraFlowPipeline.encode_prompt`` in diffusers: pad/truncate to 256 tokens, run the encoder
with the attention mask, zero the padded rows. The transformer itself never sees a mask, so the zeroed pad
rows are part of the context and the padding length must always be 256.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)

MAX_SEQUENCE_LENGTH = 256


@dataclass(frozen=True)
class PromptEmbeddings:
    """Encoded prompts: ``embeds`` (B, 256, D) with padded rows zeroed, ``mask`` (B, 256), one row per text."""

    embeds: torch.Tensor
    mask: torch.Tensor
    texts: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def repeat_each(self, times: int) -> PromptEmbeddings:
        """Each row ``times`` times in a row (p0, p0, p1, p1), the batch order diffusers uses for num_images."""
        if times == 1:
            return self
        return PromptEmbeddings(self.embeds.repeat_interleave(times, dim=0), self.mask.repeat_interleave(times, 0),
                                tuple(t for t in self.texts for _ in range(times)))

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> PromptEmbeddings:
        return PromptEmbeddings(self.embeds.to(device=device, dtype=dtype), self.mask.to(device), self.texts)


def tokenize(tokenizer: Any, texts: Sequence[str], max_length: int = MAX_SEQUENCE_LENGTH) -> dict[str, torch.Tensor]:
    """Ids and mask padded to ``max_length``; warns, as diffusers does, when a prompt is cut."""
    batch = tokenizer(list(texts), truncation=True, max_length=max_length, padding="max_length",
                      return_tensors="pt")
    full = tokenizer(list(texts), padding="longest", return_tensors="pt")["input_ids"]
    if full.shape[-1] > max_length:
        for text, ids in zip(texts, full):
            kept = int((ids != tokenizer.pad_token_id).sum()) if tokenizer.pad_token_id is not None else len(ids)
            if kept > max_length:
                log.warning("Prompt truncated to AuraFlow's %d-token window (%d tokens): %.60r...", max_length, kept,
                            text)
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


@torch.inference_mode()
def encode_texts(tokenizer: Any, text_encoder: torch.nn.Module, texts: Sequence[str], *,
                 device: torch.device, dtype: torch.dtype) -> PromptEmbeddings:
    """Encode ``texts`` with the encoder where it lives, then move the result to ``device``/``dtype``."""
    inputs = tokenize(tokenizer, texts)
    encoder_device = next(text_encoder.parameters()).device
    ids = inputs["input_ids"].to(encoder_device)
    mask = inputs["attention_mask"].to(encoder_device)
    hidden = text_encoder(input_ids=ids, attention_mask=mask)[0]
    hidden = hidden * mask.unsqueeze(-1).expand(hidden.shape)
    return PromptEmbeddings(hidden.to(device=device, dtype=dtype), mask.to(device), tuple(texts))
