"""The pack imports without ComfyUI, under any module name, and exports what ComfyUI reads."""

from __future__ import annotations

import subprocess
import sys

from testkit.pack import ROOT, load_pack


def test_pack_exports_comfyui_tables() -> None:
    pack = load_pack("any_folder_name_pack")
    assert isinstance(pack.NODE_CLASS_MAPPINGS, dict)
    assert set(pack.NODE_DISPLAY_NAME_MAPPINGS) == set(pack.NODE_CLASS_MAPPINGS)
    assert pack.WEB_DIRECTORY == "./web"


def test_pipeline_imports_without_comfyui_and_lazily() -> None:
    """Importing the core must not drag in ComfyUI, nor torch until a local name is used."""
    code = (
        "import sys, pipeline;"
        "assert not any(m == 'comfy' or m.startswith('comfy.') or m == 'folder_paths' for m in sys.modules);"
        "assert 'torch' not in sys.modules, 'pipeline imported torch eagerly';"
        "print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
