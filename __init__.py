"""ComfyUI-AuraFlow: AuraFlow v0.3 nodes for ComfyUI (local sampling and fal.ai remote generation).

ComfyUI imports this folder as a package under an arbitrary module name; everything below uses relative
imports, and nothing here needs ComfyUI at import time (pytest and scripts import the pack without it).
"""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
