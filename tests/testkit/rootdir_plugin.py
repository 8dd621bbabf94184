"""pytest plugin: collect the repository root as a plain directory, never as a Python package.

The root ``__init__.py`` is ComfyUI's entry point; its relative imports only work when the folder is imported as
a package (ComfyUI, or :func:`testkit.pack.load_pack`). pytest >= 8 makes a folder with ``__init__.py`` a
``Package`` and imports that file on its own before any test below it runs, which fails. Loaded with ``-p`` from
``pyproject.toml`` because a root ``conftest.py`` is consulted too late to change how the root is collected.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if Path(path).resolve() == ROOT:
        return pytest.Dir.from_parent(parent, path=path)
    return None
