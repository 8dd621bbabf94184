"""Which AuraFlow checkpoint layout a single file holds, and how its tensor names map to diffusers/transformers.

Why names and shapes only: an all-in-one file is 16.5 GB. Detection and key maps work on the safetensors header
(``{name: shape}``), so the loader can build a :data:`Plan` first and then stream one tensor at a time from the
file into the module (``safe_open(...).get_tensor``), never holding a second copy of the state dict.

Layouts we accept (auraflow-reference §7):

- **all-in-one** (ComfyUI ``aura_flow_0.3.safetensors``): ``model.`` (or ``model.diffusion_model.``) + fal's original
  transformer names, ``vae.`` + LDM VAE names, ``text_encoders.pile_t5xl.transformer.`` + HF T5 names. The VAE or
  text-encoder part may be absent.
- **original-transformer** (fal / GGUF-style): the original names, unprefixed, nothing else.
- **diffusers-transformer**: ``AuraFlowTransformer2DModel`` state-dict names in one file.

Key renames are data tables (:data:`TRANSFORMER_RULES`, :data:`VAE_RULES`, :data:`TEXT_ENCODER_RULES`) run by one
small engine; the inverse converters (diffusers -> original/LDM, for fixtures and exports) run the same tables
backwards, so a mapping cannot drift between the two directions. The tables match diffusers 0.42.1
``single_file_utils.convert_auraflow_transformer_checkpoint_to_diffusers`` and ``convert_ldm_vae_checkpoint``;
``tests/pipeline/test_layouts.py`` proves every tensor survives diffusers -> original -> plan unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal

import torch
from torch import Tensor

from .errors import UnrecognizedLayoutError

__all__ = [
    "Plan",
    "PlanEntry",
    "SingleFileLayout",
    "apply_plan",
    "detect_single_file",
    "diffusers_transformer_to_original",
    "diffusers_vae_to_ldm",
    "plan_shapes",
    "text_encoder_ignored_keys",
    "text_encoder_plan",
    "transformer_plan",
    "unclaimed_keys",
    "vae_plan",
]

Shapes = Mapping[str, Sequence[int]]


@dataclass(frozen=True)
class PlanEntry:
    """Where one target tensor comes from: the source name in the file, the target shape, an optional transform."""

    source: str
    shape: tuple[int, ...]
    transform: Callable[[Tensor], Tensor] | None = None


Plan = dict[str, PlanEntry]
"""TARGET name (diffusers / transformers state-dict name) -> :class:`PlanEntry`."""


@dataclass(frozen=True)
class SingleFileLayout:
    """What :func:`detect_single_file` found: the kind of file and the name prefix of each part (None = absent)."""

    kind: Literal["all-in-one", "original-transformer", "diffusers-transformer"]
    transformer_prefix: str
    vae_prefix: str | None
    text_encoder_prefix: str | None


# --------------------------------------------------------------------------------------------------------------
# Tensor transforms. Each is planned from the source shape alone: (function or None, target shape).


def _swap_halves(t: Tensor) -> Tensor:
    """fal's ``modF`` is (shift, scale); diffusers' ``norm_out.linear`` is (scale, shift). Its own inverse."""
    first, second = t.chunk(2, dim=0)
    return torch.cat([second, first], dim=0)


def _conv1x1_to_linear(t: Tensor) -> Tensor:
    """LDM VAE attention uses 1x1 convolutions; diffusers uses Linear layers with the same (out, in) matrix."""
    return t.reshape(t.shape[0], t.shape[1])


def _linear_to_conv1x1(t: Tensor) -> Tensor:
    return t.reshape(t.shape[0], t.shape[1], 1, 1)


_TransformPlanner = Callable[[tuple[int, ...]], tuple[Callable[[Tensor], Tensor] | None, tuple[int, ...]]]

_TRANSFORMS: dict[str, _TransformPlanner] = {
    "swap_halves": lambda s: (_swap_halves, s),
    # Only 4-D (or 3-D, as in some old LDM files) weights are convolutions; a 2-D one is already linear.
    "conv_to_linear": lambda s: ((_conv1x1_to_linear, (s[0], s[1])) if len(s) > 2 else (None, s)),
    "linear_to_conv": lambda s: ((_linear_to_conv1x1, (s[0], s[1], 1, 1)) if len(s) == 2 else (None, s)),
}
_INVERSE_TRANSFORM = {"swap_halves": "swap_halves", "conv_to_linear": "linear_to_conv"}


# --------------------------------------------------------------------------------------------------------------
# The rename engine: a rule is a source template, a target template and an optional table of leaf renames.


@dataclass(frozen=True)
class _Rule:
    """``source``/``target`` are templates: ``{leaf}`` matches the rest of the name, other ``{x}`` an index.

    ``leaves`` (source leaf -> target leaf) restricts and renames ``{leaf}``; ``None`` passes any leaf through.
    ``reverse`` names an index counted from the other end in the target (LDM decoder ``up.i`` is diffusers
    ``up_blocks.{n-1-i}``); ``transform`` names an entry of ``_TRANSFORMS`` applied to every matched tensor.
    """

    source: str
    target: str
    leaves: Mapping[str, str] | None = None
    transform: str | None = None
    reverse: str | None = None

    def inverted(self) -> _Rule:
        leaves = None if self.leaves is None else {v: k for k, v in self.leaves.items()}
        transform = None if self.transform is None else _INVERSE_TRANSFORM[self.transform]
        return _Rule(self.target, self.source, leaves, transform, self.reverse)


@cache
def _compile(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", template)
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        else:
            regex += f"(?P<{part}>.+)" if part == "leaf" else f"(?P<{part}>\\d+)"
    return re.compile(regex + r"\Z")


def _match(rule: _Rule, name: str) -> dict[str, str] | None:
    found = _compile(rule.source).match(name)
    if found is None:
        return None
    fields = found.groupdict()
    if rule.leaves is not None and "leaf" in fields:
        if fields["leaf"] not in rule.leaves:
            return None
        fields["leaf"] = rule.leaves[fields["leaf"]]
    return fields


def _run_rules(shapes: Shapes, names: Sequence[str], prefix: str, rules: Sequence[_Rule]) -> tuple[Plan, list[str]]:
    """Plan every ``names`` (relative to ``prefix``) through the first rule that matches; return leftovers too."""
    matched: list[tuple[str, _Rule, dict[str, str]]] = []
    leftovers: list[str] = []
    for name in names:
        relative = name[len(prefix):]
        for rule in rules:
            fields = _match(rule, relative)
            if fields is not None:
                matched.append((name, rule, fields))
                break
        else:
            leftovers.append(name)
    # Counting an index backwards needs the count of that index over every rule that reverses it.
    counts: dict[str, int] = {}
    for _, rule, fields in matched:
        if rule.reverse:
            counts[rule.reverse] = max(counts.get(rule.reverse, 0), int(fields[rule.reverse]) + 1)
    plan: Plan = {}
    for name, rule, fields in matched:
        if rule.reverse:
            fields = {**fields, rule.reverse: str(counts[rule.reverse] - 1 - int(fields[rule.reverse]))}
        target = rule.target.format(**fields)
        shape = tuple(int(d) for d in shapes[name])
        transform = None
        if rule.transform is not None:
            transform, shape = _TRANSFORMS[rule.transform](shape)
        if target in plan:
            raise UnrecognizedLayoutError(
                f"Two tensors map to {target!r}: {plan[target].source!r} and {name!r}; the file mixes layouts.",
                expected="one consistent AuraFlow layout", keys_seen=[plan[target].source, name])
        plan[target] = PlanEntry(name, shape, transform)
    return plan, leftovers


def _invert(rules: Sequence[_Rule]) -> tuple[_Rule, ...]:
    return tuple(rule.inverted() for rule in rules)


def _identity_of_targets(rules: Sequence[_Rule]) -> tuple[_Rule, ...]:
    """Rules accepting what ``rules`` produce, unchanged: a file already in diffusers names."""
    return tuple(
        _Rule(r.target, r.target, None if r.leaves is None else {v: v for v in r.leaves.values()}) for r in rules
    )


# --------------------------------------------------------------------------------------------------------------
# Transformer: fal's original names -> diffusers AuraFlowTransformer2DModel (reference §7).

_ATTN_IMAGE = {"w2q": "to_q", "w2k": "to_k", "w2v": "to_v", "w2o": "to_out.0"}
_ATTN_TEXT = {"w1q": "add_q_proj", "w1k": "add_k_proj", "w1v": "add_v_proj", "w1o": "to_add_out"}
_ATTN_SINGLE = {"w1q": "to_q", "w1k": "to_k", "w1v": "to_v", "w1o": "to_out.0"}
_MLP = {"c_fc1": "linear_1", "c_fc2": "linear_2", "c_proj": "out_projection"}

_DOUBLE_LEAVES: dict[str, str] = {
    **{f"attn.{k}.weight": f"attn.{v}.weight" for k, v in {**_ATTN_IMAGE, **_ATTN_TEXT}.items()},
    **{f"mlpX.{k}.weight": f"ff.{v}.weight" for k, v in _MLP.items()},
    **{f"mlpC.{k}.weight": f"ff_context.{v}.weight" for k, v in _MLP.items()},
    "modX.1.weight": "norm1.linear.weight",
    "modC.1.weight": "norm1_context.linear.weight",
}
_SINGLE_LEAVES: dict[str, str] = {
    **{f"attn.{k}.weight": f"attn.{v}.weight" for k, v in _ATTN_SINGLE.items()},
    **{f"mlp.{k}.weight": f"ff.{v}.weight" for k, v in _MLP.items()},
    "modCX.1.weight": "norm1.linear.weight",
}

TRANSFORMER_RULES: tuple[_Rule, ...] = (
    _Rule("register_tokens", "register_tokens"),
    _Rule("positional_encoding", "pos_embed.pos_embed"),
    _Rule("init_x_linear.{leaf}", "pos_embed.proj.{leaf}", {"weight": "weight", "bias": "bias"}),
    _Rule("cond_seq_linear.weight", "context_embedder.weight"),
    _Rule("t_embedder.mlp.0.{leaf}", "time_step_proj.linear_1.{leaf}", {"weight": "weight", "bias": "bias"}),
    _Rule("t_embedder.mlp.2.{leaf}", "time_step_proj.linear_2.{leaf}", {"weight": "weight", "bias": "bias"}),
    _Rule("double_layers.{i}.{leaf}", "joint_transformer_blocks.{i}.{leaf}", _DOUBLE_LEAVES),
    _Rule("single_layers.{i}.{leaf}", "single_transformer_blocks.{i}.{leaf}", _SINGLE_LEAVES),
    _Rule("final_linear.weight", "proj_out.weight"),
    _Rule("modF.1.weight", "norm_out.linear.weight", transform="swap_halves"),
)
_TRANSFORMER_DIFFUSERS_RULES = _identity_of_targets(TRANSFORMER_RULES)

# --------------------------------------------------------------------------------------------------------------
# VAE: LDM (original Stable Diffusion) names -> diffusers AutoencoderKL.

_WB = {"weight": "weight", "bias": "bias"}
_RESNET_LEAVES = {
    f"{a}.{p}": f"{b}.{p}"
    for a, b in {"norm1": "norm1", "conv1": "conv1", "norm2": "norm2", "conv2": "conv2",
                 "nin_shortcut": "conv_shortcut"}.items()
    for p in ("weight", "bias")
}
_ATTN_PROJ = {"q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}


def _vae_side_rules(side: Literal["encoder", "decoder"]) -> tuple[_Rule, ...]:
    mid = (
        _Rule(f"{side}.mid.block_1.{{leaf}}", f"{side}.mid_block.resnets.0.{{leaf}}", _RESNET_LEAVES),
        _Rule(f"{side}.mid.block_2.{{leaf}}", f"{side}.mid_block.resnets.1.{{leaf}}", _RESNET_LEAVES),
        _Rule(f"{side}.mid.attn_1.norm.{{leaf}}", f"{side}.mid_block.attentions.0.group_norm.{{leaf}}", _WB),
        _Rule(f"{side}.mid.attn_1.{{leaf}}", f"{side}.mid_block.attentions.0.{{leaf}}",
              {f"{k}.weight": f"{v}.weight" for k, v in _ATTN_PROJ.items()}, transform="conv_to_linear"),
        _Rule(f"{side}.mid.attn_1.{{leaf}}", f"{side}.mid_block.attentions.0.{{leaf}}",
              {f"{k}.bias": f"{v}.bias" for k, v in _ATTN_PROJ.items()}),
        _Rule(f"{side}.norm_out.{{leaf}}", f"{side}.conv_norm_out.{{leaf}}", _WB),
        _Rule(f"{side}.conv_in.{{leaf}}", f"{side}.conv_in.{{leaf}}", _WB),
        _Rule(f"{side}.conv_out.{{leaf}}", f"{side}.conv_out.{{leaf}}", _WB),
    )
    if side == "encoder":
        blocks = (
            _Rule("encoder.down.{i}.block.{j}.{leaf}", "encoder.down_blocks.{i}.resnets.{j}.{leaf}", _RESNET_LEAVES),
            _Rule("encoder.down.{i}.downsample.conv.{leaf}", "encoder.down_blocks.{i}.downsamplers.0.conv.{leaf}",
                  _WB),
        )
    else:
        blocks = (
            _Rule("decoder.up.{i}.block.{j}.{leaf}", "decoder.up_blocks.{i}.resnets.{j}.{leaf}", _RESNET_LEAVES,
                  reverse="i"),
            _Rule("decoder.up.{i}.upsample.conv.{leaf}", "decoder.up_blocks.{i}.upsamplers.0.conv.{leaf}", _WB,
                  reverse="i"),
        )
    return blocks + mid


VAE_RULES: tuple[_Rule, ...] = (
    *_vae_side_rules("encoder"),
    *_vae_side_rules("decoder"),
    _Rule("quant_conv.{leaf}", "quant_conv.{leaf}", _WB),
    _Rule("post_quant_conv.{leaf}", "post_quant_conv.{leaf}", _WB),
)
_VAE_DIFFUSERS_RULES = _identity_of_targets(VAE_RULES)

# --------------------------------------------------------------------------------------------------------------
# Text encoder: HF T5 encoder names -> transformers UMT5EncoderModel (the same names; we only select and check).

TEXT_ENCODER_RULES: tuple[_Rule, ...] = (
    _Rule("shared.weight", "shared.weight"),
    _Rule("encoder.embed_tokens.weight", "encoder.embed_tokens.weight"),
    _Rule("encoder.block.{i}.layer.0.{leaf}", "encoder.block.{i}.layer.0.{leaf}", {
        k: k for k in ("SelfAttention.q.weight", "SelfAttention.k.weight", "SelfAttention.v.weight",
                       "SelfAttention.o.weight", "SelfAttention.relative_attention_bias.weight", "layer_norm.weight")}),
    _Rule("encoder.block.{i}.layer.1.{leaf}", "encoder.block.{i}.layer.1.{leaf}", {
        k: k for k in ("DenseReluDense.wi_0.weight", "DenseReluDense.wi_1.weight", "DenseReluDense.wi.weight",
                       "DenseReluDense.wo.weight", "layer_norm.weight")}),
    _Rule("encoder.final_layer_norm.weight", "encoder.final_layer_norm.weight"),
)
# UMT5EncoderModel's state dict names the embedding twice (shared and the encoder's tied copy); files often
# keep only one of them.
_EMBEDDING_NAMES = ("shared.weight", "encoder.embed_tokens.weight")

# --------------------------------------------------------------------------------------------------------------
# Detection tables.

# Tried in order: the longer ComfyUI prefix before its own start.
_TRANSFORMER_PREFIXES = ("", "model.diffusion_model.", "model.", "transformer.")
_VAE_PREFIXES = ("vae.", "first_stage_model.")
_TEXT_ENCODER_PREFIXES = ("text_encoders.pile_t5xl.transformer.", "text_encoders.pile_t5xl.")

# Names that together only an AuraFlow transformer has, per naming; plus one block name prefix.
_ORIGINAL_MARKERS = ("cond_seq_linear.weight", "t_embedder.mlp.0.weight", "init_x_linear.weight")
_ORIGINAL_BLOCKS = ("double_layers.", "single_layers.")
_DIFFUSERS_MARKERS = ("context_embedder.weight", "time_step_proj.linear_1.weight", "pos_embed.proj.weight",
                      "register_tokens")
_DIFFUSERS_BLOCKS = ("joint_transformer_blocks.", "single_transformer_blocks.")
_LDM_VAE_MARKER = "encoder.down.0.block.0.conv1.weight"
_DIFFUSERS_VAE_MARKER = "encoder.down_blocks.0.resnets.0.conv1.weight"
_TEXT_ENCODER_MARKER = "encoder.block.0.layer.0.SelfAttention.q.weight"

EXPECTED_LAYOUTS = (
    "an AuraFlow checkpoint in one of: ComfyUI all-in-one ('model.' + original names such as "
    "'model.double_layers.0.attn.w1q.weight', optional 'vae.' LDM VAE and "
    "'text_encoders.pile_t5xl.transformer.' T5 encoder); fal's original transformer ('double_layers.…', "
    "'single_layers.…', 'cond_seq_linear.weight', 't_embedder.mlp.0.weight'); or a diffusers "
    "AuraFlowTransformer2DModel file ('joint_transformer_blocks.…', 'context_embedder.weight')"
)


def _sample_keys(names: Sequence[str], limit: int = 5) -> list[str]:
    """A few names that show the file's structure: one per distinct two-part name start, in sorted order."""
    seen: dict[str, str] = {}
    for name in sorted(names):
        seen.setdefault(".".join(name.split(".")[:2]), name)
    picked = list(seen.values())[:limit]
    return picked or sorted(names)[:limit]


def _has_all(keys: set[str], prefix: str, markers: Sequence[str]) -> bool:
    return all(prefix + m in keys for m in markers)


def _has_any_start(keys: Sequence[str], prefix: str, starts: Sequence[str]) -> bool:
    return any(k.startswith(prefix + s) for k in keys for s in starts)


def detect_single_file(shapes: Shapes, path: object | None = None) -> SingleFileLayout:
    """Recognise an AuraFlow single file from its tensor names (``shapes`` = the safetensors header).

    Raises :class:`UnrecognizedLayoutError` naming the layouts we accept and a few keys found, so that a user
    who picked an SDXL, Flux or text-encoder file in the loader sees at once what it is and what is wanted.
    """
    keys = set(shapes)
    names = sorted(keys)
    vae_prefix = next((p for p in _VAE_PREFIXES
                       if p + _LDM_VAE_MARKER in keys or p + _DIFFUSERS_VAE_MARKER in keys), None)
    te_prefix = next((p for p in _TEXT_ENCODER_PREFIXES if p + _TEXT_ENCODER_MARKER in keys), None)
    for prefix in _TRANSFORMER_PREFIXES:
        if _has_all(keys, prefix, _ORIGINAL_MARKERS) and _has_any_start(names, prefix, _ORIGINAL_BLOCKS):
            alone = prefix == "" and vae_prefix is None and te_prefix is None
            kind: Literal["all-in-one", "original-transformer"] = "original-transformer" if alone else "all-in-one"
            return SingleFileLayout(kind, prefix, vae_prefix, te_prefix)
        if _has_all(keys, prefix, _DIFFUSERS_MARKERS) and _has_any_start(names, prefix, _DIFFUSERS_BLOCKS):
            return SingleFileLayout("diffusers-transformer", prefix, vae_prefix, te_prefix)
    sample = _sample_keys(names)
    raise UnrecognizedLayoutError(
        f"Not an AuraFlow checkpoint: expected {EXPECTED_LAYOUTS}. Found {len(keys)} tensors, e.g. "
        + ", ".join(repr(k) for k in sample) + ".",
        path=path, expected=EXPECTED_LAYOUTS, keys_seen=sample)


def _part_names(shapes: Shapes, prefix: str, others: Sequence[str | None]) -> list[str]:
    """Names under ``prefix`` that do not belong to another part (an unprefixed transformer shares the root)."""
    other = tuple(p for p in others if p and p.startswith(prefix) and p != prefix)
    return sorted(k for k in shapes if k.startswith(prefix) and not k.startswith(other))


def transformer_plan(shapes: Shapes, layout: SingleFileLayout, path: object | None = None) -> Plan:
    """Plan the transformer: original (fal/ComfyUI) or diffusers names -> ``AuraFlowTransformer2DModel`` names.

    Every name under the transformer prefix must be consumed: a leftover means a variant we do not understand
    (a different block design, an extra head), and loading it half would give silent garbage.
    """
    names = _part_names(shapes, layout.transformer_prefix, (layout.vae_prefix, layout.text_encoder_prefix))
    rules = _TRANSFORMER_DIFFUSERS_RULES if layout.kind == "diffusers-transformer" else TRANSFORMER_RULES
    plan, leftovers = _run_rules(shapes, names, layout.transformer_prefix, rules)
    if leftovers:
        naming = "diffusers" if layout.kind == "diffusers-transformer" else "original AuraFlow"
        raise UnrecognizedLayoutError(
            f"The transformer has {len(leftovers)} tensors that are not part of the {naming} AuraFlow transformer "
            f"layout, e.g. " + ", ".join(repr(k) for k in leftovers[:5]) + ".",
            path=path, expected=f"{naming} AuraFlow transformer names", keys_seen=leftovers[:5])
    return plan


def vae_plan(shapes: Shapes, prefix: str, path: object | None = None) -> Plan:
    """Plan the VAE under ``prefix``: LDM names (or diffusers names already) -> ``AutoencoderKL`` names.

    LDM's decoder counts ``up.i`` from the bottom, diffusers' ``up_blocks.i`` from the top; its mid-block
    attention holds 1x1-conv weights where diffusers has Linear ones (reshaped by the plan's transform).
    """
    names = [k for k in sorted(shapes) if k.startswith(prefix)]
    diffusers_named = prefix + _DIFFUSERS_VAE_MARKER in shapes
    rules = _VAE_DIFFUSERS_RULES if diffusers_named else VAE_RULES
    plan, leftovers = _run_rules(shapes, names, prefix, rules)
    if leftovers:
        naming = "diffusers AutoencoderKL" if diffusers_named else "LDM (Stable Diffusion) VAE"
        raise UnrecognizedLayoutError(
            f"The VAE under {prefix!r} has {len(leftovers)} tensors that are not part of the {naming} layout, e.g. "
            + ", ".join(repr(k) for k in leftovers[:5]) + ".",
            path=path, expected=f"{naming} names", keys_seen=leftovers[:5])
    return plan


def _text_encoder_split(shapes: Shapes, prefix: str) -> tuple[Plan, list[str]]:
    names = [k for k in sorted(shapes) if k.startswith(prefix)]
    plan, ignored = _run_rules(shapes, names, prefix, TEXT_ENCODER_RULES)
    present = [n for n in _EMBEDDING_NAMES if n in plan]
    if present:
        for name in _EMBEDDING_NAMES:
            plan.setdefault(name, plan[present[0]])
    return plan, ignored


def text_encoder_plan(shapes: Shapes, prefix: str, path: object | None = None) -> Plan:
    """Plan the T5 encoder under ``prefix`` -> ``UMT5EncoderModel`` names.

    The names are already HF T5 names; the plan selects the encoder, fills ``shared.weight`` from
    ``encoder.embed_tokens.weight`` (or back) when a file keeps one copy, and ignores what UMT5EncoderModel has
    no place for (``logit_scale``, decoder, ``lm_head``; see :func:`text_encoder_ignored_keys`).
    """
    plan, _ = _text_encoder_split(shapes, prefix)
    if "shared.weight" not in plan:
        raise UnrecognizedLayoutError(
            f"The text encoder under {prefix!r} has no token embedding ('shared.weight' or "
            "'encoder.embed_tokens.weight').",
            path=path, expected="HF T5 encoder names", keys_seen=_sample_keys([k for k in shapes
                                                                              if k.startswith(prefix)]))
    return plan


def text_encoder_ignored_keys(shapes: Shapes, prefix: str) -> list[str]:
    """Names under ``prefix`` that :func:`text_encoder_plan` leaves out, for a debug log."""
    return _text_encoder_split(shapes, prefix)[1]


def unclaimed_keys(shapes: Shapes, layout: SingleFileLayout) -> list[str]:
    """Names outside every part of ``layout`` (e.g. ``model_ema.…`` in a prefixed all-in-one), for a debug log."""
    prefixes = tuple(p for p in (layout.transformer_prefix, layout.vae_prefix, layout.text_encoder_prefix)
                     if p is not None)
    if "" in prefixes:
        return []
    return sorted(k for k in shapes if not k.startswith(prefixes))


def plan_shapes(plan: Plan) -> dict[str, tuple[int, ...]]:
    """Target name -> target shape: what :mod:`pipeline.configs` reads to build a config."""
    return {target: entry.shape for target, entry in plan.items()}


def apply_plan(plan: Plan, read: Callable[[str], Tensor]) -> Iterator[tuple[str, Tensor]]:
    """Yield ``(target name, tensor)`` one at a time, reading each source with ``read`` (e.g. ``f.get_tensor``).

    A source shared by two targets (the UMT5 embedding) is read once per target; that is two reads of one
    tensor, never the whole file at once.
    """
    for target, entry in plan.items():
        tensor = read(entry.source)
        yield target, (tensor if entry.transform is None else entry.transform(tensor))


# --------------------------------------------------------------------------------------------------------------
# Inverse converters: diffusers state dicts -> original / LDM names (fixtures, exports).


def _convert(state_dict: Mapping[str, Tensor], rules: Sequence[_Rule], what: str) -> dict[str, Tensor]:
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    plan, leftovers = _run_rules(shapes, sorted(state_dict), "", rules)
    if leftovers:
        raise UnrecognizedLayoutError(
            f"Cannot convert: {len(leftovers)} tensors are not diffusers {what} names, e.g. "
            + ", ".join(repr(k) for k in leftovers[:5]) + ".",
            expected=f"diffusers {what} names", keys_seen=leftovers[:5])
    return dict(apply_plan(plan, state_dict.__getitem__))


def diffusers_transformer_to_original(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``AuraFlowTransformer2DModel`` state dict -> fal's original names (unprefixed), ``modF`` halves swapped."""
    return _convert(state_dict, _invert(TRANSFORMER_RULES), "AuraFlowTransformer2DModel")


def diffusers_vae_to_ldm(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``AutoencoderKL`` state dict -> LDM VAE names (unprefixed), attention weights as 1x1 convolutions."""
    return _convert(state_dict, _invert(VAE_RULES), "AutoencoderKL")
