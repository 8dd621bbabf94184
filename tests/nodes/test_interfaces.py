"""Every node's interface, locked by a committed snapshot, and the conventions every node follows.

Saved workflows store node ids, input names and widget values by position; a renamed, removed or reordered input,
or a changed default, silently breaks them. So ``node_interfaces.json`` records what ComfyUI sees of every node
(ids, input names, order, types, defaults, limits, options; outputs), and this test fails on any difference.

To change an interface on purpose (add inputs at the end, never rename or reorder), regenerate and commit it:

    AURAFLOW_UPDATE_INTERFACES=1 python -m pytest tests/nodes/test_interfaces.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SNAPSHOT = Path(__file__).with_name("node_interfaces.json")
UPDATE_ENV = "AURAFLOW_UPDATE_INTERFACES"
# what saved workflows and graph validation depend on; tooltips and descriptions may change freely
LOCKED_OPTIONS = ("default", "min", "max", "step", "round", "multiline", "control_after_generate", "forceInput")


def _input(name: str, spec: Any) -> dict[str, Any]:
    kind, options = (spec[0], spec[1] if len(spec) > 1 else {}) if isinstance(spec, tuple) else (spec, {})
    entry: dict[str, Any] = {"name": name}
    if isinstance(kind, list):
        entry.update(type="COMBO", options=list(kind))
    else:
        entry["type"] = kind
    entry.update({k: options[k] for k in LOCKED_OPTIONS if k in options})
    return entry


def describe(cls: type) -> dict[str, Any]:
    inputs = cls.INPUT_TYPES()
    return {
        "display_name": cls.DISPLAY_NAME,
        "category": cls.CATEGORY,
        "function": cls.FUNCTION,
        "output_node": bool(getattr(cls, "OUTPUT_NODE", False)),
        "inputs": {section: [_input(name, spec) for name, spec in inputs[section].items()]
                   for section in ("required", "optional", "hidden") if section in inputs},
        "outputs": [{"type": t, "name": n} for t, n in zip(cls.RETURN_TYPES, cls.RETURN_NAMES)],
    }


def interfaces(pack: ModuleType) -> dict[str, Any]:
    return {node_id: describe(cls) for node_id, cls in pack.NODE_CLASS_MAPPINGS.items()}


def test_interfaces_match_the_committed_snapshot(pack: ModuleType) -> None:
    current = interfaces(pack)
    text = json.dumps(current, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get(UPDATE_ENV):
        SNAPSHOT.write_text(text, encoding="utf-8")
        pytest.skip(f"{SNAPSHOT.name} rewritten ({UPDATE_ENV} set): review the diff and commit it")
    assert SNAPSHOT.is_file(), f"no snapshot yet: run {UPDATE_ENV}=1 python -m pytest {__file__}"
    committed = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    missing = sorted(set(committed) - set(current))
    assert not missing, f"node ids removed (saved workflows use them; never remove or rename): {missing}"
    changed = sorted(k for k in current if committed.get(k) != current[k])
    assert not changed, (
        f"node interfaces changed: {changed}. Saved workflows depend on them: add inputs at the end, never rename "
        f"or reorder. If the change is intended, run {UPDATE_ENV}=1 python -m pytest tests/nodes/test_interfaces.py "
        "and commit node_interfaces.json."
    )


def test_every_node_is_documented_and_categorised(pack: ModuleType) -> None:
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        assert node_id.startswith("AuraFlow") and cls.NODE_ID == node_id
        assert cls.CATEGORY.startswith("AuraFlow/") and cls.DESCRIPTION, node_id
        assert callable(getattr(cls, cls.FUNCTION)), node_id
        assert len(cls.RETURN_TYPES) == len(cls.RETURN_NAMES) == len(cls.OUTPUT_TOOLTIPS), node_id
        assert all(cls.OUTPUT_TOOLTIPS), node_id
        inputs = cls.INPUT_TYPES()
        for section in ("required", "optional"):
            for name, spec in inputs.get(section, {}).items():
                kind, options = spec[0], spec[1] if len(spec) > 1 else {}
                assert options.get("tooltip"), f"{node_id}.{name} has no tooltip"
                if isinstance(kind, list) and "default" in options:
                    assert options["default"] in kind, f"{node_id}.{name}: default not among the options"
                if kind in ("INT", "FLOAT"):
                    assert options["min"] <= options["default"] <= options["max"], f"{node_id}.{name}"
                if name in ("width", "height"):
                    assert options["step"] == 16 and options["min"] % 16 == 0 and options["max"] % 16 == 0


def test_local_generate_lines_up_with_the_fal_node(pack: ModuleType) -> None:
    """Swapping AuraFlowFal for AuraFlowGenerate keeps the widget values (by position) and the first outputs."""
    fal, local = (describe(pack.NODE_CLASS_MAPPINGS[k]) for k in ("AuraFlowFal", "AuraFlowGenerate"))
    fal_widgets = [i["name"] for i in fal["inputs"]["required"]]
    local_widgets = [i["name"] for i in local["inputs"]["required"] if i["type"] != "AURAFLOW_MODEL"]
    assert local_widgets[: len(fal_widgets)] == fal_widgets
    assert [o["name"] for o in local["outputs"]] == [o["name"] for o in fal["outputs"]][:3]
    assert [o["type"] for o in local["outputs"]] == [o["type"] for o in fal["outputs"]][:3]
