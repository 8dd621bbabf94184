"""The ``fal-ai/aura-flow`` input schema, checked the way fal's (pydantic) server checks it.

fal answers bad input with HTTP 422 and ``{"detail": [{"loc": ["body", field], "msg", "type", ...}]}``
(``shared/notes/fal-queue-api.md`` §10); clients such as ours and fal-client turn that list into "field: msg", so
every problem here names its field. All problems are reported at once, as pydantic does. We check at submit time,
not when the job runs, so a bad request never takes a queue slot; checks that need the loaded model (the largest
size its position grid covers) happen in the backend and come back through the result URL as 422 too.

Fields are the seed's (``prompt``, ``num_images``, ``seed``, ``guidance_scale``, ``num_inference_steps``,
``expand_prompt``, ``sync_mode``) plus our optional extensions ``width``, ``height`` and ``negative_prompt``;
unknown fields are ignored, as fal's models ignore them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..checks import SEED_MAX

ERRORS_URL = "https://docs.fal.ai/errors/#"


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask for; they protect the GPU of whoever runs the server.

    fal does not publish its limits for aura-flow (fal-queue-api.md §12, unconfirmed); these defaults allow the
    seed's defaults (50 steps, 1024 px) with headroom and stop a request from holding the worker for hours.
    """

    max_images: int = 4
    max_steps: int = 100
    max_guidance: float = 20.0
    min_size: int = 16
    max_size: int = 2048
    size_multiple: int = 16
    max_prompt_chars: int = 10_000


@dataclass(frozen=True)
class AuraFlowInput:
    """One validated request; defaults are the seed's (``num_images`` 1, ``guidance_scale`` 3.5, 50 steps,
    ``expand_prompt`` true) and 1024 x 1024, the size fal's examples return."""

    prompt: str
    num_images: int = 1
    seed: int | None = None
    guidance_scale: float = 3.5
    num_inference_steps: int = 50
    expand_prompt: bool = True
    sync_mode: bool = False
    width: int = 1024
    height: int = 1024
    negative_prompt: str = ""

    def to_json(self) -> dict[str, Any]:
        """The stored form (SQLite keeps the validated input, so a restart never re-validates)."""
        return dict(self.__dict__)


class ValidationFailed(Exception):
    """The input broke the schema; ``detail`` is fal's 422 list."""

    def __init__(self, detail: list[dict[str, Any]]) -> None:
        self.detail = detail
        super().__init__("; ".join(f"{'.'.join(map(str, d['loc'][1:]))}: {d['msg']}" for d in detail))


def error(field: str | None, msg: str, kind: str, value: Any = None, ctx: dict[str, Any] | None = None,
          *, where: str = "body") -> dict[str, Any]:
    """One pydantic-style entry of a 422 ``detail`` list."""
    entry: dict[str, Any] = {"loc": [where] if field is None else [where, field], "msg": msg, "type": kind,
                             "url": ERRORS_URL + kind}
    if ctx:
        entry["ctx"] = ctx
    if value is not None:
        entry["input"] = value
    return entry


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_int(name: str, v: Any, lo: int, hi: int, errors: list[dict[str, Any]], multiple: int = 1) -> None:
    if not _is_int(v):
        errors.append(error(name, "Input should be a valid integer", "int_type", v))
    elif v < lo:
        errors.append(error(name, f"Input should be greater than or equal to {lo}", "greater_than_equal", v,
                            {"ge": lo}))
    elif v > hi:
        errors.append(error(name, f"Input should be less than or equal to {hi}", "less_than_equal", v, {"le": hi}))
    elif v % multiple:
        errors.append(error(name, f"Input should be a multiple of {multiple}", "multiple_of", v,
                            {"multiple_of": multiple}))


def validate_input(body: Any, limits: Limits | None = None) -> AuraFlowInput:
    """``body`` (parsed JSON) as an :class:`AuraFlowInput`, or :class:`ValidationFailed` listing every problem."""
    lim = limits or Limits()
    if not isinstance(body, dict):
        raise ValidationFailed([error(None, "Input should be a valid dictionary or object to extract fields from",
                                      "model_attributes_type")])
    errors: list[dict[str, Any]] = []
    values: dict[str, Any] = {}

    prompt = body.get("prompt")
    if "prompt" not in body:
        errors.append(error("prompt", "Field required", "missing"))
    elif not isinstance(prompt, str):
        errors.append(error("prompt", "Input should be a valid string", "string_type", prompt))
    elif len(prompt) > lim.max_prompt_chars:
        errors.append(error("prompt", f"String should have at most {lim.max_prompt_chars} characters",
                            "string_too_long", None, {"max_length": lim.max_prompt_chars}))
    else:
        values["prompt"] = prompt

    ints = {"num_images": (1, lim.max_images, 1), "num_inference_steps": (1, lim.max_steps, 1),
            "width": (lim.min_size, lim.max_size, lim.size_multiple),
            "height": (lim.min_size, lim.max_size, lim.size_multiple)}
    for name, (lo, hi, multiple) in ints.items():
        if body.get(name) is not None:
            _check_int(name, body[name], lo, hi, errors, multiple)
            values[name] = body[name]

    seed = body.get("seed")
    if seed is not None:
        _check_int("seed", seed, 0, SEED_MAX, errors)
        values["seed"] = seed

    gs = body.get("guidance_scale")
    if gs is not None:
        if isinstance(gs, bool) or not isinstance(gs, (int, float)) or not math.isfinite(gs):
            errors.append(error("guidance_scale", "Input should be a valid number", "float_type", gs))
        elif gs < 0:
            errors.append(error("guidance_scale", "Input should be greater than or equal to 0", "greater_than_equal",
                                gs, {"ge": 0}))
        elif gs > lim.max_guidance:
            errors.append(error("guidance_scale", f"Input should be less than or equal to {lim.max_guidance:g}",
                                "less_than_equal", gs, {"le": lim.max_guidance}))
        else:
            values["guidance_scale"] = float(gs)

    for name in ("expand_prompt", "sync_mode"):
        flag = body.get(name)
        if flag is not None:
            if not isinstance(flag, bool):
                errors.append(error(name, "Input should be a valid boolean", "bool_type", flag))
            else:
                values[name] = flag

    neg = body.get("negative_prompt")
    if neg is not None:
        if not isinstance(neg, str):
            errors.append(error("negative_prompt", "Input should be a valid string", "string_type", neg))
        else:
            values["negative_prompt"] = neg

    if errors:
        raise ValidationFailed(errors)
    return AuraFlowInput(**values)
