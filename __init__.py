"""ComfyUI-AuraFlow: AuraFlow v0.3 nodes for ComfyUI (local sampling and fal.ai remote generation).

ComfyUI imports this folder as a package under an arbitrary module name; everything below uses relative
imports, and nothing here needs ComfyUI at import time (pytest and scripts import the pack without it).
"""

if __package__:
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS, serve_mount
    from .nodes.web_routes import register_with_comfyui

    register_with_comfyui()  # the fal key setting's route; a no-op outside ComfyUI, never raises
    serve_mount.register_with_comfyui()  # the fal API under /auraflow/fal when enabled; same guarantees
else:
    # Imported as a lone module, not a package: pytest does this with the root `__init__.py` when the checkout's
    # folder name is not a Python identifier (`ComfyUI-AuraFlow`, `wt-fal`); relative imports cannot work there.
    # ComfyUI always imports the folder as a package, and the tests load it that way (testkit.pack).
    NODE_CLASS_MAPPINGS: dict[str, type] = {}
    NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
