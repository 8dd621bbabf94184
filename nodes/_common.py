"""What every node family shares: ComfyUI hooks that become no-ops outside ComfyUI, and error translation.

ComfyUI modules are imported inside functions only, so the pack (and pytest) imports without ComfyUI. Outside
ComfyUI progress is silent, interrupts never fire and progress text goes nowhere; inside, they use
``comfy.utils.ProgressBar`` (which also raises on Cancel), ``comfy.model_management``'s interrupt flag and
``PromptServer.send_progress_text``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..pipeline.errors import AuraFlowError, CancelledError

log = logging.getLogger("ComfyUI-AuraFlow")

CATEGORY_ROOT = "AuraFlow"
SEED_MAX = 0xFFFF_FFFF_FFFF_FFFF
# The custom types our local nodes pass between themselves (an AuraFlow model and its prompt encodings). ComfyUI
# only lets an output connect to an input of the same type name, so these never reach a core node by mistake.
MODEL_TYPE = "AURAFLOW_MODEL"
CONDITIONING_TYPE = "AURAFLOW_CONDITIONING"


def _comfy_model_management() -> Any | None:
    try:
        import comfy.model_management as mm
    except ImportError:
        return None
    return mm


def interrupt_requested() -> bool:
    """True when the user pressed Cancel / Interrupt in ComfyUI (never outside ComfyUI)."""
    mm = _comfy_model_management()
    return bool(mm is not None and mm.processing_interrupted())


def raise_if_interrupted() -> None:
    """Raise ComfyUI's own interrupt exception (which also clears the flag) when the user pressed Cancel."""
    mm = _comfy_model_management()
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


def comfy_device() -> Any | None:
    """ComfyUI's compute device (it honours --cpu and the chosen GPU); None outside ComfyUI (the core picks)."""
    mm = _comfy_model_management()
    return None if mm is None else mm.get_torch_device()


def low_vram() -> bool:
    """True when ComfyUI runs with --lowvram / --novram (or chose that mode itself for a small GPU)."""
    mm = _comfy_model_management()
    if mm is None:
        return False
    state, states = getattr(mm, "vram_state", None), getattr(mm, "VRAMState", None)
    if state is None or states is None:
        return False
    return state in (getattr(states, "LOW_VRAM", None), getattr(states, "NO_VRAM", None))


def free_comfy_memory(required_bytes: int, device: Any | None, *, everything: bool = False) -> None:
    """Ask ComfyUI to unload its own models so ours fit; nothing outside ComfyUI.

    Our modules are not ComfyUI ``ModelPatcher``s, so ComfyUI cannot evict them itself: we make room before we
    load or sample instead. ``everything`` unloads all of ComfyUI's models (before loading a checkpoint of many
    GB); otherwise ``required_bytes`` are freed on ``device``. Failures are logged, never raised: a memory
    hint must not stop a generation that might fit anyway.
    """
    mm = _comfy_model_management()
    if mm is None:
        return
    try:
        if everything:
            mm.unload_all_models()
        elif device is not None:
            mm.free_memory(int(required_bytes), device)
        mm.soft_empty_cache()
    except Exception:  # ComfyUI's memory API changes between versions; never fatal
        log.warning("could not free ComfyUI memory", exc_info=True)


# Per-node listeners for what a running node reports ("step 3/20", the expanded prompt). The fal API mount
# (``comfy_backend``) builds the prompts it queues with node ids of its own and listens on them, so a request's
# progress reaches its fal status logs without hooking ComfyUI's global progress handler or its websocket. Nodes
# call :func:`report` from ComfyUI's prompt worker thread; listeners must be quick and thread-safe.
_listeners: dict[str, Callable[[str], None]] = {}
_listeners_lock = threading.Lock()


@contextlib.contextmanager
def listen_node(node_id: str, callback: Callable[[str], None]) -> Iterator[None]:
    """Send what the node with this id reports to ``callback`` while the block runs."""
    with _listeners_lock:
        _listeners[str(node_id)] = callback
    try:
        yield
    finally:
        with _listeners_lock:
            if _listeners.get(str(node_id)) is callback:
                del _listeners[str(node_id)]


def report(node_id: str | None, message: str) -> None:
    """Tell whoever listens on ``node_id`` (usually nobody); a failing listener never fails the node."""
    if node_id is None:
        return
    with _listeners_lock:
        callback = _listeners.get(str(node_id))
    if callback is None:
        return
    try:
        callback(message)
    except Exception:
        log.warning("a progress listener for node %s failed", node_id, exc_info=True)


class Progress:
    """A step counter for the node that is running: ComfyUI's progress bar inside ComfyUI, nothing outside.

    ``preview`` is an optional ``("JPEG", PIL.Image, max_size)`` tuple, as ComfyUI's latent previews send.
    ComfyUI's ``update_absolute`` checks the interrupt flag and raises, so advancing also makes Cancel work.
    """

    def __init__(self, total: int, node_id: str | None = None) -> None:
        self.total = max(int(total), 1)
        self.node_id = node_id
        self._bar: Any | None = None
        try:
            import comfy.utils
        except ImportError:
            return
        self._bar = comfy.utils.ProgressBar(self.total, node_id=node_id) if node_id else comfy.utils.ProgressBar(
            self.total
        )

    def update(self, value: int, preview: tuple[str, Any, int] | None = None) -> None:
        report(self.node_id, f"step {value}/{self.total}")  # the same log line as the standalone server's
        if self._bar is not None:
            self._bar.update_absolute(value, self.total, preview)


def send_progress_text(text: str, node_id: str | None) -> None:
    """Show a line of text on the running node (queue position, logs); silently nothing outside ComfyUI."""
    if node_id is None:
        return
    try:
        from server import PromptServer
    except ImportError:
        return
    instance = getattr(PromptServer, "instance", None)
    if instance is not None and hasattr(instance, "send_progress_text"):
        instance.send_progress_text(text, node_id)


class AuraFlowNodeError(RuntimeError):
    """What a node raises for a known failure: ComfyUI shows its message (and the node) to the user.

    The message is the core error's, which already says what was wrong and what is allowed; the traceback
    from deep inside torch is not what the user needs, so it is cut off (``from None``) and logged at debug.
    """


@contextlib.contextmanager
def node_errors(node_name: str, hints: Mapping[type[AuraFlowError], str] | None = None) -> Iterator[None]:
    """Turn core errors into one readable ComfyUI error and a user's cancel into ComfyUI's interrupt.

    ``hints`` adds node-level advice to errors of a given class (the first matching class wins): the core's
    message says what was wrong in its own terms (arguments, paths); the node knows which widget or folder
    fixes it.
    """
    try:
        yield
    except CancelledError:
        mm = _comfy_model_management()
        if mm is not None:
            # clears ComfyUI's interrupt flag when it was the reason, so the next prompt does not stop at once
            mm.throw_exception_if_processing_interrupted()
            raise mm.InterruptProcessingException() from None
        raise
    except AuraFlowError as exc:
        log.debug("%s failed", node_name, exc_info=True)
        hint = next((text for cls, text in (hints or {}).items() if isinstance(exc, cls)), None)
        raise AuraFlowNodeError(f"{node_name}: {exc}" + (f" {hint}" if hint else "")) from None
