"""Streaming replay for methods that skip frames: accuracy, macro F1, frames per second and
FLOP-counted speed-up, with and without skipping, measured in the same run.

A method supports streaming when it declares ``frame_skipping``: it then has ``stream(X, groups,
sequences, skip=True)`` (predict frame by frame at batch 1, as a headset would, setting
``skip_rate_``), a ``skip_threshold`` parameter, ``threshold()`` (the threshold in effect, e.g.
one chosen during ``fit`` on the validation subjects) and ``skip_costs()``, the MFLOPs per frame
of the network a skipped frame saves (``B``) and of what decides to skip (``E``, run on every
frame while skipping), all checked when it is registered. The method is trained and calibrated on
a split as in :func:`bench.protocol.run_one`, but with every test frame
(``whole_test``); then each test subject's frames are replayed in (sequence, frame) order once
without skipping and once per threshold: the sweep (``thresholds``, default :data:`SWEEP`) and
the method's own threshold (the row marked ``chosen``).

``flops_speedup`` is counted, not timed: of ``N`` frames of which the backbone ran on ``calls =
(1 - skip_rate) N``, it is ``N B / (calls B + N E)`` (``E`` counted only while skipping is on).
``speedup`` is the wall-clock ratio of frames per second, which depends on the machine and on
what else runs on it, so each row says what it is worth: at the chosen threshold it is the median
of ``rounds`` (default 3) ratios, each of a no-skip pass and a skipping pass run back to back (so
a change in the machine's speed hits both), with their spread (``speedup_spread``, (max - min) /
median); a sweep row is one pass (``speedup_rounds`` 1). ``cpu_share`` is the least share of its
threads' CPU time this process got during the row's passes (on a CPU): below
:data:`BUSY_SHARE`, other processes took the cores and the timing is worth little.

A method whose ``report_`` has ``val_accuracy_cost`` (what skipping cost on the validation
subjects when its threshold was chosen) gets it in its chosen row.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from .errors import BenchError
from .metrics import classification_metrics
from .protocol import RunSpec, train_on_split
from .registry import list_methods, method_info

COLUMNS = ["method", "seed", "threshold", "chosen", "skip_rate", "accuracy", "accuracy_no_skip",
           "macro_f1", "macro_f1_no_skip", "fps", "fps_no_skip", "speedup", "flops_speedup",
           "val_accuracy_cost", "speedup_rounds", "speedup_spread", "cpu_share"]
#: a timed pass during which this process got less of its threads' CPU time than this shared the
#: machine with other work
BUSY_SHARE = 0.9
#: a wall-clock speed-up whose rounds spread more than this (of their median) is approximate
MAX_SPREAD = 0.10
#: a table row is replaced only by a measurement of the same method and seed (a run's sweep
#: replaces that seed's whole curve; other seeds and methods are kept)
KEYS = ["method", "seed"]
#: thresholds replayed when none are given
SWEEP = (0.50, 0.60, 0.70, 0.80, 0.85, 0.90, 0.93, 0.95, 0.97, 0.99)


def streaming_methods() -> list[str]:
    return [m for m in list_methods() if method_info(m).estimator.frame_skipping]


def check_streaming(method: str) -> None:
    if method not in streaming_methods():
        raise BenchError(f"{method} does not skip frames, so it has nothing to stream; "
                         f"methods that do: {', '.join(streaming_methods()) or 'none'}")


def flops_speedup(skip_rate: float, backbone: float, encoder: float, skipping: bool = True) -> float:
    """``N B / (calls B + N E)`` with ``calls = (1 - skip_rate) N``: the FLOP-counted speed-up
    of skipping, the encoder's cost included while ``skipping``."""
    return backbone / ((1 - skip_rate) * backbone + (encoder if skipping else 0.0))


def _replay(est, X, y, groups, sequences, classes, skip: bool) -> dict:
    """Frames per second, accuracy, macro F1 and skip rate of one frame-by-frame pass, and the
    share of its threads' CPU time this process got meanwhile (``None`` off the CPU)."""
    start, cpu = time.perf_counter(), time.process_time()
    labels = est.stream(X, groups, sequences, skip=skip)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    scores = classification_metrics(y, labels, classes)
    share = min(1.0, cpu / (seconds * torch.get_num_threads())) \
        if str(getattr(est, "device_", "cpu")) == "cpu" and seconds > 0 else None
    return {"fps": len(X) / seconds, "accuracy": scores["accuracy"],
            "macro_f1": scores["macro_f1"], "skip_rate": float(est.skip_rate_),
            "cpu_share": share}


def _least(*shares) -> float | None:
    known = [s for s in shares if s is not None]
    return min(known) if known else None


def stream_benchmark(spec: RunSpec, thresholds=None, verbose: int = 0,
                     rounds: int = 3) -> pd.DataFrame:
    """Train ``spec.method`` on its split, then replay the test frames; one row per threshold of
    the sweep (``thresholds``, default :data:`SWEEP`) and one for the method's own threshold
    (``chosen``; the same row when the sweep holds it), with the no-skip pass measured in the
    same run: once for the sweep, and beside each of the chosen threshold's ``rounds``."""
    if rounds < 1:
        raise BenchError(f"rounds must be at least 1, not {rounds}")
    check_streaming(spec.method)
    run = train_on_split(spec, verbose=verbose, score_uncalibrated=False, whole_test=True)
    est = run.estimator
    X, y, groups = run.part("test")
    sequences = run.dataset.sequences[run.split.test] if run.dataset.sequences is not None \
        else None
    classes = run.dataset.class_names
    own_param, own = est.get_params()["skip_threshold"], est.threshold()
    backbone, encoder = est.skip_costs()
    val_cost = (getattr(est, "report_", None) or {}).get("val_accuracy_cost")
    warm = min(len(X), 8)
    est.stream(X[:warm], groups[:warm] if groups is not None else None,
               sequences[:warm] if sequences is not None else None)
    plain = _replay(est, X, y, groups, sequences, classes, skip=False)
    sweep = [float(t) for t in (SWEEP if thresholds is None else thresholds)]
    chosen_in_sweep = own is not None and any(np.isclose(t, own) for t in sweep)
    replays = [(t, chosen_in_sweep and bool(np.isclose(t, own))) for t in sweep]
    if not chosen_in_sweep:
        replays.append((own, True))
    rows = []
    for threshold, chosen in sorted(replays, key=lambda r: (r[0] is None, r[0] or 0.0)):
        est.set_params(skip_threshold=own_param if chosen else threshold)
        scores = _replay(est, X, y, groups, sequences, classes, skip=True)
        timed = [(plain, scores)]
        for _ in range(rounds - 1 if chosen else 0):  # the headline figure: rounds side by side
            timed.append((_replay(est, X, y, groups, sequences, classes, skip=False),
                          _replay(est, X, y, groups, sequences, classes, skip=True)))
        ratios = np.array([s["fps"] / p["fps"] for p, s in timed])
        skipping = est.threshold() is not None and sequences is not None
        rows.append({"method": spec.method, "seed": spec.seed, "threshold": est.threshold(),
                     "chosen": chosen, "skip_rate": scores["skip_rate"],
                     "accuracy": scores["accuracy"], "accuracy_no_skip": plain["accuracy"],
                     "macro_f1": scores["macro_f1"], "macro_f1_no_skip": plain["macro_f1"],
                     "fps": float(np.median([s["fps"] for _, s in timed])),
                     "fps_no_skip": float(np.median([p["fps"] for p, _ in timed])),
                     "speedup": float(np.median(ratios)),
                     "flops_speedup": flops_speedup(scores["skip_rate"], backbone, encoder,
                                                    skipping),
                     "val_accuracy_cost": val_cost if chosen else None,
                     "speedup_rounds": len(timed),
                     "speedup_spread": float(np.ptp(ratios) / np.median(ratios))
                     if len(timed) > 1 else None,
                     "cpu_share": _least(*(r["cpu_share"] for pair in timed for r in pair))})
    est.set_params(skip_threshold=own_param)
    return pd.DataFrame(rows, columns=COLUMNS)


def timing_quality(table: pd.DataFrame) -> list[str]:
    """Sentences on what ``table``'s wall-clock speed-ups are worth: how the chosen rows were
    timed, and each (method, seed) whose rounds spread widely or whose passes shared the CPU."""
    chosen = table[table["chosen"].astype(bool)]
    rounds = sorted({int(r) for r in chosen["speedup_rounds"].dropna()})
    lines = []
    if rounds:
        lines.append(f"speedup at the chosen threshold: the median of {'/'.join(map(str, rounds))}"
                     " round(s), each a no-skip and a skipping pass back to back; a sweep row's "
                     "speedup is one pass, approximate")
    for _, row in chosen.iterrows():
        spread, share = row.get("speedup_spread"), row.get("cpu_share")
        problems = []
        if pd.notna(spread) and spread > MAX_SPREAD:
            problems.append(f"its rounds spread {spread:.0%}")
        if pd.notna(share) and share < BUSY_SHARE:
            problems.append(f"this process got {share:.0%} of its CPU time (the machine was busy)")
        if problems:
            lines.append(f"{row['method']} seed {row['seed']}: {' and '.join(problems)}; its "
                         "wall-clock speedup is approximate, rerun on an idle machine")
    return lines


def stream_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The chosen rows of ``table``, one per (method, seed), then each method's mean over seeds
    (``seed`` "mean", no threshold since each seed chose its own): accuracy with and without
    skipping, its cost in points, and the wall-clock and FLOP-counted speed-ups."""
    chosen = table[table["chosen"].astype(bool)]
    rows = chosen[["method", "seed", "threshold", "skip_rate", "accuracy", "accuracy_no_skip",
                   "speedup", "flops_speedup"]].copy()
    rows["cost_points"] = 100 * (rows["accuracy_no_skip"] - rows["accuracy"])
    rows["seed"] = rows["seed"].astype(object)
    rows["threshold"] = ["none (no skipping)" if pd.isna(t) else f"{t:.3f}"
                         for t in rows["threshold"]]
    means = []
    for method, mine in rows.groupby("method", sort=False):
        if len(mine) > 1:
            means.append({"method": method, "seed": "mean", "threshold": "",
                          **mine.drop(columns=["method", "seed", "threshold"]).mean()})
    return pd.concat([rows, pd.DataFrame(means)], ignore_index=True) if means else \
        rows.reset_index(drop=True)
