"""Our loader + sampler against diffusers' AuraFlowPipeline on the same tiny random weights (fp32, CPU).

The bar is 1e-4 max absolute difference on decoded images in [0, 1]; in practice the two agree to float
rounding because every step is the same arithmetic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from testkit.stacks import diffusers_reference, reference_images

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference(tiny_dir: Path) -> Any:
    return diffusers_reference(tiny_dir)


CASES = {
    "guidance-on": {"prompt": "a cat on a red chair", "guidance_scale": 3.5},
    "guidance-off": {"prompt": "a cat on a red chair", "guidance_scale": 1.0},
    "negative-prompt": {"prompt": "a lighthouse at dusk", "negative_prompt": "blurry, low quality"},
    "two-prompts-two-images": {"prompt": ["a cat", "an astronaut riding a horse"], "num_images": 2},
    "non-square": {"prompt": "a village in the mountains", "width": 64, "height": 96},
    "shift": {"prompt": "a bowl of ramen", "shift": 3.0},
    "list-negative": {"prompt": ["a cat", "a dog"], "negative_prompt": ["ugly", "blurry"]},
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_images_match_diffusers(case: str, tiny_pipe: Any, reference: Any) -> None:
    args = {"seed": 1234, "num_inference_steps": 4, "width": 64, "height": 64, **CASES[case]}
    expected = reference_images(reference, **args)
    got = tiny_pipe.generate(output_type="np", **args).images
    assert got.shape == expected.shape
    assert got.dtype == np.float32
    diff = float(np.abs(got - expected).max())
    assert diff <= TOLERANCE, f"{case}: max |ours - diffusers| = {diff:.3g}"
    # a result that ignores its inputs would match nothing: make sure the images are not degenerate
    assert float(expected.std()) > 1e-3


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
@pytest.mark.filterwarnings("ignore:`upcast_vae` is deprecated:FutureWarning")  # inside diffusers' reference
def test_half_precision_matches_diffusers(tiny_dir: Path, tmp_path: Path, dtype: str) -> None:
    """bf16, and fp16 (whose VAE runs upcast to fp32), round exactly like diffusers.

    For fp16 the weights come from an fp16-variant folder, as real AuraFlow's half-precision files do: diffusers
    casts the VAE's weights to fp16 and back when it upcasts, so from fp32 files it would decode with rounded
    weights while we keep the file's precision. With fp16 files both read the same values (and the test checks
    that our loader picks the ``.fp16`` variant for half precision).
    """
    import torch
    from diffusers import AuraFlowPipeline

    from pipeline import load_pipeline

    torch_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    folder = tiny_dir
    variant = None
    if dtype == "fp16":
        folder, variant = tmp_path / "fp16", "fp16"
        AuraFlowPipeline.from_pretrained(tiny_dir, dtype=torch_dtype, local_files_only=True).save_pretrained(
            folder, variant=variant)
        assert (folder / "vae" / "diffusion_pytorch_model.fp16.safetensors").is_file()
    reference = AuraFlowPipeline.from_pretrained(folder, dtype=torch_dtype, variant=variant, local_files_only=True)
    ours = load_pipeline(folder, device="cpu", dtype=dtype)
    args = {"seed": 3, "num_inference_steps": 3, "width": 64, "height": 64}
    expected = reference_images(reference, prompt="a cat", **args)
    got = ours.generate("a cat", output_type="np", **args).images
    diff = float(np.abs(got - expected).max())
    assert diff <= TOLERANCE, f"{dtype}: max |ours - diffusers| = {diff:.3g}"
