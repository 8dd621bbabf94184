"""Weights that live in host memory and visit the GPU only while they are used: AuraFlow on small GPUs.

Two granularities, chosen with :meth:`pipeline.pipeline.AuraFlow.set_memory_options`:

* **model** offload (``offload="model"``): the text encoder, transformer and VAE each move to the GPU for their
  own phase (encode, sample, decode) and back afterwards. Peak GPU memory is the largest of the three plus its
  activations (real v0.3 in bf16: the 13.7 GB transformer), at the cost of three transfers per image.
* **sequential** offload (``offload="sequential"``): the transformer is streamed block by block with forward
  hooks, so only one block (~380 MB in bf16 for v0.3) plus the small embedding layers are on the GPU at a time;
  ``resident_blocks`` keeps the first blocks there permanently to spend whatever GPU memory there is (a 12 GB
  card holds ~24 of the 36 blocks next to the activations, so only ~12 are streamed per step).

Why weights are not moved back: inference never changes them, so each parameter keeps one copy in host memory
(pinned when CUDA is there, so the copy to the GPU is asynchronous) and the GPU copy is simply dropped after use:
no device-to-host traffic, and no second host copy. Arithmetic is unchanged, so results equal the resident run
bit for bit on the same device (``tests/perf/test_offload.py`` checks it on CPU, where the copies are real
tensors too, and records the load/unload order).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["BlockStreamer", "OFFLOAD_MODES", "on_device"]

OFFLOAD_MODES = ("none", "model", "sequential")

TransferLog = Callable[[str, str], None]
"""``log(event, group_name)`` with event ``"load"`` or ``"unload"``: for tests and debugging."""


@contextlib.contextmanager
def on_device(module: nn.Module, device: torch.device, home: torch.device | str = "cpu") -> Iterator[None]:
    """Model offload for one phase: ``module`` on ``device`` inside the block, back on ``home`` after it.

    A no-op when ``device`` is already ``home`` (CPU runs), so CPU results cannot differ.
    """
    if torch.device(device) == torch.device(home):
        yield
        return
    module.to(device)
    try:
        yield
    finally:
        module.to(home)


@dataclass
class _Slot:
    owner: nn.Module
    attr: str
    is_param: bool
    stored: torch.Tensor  # the host copy; the one that stays


@dataclass
class _Group:
    name: str
    module: nn.Module
    slots: list[_Slot] = field(default_factory=list)
    loaded: bool = False


class BlockStreamer:
    """Streams a transformer's blocks to ``device`` one at a time with forward pre/post hooks.

    Groups are the transformer's direct children, with every entry of a ``ModuleList`` its own group (for
    AuraFlow: ``pos_embed``, ``time_step_proj``, ``context_embedder``, each ``joint_transformer_blocks.i`` and
    ``single_transformer_blocks.i``, ``norm_out``, ``proj_out``). Parameters held directly by the root
    (``register_tokens``) and the non-block groups are small and stay on ``device``; so do the first
    ``resident_blocks`` blocks. The rest keep their weights in (pinned) host memory and are copied in just
    before their forward and dropped right after it.
    """

    def __init__(self, module: nn.Module, device: torch.device | str, *, resident_blocks: int = 0,
                 log: TransferLog | None = None) -> None:
        self.module = module
        self.device = torch.device(device)
        self.log = log
        self._handles: list[Any] = []
        self.streamed: list[_Group] = []
        pin = self.device.type == "cuda" and torch.cuda.is_available()
        blocks = 0
        for name, child in module.named_children():
            entries = list(child.named_children()) if isinstance(child, nn.ModuleList) else [("", child)]
            for sub, block in entries:
                is_block = isinstance(child, nn.ModuleList)
                if is_block and blocks >= resident_blocks:
                    self.streamed.append(self._stream(f"{name}.{sub}", block, pin))
                else:
                    block.to(self.device)
                blocks += is_block
        for param in module._parameters.values():
            if param is not None:
                param.data = param.data.to(self.device)
        for attr, buf in list(module._buffers.items()):
            if buf is not None:
                module._buffers[attr] = buf.to(self.device)

    def _stream(self, name: str, block: nn.Module, pin: bool) -> _Group:
        group = _Group(name, block)
        for owner in block.modules():
            for attr, param in owner._parameters.items():
                if param is not None:
                    stored = param.data.to("cpu")
                    group.slots.append(_Slot(owner, attr, True, stored.pin_memory() if pin else stored))
            for attr, buf in owner._buffers.items():
                if buf is not None:
                    stored = buf.to("cpu")
                    group.slots.append(_Slot(owner, attr, False, stored.pin_memory() if pin else stored))
        self._set(group, lambda t: t)  # point the module at the host copies
        self._handles.append(block.register_forward_pre_hook(lambda _m, _a, g=group: self._load(g)))
        self._handles.append(block.register_forward_hook(lambda _m, _a, _o, g=group: self._unload(g)))
        return group

    @staticmethod
    def _set(group: _Group, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        for slot in group.slots:
            tensor = fn(slot.stored)
            if slot.is_param:
                slot.owner._parameters[slot.attr].data = tensor
            else:
                slot.owner._buffers[slot.attr] = tensor

    def _load(self, group: _Group) -> None:
        # copy=True: on CPU (tests) the block then really computes from fresh copies, as it would on a GPU
        self._set(group, lambda t: t.to(self.device, non_blocking=True, copy=True))
        group.loaded = True
        if self.log is not None:
            self.log("load", group.name)

    def _unload(self, group: _Group) -> None:
        self._set(group, lambda t: t)
        group.loaded = False
        if self.log is not None:
            self.log("unload", group.name)

    def remove(self, home: torch.device | str | None = None) -> None:
        """Detach the hooks; every weight ends on ``home`` (default: ``device``, i.e. fully resident)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        target = torch.device(home) if home is not None else self.device
        for group in self.streamed:
            self._set(group, lambda t: t.to(target))
        self.streamed.clear()
        self.module.to(target)
