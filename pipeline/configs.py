"""Model configs read off tensor shapes, because a single file holds tensors, not ``config.json`` files.

Every function takes TARGET names (diffusers ``AuraFlowTransformer2DModel`` / ``AutoencoderKL``, transformers
``UMT5EncoderModel``) with their shapes, i.e. :func:`pipeline.layouts.plan_shapes` of a plan, so one function
serves every file layout. Two numbers are not in any shape (auraflow-reference §7 "Configs for single files"):

- the transformer's head split (the per-head q/k LayerNorms have no weights): safetensors metadata
  ``auraflow.num_attention_heads`` when present (our writers put it there), else the real v0.3 convention of
  256-wide heads (12 x 256 = 3072), else the caller must say;
- the VAE's GroupNorm groups: metadata ``auraflow.vae_norm_num_groups``, else 32 as in the real SDXL VAE.

``tests/pipeline/test_configs.py`` checks the inferred configs equal the ones used to build tiny, medium and the
real-size (meta-device) modules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ModelLoadError, UnrecognizedLayoutError

__all__ = [
    "METADATA_NUM_HEADS",
    "METADATA_SAMPLE_SIZE",
    "METADATA_VAE_NORM_GROUPS",
    "METADATA_VAE_SAMPLE_SIZE",
    "REAL_HEAD_DIM",
    "metadata_for",
    "text_encoder_config",
    "transformer_config",
    "vae_config",
]

Shapes = Mapping[str, Sequence[int]]

METADATA_NUM_HEADS = "auraflow.num_attention_heads"
METADATA_SAMPLE_SIZE = "auraflow.sample_size"
METADATA_VAE_NORM_GROUPS = "auraflow.vae_norm_num_groups"
METADATA_VAE_SAMPLE_SIZE = "auraflow.vae_sample_size"

# Real v0.3 conventions for what shapes cannot tell (auraflow-reference §6).
REAL_HEAD_DIM = 256
REAL_SAMPLE_SIZE = 64  # default height/width = sample_size * 8 = 512 px, as the real transformer config
REAL_VAE_NORM_GROUPS = 32
REAL_VAE_SAMPLE_SIZE = 1024  # SDXL VAE config; only steers diffusers' tiled decoding
LATENT_CHANNELS = 4  # the SDXL VAE latent: in_channels * patch^2 is the patch embedding's input width


def _need(shapes: Shapes, name: str, what: str) -> tuple[int, ...]:
    if name not in shapes:
        raise UnrecognizedLayoutError(
            f"Cannot infer the {what} config: tensor {name!r} is missing.",
            expected=f"{what} state-dict names", keys_seen=sorted(shapes)[:5])
    return tuple(int(d) for d in shapes[name])


def _indices(shapes: Shapes, pattern: str) -> int:
    """How many blocks: 1 + the largest index matched by ``pattern`` (one ``(\\d+)`` group), 0 when none."""
    regex = re.compile(pattern)
    found = [int(m.group(1)) for k in shapes if (m := regex.match(k))]
    return max(found) + 1 if found else 0


def _meta_int(metadata: Mapping[str, str] | None, key: str) -> int | None:
    if not metadata or key not in metadata:
        return None
    try:
        return int(metadata[key])
    except ValueError as exc:
        raise ModelLoadError(f"Metadata {key}={metadata[key]!r} is not an integer.") from exc


def transformer_config(shapes: Shapes, metadata: Mapping[str, str] | None = None, *,
                       num_attention_heads: int | None = None) -> dict[str, Any]:
    """Kwargs for ``AuraFlowTransformer2DModel.from_config`` from diffusers-named shapes.

    The head count comes from ``num_attention_heads``, else metadata, else 256-wide heads when the hidden size
    allows it (the real model); a hidden size that is no multiple of 256 without either is an error, because a
    guessed head split loads without complaint and computes a different model.
    """
    hidden, patch_in = _need(shapes, "pos_embed.proj.weight", "transformer")
    patch_out = _need(shapes, "proj_out.weight", "transformer")[0]
    caption_dim, joint_dim = _need(shapes, "context_embedder.weight", "transformer")
    positions = _need(shapes, "pos_embed.pos_embed", "transformer")[1]
    patch = round((patch_in / LATENT_CHANNELS) ** 0.5)
    if patch * patch * LATENT_CHANNELS != patch_in or patch_out % (patch * patch):
        raise ModelLoadError(f"Patch embedding width {patch_in} is not {LATENT_CHANNELS} latent channels x p^2; "
                             "not an AuraFlow transformer on the SDXL latent.")
    heads = num_attention_heads or _meta_int(metadata, METADATA_NUM_HEADS)
    if heads is None:
        if hidden % REAL_HEAD_DIM:
            raise ModelLoadError(
                f"The transformer's head count is not stored in its tensors and hidden size {hidden} is not a "
                f"multiple of {REAL_HEAD_DIM} (real AuraFlow: 12 heads x 256). Give num_attention_heads, or "
                f"store it as safetensors metadata {METADATA_NUM_HEADS!r}.")
        heads = hidden // REAL_HEAD_DIM
    if hidden % heads:
        raise ModelLoadError(f"num_attention_heads={heads} does not divide the hidden size {hidden}.")
    return {
        "sample_size": _meta_int(metadata, METADATA_SAMPLE_SIZE) or REAL_SAMPLE_SIZE,
        "patch_size": patch,
        "in_channels": LATENT_CHANNELS,
        "out_channels": patch_out // (patch * patch),
        "num_mmdit_layers": _indices(shapes, r"joint_transformer_blocks\.(\d+)\."),
        "num_single_dit_layers": _indices(shapes, r"single_transformer_blocks\.(\d+)\."),
        "attention_head_dim": hidden // heads,
        "num_attention_heads": heads,
        "joint_attention_dim": joint_dim,
        "caption_projection_dim": caption_dim,
        "pos_embed_max_size": positions,
    }


def vae_config(shapes: Shapes, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Kwargs for ``AutoencoderKL.from_config`` from diffusers-named shapes (an SDXL-style VAE)."""
    blocks = _indices(shapes, r"encoder\.down_blocks\.(\d+)\.")
    if not blocks:
        _need(shapes, "encoder.down_blocks.0.resnets.0.conv1.weight", "VAE")
    channels = [_need(shapes, f"encoder.down_blocks.{i}.resnets.0.conv1.weight", "VAE")[0] for i in range(blocks)]
    groups = _meta_int(metadata, METADATA_VAE_NORM_GROUPS) or REAL_VAE_NORM_GROUPS
    if any(c % groups for c in channels):
        raise ModelLoadError(f"VAE channels {channels} are not divisible into {groups} GroupNorm groups; store "
                             f"the group count as safetensors metadata {METADATA_VAE_NORM_GROUPS!r}.")
    return {
        "in_channels": _need(shapes, "encoder.conv_in.weight", "VAE")[1],
        "out_channels": _need(shapes, "decoder.conv_out.weight", "VAE")[0],
        "down_block_types": ["DownEncoderBlock2D"] * blocks,
        "up_block_types": ["UpDecoderBlock2D"] * blocks,
        "block_out_channels": channels,
        "layers_per_block": _indices(shapes, r"encoder\.down_blocks\.0\.resnets\.(\d+)\."),
        "latent_channels": _need(shapes, "decoder.conv_in.weight", "VAE")[1],
        "norm_num_groups": groups,
        "sample_size": _meta_int(metadata, METADATA_VAE_SAMPLE_SIZE) or REAL_VAE_SAMPLE_SIZE,
        "scaling_factor": 0.13025,
        "force_upcast": True,
        "use_quant_conv": "quant_conv.weight" in shapes,
        "use_post_quant_conv": "post_quant_conv.weight" in shapes,
        "mid_block_add_attention": "encoder.mid_block.attentions.0.to_q.weight" in shapes,
    }


def text_encoder_config(shapes: Shapes, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Kwargs for ``transformers.UMT5Config`` from UMT5EncoderModel-named shapes (Pile-T5 conventions, §6).

    Heads and buckets come from ``relative_attention_bias.weight`` (buckets, heads); the flags that shapes
    cannot show (gated-GELU is seen from ``wi_0``, but the max distance, eps and token ids are not) are the
    real text encoder's.
    """
    embedding = shapes.get("shared.weight") or shapes.get("encoder.embed_tokens.weight")
    if embedding is None:
        _need(shapes, "shared.weight", "text encoder")
    vocab, d_model = (int(d) for d in embedding)  # type: ignore[union-attr]
    buckets, heads = _need(shapes, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                           "text encoder")
    inner = _need(shapes, "encoder.block.0.layer.0.SelfAttention.q.weight", "text encoder")[0]
    gated = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight" in shapes
    wi = "wi_0" if gated else "wi"
    return {
        "vocab_size": vocab,
        "d_model": d_model,
        "d_kv": inner // heads,
        "d_ff": _need(shapes, f"encoder.block.0.layer.1.DenseReluDense.{wi}.weight", "text encoder")[0],
        "num_layers": _indices(shapes, r"encoder\.block\.(\d+)\."),
        "num_heads": heads,
        "relative_attention_num_buckets": buckets,
        "relative_attention_max_distance": 128,
        "feed_forward_proj": "gated-gelu" if gated else "relu",
        "scalable_attention": True,
        "is_encoder_decoder": False,
        "dropout_rate": 0.0,
        "layer_norm_epsilon": 1e-6,
        "pad_token_id": 0,
        "eos_token_id": 2,
        "tie_word_embeddings": False,
    }


def metadata_for(transformer: Mapping[str, Any] | None = None, vae: Mapping[str, Any] | None = None
                 ) -> dict[str, str]:
    """Safetensors metadata that carries what shapes cannot, from a transformer and/or VAE config.

    Pass ``model.config`` of a diffusers model; the result goes to our writers (:mod:`pipeline.export`) so that
    :func:`transformer_config` and :func:`vae_config` read back exactly the config the weights came from.
    """
    out: dict[str, str] = {}
    if transformer is not None:
        out[METADATA_NUM_HEADS] = str(int(transformer["num_attention_heads"]))
        out[METADATA_SAMPLE_SIZE] = str(int(transformer["sample_size"]))
    if vae is not None:
        out[METADATA_VAE_NORM_GROUPS] = str(int(vae["norm_num_groups"]))
        out[METADATA_VAE_SAMPLE_SIZE] = str(int(vae["sample_size"]))
    return out
