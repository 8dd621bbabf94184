"""Load the pack the way ComfyUI does: a package from the folder's ``__init__.py`` under an arbitrary name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
# ComfyUI imports a pack folder under a module name derived from its path; any name must work.
PACK_MODULE_NAME = "custom_nodes_x_ComfyUI_AuraFlow_under_test"


def load_pack(name: str = PACK_MODULE_NAME) -> ModuleType:
    """Import the repository root as a package named ``name`` (spec from ``__init__.py``), once per name."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
