"""A stand-in for ComfyUI's server side: ``PromptServer.instance``, its prompt queue, validation and prompt worker.

With :class:`~testkit.fake_comfy.FakeComfy` installed, :func:`install_server` adds the ``server`` and
``execution`` modules: a ``PromptServer`` whose ``instance`` has ``routes`` (an aiohttp ``RouteTableDef``), ``app``,
``prompt_queue``, ``number`` and ``loop``, and ``execution.validate_prompt``. :class:`FakeExecutor` is ComfyUI's
prompt worker thread: it takes queued prompts in ComfyUI's order and runs their nodes through the pack's own
classes (links resolved, ``UNIQUE_ID`` passed, under ``torch.inference_mode``), clearing the interrupt flag
first and recording the history status as ComfyUI does (``execution_interrupted`` / ``execution_error``).

The queue follows ComfyUI 0.3.64's ``execution.PromptQueue`` (heap of ``(number, prompt_id, prompt, extra_data,
outputs)``, ``currently_running``, ``history``, one re-entrant ``mutex``), written from its documented
behaviour. Validation checks what our prompts can get wrong: unknown classes, missing inputs, COMBO values and
number bounds, with ComfyUI's error shapes.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import pytest
import torch
from aiohttp import web

from .fake_comfy import FakeComfy, InterruptProcessingException


class ExecutionStatus(NamedTuple):
    status_str: str
    completed: bool
    messages: list[Any]


class FakePromptQueue:
    def __init__(self, server: FakePromptServer) -> None:
        self.server = server
        self.mutex = threading.RLock()
        self.not_empty = threading.Condition(self.mutex)
        self.queue: list[Any] = []
        self.currently_running: dict[int, Any] = {}
        self.history: dict[str, Any] = {}
        self.task_counter = 0

    def put(self, item: Any) -> None:
        with self.mutex:
            heapq.heappush(self.queue, item)
            self.server.queue_updated()
            self.not_empty.notify()

    def get(self, timeout: float | None = None) -> tuple[Any, int] | None:
        with self.not_empty:
            while not self.queue:
                self.not_empty.wait(timeout=timeout)
                if timeout is not None and not self.queue:
                    return None
            item = heapq.heappop(self.queue)
            i = self.task_counter
            self.currently_running[i] = copy.deepcopy(item)
            self.task_counter += 1
            self.server.queue_updated()
            return item, i

    def task_done(self, item_id: int, history_result: dict[str, Any], status: ExecutionStatus | None) -> None:
        with self.mutex:
            prompt = self.currently_running.pop(item_id)
            self.history[prompt[1]] = {"prompt": prompt, "outputs": {},
                                       "status": copy.deepcopy(status._asdict()) if status else None,
                                       **history_result}
            self.server.queue_updated()

    def get_current_queue_volatile(self) -> tuple[list[Any], list[Any]]:
        with self.mutex:
            return list(self.currently_running.values()), copy.copy(self.queue)

    def get_current_queue(self) -> tuple[list[Any], list[Any]]:
        with self.mutex:
            return list(self.currently_running.values()), copy.deepcopy(self.queue)

    def delete_queue_item(self, function: Callable[[Any], bool]) -> bool:
        with self.mutex:
            for x, item in enumerate(self.queue):
                if function(item):
                    self.queue.pop(x)
                    heapq.heapify(self.queue)
                    self.server.queue_updated()
                    return True
        return False

    def get_history(self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1,
                    map_function: Callable[[Any], Any] | None = None) -> dict[str, Any]:
        with self.mutex:
            if prompt_id is None:
                return {k: (map_function(v) if map_function else copy.deepcopy(v)) for k, v in self.history.items()}
            if prompt_id in self.history:
                entry = self.history[prompt_id]
                return {prompt_id: map_function(entry) if map_function else copy.deepcopy(entry)}
            return {}

    def wipe_history(self) -> None:
        with self.mutex:
            self.history = {}


class FakePromptServer:
    instance: FakePromptServer | None = None

    def __init__(self) -> None:
        self.routes = web.RouteTableDef()
        self.app = web.Application()
        self.prompt_queue = FakePromptQueue(self)
        self.number = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client_id: str | None = None
        self.last_prompt_id: str | None = None
        self.events: list[tuple[str, Any]] = []

    def queue_updated(self) -> None:
        self.events.append(("status", None))

    def send_sync(self, event: str, data: Any, sid: str | None = None) -> None:
        self.events.append((event, data))

    def send_progress_text(self, text: str, node_id: str, sid: str | None = None) -> None:
        self.events.append(("progress_text", (node_id, text)))

    def add_routes_to_app(self) -> None:
        """What ComfyUI's ``PromptServer.add_routes`` does with the table: every route, and again under /api."""
        for route in self.routes:
            self.app.router.add_route(route.method, route.path, route.handler)
            self.app.router.add_route(route.method, "/api" + route.path, route.handler)


def _validate_node(node_id: str, node: dict[str, Any], cls: type) -> list[dict[str, Any]]:
    errors = []
    spec = cls.INPUT_TYPES()
    for name, (kind, *rest) in spec.get("required", {}).items():
        options = rest[0] if rest else {}
        if name not in node["inputs"]:
            errors.append({"type": "required_input_missing", "message": "Required input is missing",
                           "details": name, "extra_info": {"input_name": name}})
            continue
        value = node["inputs"][name]
        if isinstance(value, list):  # a link
            continue
        info = {"input_name": name, "input_config": [kind, options], "received_value": value}
        if isinstance(kind, list) and value not in kind:
            errors.append({"type": "value_not_in_list", "message": "Value not in list",
                           "details": f"{name}: '{value}' not in {kind}", "extra_info": info})
        elif kind in ("INT", "FLOAT") and "min" in options and value < options["min"]:
            errors.append({"type": "value_smaller_than_min", "message": f"Value {value} smaller than min of "
                           f"{options['min']}", "details": name, "extra_info": info})
        elif kind in ("INT", "FLOAT") and "max" in options and value > options["max"]:
            errors.append({"type": "value_bigger_than_max", "message": f"Value {value} bigger than max of "
                           f"{options['max']}", "details": name, "extra_info": info})
    return errors


def make_execution_module(mappings: dict[str, type]) -> ModuleType:
    execution = ModuleType("execution")

    async def validate_prompt(prompt_id: str, prompt: dict[str, Any], partial: Any = None) -> tuple[Any, ...]:
        outputs, node_errors = [], {}
        for node_id, node in prompt.items():
            cls = mappings.get(node.get("class_type"))
            if cls is None:
                message = f"Cannot execute because node {node.get('class_type')} does not exist."
                return (False, {"type": "invalid_prompt", "message": message, "details": "", "extra_info": {}},
                        [], {})
            errors = _validate_node(node_id, node, cls)
            if errors:
                node_errors[node_id] = {"errors": errors, "dependent_outputs": [], "class_type": node["class_type"]}
            if getattr(cls, "OUTPUT_NODE", False):
                outputs.append(node_id)
        if not outputs:
            return False, {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "",
                           "extra_info": {}}, [], {}
        if node_errors:
            return (False, {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed "
                            "validation", "details": "", "extra_info": {}}, [], node_errors)
        return True, None, outputs, {}

    execution.validate_prompt = validate_prompt
    return execution


class FakeExecutor:
    """ComfyUI's prompt worker: one thread running queued prompts through the pack's node classes."""

    def __init__(self, server: FakePromptServer, comfy: FakeComfy, mappings: dict[str, type]) -> None:
        self.server, self.comfy, self.mappings = server, comfy, mappings
        self.executed: list[str] = []
        self.before_node: Callable[[str, str], None] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-prompt-worker", daemon=True)

    def start(self) -> FakeExecutor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        queue = self.server.prompt_queue
        while not self._stop.is_set():
            got = queue.get(timeout=0.05)
            if got is None:
                continue
            (_number, prompt_id, prompt, _extra, outputs), item_id = got
            self.server.last_prompt_id = prompt_id
            status = self.execute(prompt_id, prompt, outputs)
            queue.task_done(item_id, {"outputs": {}, "meta": {}}, status)

    def execute(self, prompt_id: str, prompt: dict[str, Any], outputs: list[str]) -> ExecutionStatus:
        self.comfy.interrupted = False  # ComfyUI: nodes.interrupt_processing(False) before every prompt
        messages: list[Any] = [("execution_start", {"prompt_id": prompt_id})]
        results: dict[str, Any] = {}
        try:
            with torch.inference_mode():
                for node_id in outputs:
                    self._run(node_id, prompt, results)
        except InterruptProcessingException:
            messages.append(("execution_interrupted", {"prompt_id": prompt_id, "node_type": self._current_type}))
            return ExecutionStatus("error", False, messages)
        except Exception as exc:
            messages.append(("execution_error", {"prompt_id": prompt_id, "node_type": self._current_type,
                                                 "exception_message": str(exc),
                                                 "exception_type": type(exc).__name__}))
            return ExecutionStatus("error", False, messages)
        self.executed.append(prompt_id)
        messages.append(("execution_success", {"prompt_id": prompt_id}))
        return ExecutionStatus("success", True, messages)

    _current_type = ""

    def _run(self, node_id: str, prompt: dict[str, Any], results: dict[str, Any]) -> Any:
        if node_id in results:
            return results[node_id]
        node = prompt[node_id]
        cls = self.mappings[node["class_type"]]
        kwargs = {}
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                kwargs[name] = self._run(value[0], prompt, results)[value[1]]
            else:
                kwargs[name] = value
        if "UNIQUE_ID" in cls.INPUT_TYPES().get("hidden", {}).values():
            kwargs["unique_id"] = node_id
        self._current_type = node["class_type"]
        if self.before_node is not None:
            self.before_node(node_id, node["class_type"])
        out = getattr(cls(), cls.FUNCTION)(**kwargs)
        if isinstance(out, dict):
            out = out.get("result", ())
        results[node_id] = out
        return out


def install_server(monkeypatch: pytest.MonkeyPatch, mappings: dict[str, type]) -> FakePromptServer:
    """Put ``server`` (with a fresh ``PromptServer.instance``) and ``execution`` into ``sys.modules``."""
    server_module = ModuleType("server")
    server = FakePromptServer()

    class PromptServer:
        instance = server

    server_module.PromptServer = PromptServer
    monkeypatch.setitem(sys.modules, "server", server_module)
    monkeypatch.setitem(sys.modules, "execution", make_execution_module(mappings))
    return server


class AppThread:
    """``server.app`` served on 127.0.0.1 from its own event loop (ComfyUI's aiohttp loop); ``url`` once started."""

    def __init__(self, server: FakePromptServer) -> None:
        self.server = server
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-comfy-aiohttp", daemon=True)

    def start(self) -> AppThread:
        self._thread.start()

        async def setup() -> str:
            self._runner = web.AppRunner(self.server.app, access_log=None, shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            return f"http://127.0.0.1:{self._runner.addresses[0][1]}"

        self.server.loop = self.loop
        self.url = asyncio.run_coroutine_threadsafe(setup(), self.loop).result(30)
        return self

    def stop(self) -> None:
        """Shut the app down (its on_shutdown stops the service), then the loop; a second call does nothing."""
        if not self._thread.is_alive():
            return
        if self._runner is not None:
            runner, self._runner = self._runner, None
            asyncio.run_coroutine_threadsafe(runner.cleanup(), self.loop).result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
