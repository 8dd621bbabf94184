"""ComfyUI adapters over ``pipeline/``, one module per family of nodes.

Each family module exposes ``NODES``: a tuple of node classes carrying ``NODE_ID`` and ``DISPLAY_NAME``. This
file turns them into ComfyUI's two mapping tables, so an id and its display name are written once, on the
class. Node ids are part of saved workflows: once shipped they are never renamed or removed.
"""

from __future__ import annotations

from . import _families

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}

for _cls in _families.all_node_classes():
    if _cls.NODE_ID in NODE_CLASS_MAPPINGS:
        raise RuntimeError(f"duplicate AuraFlow node id {_cls.NODE_ID!r}")
    NODE_CLASS_MAPPINGS[_cls.NODE_ID] = _cls
    NODE_DISPLAY_NAME_MAPPINGS[_cls.NODE_ID] = _cls.DISPLAY_NAME

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
