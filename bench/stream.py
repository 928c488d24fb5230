"""Streaming replay for methods that skip frames: frames per second and accuracy, with and without
skipping, measured in the same run.

A method supports streaming when it declares ``frame_skipping``: it then has ``stream(X, groups,
sequences, skip=True)`` (predict frame by frame at batch 1, as a headset would), a
``skip_threshold`` parameter and ``threshold()`` (the threshold in effect, e.g. one chosen during
``fit``), checked when it is registered. The method is trained
and calibrated on a split exactly as in :func:`bench.protocol.run_one`; then each test subject's
frames are replayed in (sequence, frame) order once without skipping and once per threshold.
"""

from __future__ import annotations

import time

import pandas as pd
from sklearn.metrics import accuracy_score

from .errors import BenchError
from .protocol import RunSpec, train_on_split
from .registry import list_methods, method_info

COLUMNS = ["method", "threshold", "skip_rate", "fps", "fps_no_skip", "speedup", "accuracy",
           "accuracy_no_skip"]


def streaming_methods() -> list[str]:
    return [m for m in list_methods() if method_info(m).estimator.frame_skipping]


def check_streaming(method: str) -> None:
    if method not in streaming_methods():
        raise BenchError(f"{method} does not skip frames, so it has nothing to stream; "
                         f"methods that do: {', '.join(streaming_methods()) or 'none'}")


def _replay(est, X, y, groups, sequences, skip: bool) -> tuple[float, float, float]:
    """(frames per second, accuracy, skip rate) of one frame-by-frame pass."""
    start = time.perf_counter()
    labels = est.stream(X, groups, sequences, skip=skip)
    seconds = time.perf_counter() - start
    return len(X) / seconds, float(accuracy_score(y, labels)), float(est.skip_rate_)


def stream_benchmark(spec: RunSpec, thresholds=None, verbose: int = 0) -> pd.DataFrame:
    """Train ``spec.method`` on its split, then replay the test frames; one row per threshold
    (default: the one the method uses), with the no-skip pass measured in the same run."""
    check_streaming(spec.method)
    run = train_on_split(spec, verbose=verbose, score_uncalibrated=False, whole_test=True)
    est = run.estimator
    X, y, groups = run.part("test")
    sequences = run.dataset.sequences[run.split.test]
    warm = min(len(X), 8)
    est.stream(X[:warm], groups[:warm] if groups is not None else None, sequences[:warm])
    fps_plain, acc_plain, _ = _replay(est, X, y, groups, sequences, skip=False)
    rows = []
    for threshold in thresholds or [None]:
        if threshold is not None:
            est.set_params(skip_threshold=threshold)
        fps, acc, skip_rate = _replay(est, X, y, groups, sequences, skip=True)
        rows.append({"method": spec.method, "threshold": est.threshold(), "skip_rate": skip_rate,
                     "fps": fps, "fps_no_skip": fps_plain, "speedup": fps / fps_plain,
                     "accuracy": acc, "accuracy_no_skip": acc_plain})
    return pd.DataFrame(rows, columns=COLUMNS)
