"""AuraFlowPromptExpand and expand_for_generation, called directly without ComfyUI (and with a fake folder_paths)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from testkit.tiny_llm import build_tiny_causal_lm


@pytest.fixture(scope="module")
def mod(pack: ModuleType) -> ModuleType:
    return importlib.import_module(f"{pack.__name__}.nodes.expand")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ComfyUI models/ folder with one LLM directly under LLM/ and one in an org sub-folder."""
    models = tmp_path_factory.mktemp("comfy") / "models"
    build_tiny_causal_lm(models / "LLM" / "tiny-llama")
    nested = models / "LLM" / "someorg" / "tiny-nested"
    nested.mkdir(parents=True)
    (nested / "config.json").write_text("{}")
    (models / "LLM" / "not-a-model").mkdir()
    return models


@pytest.fixture
def fake_folder_paths(monkeypatch: pytest.MonkeyPatch, models_dir: Path) -> SimpleNamespace:
    """Just the folder_paths API the node uses, with no LLM folder registered yet."""
    fp = SimpleNamespace(models_dir=str(models_dir), folder_names_and_paths={})

    def add_model_folder_path(name: str, path: str, is_default: bool = False) -> None:
        fp.folder_names_and_paths.setdefault(name, ([], set()))[0].append(path)

    fp.add_model_folder_path = add_model_folder_path
    fp.get_folder_paths = lambda name: fp.folder_names_and_paths[name][0]
    monkeypatch.setitem(sys.modules, "folder_paths", fp)
    return fp


def test_node_is_registered_with_a_full_interface(pack: ModuleType, mod: ModuleType) -> None:
    cls = pack.NODE_CLASS_MAPPINGS["AuraFlowPromptExpand"]
    assert cls is mod.AuraFlowPromptExpand and mod.NODES == (cls,)
    assert pack.NODE_DISPLAY_NAME_MAPPINGS["AuraFlowPromptExpand"] == "AuraFlow Prompt Expand"
    assert cls.CATEGORY == "AuraFlow/prompt" and cls.DESCRIPTION
    assert callable(getattr(cls, cls.FUNCTION))
    inputs = cls.INPUT_TYPES()
    assert list(inputs["required"]) == ["prompt", "backend", "seed", "max_tokens"]
    assert list(inputs["optional"]) == ["system_prompt", "local_model", "fal_model", "fal_endpoint",
                                        "fail_if_unavailable"]
    for name, (kind, options) in {**inputs["required"], **inputs["optional"]}.items():
        assert options.get("tooltip"), name
        if isinstance(kind, list):
            assert options["default"] in kind, name
    assert inputs["required"]["backend"][0] == ["template", "local", "fal"]
    assert inputs["optional"]["local_model"][0] == ["none"]  # outside ComfyUI
    assert cls.RETURN_TYPES == ("STRING",) and len(cls.OUTPUT_TOOLTIPS) == len(cls.RETURN_NAMES) == 1


def test_template_run_shows_the_text_on_the_node(mod: ModuleType) -> None:
    out = mod.AuraFlowPromptExpand().expand("a lighthouse on a cliff", "template", 5, 256)
    (text,) = out["result"]
    assert text.startswith("A lighthouse on a cliff.") and len(text) > 100
    assert out["ui"] == {"text": [text]}


def test_unavailable_backend_stops_the_node_or_passes_through(pack: ModuleType, mod: ModuleType) -> None:
    common = importlib.import_module(f"{pack.__name__}.nodes._common")
    node = mod.AuraFlowPromptExpand()
    with pytest.raises(common.AuraFlowNodeError, match="AuraFlow Prompt Expand: no local language model"):
        node.expand("a fox", "local", 0, 256)
    out = node.expand("a fox", "local", 0, 256, fail_if_unavailable=False)
    assert out["result"] == ("a fox",)
    assert out["ui"]["text"][0] == "a fox" and out["ui"]["text"][1].startswith("⚠ prompt expansion (local) failed")


def test_llm_folder_is_registered_and_listed(mod: ModuleType, fake_folder_paths: SimpleNamespace,
                                             models_dir: Path) -> None:
    names = mod.local_model_names()
    assert fake_folder_paths.folder_names_and_paths["LLM"][0] == [str(models_dir / "LLM")]
    assert names == ["none", "someorg/tiny-nested", "tiny-llama"]
    assert mod.AuraFlowPromptExpand.INPUT_TYPES()["optional"]["local_model"][0] == names
    assert mod.resolve_local_model("tiny-llama") == str(models_dir / "LLM" / "tiny-llama")
    assert mod.resolve_local_model("none") is None
    assert mod.resolve_local_model("/some/other/path") == "/some/other/path"


def test_an_existing_llm_folder_registration_is_reused(mod: ModuleType, fake_folder_paths: SimpleNamespace,
                                                       models_dir: Path, tmp_path: Path) -> None:
    fake_folder_paths.folder_names_and_paths["LLM"] = ([str(tmp_path), str(models_dir / "LLM")], set())
    assert mod.local_model_names() == ["none", "someorg/tiny-nested", "tiny-llama"]
    assert fake_folder_paths.folder_names_and_paths["LLM"][0] == [str(tmp_path), str(models_dir / "LLM")]


def test_local_model_from_the_llm_folder_runs(pack: ModuleType, mod: ModuleType,
                                              fake_folder_paths: SimpleNamespace) -> None:
    node = mod.AuraFlowPromptExpand()
    first = node.expand("a red fox", "local", 11, 16, local_model="tiny-llama")
    assert first == node.expand("a red fox", "local", 11, 16, local_model="tiny-llama")
    assert first["result"][0] != "a red fox"
    importlib.import_module(f"{pack.__name__}.pipeline.expand").free_local_model()


def test_expand_for_generation_never_fails_a_generation(mod: ModuleType) -> None:
    prompt, warnings = mod.expand_for_generation("a fox", 1, {"backend": "template"})
    assert prompt.startswith("A fox.") and warnings == ()
    for options in ({"backend": "local"}, {"backend": "local", "local_model": "missing-model"},
                    {"backend": "fal", "timeout": 5}):
        prompt, warnings = mod.expand_for_generation("a fox", 1, options)
        assert prompt == "a fox" and len(warnings) == 1 and warnings[0].startswith("prompt expansion")


def test_expand_for_generation_counts_with_auraflows_tokenizer(mod: ModuleType) -> None:
    calls: list[str] = []

    def one_token_per_char(text: str) -> Any:
        calls.append(text)
        return len(text)

    prompt, warnings = mod.expand_for_generation("a fox", 2, {"backend": "template"}, tokenizer=one_token_per_char)
    assert calls and len(prompt) <= 256 and "256-token window" in warnings[0] and "(estimated)" not in warnings[0]
