"""``python -m pipeline run-workflow``: run an API-format workflow on a running ComfyUI, headless.

    python -m pipeline run-workflow workflows/local_txt2img.api.json --server http://127.0.0.1:8188 \\
        --set 3.seed=42 --set 6.text="a red fox" --out out/

``--set NODE.INPUT=VALUE`` changes one input (VALUE parsed as JSON when it parses, else taken as a string);
progress goes to stderr, and stdout gets ``{"prompt_id", "files"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .errors import InvalidInputError


def add_parser(commands: Any) -> None:
    p = commands.add_parser("run-workflow", help="queue an API-format workflow on a running ComfyUI and save images")
    p.add_argument("workflow", type=Path, help="API-format workflow JSON (ComfyUI: Export (API))")
    p.add_argument("--server", default="http://127.0.0.1:8188", help="ComfyUI's address")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="override one input; repeatable")
    p.add_argument("--out", type=Path, default=Path("comfyui-out"), help="folder for the images")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the whole run")
    p.set_defaults(run=run)


def parse_overrides(items: list[str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for item in items:
        target, sep, raw = item.partition("=")
        node, dot, name = target.partition(".")
        if not sep or not dot or not node or not name:
            raise InvalidInputError("--set", item, "NODE.INPUT=VALUE, e.g. 3.seed=42")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        overrides.setdefault(node, {})[name] = value
    return overrides


def run(args: argparse.Namespace) -> int:
    from .comfyui_api import load_api_workflow, run_workflow

    graph = load_api_workflow(args.workflow, parse_overrides(args.overrides))

    def progress(node: str, value: int, maximum: int) -> None:
        print(f"\r  node {node}: {value}/{maximum}", end="\n" if value >= maximum else "", file=sys.stderr,
              flush=True)

    result = asyncio.run(run_workflow(args.server, graph, args.out, on_progress=progress, timeout=args.timeout))
    print(json.dumps({"prompt_id": result.prompt_id, "files": [str(f) for f in result.files]}, indent=2))
    return 0
