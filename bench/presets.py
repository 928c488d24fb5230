"""Training budgets: ``smoke`` (seconds, for tests), ``quick`` (minutes on a laptop CPU) and
``paper`` (the source paper's recipe).

A preset sets estimator hyperparameters, default seeds and how long latency is timed; a registered method may
override any of them per preset (``register(..., presets={"quick": {...}})``), and command-line
flags (``--epochs``, ``--image-size``, ``--seeds``) override both. Every record stores the
parameters actually used.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BenchError


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    params: dict
    seeds: tuple[int, ...] = (0,)
    #: minimum seconds of timed latency measurement per run (more = steadier numbers)
    latency_time: float = 1.0
    #: at most this many evenly spaced frames of each training/validation sequence (None = all)
    train_frames: int | None = None
    #: at most this many evenly spaced frames of each test sequence are scored (None = all)
    test_frames: int | None = None
    #: batch of the throughput measurement in each run record (0: latency only; ``bench
    #: profile`` always measures throughput)
    throughput_batch: int = 32
    #: runs trained at once on a CPU under ``bench run --jobs auto`` (None: one per usable CPU);
    #: 1 where a run needs several GB (paper: 224 px, batch 128) or lasts seconds (smoke: a
    #: worker process takes seconds to start)
    cpu_jobs: int | None = 1
    #: on eye crops made by ``bench prepare eyes``, pre-train on the face set they were cut from
    #: (training subjects only) every network its method declares face pre-training for
    #: (``pretrain_param``: the teachers), unless told otherwise
    pretrain_on_source: bool = False


PRESETS = {
    "smoke": Preset(
        "smoke", "seconds: 2 epochs at 32 px on 4 frames of each training sequence, for tests",
        dict(epochs=2, batch_size=32, image_size=32, optimizer="adamw", lr=2e-3,
             weight_decay=1e-4, scheduler="constant", pretrained=False),
        latency_time=0.05, train_frames=4, test_frames=8, throughput_batch=0,
    ),
    "quick": Preset(
        "quick", "the whole board in minutes on a 2-core CPU: 10 epochs (at least 10 steps "
        "each) of batch 16 at 48 px on 4 frames of each training sequence, AdamW with a cosine "
        "schedule, square-root class balancing, best epoch by validation macro F1",
        dict(epochs=10, batch_size=16, image_size=48, optimizer="adamw", lr=3e-3,
             weight_decay=5e-2, scheduler="cosine", pretrained=False, class_balance="sqrt",
             selection_metric="macro_f1", min_epoch_steps=10),
        latency_time=0.25, train_frames=4, test_frames=12, throughput_batch=0, cpu_jobs=None,
        pretrain_on_source=True,
    ),
    "paper": Preset(
        "paper", "the paper's recipe: 600 epochs at 224 px, SGD momentum 0.8, lr 1e-4, batch "
        "128, ImageNet initialisation, 3 seeds",
        dict(epochs=600, batch_size=128, image_size=224, optimizer="sgd", momentum=0.8, lr=1e-4,
             weight_decay=0.0, scheduler="constant", pretrained=True),
        seeds=(0, 1, 2), latency_time=2.0,
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise BenchError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}") from None


def preset_params(preset: str, method_presets: dict) -> dict:
    """The hyperparameters a method trains with under ``preset``."""
    return {**get_preset(preset).params, **method_presets.get(preset, {})}
