"""Configs read off shapes equal the configs the weights were built with: tiny, medium and real v0.3 (meta)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from pipeline.configs import (
    METADATA_NUM_HEADS,
    metadata_for,
    text_encoder_config,
    transformer_config,
    vae_config,
)
from pipeline.errors import ModelLoadError
from pipeline.layouts import (
    detect_single_file,
    diffusers_transformer_to_original,
    diffusers_vae_to_ldm,
    plan_shapes,
    text_encoder_plan,
    transformer_plan,
    vae_plan,
)
from pipeline.tiny import MEDIUM, TinyConfig, build_components

TE = "text_encoders.pile_t5xl.transformer."

# auraflow-reference §6.
REAL_TRANSFORMER = {"sample_size": 64, "patch_size": 2, "in_channels": 4, "out_channels": 4, "num_mmdit_layers": 4,
                    "num_single_dit_layers": 32, "attention_head_dim": 256, "num_attention_heads": 12,
                    "joint_attention_dim": 2048, "caption_projection_dim": 3072, "pos_embed_max_size": 9216}
REAL_VAE = {"in_channels": 3, "out_channels": 3, "latent_channels": 4, "block_out_channels": [128, 256, 512, 512],
            "layers_per_block": 2, "norm_num_groups": 32, "sample_size": 1024, "scaling_factor": 0.13025,
            "force_upcast": True, "down_block_types": ["DownEncoderBlock2D"] * 4,
            "up_block_types": ["UpDecoderBlock2D"] * 4}
REAL_TEXT_ENCODER = {"vocab_size": 32128, "d_model": 2048, "d_ff": 5120, "d_kv": 64, "num_heads": 32, "num_layers": 24,
                     "relative_attention_num_buckets": 32, "relative_attention_max_distance": 128,
                     "feed_forward_proj": "gated-gelu", "layer_norm_epsilon": 1e-6, "scalable_attention": True,
                     "is_encoder_decoder": False, "dropout_rate": 0.0, "pad_token_id": 0, "eos_token_id": 2,
                     "tie_word_embeddings": False}
_TEXT_ENCODER_FIELDS = tuple(REAL_TEXT_ENCODER) + ("dense_act_fn", "is_gated_act")


def _shapes(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def _inferred(components: dict[str, Any], metadata: dict[str, str] | None) -> dict[str, dict[str, Any]]:
    """Through the file layout, as the loader will: to ComfyUI names, detect, plan, read configs off the plan."""
    original = diffusers_transformer_to_original(components["transformer"].state_dict())
    sd = {"model." + k: v for k, v in original.items()}
    sd.update({"vae." + k: v for k, v in diffusers_vae_to_ldm(components["vae"].state_dict()).items()})
    sd.update({TE + k: v for k, v in components["text_encoder"].state_dict().items()
               if k != "encoder.embed_tokens.weight"})
    shapes = _shapes(sd)
    layout = detect_single_file(shapes)
    assert layout.vae_prefix and layout.text_encoder_prefix
    return {
        "transformer": transformer_config(plan_shapes(transformer_plan(shapes, layout)), metadata),
        "vae": vae_config(plan_shapes(vae_plan(shapes, layout.vae_prefix)), metadata),
        "text_encoder": text_encoder_config(plan_shapes(text_encoder_plan(shapes, layout.text_encoder_prefix)),
                                            metadata),
    }


def _assert_same_configs(inferred: dict[str, dict[str, Any]], components: dict[str, Any]) -> None:
    from transformers import UMT5Config

    for name in ("transformer", "vae"):
        config = dict(components[name].config)
        assert {k: config[k] for k in inferred[name]} == inferred[name], name
        # Whatever we leave out, the model was built with the class default too.
        left_out = {k for k in config if not k.startswith("_")} - set(inferred[name])
        assert left_out <= set(config.get("_use_default_values", [])), (name, left_out)
    ours = UMT5Config(**inferred["text_encoder"])
    theirs = components["text_encoder"].config
    for field in _TEXT_ENCODER_FIELDS:
        assert getattr(ours, field) == getattr(theirs, field), field


@pytest.mark.parametrize("config", [TinyConfig(), MEDIUM], ids=["tiny", "medium"])
def test_configs_from_shapes_match_the_built_stack(config: TinyConfig, tmp_path: Path) -> None:
    with torch.device("meta"):
        components = build_components(config, tokenizer_dir=tmp_path / "tok")
    metadata = metadata_for(components["transformer"].config, components["vae"].config)
    _assert_same_configs(_inferred(components, metadata), components)


def test_real_v03_configs_from_meta_shapes() -> None:
    """Full-size modules on the meta device: the 256-wide head convention gives the real 12 x 256 split."""
    from diffusers import AuraFlowTransformer2DModel, AutoencoderKL
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        components = {
            "transformer": AuraFlowTransformer2DModel(**REAL_TRANSFORMER),
            "vae": AutoencoderKL(**REAL_VAE),
            "text_encoder": UMT5EncoderModel(UMT5Config(**REAL_TEXT_ENCODER)),
        }
    inferred = _inferred(components, metadata=None)
    assert inferred["transformer"] == REAL_TRANSFORMER
    assert {k: inferred["vae"][k] for k in REAL_VAE} == REAL_VAE
    assert inferred["text_encoder"] == REAL_TEXT_ENCODER
    _assert_same_configs(inferred, components)


def test_head_count_sources_and_refusal() -> None:
    shapes = {"pos_embed.proj.weight": (96, 16), "proj_out.weight": (16, 96), "context_embedder.weight": (96, 32),
              "pos_embed.pos_embed": (1, 256, 96)}
    with pytest.raises(ModelLoadError, match="num_attention_heads"):
        transformer_config(shapes)
    assert transformer_config(shapes, {METADATA_NUM_HEADS: "3"})["attention_head_dim"] == 32
    assert transformer_config(shapes, {METADATA_NUM_HEADS: "3"}, num_attention_heads=2)["num_attention_heads"] == 2
    with pytest.raises(ModelLoadError, match="does not divide"):
        transformer_config(shapes, num_attention_heads=5)
