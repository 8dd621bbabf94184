"""Tiny (and medium) random-weight AuraFlow stacks, built entirely offline.

Why this lives in the core and not only in tests: ``python -m pipeline demo`` runs the whole local path on a
machine with no weights, the benchmarks need a medium-size model without downloads, and the tests need every
checkpoint layout built from one set of weights. The parts are diffusers/transformers classes with the real
v0.3 conventions (auraflow-reference §6, §12) shrunk: a SentencePiece BPE tokenizer trained here in a fraction
of a second, a UMT5 encoder, an AuraFlow MMDiT and an SDXL-style VAE. The pictures they make are noise.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .tokenizer import SENTENCEPIECE_CONFIG

# the real model's tokenizer settings (no BOS, EOS appended, right padding), shared with bare tokenizer.model files
TOKENIZER_CONFIG = SENTENCEPIECE_CONFIG

_CORPUS = (
    "a photo of a cat sitting on a red chair in a sunlit room",
    "an astronaut riding a horse on the moon, cinematic lighting",
    "close-up portrait of a majestic iguana with vibrant blue-green scales and piercing amber eyes",
    "dramatic lighting against a black background, hyper-realistic, high resolution",
    "a lighthouse at dusk above a stormy sea, oil painting, warm colors",
    "watercolor of a small village in the mountains with snow and pine trees",
    "a bowl of ramen with steam rising, food photography, shallow depth of field",
    "ugly jpeg, blurry, low quality, deformed hands, text, watermark",
)


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of a random AuraFlow stack; the defaults make a ~0.2 M parameter transformer (<= 256 px)."""

    hidden_heads: int = 2
    head_dim: int = 16
    num_mmdit_layers: int = 1
    num_single_dit_layers: int = 2
    pos_embed_max_size: int = 256  # a 16 x 16 patch grid: up to 256 px per side
    text_d_model: int = 32
    text_layers: int = 2
    text_heads: int = 4
    text_d_kv: int = 8
    text_d_ff: int = 64
    # GroupNorm groups cannot be read off tensor shapes; the real VAE uses 32, so the tiny one does too.
    vae_channels: tuple[int, ...] = (32, 32, 32, 32)
    vae_groups: int = 32
    vocab_size: int = 300


TINY = TinyConfig()

# Issue #3's benchmark size: hidden 768, 2 double + 4 single blocks (~88 M parameters in the transformer).
MEDIUM = TinyConfig(hidden_heads=12, head_dim=64, num_mmdit_layers=2, num_single_dit_layers=4,
                    pos_embed_max_size=1024, text_d_model=256, text_layers=2, text_heads=4, text_d_kv=64,
                    text_d_ff=512, vae_channels=(32, 64, 64, 64), vae_groups=32)


def train_tokenizer(folder: Path, vocab_size: int = 300) -> Path:
    """Train a SentencePiece BPE model on a few sentences and save it as a LlamaTokenizer folder."""
    import sentencepiece as spm

    folder.mkdir(parents=True, exist_ok=True)
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(_CORPUS * 4), model_writer=model, vocab_size=vocab_size, model_type="bpe",
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, hard_vocab_limit=False, num_threads=1,
        character_coverage=1.0, minloglevel=2,
    )
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    (folder / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    return folder


def build_components(config: TinyConfig = TINY, *, seed: int = 0, tokenizer_dir: Path) -> dict[str, Any]:
    """Random-weight tokenizer, text encoder, transformer, VAE and scheduler, keyed as diffusers names them.

    ``tokenizer_dir`` receives the trained tokenizer (it has to exist on disk to be loaded).
    """
    from diffusers import AuraFlowTransformer2DModel, AutoencoderKL, FlowMatchEulerDiscreteScheduler
    from transformers import AutoTokenizer, UMT5Config, UMT5EncoderModel

    train_tokenizer(tokenizer_dir, config.vocab_size)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_encoder = UMT5EncoderModel(UMT5Config(
            vocab_size=max(len(tokenizer), 32), d_model=config.text_d_model, d_kv=config.text_d_kv,
            d_ff=config.text_d_ff, num_layers=config.text_layers, num_heads=config.text_heads,
            relative_attention_num_buckets=32, relative_attention_max_distance=128, dropout_rate=0.0,
            layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu", is_encoder_decoder=False,
            scalable_attention=True, pad_token_id=0, eos_token_id=2, tie_word_embeddings=False,
        )).eval()
        hidden = config.hidden_heads * config.head_dim
        transformer = AuraFlowTransformer2DModel(
            sample_size=16, patch_size=2, in_channels=4, out_channels=4,
            num_mmdit_layers=config.num_mmdit_layers, num_single_dit_layers=config.num_single_dit_layers,
            attention_head_dim=config.head_dim, num_attention_heads=config.hidden_heads,
            joint_attention_dim=config.text_d_model, caption_projection_dim=hidden,
            pos_embed_max_size=config.pos_embed_max_size,
        ).eval()
        # diffusers zero-initialises nothing we rely on, but some layers start at zero; jitter every
        # parameter so that a wrong key mapping can never hide behind two zero tensors.
        for module in (transformer,):
            for param in module.parameters():
                param.data.add_(torch.randn_like(param) * 0.02)
        channels = list(config.vae_channels)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=channels,
            down_block_types=["DownEncoderBlock2D"] * len(channels),
            up_block_types=["UpDecoderBlock2D"] * len(channels),
            layers_per_block=1, norm_num_groups=config.vae_groups, sample_size=64,
            scaling_factor=0.13025, force_upcast=True,
        ).eval()
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.73)
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "transformer": transformer, "vae": vae,
            "scheduler": scheduler}


def save_diffusers_folder(components: dict[str, Any], folder: Path) -> Path:
    """Write the components as a diffusers ``AuraFlowPipeline`` folder (safetensors weights)."""
    from diffusers import AuraFlowPipeline

    pipe = AuraFlowPipeline(**components)
    pipe.save_pretrained(folder, safe_serialization=True)
    # save_pretrained writes the tokenizer's own files; keep our config (right padding, no BOS) explicit.
    (folder / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(TOKENIZER_CONFIG, indent=2))
    return folder


def build_diffusers_folder(folder: Path, config: TinyConfig = TINY, *, seed: int = 0) -> Path:
    """Build a random stack and save it as a diffusers folder; returns ``folder``."""
    scratch = folder.parent / f".{folder.name}-tokenizer"
    components = build_components(config, seed=seed, tokenizer_dir=scratch)
    save_diffusers_folder(components, folder)
    (folder / "tiny_config.json").write_text(json.dumps({"seed": seed, **asdict(config)}))
    return folder
