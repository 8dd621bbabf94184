"""The example workflows in ``workflows/``, described once and written in both of ComfyUI's formats.

Each graph below names its nodes, positions, the widget values that differ from the defaults and its links by
input/output *name*; :func:`build` turns that into ComfyUI's UI format (v0.4: positional ``widgets_values`` with
the editor's UI-only slots, numbered links, sockets) and the API format ``POST /prompt`` takes (every input by
name). Widget order and defaults come from the node interfaces (``tests/nodes/node_interfaces.json`` for ours,
``tests/workflows/core_nodes.json`` for ComfyUI's), so an input added at the end of a node gets its default here.

The committed JSON files are what users load and what ``tests/workflows/test_workflows.py`` checks; this module
only writes them. After changing a graph here, or after a node gained an input, rewrite them with:

    python tests/testkit/workflow_graphs.py
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"  # UI format, one level deep: ComfyUI's template browser lists */workflows/*.json
API_DIR = WORKFLOWS / "api"  # API format twins (a subfolder, so the template browser does not list them)
OUR_INTERFACES = ROOT / "tests" / "nodes" / "node_interfaces.json"
CORE_INTERFACES = ROOT / "tests" / "workflows" / "core_nodes.json"

# the file names users have, and where ComfyUI's download prompt fetches them from
AURAFLOW_FILE = "aura_flow_0.3.safetensors"
SDXL_VAE_FILE = "sdxl_vae.safetensors"
EXAMPLE_IMAGE = "example.png"  # ships in ComfyUI's input/ folder
MODEL_FILES = {
    AURAFLOW_FILE: {"name": AURAFLOW_FILE, "directory": "checkpoints",
                    "url": "https://huggingface.co/fal/AuraFlow-v0.3/resolve/main/aura_flow_0.3.safetensors"},
    SDXL_VAE_FILE: {"name": SDXL_VAE_FILE, "directory": "vae",
                    "url": "https://huggingface.co/stabilityai/sdxl-vae/resolve/main/sdxl_vae.safetensors"},
}
# widgets naming a file on the user's machine (their COMBO lists what is installed): the value each graph uses
FILE_WIDGETS = {("AuraFlowLoader", "model_name"): AURAFLOW_FILE, ("VAELoader", "vae_name"): SDXL_VAE_FILE,
                ("LoadImage", "image"): EXAMPLE_IMAGE}

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")
NOTE_TYPES = ("Note", "MarkdownNote")  # frontend-only: in the UI file, never sent to the server
TITLE_HEIGHT = 30  # LiteGraph draws the title bar above a node's pos; size excludes it
NOTE_COLOR, NOTE_BGCOLOR = "#432", "#653"


def load_interfaces() -> dict[str, Any]:
    """Node type -> interface (the shape of node_interfaces.json), ours and ComfyUI's core nodes together."""
    core = json.loads(CORE_INTERFACES.read_text(encoding="utf-8"))["nodes"]
    ours = json.loads(OUR_INTERFACES.read_text(encoding="utf-8"))
    return {**core, **ours}


def is_widget(spec: dict[str, Any]) -> bool:
    return spec["type"] in WIDGET_TYPES and not spec.get("forceInput")


def node_inputs(interface: dict[str, Any]) -> list[dict[str, Any]]:
    """Required then optional inputs, each with ``required`` set (hidden inputs are the server's)."""
    return [{**spec, "required": section == "required"} for section in ("required", "optional")
            for spec in interface["inputs"].get(section, [])]


def widget_slots(interface: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The editor's ``widgets_values`` layout: (slot, input name) per position.

    slot is ``"value"`` for an input's widget, ``"control_after_generate"`` for the control combo the editor adds
    after an INT/FLOAT with that option, ``"upload"`` for the upload button after a COMBO with ``image_upload``;
    ``"text"`` for a note's text.
    """
    if interface.get("frontend_only"):
        return [("text", None)]
    slots: list[tuple[str, str | None]] = []
    for spec in node_inputs(interface):
        if not is_widget(spec):
            continue
        slots.append(("value", spec["name"]))
        if spec.get("control_after_generate"):
            slots.append(("control_after_generate", spec["name"]))
        if spec.get("image_upload"):
            slots.append(("upload", spec["name"]))
    return slots


@dataclass
class Node:
    id: int
    type: str
    pos: tuple[int, int]
    size: tuple[int, int]
    widgets: dict[str, Any] = field(default_factory=dict)  # input name -> value; the rest take their defaults
    control: str = "randomize"  # control_after_generate of the seed widget(s)
    title: str | None = None
    text: str = ""  # Note nodes


@dataclass
class Graph:
    name: str  # file name without .json
    nodes: list[Node]
    links: list[tuple[int, str, int, str]]  # (from node, output name, to node, input name)
    groups: list[dict[str, Any]] = field(default_factory=list)


def _default(spec: dict[str, Any]) -> Any:
    if "default" in spec:
        return spec["default"]
    if spec["type"] == "COMBO" and spec.get("options"):
        return spec["options"][0]
    raise ValueError(f"input {spec['name']!r} has no default: give it a value")


def _order(graph: Graph) -> dict[int, int]:
    """Execution order (the UI file's ``order``): a topological order, ties by id; notes last."""
    deps = {n.id: {src for src, _, dst, _ in graph.links if dst == n.id} for n in graph.nodes}
    done: list[int] = []
    while len(done) < len(deps):
        ready = sorted(i for i, d in deps.items() if i not in done and d <= set(done))
        if not ready:
            raise ValueError(f"{graph.name}: the links form a cycle")
        done.append(ready[0])
    notes = [n.id for n in graph.nodes if n.type in NOTE_TYPES]
    done = [i for i in done if i not in notes] + notes
    return {node_id: index for index, node_id in enumerate(done)}


def build(graph: Graph, interfaces: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(UI workflow, API prompt) for one graph."""
    nodes = {n.id: n for n in graph.nodes}
    links = [(index + 1, *link) for index, link in enumerate(graph.links)]
    for _, src, out_name, dst, in_name in links:
        outputs = [o["name"] for o in interfaces[nodes[src].type]["outputs"]]
        inputs = [s["name"] for s in node_inputs(interfaces[nodes[dst].type])]
        if out_name not in outputs or in_name not in inputs:
            raise ValueError(f"{graph.name}: no link {nodes[src].type}.{out_name} -> {nodes[dst].type}.{in_name}")
    order = _order(graph)
    ui_nodes: list[dict[str, Any]] = []
    ui_links: list[list[Any]] = []
    prompt: dict[str, Any] = {}
    for node in graph.nodes:
        interface = interfaces[node.type]
        if interface.get("frontend_only"):
            ui_nodes.append({"id": node.id, "type": node.type, "pos": list(node.pos), "size": list(node.size),
                             "flags": {}, "order": order[node.id], "mode": 0, "inputs": [], "outputs": [],
                             "title": node.title or "Read me", "properties": {}, "widgets_values": [node.text],
                             "color": NOTE_COLOR, "bgcolor": NOTE_BGCOLOR})
            continue
        specs = node_inputs(interface)
        unknown = set(node.widgets) - {s["name"] for s in specs if is_widget(s)}
        if unknown:
            raise ValueError(f"{graph.name}: {node.type} has no widgets {sorted(unknown)}")
        values = {s["name"]: node.widgets[s["name"]] if s["name"] in node.widgets else _default(s)
                  for s in specs if is_widget(s)}
        incoming = {in_name: (link_id, src, out_name) for link_id, src, out_name, dst, in_name in links
                    if dst == node.id}
        # sockets as the editor (frontend 1.27) writes them: every non-widget input, then every widget input (a
        # widget has a socket too), in input order; optional ones with shape 7; an image_upload COMBO is followed
        # by the upload button's IMAGEUPLOAD input. Link target slots index this list.
        sockets = [s for s in specs if not is_widget(s)] + [s for s in specs if is_widget(s)]
        ui_inputs = []
        for spec in sockets:
            entry: dict[str, Any] = {"localized_name": spec["name"], "name": spec["name"]}
            if not spec["required"]:
                entry["shape"] = 7
            entry["type"] = spec["type"]
            if is_widget(spec):
                entry["widget"] = {"name": spec["name"]}
            entry["link"] = incoming[spec["name"]][0] if spec["name"] in incoming else None
            ui_inputs.append(entry)
            if spec.get("image_upload"):
                ui_inputs.append({"localized_name": "choose file to upload", "name": "upload", "type": "IMAGEUPLOAD",
                                  "widget": {"name": "upload"}, "link": None})
        socket_index = {s["name"]: i for i, s in enumerate(ui_inputs)}
        ui_outputs = []
        for slot, output in enumerate(interface["outputs"]):
            out_links = [link_id for link_id, src, out_name, _, _ in links
                         if src == node.id and out_name == output["name"]]
            ui_outputs.append({"localized_name": output["name"], "name": output["name"], "type": output["type"],
                               "slot_index": slot, "links": out_links})
        widgets_values = []
        for slot, name in widget_slots(interface):
            widgets_values.append({"value": values.get(name), "control_after_generate": node.control,
                                   "upload": "image"}[slot])
        properties: dict[str, Any] = {"Node name for S&R": node.type}
        files = [values[n] for (t, n), _ in FILE_WIDGETS.items() if t == node.type and values.get(n) in MODEL_FILES]
        if files:
            properties["models"] = [MODEL_FILES[f] for f in files]
        ui_node = {"id": node.id, "type": node.type, "pos": list(node.pos), "size": list(node.size), "flags": {},
                   "order": order[node.id], "mode": 0, "inputs": ui_inputs, "outputs": ui_outputs,
                   "properties": properties, "widgets_values": widgets_values}
        if node.title:
            ui_node["title"] = node.title
        ui_nodes.append(ui_node)
        for name, (link_id, src, out_name) in incoming.items():
            src_type = interfaces[nodes[src].type]
            out_slot = [o["name"] for o in src_type["outputs"]].index(out_name)
            ui_links.append([link_id, src, out_slot, node.id, socket_index[name],
                             src_type["outputs"][out_slot]["type"]])
        api_inputs: dict[str, Any] = {}
        for spec in specs:
            name = spec["name"]
            if name in incoming:
                _, src, out_name = incoming[name]
                api_inputs[name] = [str(src), [o["name"] for o in interfaces[nodes[src].type]["outputs"]].index(
                    out_name)]
            elif is_widget(spec):
                api_inputs[name] = values[name]
        prompt[str(node.id)] = {"class_type": node.type, "inputs": api_inputs,
                                "_meta": {"title": node.title or interface.get("display_name", node.type)}}
    ui_links.sort()
    groups = [{"id": index + 1, **group} for index, group in enumerate(graph.groups)]
    workflow = {"last_node_id": max(nodes), "last_link_id": len(links), "nodes": ui_nodes, "links": ui_links,
                "groups": groups, "config": {}, "extra": {"ds": {"scale": 0.8, "offset": [40, 60]}},
                "version": 0.4}
    return workflow, prompt


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# the graphs

PROMPT = ("a lighthouse on a rocky coast at dusk, warm light in the windows, waves breaking on the rocks, seagulls, "
          "dramatic clouds lit orange and violet, oil painting with visible brushwork")
LOADER_SIZE = (340, 226)
_NOTE_HEAD = "Models: put aura_flow_0.3.safetensors in ComfyUI/models/checkpoints (the editor offers the download).\n"


def _unwrap(text: str) -> str:
    """Paragraphs as single lines (the note's text box wraps them to its width); '- ' items stay one per line."""
    out: list[str] = []
    for paragraph in text.strip().split("\n\n"):
        lines: list[str] = []
        for line in paragraph.splitlines():
            if lines and not line.startswith("- ") and not lines[-1].endswith(":"):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.strip())
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _note(node_id: int, pos: tuple[int, int], size: tuple[int, int], text: str) -> Node:
    return Node(node_id, "Note", pos, size, text=_unwrap(text))


def _loader(node_id: int, pos: tuple[int, int]) -> Node:
    return Node(node_id, "AuraFlowLoader", pos, LOADER_SIZE, {"model_name": AURAFLOW_FILE})


def _encode(node_id: int, pos: tuple[int, int], prompt: str = PROMPT) -> Node:
    return Node(node_id, "AuraFlowTextEncode", pos, (400, 300), {"prompt": prompt, "negative_prompt": ""})


def _sampler(node_id: int, pos: tuple[int, int], **widgets: Any) -> Node:
    values = {"seed": 42, "steps": 50, "cfg": 3.5, "shift": 1.73, "width": 1024, "height": 1024, "batch_size": 1,
              "denoise": 1.0} | widgets
    return Node(node_id, "AuraFlowSampler", pos, (320, 318), values)


def _save(node_id: int, pos: tuple[int, int], prefix: str, title: str | None = None) -> Node:
    return Node(node_id, "SaveImage", pos, (400, 440), {"filename_prefix": prefix}, title=title)


_SAMPLER_KNOBS = """
AuraFlow Sampler knobs:
- steps: 50 is AuraFlow's default; 25-30 is much faster and often enough.
- cfg: 3.5 (prompt adherence; above ~6 colours burn; <= 1 turns guidance and the negative prompt off).
- shift: 1.73, the flow schedule's timestep shift (higher spends more steps on composition).
- width/height: multiples of 16, trained around 1024x1024 (e.g. 1344x768, 768x1344).
- seed: the same seed and settings give the same picture; 'control after generate' picks the next seed.
"""

GRAPHS: list[Graph] = [
    Graph(
        "auraflow_local_text_to_image",
        [
            _loader(1, (40, 120)),
            _encode(2, (430, 120)),
            _sampler(3, (880, 120)),
            Node(4, "AuraFlowDecode", (1250, 120), (240, 66)),
            _save(5, (1540, 120), "AuraFlow/text_to_image"),
            _note(6, (40, 480), (780, 300), _NOTE_HEAD + """
AuraFlow v0.3 text-to-image on your own GPU, step by step: AuraFlow Loader -> AuraFlow Text Encode -> AuraFlow
Sampler -> AuraFlow Decode -> Save Image (ComfyUI/output/AuraFlow/).

AuraFlow Loader: weight_dtype auto = bf16 on a GPU (fp32 on the CPU); offload_text_encoder and vae_tiling save
memory (both on with --lowvram); weight_format fp8_e4m3fn and offload model/sequential (+ resident_blocks) are
for small GPUs.
Text Encode: AuraFlow reads up to 256 tokens; long concrete descriptions work best. The negative prompt is used
only when cfg > 1.
""" + _SAMPLER_KNOBS),
        ],
        [(1, "model", 2, "model"), (1, "model", 3, "model"), (2, "conditioning", 3, "conditioning"),
         (1, "model", 4, "model"), (3, "latent", 4, "latent"), (4, "images", 5, "images")],
    ),
    Graph(
        "auraflow_generate",
        [
            _loader(1, (40, 120)),
            Node(2, "AuraFlowGenerate", (430, 120), (400, 470),
                 {"prompt": PROMPT, "num_images": 1, "seed": 42, "guidance_scale": 3.5, "num_inference_steps": 50,
                  "expand_prompt": False, "width": 1024, "height": 1024, "negative_prompt": ""}),
            _save(3, (880, 120), "AuraFlow/generate"),
            _note(4, (40, 640), (790, 270), _NOTE_HEAD + """
AuraFlow Generate: encode, sample and decode in one node, locally. Its inputs and first outputs are those of
the AuraFlow (fal.ai) node, so swapping the two moves this graph between your GPU and fal.ai.

- num_images: one batch from one seed; guidance_scale 3.5; num_inference_steps 50 (25-30 is faster).
- expand_prompt: rewrite a short prompt into a detailed one first (expansion_backend: template = offline word
  lists; local = an LLM from models/LLM; fal = an LLM on fal.ai, needs FAL_KEY). The prompt output shows
  what the model saw.
- width/height: multiples of 16, around 1024x1024; seed: same seed, same picture.
"""),
        ],
        [(1, "model", 2, "model"), (2, "images", 3, "images")],
    ),
    Graph(
        "auraflow_fal_remote",
        [
            Node(1, "AuraFlowFal", (40, 120), (400, 330),
                 {"prompt": PROMPT, "num_images": 1, "seed": 42, "guidance_scale": 3.5, "num_inference_steps": 50,
                  "expand_prompt": True, "sync_mode": False}),
            _save(2, (490, 120), "AuraFlow/fal"),
            _note(3, (40, 500), (400, 340), """
AuraFlow on fal.ai (fal-ai/aura-flow): no weights or GPU needed, billed per image by fal.

The key: set FAL_KEY=<key_id>:<key_secret> for the process that runs ComfyUI (or save it in the AuraFlow
settings / ~/.config/comfyui-auraflow/fal_key). Never put it in a node: widget values are saved in workflows
and in the PNG files.

- num_images 1-4; guidance_scale 3.5; num_inference_steps 50.
- expand_prompt: fal rewrites the prompt with an LLM first (on by default on fal).
- seed: fal's results are not bit-reproducible; an unchanged seed only means ComfyUI reuses the cached result.
- sync_mode: images come back inline instead of as URLs.

While it runs the node shows the queue position and fal's log; Cancel also cancels on fal.ai. If the download
fails after fal finished, the error names the request id: AuraFlow (fal.ai) result fetches it again.
"""),
        ],
        [(1, "images", 2, "images")],
    ),
    Graph(
        "auraflow_prompt_expansion",
        [
            _loader(1, (40, 120)),
            Node(2, "AuraFlowPromptExpand", (40, 400), (340, 420),
                 {"prompt": "a lighthouse at dusk", "backend": "template", "seed": 7, "max_tokens": 256}),
            Node(3, "AuraFlowGenerate", (430, 120), (400, 470),
                 {"prompt": "", "num_images": 1, "seed": 42, "guidance_scale": 3.5, "num_inference_steps": 50,
                  "expand_prompt": False, "width": 1024, "height": 1024, "negative_prompt": ""}),
            _save(4, (880, 120), "AuraFlow/expanded"),
            _note(5, (430, 640), (400, 380), _NOTE_HEAD + """
AuraFlow follows long, concrete descriptions best. AuraFlow Prompt Expand turns a short idea into one, and
shows the result on the node; it feeds AuraFlow Generate's prompt.

- backend: template = offline word lists (composition, light, medium, colour), reproducible per seed;
  local = a transformers LLM folder in ComfyUI/models/LLM (pick it in local_model);
  fal = an LLM on fal.ai (fal_endpoint, fal_model: any OpenRouter model id), needs FAL_KEY.
- seed: another seed, another variation. max_tokens: the LLM's budget (local, fal).
- system_prompt: your own instructions for the LLM (empty = ours).
- fail_if_unavailable: stop with the reason when the backend cannot work (no model, no key), instead of
  using the short prompt as it is.
"""),
        ],
        [(1, "model", 3, "model"), (2, "prompt", 3, "prompt"), (3, "images", 4, "images")],
    ),
    Graph(
        "auraflow_image_to_image",
        [
            Node(1, "LoadImage", (40, 400), (340, 340), {"image": EXAMPLE_IMAGE}),
            Node(2, "VAELoader", (40, 800), (340, 60), {"vae_name": SDXL_VAE_FILE}),
            _loader(3, (40, 120)),
            Node(4, "VAEEncode", (430, 480), (220, 50)),
            _encode(5, (430, 120), "a lighthouse on a rocky coast at night under the northern lights, "
                                   "watercolour, soft washes of green and blue"),
            _sampler(6, (880, 120), denoise=0.6),
            Node(7, "AuraFlowDecode", (1250, 120), (240, 66)),
            _save(8, (1540, 120), "AuraFlow/image_to_image"),
            _note(9, (880, 620), (760, 300), """
Image-to-image: Load Image -> VAE Encode (with the SDXL VAE, the VAE AuraFlow uses) -> AuraFlow Sampler's
latent_image, with denoise below 1 -> AuraFlow Decode -> Save Image.

Models: aura_flow_0.3.safetensors in ComfyUI/models/checkpoints and sdxl_vae.safetensors in ComfyUI/models/vae
(the editor offers both downloads). Pick your own picture in Load Image: sides that are multiples of 16,
around 1024 px (e.g. 768x768, 1024x1024, 1344x768).

- denoise: how much to change the picture: 0.3 keeps composition and colours, 0.6 repaints the style,
  1.0 ignores the picture. 'steps' steps are run either way.
- With a latent_image connected, the sampler's width/height/batch_size are ignored (the picture's are used).
- steps 50 (25-30 is faster), cfg 3.5, shift 1.73 as for text-to-image; seed: same seed, same picture.
"""),
        ],
        [(1, "IMAGE", 4, "pixels"), (2, "VAE", 4, "vae"), (3, "model", 5, "model"), (3, "model", 6, "model"),
         (5, "conditioning", 6, "conditioning"), (4, "LATENT", 6, "latent_image"), (3, "model", 7, "model"),
         (6, "latent", 7, "latent"), (7, "images", 8, "images")],
    ),
    Graph(
        "auraflow_local_vs_remote",
        [
            Node(1, "PrimitiveStringMultiline", (40, 120), (340, 200), {"value": PROMPT}, title="Prompt"),
            Node(2, "PrimitiveInt", (40, 370), (340, 82), {"value": 42}, control="fixed", title="Seed"),
            _loader(3, (40, 500)),
            Node(4, "AuraFlowGenerate", (470, 120), (400, 470),
                 {"prompt": "", "num_images": 1, "seed": 0, "guidance_scale": 3.5, "num_inference_steps": 50,
                  "expand_prompt": False, "width": 1024, "height": 1024, "negative_prompt": ""},
                 control="fixed", title="AuraFlow Generate (local)"),
            _save(5, (920, 120), "AuraFlow/compare_local", title="Local result"),
            Node(6, "AuraFlowFal", (470, 780), (400, 330),
                 {"prompt": "", "num_images": 1, "seed": 0, "guidance_scale": 3.5, "num_inference_steps": 50,
                  "expand_prompt": False, "sync_mode": False}, control="fixed", title="AuraFlow (fal.ai, remote)"),
            Node(7, "SaveImage", (920, 780), (400, 380), {"filename_prefix": "AuraFlow/compare_fal"},
                 title="fal.ai result"),
            _note(8, (1400, 120), (400, 330), """
Local and remote side by side: one prompt and one seed (the Prompt and Seed nodes) feed AuraFlow Generate
on your GPU and AuraFlow (fal.ai), with the same guidance and steps and expand_prompt off on both, so
the two are directly comparable (fal renders 1024x1024).

The two pictures will differ even so: fal draws the starting noise on its own GPUs, so a seed does not give
the same picture there as here. Compare prompt following, style and time, not pixels.

Needs aura_flow_0.3.safetensors in ComfyUI/models/checkpoints for the local half and FAL_KEY in
ComfyUI's environment for the remote half (see the AuraFlow fal.ai example). Seed is 'fixed': change it
(or set 'control after generate' to randomize) for new pictures; with nothing changed ComfyUI reuses both
results.
"""),
        ],
        [(3, "model", 4, "model"), (1, "STRING", 4, "prompt"), (2, "INT", 4, "seed"), (4, "images", 5, "images"),
         (1, "STRING", 6, "prompt"), (2, "INT", 6, "seed"), (6, "images", 7, "images")],
        groups=[
            {"title": "Local (your GPU)", "bounding": [450, 40, 900, 620], "color": "#3f789e", "font_size": 24,
             "flags": {}},
            {"title": "Remote (fal.ai)", "bounding": [450, 700, 900, 500], "color": "#8A8", "font_size": 24,
             "flags": {}},
        ],
    ),
    Graph(
        "auraflow_native_vae_decode",
        [
            _loader(1, (40, 120)),
            Node(2, "VAELoader", (40, 400), (340, 60), {"vae_name": SDXL_VAE_FILE}),
            _encode(3, (430, 120)),
            _sampler(4, (880, 120)),
            Node(5, "VAEDecode", (1250, 120), (220, 50)),
            _save(6, (1520, 120), "AuraFlow/native_decode"),
            _note(7, (430, 480), (760, 300), """
AuraFlow Sampler's LATENT is ComfyUI's own type (raw SDXL-VAE latents), so ComfyUI's VAE Decode with the SDXL
VAE reads it: the same picture as AuraFlow Decode (which uses the VAE inside the AuraFlow file). Use it to
chain ComfyUI's latent nodes (upscale, another sampler) or a tiled/fp16-fixed SDXL VAE.

Models: aura_flow_0.3.safetensors in ComfyUI/models/checkpoints and sdxl_vae.safetensors in ComfyUI/models/vae
(the editor offers both downloads).
""" + _SAMPLER_KNOBS),
        ],
        [(1, "model", 3, "model"), (1, "model", 4, "model"), (3, "conditioning", 4, "conditioning"),
         (4, "latent", 5, "samples"), (2, "VAE", 5, "vae"), (5, "IMAGE", 6, "images")],
    ),
]


def build_all(interfaces: dict[str, Any] | None = None) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    interfaces = interfaces or load_interfaces()
    return {graph.name: build(graph, interfaces) for graph in GRAPHS}


def write(names: Iterable[str] | None = None) -> list[Path]:
    written = []
    API_DIR.mkdir(parents=True, exist_ok=True)
    for name, (workflow, prompt) in build_all().items():
        if names and name not in names:
            continue
        for path, data in ((WORKFLOWS / f"{name}.json", workflow), (API_DIR / f"{name}.json", prompt)):
            path.write_text(dumps(data), encoding="utf-8")
            written.append(path)
    return written


if __name__ == "__main__":
    for path in write():
        print(path.relative_to(ROOT))
