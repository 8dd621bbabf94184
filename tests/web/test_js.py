"""Run the web extension's JS checks from pytest: node's test runner on the pure logic, a syntax check of every
module ComfyUI will serve. Skipped (with the reason) where Node.js is not installed."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from testkit.pack import ROOT

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js (`node`) is not installed; the JS tests need it")

JS_TESTS = sorted((ROOT / "tests" / "web").glob("*.test.mjs"))
SERVED_JS = sorted((ROOT / "web").rglob("*.js"))


def test_js_unit_tests_pass() -> None:
    assert JS_TESTS, "no tests/web/*.test.mjs found"
    out = subprocess.run([NODE, "--test", *map(str, JS_TESTS)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, f"node --test failed:\n{out.stdout[-4000:]}\n{out.stderr[-2000:]}"


@pytest.mark.parametrize("path", SERVED_JS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_served_js_parses_as_an_es_module(path) -> None:
    out = subprocess.run([NODE, "--check", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0, out.stderr


def test_no_test_file_is_served_as_an_extension() -> None:
    """ComfyUI loads every .js under web/ into the browser: tests must live elsewhere."""
    assert not [p for p in SERVED_JS if ".test." in p.name or "tests" in p.parts[len(ROOT.parts):]]


COMFY_SCRIPTS = {"app.js", "api.js", "widgets.js", "ui.js", "utils.js", "domWidget.js"}


@pytest.mark.parametrize("path", SERVED_JS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_imports_resolve_where_comfyui_serves_them(path) -> None:
    """ComfyUI serves web/<rel> at /extensions/<pack folder>/<rel>: from web/js/ the frontend's shims
    (/scripts/app.js …) are three levels up, our own modules are beside."""
    import posixpath
    import re

    url = "/extensions/ComfyUI-AuraFlow/" + path.relative_to(ROOT / "web").as_posix()
    specs = re.findall(r'^\s*import\s[^"\']*["\']([^"\']+)["\']', path.read_text(encoding="utf-8"), flags=re.M)
    for spec in specs:
        assert spec.startswith("."), f"{spec}: use relative URLs"
        target = posixpath.normpath(posixpath.join(posixpath.dirname(url), spec))
        if target.startswith("/scripts/"):
            assert target.removeprefix("/scripts/") in COMFY_SCRIPTS, target
        else:
            prefix = "/extensions/ComfyUI-AuraFlow/"
            assert target.startswith(prefix) and (ROOT / "web" / target.removeprefix(prefix)).is_file(), target
