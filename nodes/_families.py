"""The list of node families. A new family module is added here and nowhere else."""

from __future__ import annotations

import importlib

# module names relative to this package, in menu order
FAMILIES: tuple[str, ...] = ("loaders", "sampling", "remote", "expand", "serve")


def all_node_classes() -> list[type]:
    classes: list[type] = []
    for name in FAMILIES:
        module = importlib.import_module(f".{name}", __package__)
        classes.extend(module.NODES)
    return classes
