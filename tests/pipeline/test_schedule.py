"""Our schedule against the installed diffusers scheduler, value for value."""

from __future__ import annotations

import pytest
import torch
from diffusers import FlowMatchEulerDiscreteScheduler

from pipeline.schedule import flow_sigmas, model_timesteps, partial_sigmas


@pytest.mark.parametrize("steps", [1, 2, 4, 20, 50])
@pytest.mark.parametrize("shift", [1.0, 1.73, 3.0])
def test_sigmas_equal_diffusers(steps: int, shift: float) -> None:
    reference = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    reference.set_timesteps(steps)
    ours = flow_sigmas(steps, shift)
    assert ours.dtype == torch.float32
    assert torch.equal(ours, reference.sigmas)
    assert torch.equal(model_timesteps(ours), torch.stack([t / 1000 for t in reference.timesteps]))


def test_known_values_from_the_reference_notes() -> None:
    assert torch.allclose(flow_sigmas(4), torch.tensor([1.0, 0.77624, 0.46510, 0.0029869, 0.0]), atol=1e-5)


def test_partial_schedule_is_the_tail_of_a_longer_one() -> None:
    tail = partial_sigmas(10, 0.5)
    assert torch.equal(tail, flow_sigmas(20)[-11:])
    assert len(tail) == 11 and tail[-1] == 0 and tail[0] < 1
    assert torch.equal(partial_sigmas(10, 1.0), flow_sigmas(10))
