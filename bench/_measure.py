"""Shared by the benchmarks: the machine line, and peak memory of one call (host RSS or CUDA allocator).

Why a sampling thread for host memory: ``VmHWM``/``ru_maxrss`` are lifetime peaks and cannot be reset, so after
the first model is loaded they no longer say anything about one call. A daemon thread reading
``/proc/self/statm`` every ~2 ms sees the call's own peak; short spikes between two samples can be missed, which
is why the benchmarks report it as "peak RSS growth (sampled)". On CUDA the allocator keeps an exact peak that
``torch.cuda.reset_peak_memory_stats`` resets, so that is used instead.
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

_PAGE = resource.getpagesize()


def rss_bytes() -> int:
    """Resident set size of this process now (Linux ``/proc``; 0 where it is not available)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        return 0


def hwm_bytes() -> int:
    """Lifetime peak RSS of this process (``VmHWM``): for one-shot measurements in a fresh interpreter."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return 0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(device: torch.device) -> str:
    """One line naming what the figures were measured on."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parts = [f"CPU {cpu_model()} ({cores} cores usable, torch threads {torch.get_num_threads()})",
             f"torch {torch.__version__}", f"device {device}"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        parts.append(f"GPU {props.name} ({props.total_memory / 2**30:.0f} GiB, CUDA {torch.version.cuda})")
    try:
        import diffusers

        parts.append(f"diffusers {diffusers.__version__}")
    except ImportError:
        pass
    return "machine: " + ", ".join(parts)


class _RssSampler(threading.Thread):
    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = rss_bytes()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return max(self.peak, rss_bytes())


@dataclass
class Measured:
    """One call: wall seconds, CPU seconds of the whole process (all threads), peak memory growth (bytes).

    CPU seconds are the steadier figure on a shared machine: time other processes take from us inflates the
    wall time but not our own CPU time (it still includes our threads spinning while they wait).
    """

    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_bytes: int = 0
    peak_total_bytes: int = 0  # CUDA: the allocator's peak including what was resident before the call


@contextmanager
def measure(device: torch.device, interval: float = 0.002) -> Iterator[Measured]:
    """Time the block and record its peak memory: CUDA allocator peak on GPU, sampled RSS growth on CPU."""
    result = Measured()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        start = time.perf_counter()
        yield result
        torch.cuda.synchronize(device)
        result.seconds = time.perf_counter() - start
        result.peak_total_bytes = torch.cuda.max_memory_allocated(device)
        result.peak_bytes = result.peak_total_bytes - base
        return
    base = rss_bytes()
    sampler = _RssSampler(interval)
    sampler.start()
    start, cpu_start = time.perf_counter(), time.process_time()
    try:
        yield result
    finally:
        result.seconds = time.perf_counter() - start
        result.cpu_seconds = time.process_time() - cpu_start
        result.peak_bytes = sampler.stop() - base


@dataclass
class Series:
    """Repeated measurements of one contender."""

    name: str
    runs: list[Measured] = field(default_factory=list)

    def add(self, device: torch.device, call: Callable[[], Any]) -> Any:
        with measure(device) as m:
            out = call()
        self.runs.append(m)
        return out

    @property
    def min_s(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def median_s(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def min_cpu_s(self) -> float:
        return min(r.cpu_seconds for r in self.runs)

    @property
    def peak_bytes(self) -> int:
        return max(r.peak_bytes for r in self.runs)

    def line(self) -> str:
        cpu = f"cpu min {self.min_cpu_s:8.3f} s   " if any(r.cpu_seconds for r in self.runs) else ""
        return (f"  {self.name:<16} wall min {self.min_s:8.3f} s   median {self.median_s:8.3f} s   {cpu}"
                f"peak +{self.peak_bytes / 2**20:8.1f} MiB")


def ratio_lines(ours: Series, peer: Series, peer_name: str) -> list[str]:
    lines = [f"ratio ours / {peer_name}: wall min {ours.min_s / peer.min_s:.3f}, median "
             f"{ours.median_s / peer.median_s:.3f}"]
    if peer.min_cpu_s:
        lines[0] += f", cpu min {ours.min_cpu_s / peer.min_cpu_s:.3f}"
    lines.append(f"peak memory ours / {peer_name}: {ours.peak_bytes / max(peer.peak_bytes, 1):.2f}x")
    return lines
