"""A stand-in for the few ComfyUI modules our nodes touch, recording what the nodes do with them.

Installed into ``sys.modules`` (``folder_paths``, ``comfy``, ``comfy.model_management``, ``comfy.utils``,
``comfy.latent_formats``, ``latent_preview``) by a fixture, so node functions run as inside ComfyUI without
ComfyUI: model folders, the interrupt flag (and ComfyUI's exception that clears it), progress bars that check the
flag on every update as ComfyUI's do, latent previews, memory requests. Only the API surface our nodes call is
mimicked, with ComfyUI's names and signatures (0.3.64).
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

EXTENSIONS = (".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl")


class InterruptProcessingException(Exception):
    """ComfyUI's interrupt exception (comfy.model_management)."""


@dataclass
class FakeComfy:
    models_dir: Path
    comfy_dir: Path | None = None
    interrupted: bool = False
    progress: list[tuple[int, int, Any]] = field(default_factory=list)
    memory_calls: list[tuple[str, Any]] = field(default_factory=list)
    previews: int = 0
    on_preview: Callable[[int], None] | None = None
    low_vram: bool = False

    # -- folder_paths
    def folder_paths_module(self) -> ModuleType:
        fp = ModuleType("folder_paths")
        fp.models_dir = str(self.models_dir)
        fp.folder_names_and_paths = {name: ([str(self.models_dir / name)], set(EXTENSIONS))
                                     for name in ("checkpoints", "diffusion_models", "diffusers", "vae_approx")}

        def get_folder_paths(name: str) -> list[str]:
            return fp.folder_names_and_paths[name][0]

        def get_filename_list(name: str) -> list[str]:
            out: list[str] = []
            for root in get_folder_paths(name):
                for dirpath, _dirs, files in os.walk(root, followlinks=True):
                    for f in files:
                        if f.lower().endswith(EXTENSIONS):
                            out.append(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
            return sorted(out)

        def get_full_path(name: str, filename: str) -> str | None:
            for root in get_folder_paths(name):
                candidate = os.path.join(root, filename)
                if os.path.isfile(candidate):
                    return candidate
            return None

        def add_model_folder_path(name: str, path: str, is_default: bool = False) -> None:
            fp.folder_names_and_paths.setdefault(name, ([], set(EXTENSIONS)))[0].append(path)

        fp.get_user_directory = lambda: str(self.models_dir.parent / "user")
        fp.get_temp_directory = lambda: str(self.models_dir.parent / "temp")
        fp.get_folder_paths = get_folder_paths
        fp.get_filename_list = get_filename_list
        fp.get_full_path = get_full_path
        fp.add_model_folder_path = add_model_folder_path
        return fp

    # -- comfy.model_management
    def model_management_module(self) -> ModuleType:
        mm = ModuleType("comfy.model_management")
        mm.InterruptProcessingException = InterruptProcessingException

        class VRAMState:
            NO_VRAM, LOW_VRAM, NORMAL_VRAM = 1, 2, 3

        mm.VRAMState = VRAMState
        mm.vram_state = VRAMState.LOW_VRAM if self.low_vram else VRAMState.NORMAL_VRAM
        mm.get_torch_device = lambda: torch.device("cpu")
        mm.processing_interrupted = lambda: self.interrupted

        def throw_exception_if_processing_interrupted() -> None:
            if self.interrupted:
                self.interrupted = False
                raise InterruptProcessingException()

        mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted

        def interrupt_current_processing(value: bool = True) -> None:  # what POST /interrupt ends up calling
            self.interrupted = value

        mm.interrupt_current_processing = interrupt_current_processing
        mm.free_memory = lambda required, device, keep_loaded=(): self.memory_calls.append(("free", required))
        mm.unload_all_models = lambda: self.memory_calls.append(("unload_all", None))
        mm.soft_empty_cache = lambda force=False: None
        return mm

    # -- comfy.utils
    def utils_module(self) -> ModuleType:
        utils = ModuleType("comfy.utils")
        fake = self

        class ProgressBar:
            def __init__(self, total: int, node_id: str | None = None) -> None:
                self.total = total

            def update_absolute(self, value: int, total: int | None = None, preview: Any = None) -> None:
                if fake.interrupted:  # ComfyUI's bar checks the flag on every update, clearing it as it raises
                    fake.interrupted = False
                    raise InterruptProcessingException()
                fake.progress.append((value, total or self.total, preview))

        utils.ProgressBar = ProgressBar
        return utils

    # -- latent previews
    def latent_preview_module(self) -> ModuleType:
        lp = ModuleType("latent_preview")
        fake = self

        class Previewer:
            def decode_latent_to_preview_image(self, fmt: str, x0: torch.Tensor) -> tuple[str, Any, int]:
                assert x0.ndim == 4 and x0.shape[1] == 4
                fake.previews += 1
                if fake.on_preview is not None:
                    fake.on_preview(fake.previews)
                return (fmt, "image", 512)

        lp.get_previewer = lambda device, latent_format: Previewer()
        return lp

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        comfy = ModuleType("comfy")
        if self.comfy_dir is not None:
            comfy.__spec__ = importlib.machinery.ModuleSpec("comfy", None, is_package=True)
            comfy.__spec__.submodule_search_locations = [str(self.comfy_dir)]
            comfy.__path__ = [str(self.comfy_dir)]
        mm = self.model_management_module()
        utils = self.utils_module()
        formats = ModuleType("comfy.latent_formats")
        formats.SDXL = lambda: "SDXL"
        comfy.model_management, comfy.utils, comfy.latent_formats = mm, utils, formats
        for name, module in (("folder_paths", self.folder_paths_module()), ("comfy", comfy),
                             ("comfy.model_management", mm), ("comfy.utils", utils),
                             ("comfy.latent_formats", formats), ("latent_preview", self.latent_preview_module())):
            monkeypatch.setitem(sys.modules, name, module)
