"""Single-file layouts: detection, key plans, and the inverse writers, on one set of tiny random weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

from pipeline.configs import metadata_for, text_encoder_config, transformer_config, vae_config
from pipeline.errors import UnrecognizedLayoutError
from pipeline.export import write_comfy_all_in_one, write_original_transformer
from pipeline.layouts import (
    SingleFileLayout,
    apply_plan,
    detect_single_file,
    diffusers_transformer_to_original,
    diffusers_vae_to_ldm,
    plan_shapes,
    text_encoder_ignored_keys,
    text_encoder_plan,
    transformer_plan,
    unclaimed_keys,
    vae_plan,
)
from pipeline.tiny import build_components

TE = "text_encoders.pile_t5xl.transformer."


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return build_components(seed=3, tokenizer_dir=tmp_path_factory.mktemp("tok"))


def _shapes(sd: dict[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in sd.items()}


def _all_in_one(tiny: dict[str, Any]) -> dict[str, torch.Tensor]:
    sd = {"model." + k: v for k, v in diffusers_transformer_to_original(tiny["transformer"].state_dict()).items()}
    sd.update({"vae." + k: v for k, v in diffusers_vae_to_ldm(tiny["vae"].state_dict()).items()})
    sd.update({TE + k: v for k, v in tiny["text_encoder"].state_dict().items() if k != "encoder.embed_tokens.weight"})
    return sd


def _assert_plan_restores(plan: dict, source: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> None:
    assert set(plan) == set(reference)
    assert plan_shapes(plan) == _shapes(reference)
    for name, tensor in apply_plan(plan, source.__getitem__):
        assert torch.equal(tensor, reference[name]), name


def test_original_names_match_the_reference_table(tiny: dict[str, Any]) -> None:
    original = diffusers_transformer_to_original(tiny["transformer"].state_dict())
    for name in ("register_tokens", "positional_encoding", "init_x_linear.weight", "cond_seq_linear.weight",
                 "t_embedder.mlp.2.bias", "double_layers.0.attn.w2q.weight", "double_layers.0.attn.w1o.weight",
                 "double_layers.0.mlpC.c_proj.weight", "double_layers.0.modX.1.weight",
                 "single_layers.1.modCX.1.weight", "single_layers.1.attn.w1v.weight", "final_linear.weight"):
        assert name in original, name
    # modF is (shift, scale); diffusers' norm_out.linear is (scale, shift).
    norm_out = tiny["transformer"].state_dict()["norm_out.linear.weight"]
    scale, shift = norm_out.chunk(2)
    assert torch.equal(original["modF.1.weight"], torch.cat([shift, scale]))
    ldm = diffusers_vae_to_ldm(tiny["vae"].state_dict())
    assert ldm["encoder.mid.attn_1.q.weight"].shape[2:] == (1, 1)
    # LDM counts decoder blocks from the bottom: up.0 is diffusers' last up block (no upsampler).
    assert torch.equal(ldm["decoder.up.0.block.0.conv1.weight"],
                       tiny["vae"].state_dict()["decoder.up_blocks.3.resnets.0.conv1.weight"])
    assert "decoder.up.0.upsample.conv.weight" not in ldm and "decoder.up.3.upsample.conv.weight" in ldm


def test_all_in_one_round_trip_every_tensor(tiny: dict[str, Any]) -> None:
    sd = _all_in_one(tiny)
    layout = detect_single_file(_shapes(sd))
    assert layout == SingleFileLayout("all-in-one", "model.", "vae.", TE)
    shapes = _shapes(sd)
    _assert_plan_restores(transformer_plan(shapes, layout), sd, tiny["transformer"].state_dict())
    _assert_plan_restores(vae_plan(shapes, "vae."), sd, tiny["vae"].state_dict())
    # shared.weight only in the file: both UMT5 names are planned from it.
    _assert_plan_restores(text_encoder_plan(shapes, TE), sd, tiny["text_encoder"].state_dict())
    assert unclaimed_keys(shapes, layout) == []


def test_other_layouts_are_detected(tiny: dict[str, Any]) -> None:
    transformer = tiny["transformer"].state_dict()
    original = diffusers_transformer_to_original(transformer)
    layout = detect_single_file(_shapes(original))
    assert layout == SingleFileLayout("original-transformer", "", None, None)
    _assert_plan_restores(transformer_plan(_shapes(original), layout), original, transformer)

    diffusers_file = detect_single_file(_shapes(transformer))
    assert diffusers_file == SingleFileLayout("diffusers-transformer", "", None, None)
    _assert_plan_restores(transformer_plan(_shapes(transformer), diffusers_file), transformer, transformer)

    comfy = {"model.diffusion_model." + k: v for k, v in original.items()}
    assert detect_single_file(_shapes(comfy)) == SingleFileLayout("all-in-one", "model.diffusion_model.", None, None)

    # An all-in-one without its text encoder, and an unprefixed transformer beside a VAE.
    partial = {k: v for k, v in _all_in_one(tiny).items() if not k.startswith(TE)}
    assert detect_single_file(_shapes(partial)) == SingleFileLayout("all-in-one", "model.", "vae.", None)
    beside = {k.removeprefix("model."): v for k, v in partial.items()}
    layout = detect_single_file(_shapes(beside))
    assert layout == SingleFileLayout("all-in-one", "", "vae.", None)
    _assert_plan_restores(transformer_plan(_shapes(beside), layout), beside, transformer)


def test_vae_in_diffusers_names_is_accepted(tiny: dict[str, Any]) -> None:
    vae = tiny["vae"].state_dict()
    sd = {"vae." + k: v for k, v in vae.items()}
    _assert_plan_restores(vae_plan(_shapes(sd), "vae."), sd, vae)


def test_text_encoder_extras_are_ignored_and_listed(tiny: dict[str, Any]) -> None:
    te = tiny["text_encoder"].state_dict()
    sd = {TE + "encoder.embed_tokens.weight": te["encoder.embed_tokens.weight"],
          TE + "logit_scale": torch.ones(()), TE + "lm_head.weight": torch.zeros(4, 4),
          TE + "decoder.block.0.layer.0.SelfAttention.q.weight": torch.zeros(4, 4),
          **{TE + k: v for k, v in te.items() if k.startswith("encoder.") and k != "encoder.embed_tokens.weight"}}
    _assert_plan_restores(text_encoder_plan(_shapes(sd), TE), sd, te)
    assert text_encoder_ignored_keys(_shapes(sd), TE) == sorted(
        TE + k for k in ("logit_scale", "lm_head.weight", "decoder.block.0.layer.0.SelfAttention.q.weight"))
    with pytest.raises(UnrecognizedLayoutError, match="token embedding"):
        text_encoder_plan({TE + "encoder.final_layer_norm.weight": (4,)}, TE)


@pytest.mark.parametrize("keys", [
    # SDXL (LDM UNet + CLIP), Flux (BFL names), a text encoder alone, nothing.
    ["model.diffusion_model.input_blocks.0.0.weight", "conditioner.embedders.0.transformer.text_model.x",
     "first_stage_model.encoder.conv_in.weight", "model.diffusion_model.out.2.weight"],
    ["double_blocks.0.img_attn.qkv.weight", "single_blocks.0.linear1.weight", "img_in.weight", "time_in.in_layer.bias"],
    ["encoder.block.0.layer.0.SelfAttention.q.weight", "shared.weight", "encoder.final_layer_norm.weight"],
    [],
])
def test_non_auraflow_files_are_refused_with_expected_layout_and_keys(keys: list[str]) -> None:
    with pytest.raises(UnrecognizedLayoutError) as info:
        detect_single_file({k: (1,) for k in keys}, path="/models/x.safetensors")
    err = info.value
    message = str(err)
    assert "ComfyUI all-in-one" in message and "double_layers" in message and "joint_transformer_blocks" in message
    assert err.path == "/models/x.safetensors" and err.expected
    assert 0 < len(err.keys_seen) <= 5 or not keys
    for key in err.keys_seen:
        assert repr(key) in message


def test_leftover_keys_under_the_transformer_prefix_are_refused(tiny: dict[str, Any]) -> None:
    sd = _all_in_one(tiny)
    shapes = {**_shapes(sd), "model.double_layers.0.attn.w2x.weight": (4, 4), "model.lora_up.weight": (2, 2)}
    layout = detect_single_file(shapes)
    with pytest.raises(UnrecognizedLayoutError) as info:
        transformer_plan(shapes, layout)
    assert "model.double_layers.0.attn.w2x.weight" in str(info.value) and "model.lora_up.weight" in str(info.value)
    # Outside every part of a prefixed all-in-one: not the transformer's business, reported for a log.
    shapes = {**_shapes(sd), "model_ema.decay": ()}
    transformer_plan(shapes, detect_single_file(shapes))
    assert unclaimed_keys(shapes, detect_single_file(shapes)) == ["model_ema.decay"]
    vae_shapes = {**_shapes(sd), "vae.encoder.mid.attn_2.q.weight": (1,)}
    with pytest.raises(UnrecognizedLayoutError, match="attn_2"):
        vae_plan(vae_shapes, "vae.")


def _build(kind: str, config: dict[str, Any]) -> torch.nn.Module:
    from diffusers import AuraFlowTransformer2DModel, AutoencoderKL
    from transformers import UMT5Config, UMT5EncoderModel

    with torch.device("meta"):
        if kind == "transformer":
            return AuraFlowTransformer2DModel.from_config(config)
        if kind == "vae":
            return AutoencoderKL.from_config(config)
        return UMT5EncoderModel(UMT5Config(**config))


def test_files_on_disk_rebuild_identical_modules(tiny: dict[str, Any], tmp_path: Path) -> None:
    """Write -> safe_open -> detect -> plan -> config -> meta module -> stream tensors in -> same outputs."""
    metadata = metadata_for(tiny["transformer"].config, tiny["vae"].config)
    path = write_comfy_all_in_one(tiny["transformer"].state_dict(), tiny["text_encoder"].state_dict(),
                                  tiny["vae"].state_dict(), tmp_path / "aura_flow_tiny.safetensors", metadata)
    with safe_open(str(path), framework="pt") as f:
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
        layout = detect_single_file(shapes, path)
        assert layout.kind == "all-in-one" and layout.vae_prefix and layout.text_encoder_prefix
        plans = {"transformer": transformer_plan(shapes, layout, path),
                 "vae": vae_plan(shapes, layout.vae_prefix, path),
                 "text_encoder": text_encoder_plan(shapes, layout.text_encoder_prefix, path)}
        infer = {"transformer": transformer_config, "vae": vae_config, "text_encoder": text_encoder_config}
        modules = {}
        for kind, plan in plans.items():
            module = _build(kind, infer[kind](plan_shapes(plan), f.metadata()))
            module.load_state_dict(dict(apply_plan(plan, f.get_tensor)), strict=True, assign=True)
            modules[kind] = module.eval()

    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        latents = torch.randn(1, 4, 8, 8, generator=gen)
        context = torch.randn(1, 5, tiny["text_encoder"].config.d_model, generator=gen)
        t = torch.tensor([0.7])
        for name in ("transformer",):
            ours = modules[name](latents, encoder_hidden_states=context, timestep=t).sample
            ref = tiny[name](latents, encoder_hidden_states=context, timestep=t).sample
            assert torch.equal(ours, ref)
        image = torch.randn(1, 3, 32, 32, generator=gen)
        assert torch.equal(modules["vae"].encode(image).latent_dist.mean, tiny["vae"].encode(image).latent_dist.mean)
        assert torch.equal(modules["vae"].decode(latents[:, :, :4, :4]).sample,
                           tiny["vae"].decode(latents[:, :, :4, :4]).sample)
        ids = torch.tensor([[5, 17, 42, 2, 0, 0]])
        mask = (ids != 0).long()
        assert torch.equal(modules["text_encoder"](ids, attention_mask=mask).last_hidden_state,
                           tiny["text_encoder"](ids, attention_mask=mask).last_hidden_state)


def test_original_transformer_file_round_trip(tiny: dict[str, Any], tmp_path: Path) -> None:
    transformer = tiny["transformer"]
    path = write_original_transformer(transformer.state_dict(), tmp_path / "aura.safetensors",
                                      metadata_for(transformer.config))
    with safe_open(str(path), framework="pt") as f:
        shapes = {k: f.get_slice(k).get_shape() for k in f.keys()}
        layout = detect_single_file(shapes, path)
        assert layout == SingleFileLayout("original-transformer", "", None, None)
        plan = transformer_plan(shapes, layout)
        assert transformer_config(plan_shapes(plan), f.metadata()) == {
            k: v for k, v in transformer.config.items() if not k.startswith("_")}
        _assert_plan_restores(plan, {k: f.get_tensor(k) for k in f.keys()},
                              transformer.state_dict())


def test_plans_agree_with_diffusers_single_file_converters(tiny: dict[str, Any]) -> None:
    """An independent oracle: diffusers' own converters give the same tensors from the same original file."""
    from diffusers.loaders.single_file_utils import (
        convert_auraflow_transformer_checkpoint_to_diffusers,
        convert_ldm_vae_checkpoint,
    )

    sd = _all_in_one(tiny)
    shapes = _shapes(sd)
    layout = detect_single_file(shapes)
    original = {k.removeprefix("model."): v for k, v in sd.items() if k.startswith("model.")}
    theirs = convert_auraflow_transformer_checkpoint_to_diffusers(dict(original))
    ours = dict(apply_plan(transformer_plan(shapes, layout), sd.__getitem__))
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)

    vae_config = dict(tiny["vae"].config)
    theirs = convert_ldm_vae_checkpoint({k: v for k, v in sd.items() if k.startswith("vae.")}, vae_config)
    ours = dict(apply_plan(vae_plan(shapes, "vae."), sd.__getitem__))
    assert set(ours) == set(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
