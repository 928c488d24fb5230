"""Epoch checkpoints, so that a killed run continues where it stopped instead of starting over.

Inside ``with checkpointing(folder, every=S):`` every :func:`bench.engine.train` call saves its
state at the end of an epoch once ``S`` seconds have passed since its last save (``S=0``: after
every epoch), so at most about ``S`` seconds of training are lost, while short trainings (a quick-
preset ResNet-50 epoch takes seconds, its checkpoint with optimiser state and best weights 377 MB)
do not spend their time writing checkpoints. A save (weights, optimiser, schedule, loss scaler,
random generators, history and best epoch so far) goes to ``folder/<key>.pt``, atomically, and
training resumes from that file when it finds one. The key is a hash of everything the training
depends on (network class and initial weights, training images and targets, the engine settings),
so a checkpoint is only ever resumed by the very same training: a teacher, a student and an encoder
of one run each get their own, and changed data or settings start afresh. ``bench run`` checkpoints
each run in ``<out>/checkpoints/<run>/`` and deletes the folder once the run's record is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write

_FOLDER: Path | None = None
_EVERY = 0.0


@contextlib.contextmanager
def checkpointing(folder, every: float = 0.0):
    """Checkpoint every training inside the block in ``folder`` (``None``: no checkpoints), at
    most once per ``every`` seconds of training."""
    global _FOLDER, _EVERY
    if every < 0:
        raise ValueError(f"every must be >= 0 seconds, got {every}")
    previous = _FOLDER, _EVERY
    _FOLDER, _EVERY = None if folder is None else Path(folder), float(every)
    try:
        yield _FOLDER
    finally:
        _FOLDER, _EVERY = previous


def checkpoint_due(seconds_since_save: float) -> bool:
    """Whether a training that last saved ``seconds_since_save`` ago saves now."""
    return _FOLDER is not None and seconds_since_save >= _EVERY


def checkpoint_path(network: torch.nn.Module, X: np.ndarray, targets: torch.Tensor,
                    cfg) -> Path | None:
    """Where this training's checkpoint lives, or ``None`` outside :func:`checkpointing`."""
    if _FOLDER is None:
        return None
    digest = hashlib.sha256()
    digest.update(type(network).__qualname__.encode())
    for name, tensor in network.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(np.ascontiguousarray(X).tobytes())
    digest.update(targets.detach().cpu().contiguous().numpy().tobytes())
    settings = {k: v for k, v in asdict(cfg).items() if k not in ("verbose", "desc")}
    digest.update(repr(sorted(settings.items())).encode())
    return _FOLDER / f"{digest.hexdigest()[:24]}.pt"


#: what a checkpoint holds; a file without all of it resumes nothing
STATE_KEYS = ("epoch", "network", "optimizer", "scheduler", "scaler", "generator", "torch_rng",
              "history", "best", "best_state", "best_epoch")


def save_checkpoint(path: Path, state: dict) -> bool:
    """Save ``state``; False (with a warning) when it cannot be written, e.g. on a full disk: the
    training goes on without checkpoints rather than losing the epochs it has done."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    try:
        atomic_write(path, buffer.getvalue())
    except OSError as err:
        warnings.warn(f"could not write the checkpoint {path} ({err.strerror or err}); this "
                      "training goes on without checkpoints", stacklevel=2)
        return False
    return True


def load_checkpoint(path: Path | None) -> dict | None:
    """The saved state, or ``None`` when there is none or it cannot be used (unreadable, or not a
    whole checkpoint): a damaged checkpoint means "start this training afresh", with a warning."""
    if path is None or not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any damage: start afresh
        problem = f"it cannot be read ({type(err).__name__})"
    else:
        missing = [k for k in STATE_KEYS if k not in state] if isinstance(state, dict) else STATE_KEYS
        if not missing:
            return state
        problem = f"it lacks {', '.join(missing)}"
    warnings.warn(f"ignoring the checkpoint {path}: {problem}; this training starts afresh",
                  stacklevel=2)
    return None
