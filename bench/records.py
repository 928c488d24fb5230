"""Run records on disk, and the environment every record carries.

A record is one JSON file per (dataset, classes, method, seed) under ``<out>/runs/``. Files are
written atomically (a temporary file in the same folder, then a rename), so an interrupted run
never leaves a half-written record or table behind.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import warnings
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from .files import atomic_write

PACKAGES = ("torch", "torchvision", "scikit-learn", "fvcore", "numpy", "pandas", "opencv-python-headless",
            "distributed")


def board_name(dataset: str, classes: int, label_noise: float = 0.0) -> str:
    """``<dataset>-<classes>``, with ``-noise<percent>`` for runs on noisy training labels;
    ``dataset`` is the board's label (:func:`bench.data.dataset_label`)."""
    noise = f"-noise{round(label_noise * 100):g}" if label_noise else ""
    return f"{dataset}-{classes}{noise}"


def run_path(out, dataset: str, classes: int, method: str, seed: int,
             label_noise: float = 0.0) -> Path:
    """Where one run's record lives: ``<out>/runs/<board>-<method>-seed<k>.json``."""
    return Path(out) / "runs" / f"{board_name(dataset, classes, label_noise)}-{method}-seed{seed}.json"


def write_record(out, record: dict) -> Path:
    path = run_path(out, record.get("board") or record["dataset"], record["classes"],
                    record["method"], record["seed"],
                    record.get("label_noise", 0.0))
    return atomic_write(path, json.dumps(record, indent=1) + "\n")


def load_records(out) -> list[dict]:
    """Every readable record under ``<out>/runs``; unreadable files are skipped with a warning."""
    records = []
    for path in sorted((Path(out) / "runs").glob("*.json")):
        try:
            records.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as err:
            warnings.warn(f"skipping unreadable run record {path}: {err}", stacklevel=2)
    return records


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the suite's checkout (with ``+dirty`` for local changes), if it is one."""
    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def environment() -> dict:
    """Versions, commit and host, stored in every record."""
    from . import __version__

    return {
        "bench": __version__,
        "python": platform.python_version(),
        **{name: _version(name) for name in PACKAGES},
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
