"""The flow-matching schedule AuraFlow samples on: pure functions, no model, no device.

Matches diffusers' ``FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.73)`` as
``AuraFlowPipeline`` uses it (``set_timesteps(N)``, no custom sigmas, no dynamic shifting), value for value:

* at construction the training sigmas ``linspace(1, 1000, 1000)[::-1] / 1000`` are shifted in float32, which
  fixes ``sigma_max = 1`` and ``sigma_min = shift(0.001)``;
* ``set_timesteps`` spaces N points from ``1000 * sigma_max`` to ``1000 * sigma_min`` in float64 and shifts them
  **again** (the already-shifted endpoint is shifted a second time), then casts to float32 and appends 0.

ComfyUI's ``normal`` scheduler on ``ModelSamplingDiscreteFlow(shift=1.73)`` gives the same values to ~1e-7.
``tests/pipeline/test_schedule.py`` compares every value with the installed diffusers scheduler.
"""

from __future__ import annotations

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000
DEFAULT_SHIFT = 1.73


def shift_sigmas(sigmas: np.ndarray | torch.Tensor, shift: float) -> np.ndarray | torch.Tensor:
    """The rectified-flow time shift ``shift * s / (1 + (shift - 1) * s)``; >1 spends more steps at high noise."""
    return shift * sigmas / (1 + (shift - 1) * sigmas)


def _sigma_min(shift: float) -> float:
    # The smallest training sigma, shifted in float32 exactly as the scheduler's constructor does.
    train = torch.from_numpy(np.linspace(1, NUM_TRAIN_TIMESTEPS, NUM_TRAIN_TIMESTEPS, dtype=np.float32)[::-1].copy())
    return float(shift_sigmas(train / NUM_TRAIN_TIMESTEPS, shift)[-1].item())


def flow_sigmas(num_inference_steps: int, shift: float = DEFAULT_SHIFT) -> torch.Tensor:
    """``num_inference_steps + 1`` float32 sigmas from 1 (pure noise) down to 0 (the image), endpoint included."""
    sigma_max = 1.0  # shift(1) == 1 for every shift
    t = np.linspace(sigma_max * NUM_TRAIN_TIMESTEPS, _sigma_min(shift) * NUM_TRAIN_TIMESTEPS, num_inference_steps)
    sigmas = torch.from_numpy(shift_sigmas(t / NUM_TRAIN_TIMESTEPS, shift)).to(torch.float32)
    return torch.cat([sigmas, torch.zeros(1, dtype=torch.float32)])


def partial_sigmas(num_inference_steps: int, denoise: float, shift: float = DEFAULT_SHIFT) -> torch.Tensor:
    """The last ``num_inference_steps`` steps of a longer schedule, for image-to-image with ``denoise < 1``.

    ComfyUI's convention (KSampler): ``steps`` is the number of steps actually run, taken from the end of a
    schedule of ``int(steps / denoise)`` steps, so a lower denoise starts at a lower noise level.
    """
    if denoise >= 1.0:
        return flow_sigmas(num_inference_steps, shift)
    total = int(num_inference_steps / denoise)
    return flow_sigmas(total, shift)[-(num_inference_steps + 1):]


def model_timesteps(sigmas: torch.Tensor) -> torch.Tensor:
    """What the transformer is fed at each step: ``(sigma * 1000) / 1000`` in float32, as diffusers rounds it."""
    return (sigmas[:-1] * NUM_TRAIN_TIMESTEPS) / NUM_TRAIN_TIMESTEPS
