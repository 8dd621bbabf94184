"""The example workflows in ``workflows/``: each UI file (what users drag into the editor, listed by ComfyUI's
template browser) and its API twin in ``workflows/api/`` (what ``POST /prompt`` takes) are checked as JSON files.

Node types come from the interface snapshots (``tests/nodes/node_interfaces.json`` for ours,
``tests/workflows/core_nodes.json`` for ComfyUI's core nodes, taken from a real ComfyUI's ``/object_info``). The
checker and the UI -> API conversion here are written independently of the generator
(``tests/testkit/workflow_graphs.py``), and every check is shown to reject a deliberately broken copy.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
API = WORKFLOWS / "api"
EXPECTED = {"auraflow_local_text_to_image", "auraflow_generate", "auraflow_fal_remote", "auraflow_prompt_expansion",
            "auraflow_image_to_image", "auraflow_local_vs_remote", "auraflow_native_vae_decode"}
# COMBOs listing files on the user's machine: the documented name each graph must use
FILE_COMBOS = {("AuraFlowLoader", "model_name"): "aura_flow_0.3.safetensors",
               ("VAELoader", "vae_name"): "sdxl_vae.safetensors", ("LoadImage", "image"): "example.png"}
MODEL_ENTRIES = {
    "aura_flow_0.3.safetensors": {"directory": "checkpoints",
                                  "url": "https://huggingface.co/fal/AuraFlow-v0.3/resolve/main/aura_flow_0.3.safetensors"},
    "sdxl_vae.safetensors": {"directory": "vae",
                             "url": "https://huggingface.co/stabilityai/sdxl-vae/resolve/main/sdxl_vae.safetensors"},
}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
TITLE_HEIGHT = 30  # the editor draws the title bar above pos; size excludes it


def _interfaces() -> dict[str, Any]:
    core = json.loads((ROOT / "tests" / "workflows" / "core_nodes.json").read_text(encoding="utf-8"))
    ours = json.loads((ROOT / "tests" / "nodes" / "node_interfaces.json").read_text(encoding="utf-8"))
    return {**core["nodes"], **ours}


INTERFACES = _interfaces()


def _inputs(node_type: str) -> list[dict[str, Any]]:
    spec = INTERFACES[node_type]["inputs"]
    return [{**s, "required": sec == "required"} for sec in ("required", "optional") for s in spec.get(sec, [])]


def _is_widget(spec: dict[str, Any]) -> bool:
    return spec["type"] in WIDGET_TYPES and not spec.get("forceInput")


def _widget_layout(node_type: str) -> list[tuple[str, str]]:
    """widgets_values positions: ("value"|"control"|"upload", input name)."""
    if INTERFACES[node_type].get("frontend_only"):
        return [("value", "text")]
    layout = []
    for spec in _inputs(node_type):
        if _is_widget(spec):
            layout.append(("value", spec["name"]))
            if spec.get("control_after_generate"):
                layout.append(("control", spec["name"]))
            if spec.get("image_upload"):
                layout.append(("upload", spec["name"]))
    return layout


def _socket_names(node_type: str) -> list[str]:
    """The editor's input list: non-widget inputs, then every widget input (plus LoadImage's upload button)."""
    specs = _inputs(node_type)
    names = [s["name"] for s in specs if not _is_widget(s)]
    for s in specs:
        if _is_widget(s):
            names.append(s["name"])
            if s.get("image_upload"):
                names.append("upload")
    return names


def _check_value(node_type: str, spec: dict[str, Any], value: Any) -> str | None:
    name, kind = spec["name"], spec["type"]
    where = f"{node_type}.{name}={value!r}"
    if (node_type, name) in FILE_COMBOS:
        return None if value == FILE_COMBOS[node_type, name] else f"{where}: not the documented file name"
    if kind == "COMBO":
        return None if value in spec.get("options", []) else f"{where}: not in {spec.get('options')}"
    if kind == "BOOLEAN":
        return None if isinstance(value, bool) else f"{where}: not a boolean"
    if kind == "STRING":
        return None if isinstance(value, str) else f"{where}: not a string"
    if kind == "INT" and (not isinstance(value, int) or isinstance(value, bool)):
        return f"{where}: not an integer"
    if kind == "FLOAT" and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        return f"{where}: not a number"
    low, high = spec.get("min", -math.inf), spec.get("max", math.inf)
    if not low <= value <= high:
        return f"{where}: outside [{low}, {high}]"
    step = spec.get("step")
    if step and "min" in spec:
        units = (value - spec["min"]) / step
        if abs(units - round(units)) > 1e-6:
            return f"{where}: not on step {step} from {spec['min']}"
    return None


def _boxes_overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def box(n: dict[str, Any]) -> tuple[float, float, float, float]:
        x, y = n["pos"]
        w, h = n["size"]
        return x, y - TITLE_HEIGHT, x + w, y + h

    ax0, ay0, ax1, ay1 = box(a)
    bx0, by0, bx1, by1 = box(b)
    return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1


def check_ui(wf: dict[str, Any]) -> list[str]:
    """Problems of one UI-format (v0.4) workflow; empty when it is fine."""
    problems: list[str] = []
    for key in ("last_node_id", "last_link_id", "nodes", "links", "groups", "extra"):
        if key not in wf:
            problems.append(f"missing top-level {key!r}")
    if wf.get("version") != 0.4:
        problems.append(f"version {wf.get('version')!r} is not 0.4")
    nodes = {n["id"]: n for n in wf.get("nodes", [])}
    if len(nodes) != len(wf.get("nodes", [])):
        problems.append("duplicate node ids")
    if nodes and wf.get("last_node_id", 0) < max(nodes):
        problems.append("last_node_id below a node id")
    links = {link[0]: link for link in wf.get("links", [])}
    if links and wf.get("last_link_id", 0) < max(links):
        problems.append("last_link_id below a link id")
    notes = [n for n in nodes.values() if n["type"] in ("Note", "MarkdownNote")]
    if not notes or not all(isinstance(n.get("widgets_values", [None])[0], str) and n["widgets_values"][0].strip()
                            for n in notes):
        problems.append("no Note node with text")
    for node in nodes.values():
        kind = node["type"]
        if kind not in INTERFACES:
            problems.append(f"node {node['id']}: unknown type {kind!r}")
            continue
        for key in ("pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties"):
            if key not in node:
                problems.append(f"node {node['id']} {kind}: no {key!r}")
        if INTERFACES[kind].get("frontend_only"):
            continue
        if node.get("properties", {}).get("Node name for S&R") != kind:
            problems.append(f"node {node['id']} {kind}: properties lack 'Node name for S&R'")
        names = [i["name"] for i in node.get("inputs", [])]
        if names != _socket_names(kind):
            problems.append(f"node {node['id']} {kind}: inputs {names} != {_socket_names(kind)}")
        outs = [(o["name"], o["type"]) for o in node.get("outputs", [])]
        if outs != [(o["name"], o["type"]) for o in INTERFACES[kind]["outputs"]]:
            problems.append(f"node {node['id']} {kind}: outputs {outs}")
        layout = _widget_layout(kind)
        values = node.get("widgets_values", [])
        if len(values) != len(layout):
            problems.append(f"node {node['id']} {kind}: {len(values)} widgets_values for {len(layout)} widgets")
        else:
            specs = {s["name"]: s for s in _inputs(kind)}
            for (slot, name), value in zip(layout, values, strict=True):
                if slot == "control" and value not in CONTROL_VALUES:
                    problems.append(f"node {node['id']} {kind}.{name}: control_after_generate {value!r}")
                elif slot == "upload" and value != "image":
                    problems.append(f"node {node['id']} {kind}: upload slot {value!r}")
                elif slot == "value" and (error := _check_value(kind, specs[name], value)):
                    problems.append(f"node {node['id']} {error}")
        files = [FILE_COMBOS[k] for k in FILE_COMBOS if k[0] == kind and FILE_COMBOS[k] in MODEL_ENTRIES]
        models = node.get("properties", {}).get("models")
        if files and models != [{"name": f, **MODEL_ENTRIES[f]} for f in files]:
            problems.append(f"node {node['id']} {kind}: properties.models {models}")
        for slot, entry in enumerate(node.get("inputs", [])):
            link = entry.get("link")
            if link is not None and (link not in links or links[link][3] != node["id"] or links[link][4] != slot):
                problems.append(f"node {node['id']} {kind}: input {entry['name']} names link {link} wrongly")
        for slot, entry in enumerate(node.get("outputs", [])):
            for link in entry.get("links") or []:
                if link not in links or links[link][1] != node["id"] or links[link][2] != slot:
                    problems.append(f"node {node['id']} {kind}: output {entry['name']} names link {link} wrongly")
    for link_id, src, src_slot, dst, dst_slot, link_type in links.values():
        if src not in nodes or dst not in nodes or nodes[src]["type"] not in INTERFACES or \
                nodes[dst]["type"] not in INTERFACES:
            problems.append(f"link {link_id}: missing node")
            continue
        outputs = INTERFACES[nodes[src]["type"]]["outputs"]
        sockets = nodes[dst].get("inputs", [])
        if src_slot >= len(outputs) or dst_slot >= len(sockets):
            problems.append(f"link {link_id}: slot out of range")
            continue
        in_spec = {s["name"]: s for s in _inputs(nodes[dst]["type"])}.get(sockets[dst_slot]["name"])
        types = {link_type, outputs[src_slot]["type"], sockets[dst_slot]["type"], in_spec and in_spec["type"]}
        if len(types) != 1:
            problems.append(f"link {link_id}: types {sorted(map(str, types))} differ")
        if sockets[dst_slot].get("link") != link_id or link_id not in (nodes[src]["outputs"][src_slot]["links"] or []):
            problems.append(f"link {link_id}: not recorded on both ends")
        if nodes[src]["pos"][0] >= nodes[dst]["pos"][0]:
            problems.append(f"link {link_id}: runs right to left ({nodes[src]['type']} -> {nodes[dst]['type']})")
    for i, a in enumerate(nodes.values()):
        for b in list(nodes.values())[i + 1:]:
            if _boxes_overlap(a, b):
                problems.append(f"nodes {a['id']} {a['type']} and {b['id']} {b['type']} overlap")
    return problems


def check_api(prompt: dict[str, Any]) -> list[str]:
    """Problems of one API-format prompt; empty when ComfyUI's validation would accept its shape."""
    problems: list[str] = []
    for node_id, node in prompt.items():
        kind = node.get("class_type")
        if kind not in INTERFACES or INTERFACES[kind].get("frontend_only"):
            problems.append(f"{node_id}: class_type {kind!r} is not a server node")
            continue
        specs = {s["name"]: s for s in _inputs(kind)}
        inputs = node.get("inputs", {})
        for name in set(inputs) - set(specs):
            problems.append(f"{node_id} {kind}: unknown input {name!r}")
        for name, spec in specs.items():
            if name not in inputs:
                if spec["required"]:
                    problems.append(f"{node_id} {kind}: required input {name!r} missing")
                continue
            value = inputs[name]
            if isinstance(value, list):
                src = prompt.get(str(value[0])) if len(value) == 2 else None
                if src is None or src.get("class_type") not in INTERFACES:
                    problems.append(f"{node_id} {kind}.{name}: link to a missing node {value}")
                    continue
                outputs = INTERFACES[src["class_type"]]["outputs"]
                slot = value[1]
                if not isinstance(slot, int) or slot >= len(outputs) or outputs[slot]["type"] != spec["type"]:
                    problems.append(f"{node_id} {kind}.{name}: link {value} has the wrong type")
            elif not _is_widget(spec):
                problems.append(f"{node_id} {kind}.{name}: a {spec['type']} input needs a link")
            elif error := _check_value(kind, spec, value):
                problems.append(f"{node_id} {error}")
    if not any(INTERFACES.get(n.get("class_type"), {}).get("output_node") for n in prompt.values()):
        problems.append("no output node")
    return problems


def ui_to_api(wf: dict[str, Any]) -> dict[str, Any]:
    """What the editor's graphToPrompt() makes of a UI workflow (frontend-only nodes dropped, UI slots removed)."""
    links = {link[0]: link for link in wf["links"]}
    prompt: dict[str, Any] = {}
    for node in wf["nodes"]:
        kind = node["type"]
        if INTERFACES[kind].get("frontend_only") or node.get("mode", 0) != 0:
            continue
        values = {name: v for (slot, name), v in zip(_widget_layout(kind), node.get("widgets_values", []),
                                                        strict=False) if slot == "value"}
        inputs: dict[str, Any] = {}
        sockets = {i["name"]: i for i in node["inputs"]}
        for spec in _inputs(kind):
            link = sockets.get(spec["name"], {}).get("link")
            if link is not None:
                _, src, src_slot, *_ = links[link]
                inputs[spec["name"]] = [str(src), src_slot]
            elif _is_widget(spec) and spec["name"] in values:
                inputs[spec["name"]] = values[spec["name"]]
        title = node.get("title") or INTERFACES[kind]["display_name"]
        prompt[str(node["id"])] = {"inputs": inputs, "class_type": kind, "_meta": {"title": title}}
    return prompt


def check_pair(wf: dict[str, Any], prompt: dict[str, Any]) -> list[str]:
    """The UI and API files describe the same graph: same nodes, links and widget values by name."""
    converted = ui_to_api(wf)
    problems = []
    if set(converted) != set(prompt):
        problems.append(f"nodes differ: UI {sorted(converted)} vs API {sorted(prompt)}")
    for node_id in set(converted) & set(prompt):
        a, b = converted[node_id], prompt[node_id]
        if a["class_type"] != b["class_type"]:
            problems.append(f"{node_id}: {a['class_type']} vs {b['class_type']}")
        for name in set(a["inputs"]) | set(b["inputs"]):
            if a["inputs"].get(name) != b["inputs"].get(name):
                problems.append(f"{node_id} {a['class_type']}.{name}: UI {a['inputs'].get(name)!r} vs API "
                                f"{b['inputs'].get(name)!r}")
    return problems


def _load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))


def test_the_seven_graphs_each_have_an_api_twin_and_only_ui_files_are_templates() -> None:
    # ComfyUI (app/custom_node_manager.py) lists <pack>/workflows/*.json, one level: the api/ twins stay out
    assert set(NAMES) == EXPECTED
    assert {p.stem for p in API.glob("*.json")} == EXPECTED
    for name in NAMES:
        assert "last_node_id" in _load(WORKFLOWS / f"{name}.json")
        assert all("class_type" in n for n in _load(API / f"{name}.json").values())


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_is_valid(name: str) -> None:
    assert check_ui(_load(WORKFLOWS / f"{name}.json")) == []


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_is_valid(name: str) -> None:
    assert check_api(_load(API / f"{name}.json")) == []


@pytest.mark.parametrize("name", NAMES)
def test_ui_and_api_describe_the_same_graph(name: str) -> None:
    assert check_pair(_load(WORKFLOWS / f"{name}.json"), _load(API / f"{name}.json")) == []


@pytest.mark.parametrize("name", NAMES)
def test_ui_exports_to_exactly_the_api_twin(name: str) -> None:
    assert ui_to_api(_load(WORKFLOWS / f"{name}.json")) == _load(API / f"{name}.json")


def test_graphs_cover_the_brief() -> None:
    def types(name: str) -> list[str]:
        return [n["class_type"] for n in _load(API / f"{name}.json").values()]

    assert {"AuraFlowLoader", "AuraFlowTextEncode", "AuraFlowSampler", "AuraFlowDecode", "SaveImage"} <= set(
        types("auraflow_local_text_to_image"))
    assert "AuraFlowGenerate" in types("auraflow_generate")
    assert "AuraFlowFal" in types("auraflow_fal_remote") and "AuraFlowLoader" not in types("auraflow_fal_remote")
    expand = _load(API / "auraflow_prompt_expansion.json")
    assert any(isinstance(n["inputs"].get("prompt"), list) and expand[n["inputs"]["prompt"][0]]["class_type"]
               == "AuraFlowPromptExpand" for n in expand.values())
    i2i = _load(API / "auraflow_image_to_image.json")
    sampler = next(n for n in i2i.values() if n["class_type"] == "AuraFlowSampler")
    assert i2i[sampler["inputs"]["latent_image"][0]]["class_type"] == "VAEEncode" and sampler["inputs"]["denoise"] < 1
    side = _load(API / "auraflow_local_vs_remote.json")
    seeds = {json.dumps(n["inputs"]["seed"]) for n in side.values() if n["class_type"] in ("AuraFlowGenerate",
                                                                                          "AuraFlowFal")}
    assert len(seeds) == 1 and {"AuraFlowGenerate", "AuraFlowFal"} <= set(types("auraflow_local_vs_remote"))
    native = _load(API / "auraflow_native_vae_decode.json")
    decode = next(n for n in native.values() if n["class_type"] == "VAEDecode")
    assert native[decode["inputs"]["samples"][0]]["class_type"] == "AuraFlowSampler"


# -- the checks can fail: deliberately broken copies -----------------------------------------------------------


def _node(wf: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(n for n in wf["nodes"] if n["type"] == kind)


def _api_node(prompt: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(n for n in prompt.values() if n["class_type"] == kind)


def _set_ui_widget(wf: dict[str, Any], kind: str, name: str, value: Any) -> None:
    node = _node(wf, kind)
    node["widgets_values"][_widget_layout(kind).index(("value", name))] = value


UI_BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "unknown node type": lambda wf: _node(wf, "AuraFlowSampler").update(type="AuraFlowSamplerX"),
    "link type wrong": lambda wf: wf["links"][0].__setitem__(5, "IMAGE"),
    "link to the wrong slot": lambda wf: wf["links"][0].__setitem__(4, wf["links"][0][4] + 1),
    "steps above max": lambda wf: _set_ui_widget(wf, "AuraFlowSampler", "steps", 201),
    "width off step": lambda wf: _set_ui_widget(wf, "AuraFlowSampler", "width", 1000),
    "cfg as text": lambda wf: _set_ui_widget(wf, "AuraFlowSampler", "cfg", "3.5"),
    "combo value unknown": lambda wf: _set_ui_widget(wf, "AuraFlowLoader", "weight_dtype", "int4"),
    "model file renamed": lambda wf: _set_ui_widget(wf, "AuraFlowLoader", "model_name", "tiny.safetensors"),
    "control_after_generate dropped": lambda wf: _node(wf, "AuraFlowSampler")["widgets_values"].pop(1),
    "optional loader widgets dropped": lambda wf: _node(wf, "AuraFlowLoader").update(
        widgets_values=_node(wf, "AuraFlowLoader")["widgets_values"][:4]),
    "download url missing": lambda wf: _node(wf, "AuraFlowLoader")["properties"].pop("models"),
    "nodes overlap": lambda wf: _node(wf, "AuraFlowDecode").update(pos=list(_node(wf, "AuraFlowSampler")["pos"])),
    "note removed": lambda wf: wf.update(nodes=[n for n in wf["nodes"] if n["type"] != "Note"]),
    "widget sockets missing": lambda wf: _node(wf, "AuraFlowSampler").update(
        inputs=_node(wf, "AuraFlowSampler")["inputs"][:3]),
}


@pytest.mark.parametrize("kind", sorted(UI_BREAKS))
def test_broken_ui_copies_are_rejected(kind: str) -> None:
    wf = _load(WORKFLOWS / "auraflow_local_text_to_image.json")
    UI_BREAKS[kind](wf)
    assert check_ui(wf), kind


API_BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "required input missing": lambda p: _api_node(p, "AuraFlowSampler")["inputs"].pop("shift"),
    "unknown input": lambda p: _api_node(p, "AuraFlowSampler")["inputs"].update(sampler="euler"),
    "unknown class": lambda p: _api_node(p, "AuraFlowDecode").update(class_type="AuraFlowDecoder"),
    "link to a missing node": lambda p: _api_node(p, "AuraFlowDecode")["inputs"].update(latent=["99", 0]),
    "link of the wrong type": lambda p: _api_node(p, "AuraFlowDecode")["inputs"].update(
        latent=_api_node(p, "AuraFlowSampler")["inputs"]["model"]),
    "seed below min": lambda p: _api_node(p, "AuraFlowSampler")["inputs"].update(seed=-1),
    "denoise above max": lambda p: _api_node(p, "AuraFlowSampler")["inputs"].update(denoise=1.5),
    "note sent to the server": lambda p: p.update({"99": {"class_type": "Note", "inputs": {}}}),
    "no output node": lambda p: [p.pop(k) for k in [k for k, n in p.items() if n["class_type"] == "SaveImage"]],
}


@pytest.mark.parametrize("kind", sorted(API_BREAKS))
def test_broken_api_copies_are_rejected(kind: str) -> None:
    prompt = _load(API / "auraflow_local_text_to_image.json")
    API_BREAKS[kind](prompt)
    assert check_api(prompt), kind


PAIR_BREAKS: dict[str, Callable[[dict[str, Any], dict[str, Any]], None]] = {
    "different seed": lambda wf, p: _api_node(p, "AuraFlowSampler")["inputs"].update(seed=7),
    "different prompt": lambda wf, p: _set_ui_widget(wf, "AuraFlowTextEncode", "prompt", "a cat"),
    "extra api node": lambda wf, p: p.update({"50": copy.deepcopy(_api_node(p, "SaveImage"))}),
    "rewired link": lambda wf, p: _api_node(p, "AuraFlowDecode")["inputs"].update(latent=["1", 0]),
    "different class": lambda wf, p: _api_node(p, "SaveImage").update(class_type="PreviewImage"),
}


@pytest.mark.parametrize("kind", sorted(PAIR_BREAKS))
def test_mismatched_pairs_are_rejected(kind: str) -> None:
    wf = _load(WORKFLOWS / "auraflow_local_text_to_image.json")
    prompt = _load(API / "auraflow_local_text_to_image.json")
    PAIR_BREAKS[kind](wf, prompt)
    assert check_pair(wf, prompt) or ui_to_api(wf) != prompt, kind


def test_a_prompt_expand_link_into_a_widget_is_followed() -> None:
    # the prompt widget of AuraFlowGenerate fed by AuraFlowPromptExpand: the API input is the link, not the text
    wf = _load(WORKFLOWS / "auraflow_prompt_expansion.json")
    generate = _node(wf, "AuraFlowGenerate")
    assert next(i for i in generate["inputs"] if i["name"] == "prompt")["link"] is not None
    prompt = ui_to_api(wf)[str(generate["id"])]["inputs"]["prompt"]
    assert prompt == [str(_node(wf, "AuraFlowPromptExpand")["id"]), 0]
