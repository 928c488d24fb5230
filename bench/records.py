"""Run records: their shape (:func:`run_record`, the one place that decides what a record
holds), where they live on disk, what makes two of them comparable (:func:`settings_of`), and the
environment every record carries.

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
from dataclasses import asdict
from datetime import datetime, timezone
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .data import dataset_label
from .device import cpu_model
from .engine import get_engine_options
from .files import atomic_write
from .metrics import classification_metrics, encode_predictions
from .presets import get_preset

if TYPE_CHECKING:
    from .profiling import CostProfile
    from .protocol import TrainedRun

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


#: what every record must hold for a board to use it (and its type)
REQUIRED = {"method": str, "dataset": str, "classes": int, "seed": int, "accuracy": float,
            "macro_f1": float, "macro_precision": float, "macro_recall": float}


def record_problem(record) -> str | None:
    """Why ``record`` (parsed JSON) cannot be a run record, or None when it can: a board must
    never count a file that is not one, nor print a metric that is not a number."""
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not a record"
    for key, kind in REQUIRED.items():
        value = record.get(key)
        number = kind in (int, float) and isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is None:
            return f"no {key!r}"
        if not (isinstance(value, kind) or (kind is float and number)):
            return f"{key!r} is {value!r}, not a {kind.__name__}"
        if kind is float and not np.isfinite(value):
            return f"{key!r} is {value!r}"
    return None


def read_record(path: Path) -> tuple[dict | None, str | None]:
    """(the record in ``path``, None) or (None, why it is not one)."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable ({err})"
    problem = record_problem(record)
    return (None, problem) if problem else (record, None)


def load_records(out) -> list[dict]:
    """Every valid record under ``<out>/runs``; any other file is skipped with a warning that names it."""
    records = []
    for path in sorted((Path(out) / "runs").glob("*.json")):
        record, problem = read_record(path)
        if problem:
            warnings.warn(f"skipping {path}: not a run record: {problem}", stacklevel=2)
        else:
            records.append(record)
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
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


# -- what a record holds ----------------------------------------------------------------------

def run_record(run: TrainedRun, y_true, y_pred, cost: CostProfile, *, predict_s: float,
               nhwc: bool, display_name: str, groups=None) -> dict:
    """The record of a scored run (JSON-able): what was measured (metrics on the test images,
    how many classes it predicted, validation scores at the chosen epoch, cost), what the method
    reported (calibration, teacher, design point), how it was trained, on which data, and where."""
    spec, est, dataset, split = run.spec, run.estimator, run.dataset, run.split
    params = run.params or est.get_params()
    best = est.history_[est.best_epoch_ - 1] if est.history_ else {}
    design = est.design_point()
    kind = type(est).calibration
    preset = get_preset(spec.preset)
    train_counts = dict(zip(*np.unique(run.train_labels, return_counts=True)))
    record = {
        "method": spec.method,
        "display_name": display_name,
        "dataset": spec.dataset,
        "board": dataset_label(spec.dataset, spec.root),
        "classes": spec.classes,
        "class_names": list(dataset.class_names),
        "seed": spec.seed,
        "preset": spec.preset,
        **classification_metrics(y_true, y_pred, dataset.class_names),
        "n_predicted_classes": len(set(np.asarray(y_pred).tolist())),
        "predictions": encode_predictions(y_true, y_pred, groups, dataset.class_names),
        "val_accuracy": best.get("val_accuracy"),
        "val_macro_f1": best.get("val_macro_f1"),
        "params_m": cost.params_m,
        "mflops": cost.mflops,
        **latency_fields(cost),
        "calibration": kind is not None,
        "calibration_kind": kind,
        "calibration_images": run.calibration_images,
        "uncalibrated": run.uncalibrated,
        "method_report": getattr(est, "report_", None),
        "train_s": run.train_s,
        "predict_s": predict_s,
        "teacher": getattr(est, "teacher_", None),
        "pretrain": getattr(est, "pretrain_", None),  # its own network's face pre-training
        "reused_fit": run.reused_fit,
        "reused_teacher_fit": run.reused_fit,  # the former name of reused_fit
        "epochs": params["epochs"],
        "planned_epochs": getattr(est, "planned_epochs_", est.n_epochs_),
        "epochs_run": est.n_epochs_,
        "stopped_early": bool(getattr(est, "stopped_early_", False)),
        "best_epoch": est.best_epoch_,
        "image_size": params["image_size"],
        "design_point": None if design is None else {
            "min_size": design.min_size, "reason": design.reason,
            "below": params["image_size"] < design.min_size},
        "pretrained": bool(params.get("pretrained")),
        "train_frames": preset.train_frames,
        "test_frames": preset.test_frames,
        "label_noise": spec.label_noise,
        "missing_classes": run.missing_classes,
        "noisy_labels": int((run.train_labels != dataset.label_names[split.train]).sum()),
        "train_class_counts": {str(c): int(train_counts.get(c, 0)) for c in dataset.class_names},
        "n_train": len(split.train),
        "n_train_available": run.train_available,
        "n_val": len(split.val),
        "n_test": len(split.test),
        "n_calibration": len(split.calibration),
        "subjects": {p: split.subjects(dataset, p) for p in ("train", "val", "test")},
        "data": {"root": dataset.root, "images": len(dataset), "dropped": dataset.dropped,
                 "skipped": len(dataset.skipped), "image_shape": list(dataset.images.shape[1:]),
                 "options": spec.dataset_options},
        "cost": cost.as_dict(),
        "params": params,
        "spec": asdict(spec),
        "history": est.history_,
        "engine": {**get_engine_options().as_dict(), "channels_last": nhwc},
        "environment": environment(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return jsonable(record)


def latency_fields(cost: CostProfile) -> dict:
    """The latency part of a record (empty until it is timed). ``latency_timed_at`` (UTC, to the
    minute) lets a board say when its latencies come from separate timing passes: a shared
    machine's speed changes from day to day, so only figures timed together compare well."""
    timed = cost.latency_ms is not None
    return {"latency_ms": cost.latency_ms, "latency_iqr_ms": cost.latency_iqr_ms,
            "latency_device": cost.latency_device, "latency_processor": cost.latency_processor,
            "throughput": cost.throughput,
            "latency_blocks": cost.latency_blocks, "latency_stable": cost.latency_stable,
            "latency_cpu_share": cost.latency_cpu_share,
            "latency_others_busy": cost.latency_others_busy,
            "latency_timed_at": datetime.now(timezone.utc).isoformat(timespec="minutes")
            if timed else None}


def latency_where(record: dict) -> str | None:
    """Where a record's latency was timed: its device, and for a CPU timing the processor model
    (``cpu (2 threads, AMD EPYC)``), since milliseconds from two processors do not compare.
    A record from before ``latency_processor`` was kept names the processor it was trained on,
    which is where ``bench run`` timed it."""
    device = record.get("latency_device")
    if not device or not device.startswith("cpu"):
        return device
    device = device.replace("(1 threads)", "(1 thread)")  # as records before 2026-12 spelled it
    processor = record.get("latency_processor") or (record.get("environment") or {}).get("cpu")
    if not processor:
        return device
    return f"{device[:-1]}, {processor})" if device.endswith(")") else f"{device} ({processor})"


def settings_of(record: dict) -> dict:
    """What must match for two records to be comparable (everything but the seed and timings)."""
    spec = dict(record.get("spec", {}))
    spec.pop("seed", None)
    spec.pop("strict", None)  # how unreadable files are handled, not what was measured
    params = dict(record.get("params", {}))
    for key in ("random_state", "verbose", "device", "classes"):
        params.pop(key, None)
    return {"spec": spec, "params": params}


def settings_diff(old: dict, new: dict, limit: int = 4) -> str:
    """The settings (:func:`settings_of`) that differ, as ``"params.epochs 10 -> 2, ..."``."""
    def flat(d, prefix=""):
        out = {}
        for key, value in d.items():
            if isinstance(value, dict) and value:
                out.update(flat(value, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = value
        return out
    a, b = flat(old), flat(new)
    changes = [f"{k} {a.get(k, '(unset)')!r} -> {b.get(k, '(unset)')!r}"
               for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    more = f" and {len(changes) - limit} more" if len(changes) > limit else ""
    return ", ".join(changes[:limit]) + more


def jsonable(value):
    """``value`` with numpy scalars and arrays, tuples and other objects made JSON-able."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)
