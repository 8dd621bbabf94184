"""The flow-matching Euler loop: velocity from the transformer, classifier-free guidance, one Euler step.

Matches ``AuraFlowPipeline.__call__`` step 6 and ``FlowMatchEulerDiscreteScheduler.step`` in diffusers,
including where it rounds: the timestep fed to the model is ``(sigma * 1000) / 1000`` cast to the model dtype,
the Euler product is taken in the velocity's dtype (a 0-dim float32 ``dt`` does not promote it), the sum in
float32, and the state is cast back to the model dtype after every step. All per-step tensors are built
before the loop, so the loop itself makes no host-device synchronisation (the callback may).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .schedule import model_timesteps

StepCallback = Callable[[int, int, torch.Tensor], None]
"""``callback(step, total, latents)``: after each step (1-based), latents in the sampler's scaled space.

Raise (for example :class:`~pipeline.errors.CancelledError`) to stop within one step."""


@torch.inference_mode()
def euler_flow_sample(transformer: torch.nn.Module, x: torch.Tensor, sigmas: torch.Tensor, context: torch.Tensor,
                      *, guidance_scale: float, callback: StepCallback | None = None) -> torch.Tensor:
    """Integrate from ``sigmas[0]`` to ``sigmas[-1]``.

    ``context`` is ``cat([negative, positive])`` when guidance is on (``guidance_scale > 1``), else the
    positive context alone; ``x`` is in the model's dtype and device.
    """
    cfg = guidance_scale > 1.0
    batch = x.shape[0] * (2 if cfg else 1)
    sigmas = sigmas.to(x.device)
    timesteps = model_timesteps(sigmas).to(dtype=x.dtype)
    deltas = sigmas[1:] - sigmas[:-1]
    total = len(deltas)
    for i in range(total):
        x_in = torch.cat([x, x]) if cfg else x
        v = transformer(x_in, encoder_hidden_states=context, timestep=timesteps[i].expand(batch),
                        return_dict=False)[0]
        if cfg:
            v_uncond, v_cond = v.chunk(2)
            v = v_uncond + guidance_scale * (v_cond - v_uncond)
        x = (x.to(torch.float32) + deltas[i] * v).to(v.dtype)
        if callback is not None:
            callback(i + 1, total, x)
    return x
