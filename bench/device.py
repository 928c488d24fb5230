"""Device selection: ``auto`` picks CUDA when present, else the CPU."""

from __future__ import annotations

import contextlib
import os
import platform
from functools import lru_cache
from pathlib import Path

import torch

from .errors import BenchError

DEVICES = ("auto", "cpu", "cuda")


def check_device_name(device: str | None) -> None:
    """Refuse a device name that is not one (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``),
    without asking whether this machine has it: the runs of ``--scheduler`` resolve it on
    their workers, which the caller may not resemble (a laptop sending runs to GPU nodes)."""
    name = (device or "auto").lower()
    if name == "auto":
        return
    try:
        torch.device(name)
    except RuntimeError:
        raise BenchError(f"unknown device {device!r}; use one of {', '.join(DEVICES)} "
                         "(or cuda:N)") from None


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` into a usable :class:`torch.device`."""
    if isinstance(device, torch.device):
        return device
    name = (device or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_device_name(name)
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise BenchError(f"device {device!r} was asked for, but CUDA is not available here; "
                         "use --device cpu or auto")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise BenchError(f"device {device!r} does not exist; this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise BenchError("device 'mps' was asked for, but MPS is not available here")
    return dev


def usable_cpus() -> int:
    """CPUs this process may run on (affinity and container limits), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> int:
    """Set PyTorch's intra-op threads to ``threads`` (default: the usable CPUs) and return it."""
    threads = threads or usable_cpus()
    torch.set_num_threads(threads)
    return threads


def device_name(device: torch.device) -> str:
    """A human-readable name: the GPU model on CUDA, else the device type."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


@lru_cache(maxsize=1)
def cpu_model() -> str | None:
    """The processor's model name (CPU kernels, and so the last bits of results, depend on it)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or None
