"""A ComfyUI ``models/`` folder of tiny random AuraFlow files: one stack in the three layouts the loader reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pipeline.configs import metadata_for
from pipeline.export import write_comfy_all_in_one, write_original_transformer

from .stacks import tiny_folder

AIO = "tiny_aura_flow.safetensors"  # models/checkpoints, tokenizer/ beside it
TRANSFORMER = "tiny_transformer.safetensors"  # models/diffusion_models, fal's original layout
DIFFUSERS = "diffusers/tiny-auraflow"  # models/diffusers/tiny-auraflow, as the loader lists it
NOT_AURAFLOW = "not_auraflow.safetensors"  # models/checkpoints, some other model


def build_models_dir(models: Path) -> Path:
    """models/{checkpoints,diffusion_models,diffusers}: one random stack in three layouts, plus a stranger."""
    folder = tiny_folder(models / "diffusers")
    sds = {
        "transformer": load_file(folder / "transformer" / "diffusion_pytorch_model.safetensors"),
        "text_encoder": load_file(folder / "text_encoder" / "model.safetensors"),
        "vae": load_file(folder / "vae" / "diffusion_pytorch_model.safetensors"),
    }
    meta = metadata_for(transformer=json.loads((folder / "transformer" / "config.json").read_text()))
    write_comfy_all_in_one(sds["transformer"], sds["text_encoder"], sds["vae"], models / "checkpoints" / AIO,
                           metadata=meta)
    shutil.copytree(folder / "tokenizer", models / "checkpoints" / "tokenizer")  # where a user would put it
    write_original_transformer(sds["transformer"], models / "diffusion_models" / TRANSFORMER, metadata=meta)
    save_file({"conv.weight": torch.zeros(4, 4, 3, 3)}, str(models / "checkpoints" / NOT_AURAFLOW))
    return models
