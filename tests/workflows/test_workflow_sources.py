"""Where the example workflows come from and how ComfyUI finds them (the JSON itself: test_workflows.py).

- every node type in them is registered by the pack (ours) or in the core snapshot ``core_nodes.json`` (ComfyUI's);
- ComfyUI's template browser (``app/custom_node_manager.py``: ``<custom_nodes>/*/workflows/*.json``, one level)
  lists exactly the UI files, never the API twins in ``workflows/api/``;
- groups hold whole nodes; the files are what ``tests/testkit/workflow_graphs.py`` writes today (after a node
  gained an input, rerun it: ``python tests/testkit/workflow_graphs.py``).
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
CORE = json.loads(Path(__file__).with_name("core_nodes.json").read_text(encoding="utf-8"))["nodes"]
NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
TITLE_HEIGHT = 30


def _ui(name: str) -> dict:
    return json.loads((WORKFLOWS / f"{name}.json").read_text(encoding="utf-8"))


def test_node_types_are_registered_by_the_pack_or_in_the_core_snapshot(pack: ModuleType) -> None:
    used = {n["type"] for name in NAMES for n in _ui(name)["nodes"]}
    ours = {t for t in used if t.startswith("AuraFlow")}
    assert ours <= set(pack.NODE_CLASS_MAPPINGS), sorted(ours - set(pack.NODE_CLASS_MAPPINGS))
    assert used - ours <= set(CORE), sorted(used - ours - set(CORE))


def test_the_template_browser_lists_the_ui_files_only() -> None:
    # the same pattern as ComfyUI's GET /workflow_templates, rooted at the folder holding this pack
    found = glob.glob("*/workflows/*.json", root_dir=ROOT.parent)
    listed = sorted(Path(p).stem for p in found if Path(p).parts[0] == ROOT.name)
    assert listed == NAMES and len(NAMES) == 7
    assert sorted(p.stem for p in (WORKFLOWS / "api").glob("*.json")) == NAMES
    assert not [p for p in WORKFLOWS.rglob("*") if p.is_file() and p.parent not in (WORKFLOWS, WORKFLOWS / "api")]


def test_groups_hold_whole_nodes() -> None:
    for name in NAMES:
        ui = _ui(name)
        for group in ui["groups"]:
            gx, gy, gw, gh = group["bounding"]
            for node in ui["nodes"]:
                (x, y), (w, h) = node["pos"], node["size"]
                x0, y0, x1, y1 = x, y - TITLE_HEIGHT, x + w, y + h
                inside = gx <= x0 and x1 <= gx + gw and gy <= y0 and y1 <= gy + gh
                apart = x1 <= gx or gx + gw <= x0 or y1 <= gy or gy + gh <= y0
                assert inside or apart, f"{name}: node {node['id']} straddles group {group['title']!r}"
        boxes = [g["bounding"] for g in ui["groups"]]
        for i, (ax, ay, aw, ah) in enumerate(boxes):
            for bx, by, bw, bh in boxes[i + 1:]:
                assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, f"{name}: groups overlap"


def test_files_are_what_the_generator_writes() -> None:
    from testkit import workflow_graphs

    for name, (ui, api) in workflow_graphs.build_all().items():
        on_disk = (_ui(name), json.loads((WORKFLOWS / "api" / f"{name}.json").read_text(encoding="utf-8")))
        assert on_disk == (ui, api), f"workflows/{name}.json is stale: run python tests/testkit/workflow_graphs.py"
