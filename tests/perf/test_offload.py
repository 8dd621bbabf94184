"""Offload modes move weights, never change arithmetic: equal images, and the transfers happen in order.

On CPU there is no second device, so the mechanism is checked directly: the block streamer really copies each
block's weights in before its forward (``copy=True``) and drops them after, and its log is checked; model offload
is checked by recording the phases it opens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

from pipeline import InvalidInputError
from pipeline.offload import BlockStreamer, on_device


def test_block_streamer_same_output_one_block_at_a_time(perf_pipe: Any) -> None:
    transformer = perf_pipe.transformer
    x = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    ctx = torch.randn(2, 5, transformer.config.joint_attention_dim, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([0.7, 0.7])
    with torch.inference_mode():
        expected = transformer(x, encoder_hidden_states=ctx, timestep=t, return_dict=False)[0]
    events: list[tuple[str, str]] = []
    loaded: set[str] = set()
    max_loaded = 0

    def log(event: str, name: str) -> None:
        nonlocal max_loaded
        events.append((event, name))
        (loaded.add if event == "load" else loaded.discard)(name)
        max_loaded = max(max_loaded, len(loaded))

    before = {n: p.data_ptr() for n, p in transformer.named_parameters()}
    streamer = BlockStreamer(transformer, "cpu", resident_blocks=1, log=log)
    try:
        with torch.inference_mode():
            got = transformer(x, encoder_hidden_states=ctx, timestep=t, return_dict=False)[0]
        # after the forward, every streamed weight points at its host copy again
        assert {n: p.data_ptr() for n, p in transformer.named_parameters()} == before
    finally:
        streamer.remove()
    assert torch.equal(got, expected)
    blocks = len(transformer.joint_transformer_blocks) + len(transformer.single_transformer_blocks)
    streamed = [name for event, name in events if event == "load"]
    assert len(streamed) == blocks - 1  # the first block stays resident
    assert "joint_transformer_blocks.0" not in streamed
    assert events[0] == ("load", streamed[0]) and events[1] == ("unload", streamed[0])
    assert max_loaded == 1


def test_on_device_moves_for_the_phase_and_back() -> None:
    moves: list[str] = []

    class Recorder(torch.nn.Linear):
        def to(self, *args: Any, **kwargs: Any) -> Recorder:  # type: ignore[override]
            moves.append(str(args[0]))
            return self

    module = Recorder(2, 2)
    with on_device(module, torch.device("cuda")):
        assert moves == ["cuda"]
    assert moves == ["cuda", "cpu"]
    with on_device(module, torch.device("cpu")):
        pass
    assert moves == ["cuda", "cpu"]  # CPU runs: nothing moves


@pytest.mark.parametrize("mode", ["model", "sequential"])
def test_offload_modes_same_images_and_phase_order(mode: str, perf_pipe: Any, generate_args: dict[str, Any],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.pipeline as pipeline_module

    expected = perf_pipe.generate(**generate_args).images
    phases: list[str] = []

    @contextlib.contextmanager
    def record(module: torch.nn.Module, device: torch.device) -> Iterator[None]:
        name = next(n for n in ("text_encoder", "transformer", "vae") if getattr(perf_pipe, n) is module)
        phases.append(f"+{name}")
        yield
        phases.append(f"-{name}")

    monkeypatch.setattr(pipeline_module, "on_device", record)
    perf_pipe._negative_cache.clear()
    try:
        perf_pipe.set_memory_options(offload=mode)
        got = perf_pipe.generate(**generate_args).images
    finally:
        perf_pipe.set_memory_options(offload="none")
    assert np.array_equal(got, expected)
    sample = ["+transformer", "-transformer"] if mode == "model" else []
    assert phases == ["+text_encoder", "-text_encoder"] * 2 + sample + ["+vae", "-vae"]


def test_offload_mode_is_checked(perf_pipe: Any) -> None:
    with pytest.raises(InvalidInputError, match="sequential"):
        perf_pipe.set_memory_options(offload="disk")
