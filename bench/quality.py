"""Whether a board row is the method it names: the checks a leaderboard prints beside its rows.

A number on a board is only a result if the model behind it did what the method describes. From
the run records alone (nothing is retrained), each row is checked for:

* **collapse**: in some seed the model predicted fewer than half of the classes, or its mean macro
  F1 is within :data:`COLLAPSE_MARGIN` of the majority-class predictor of the same splits (the
  board prints that predictor as a reference row);
* **a weak teacher**: a row that learned from a teacher whose validation score (the metric the
  runs chose their epochs by) is below that of the best row of the same split trained on hard
  labels (the teacher's own row excepted): the student was taught by a model worse than a student;
* **design points**: the run's input was below the smallest the method declares it is still
  itself at (:class:`bench.estimator.DesignPoint`);
* **latency timed apart**: another row runs the very same network (parameters, MFLOPs, input,
  dtype, memory format and device) and its latency differs by more than
  :data:`LATENCY_MISMATCH`: the two were timed under different conditions (other runs, another
  day of a shared machine), so the latency column cannot rank them.

Each finding is a footnote text; rows carry their footnotes' numbers.
"""

from __future__ import annotations

import math

import numpy as np

from .metrics import classification_metrics
from .records import latency_where

#: a row whose mean macro F1 is at most this much above the majority-class predictor's is flagged
COLLAPSE_MARGIN = 0.02
MAJORITY = "majority-class"
#: identical networks on one device whose board latencies differ by more than this share of the
#: smaller were not timed under the same conditions
LATENCY_MISMATCH = 0.10


def majority_scores(record: dict) -> dict | None:
    """Accuracy and macro F1 of predicting the training split's most frequent class for every
    test image of ``record``'s split (from its class counts and confusion matrix), or ``None``
    for a record without training class counts."""
    counts, names = record.get("train_class_counts"), record.get("class_names")
    if not counts or not names or not record.get("confusion_matrix"):
        return None
    majority = max(names, key=lambda c: counts.get(c, 0))  # ties: first in class order
    per_class = np.asarray(record["confusion_matrix"]).sum(axis=1)
    y_true = np.repeat(np.asarray(names, dtype=object), per_class)
    scores = classification_metrics(y_true, np.full(len(y_true), majority, dtype=object), names)
    return {"class": majority, "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def majority_reference(records: list[dict]) -> dict | None:
    """The majority-class predictor averaged over the seeds of ``records`` (one split per seed)."""
    per_seed = {}
    for r in records:
        if r["seed"] not in per_seed and (scores := majority_scores(r)) is not None:
            per_seed[r["seed"]] = scores
    if not per_seed:
        return None
    rows = list(per_seed.values())
    return {"seeds": sorted(per_seed), "per_seed": per_seed,
            "accuracy": float(np.mean([s["accuracy"] for s in rows])),
            "accuracy_std": float(np.std([s["accuracy"] for s in rows], ddof=1)) if len(rows) > 1
            else math.nan,
            "macro_f1": float(np.mean([s["macro_f1"] for s in rows])),
            "classes": sorted({s["class"] for s in rows})}


def _collapse_notes(mine: list[dict], reference: dict | None) -> list[str]:
    notes = []
    n_classes = len(mine[0]["class_names"])
    few = [(r["seed"], r["n_predicted_classes"]) for r in mine
           if r.get("n_predicted_classes") is not None and r["n_predicted_classes"] < n_classes / 2]
    if few:
        shown = ", ".join(f"seed {s}: {n}" for s, n in sorted(few))
        notes.append(f"collapsed: predicted fewer than half of the {n_classes} classes on the "
                     f"test set ({shown})")
    if reference is not None:
        seeds = [r["seed"] for r in mine if r["seed"] in reference["per_seed"]]
        if seeds:
            ref_f1 = np.mean([reference["per_seed"][s]["macro_f1"] for s in seeds])
            f1 = np.mean([r["macro_f1"] for r in mine if r["seed"] in seeds])
            if f1 <= ref_f1 + COLLAPSE_MARGIN:
                notes.append(f"collapsed: macro F1 {f1:.3f} is within {COLLAPSE_MARGIN} of the "
                             f"majority-class predictor's {ref_f1:.3f}")
    return notes


def selection_key(record: dict) -> str:
    """The validation score a run chose its epoch by (``val_macro_f1`` or ``val_accuracy``):
    what teacher and students are compared on. On an imbalanced validation split accuracy
    rewards predicting the majority, which a run selected by macro F1 does not try to do."""
    metric = (record.get("params") or {}).get("selection_metric", "accuracy")
    return "val_macro_f1" if metric == "macro_f1" else "val_accuracy"


def best_hard_label_peer(record: dict, records: list[dict], key: str) -> dict | None:
    """The best row of ``record``'s split trained on hard labels (no teacher), by ``key``, the
    teacher's own row excepted."""
    teacher = (record.get("teacher") or {}).get("method")
    peers = [p for p in records if p["seed"] == record["seed"] and not p.get("teacher")
             and p["method"] != teacher and p.get(key) is not None]
    return max(peers, key=lambda p: p[key], default=None)


def _teacher_notes(mine: list[dict], records: list[dict]) -> list[str]:
    weak, metric = [], None
    for r in mine:
        teacher, key = r.get("teacher") or {}, selection_key(r)
        if teacher.get(key) is None:
            continue
        best = best_hard_label_peer(r, records, key)
        if best is not None and teacher[key] < best[key]:
            metric = key.removeprefix("val_").replace("_", " ")
            weak.append(f"seed {r['seed']}: {teacher[key]:.3f} < {best['method']} {best[key]:.3f}")
    if not weak:
        return []
    return [f"weak teacher: its validation {metric} (the selection metric) is below the best "
            "hard-label row of the same split (" + "; ".join(weak) + ")"]


def _design_notes(mine: list[dict]) -> list[str]:
    notes = []
    for point in {(r["design_point"]["min_size"], r["design_point"]["reason"], r["image_size"])
                  for r in mine if (r.get("design_point") or {}).get("below")}:
        size, reason, ran = point
        notes.append(f"below its design point: ran at {ran} px, under {size} px ({reason})")
    return sorted(notes)


def _network(record: dict) -> tuple:
    """What decides a network's latency, as far as the record says."""
    cost = record.get("cost") or {}
    return (record.get("params_m"), record.get("mflops"), cost.get("input_size"),
            cost.get("dtype"), cost.get("memory_format"), latency_where(record))


def _latency_notes(mine: list[dict], records: list[dict]) -> list[str]:
    def median_ms(rows):
        values = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
        return float(np.median(values)) if values else None

    method, network, own = mine[0]["method"], _network(mine[0]), median_ms(mine)
    if own is None:
        return []
    twins: dict[str, list[dict]] = {}
    for r in records:
        if r["method"] != method and _network(r) == network:
            twins.setdefault(r["method"], []).append(r)
    apart = []
    for twin, rows in sorted(twins.items()):
        other = median_ms(rows)
        if other is not None and abs(own - other) > LATENCY_MISMATCH * min(own, other):
            apart.append(f"{twin} {other:.2f} ms")
    if not apart:
        return []
    return [f"latency timed apart from the same network's: {own:.2f} ms here, "
            + ", ".join(apart) + " (same network and device, timed under other conditions; "
            "`bench leaderboard --retime` times them together)"]


def row_notes(mine: list[dict], records: list[dict], reference: dict | None) -> list[str]:
    """The findings for one method's records ``mine`` on a board of ``records``."""
    return (_collapse_notes(mine, reference) + _teacher_notes(mine, records)
            + _design_notes(mine) + _calibration_notes(mine) + _latency_notes(mine, records))


def calibrated_none(reports) -> bool:
    """Whether every one of a method's ``report_``s says it calibrated no test subject (only
    methods that report ``calibrated_subjects`` can say so)."""
    counts = [r.get("calibrated_subjects") if isinstance(r, dict) else None for r in reports]
    return bool(counts) and all(c == 0 for c in counts)


def _calibration_notes(mine: list[dict]) -> list[str]:
    given = [r.get("calibration_images") for r in mine]
    if not all(isinstance(c, dict) and c for c in given) or \
            not calibrated_none([r.get("method_report") for r in mine]):
        return []
    per_subject = np.mean([np.mean(list(c.values())) for c in given])
    return [f"personalisation unused: given {per_subject:.1f} calibration image(s) per test subject "
            "on average, it calibrated none in any seed, so the row is its global model (see the "
            "personalisation table)"]


def is_collapsed(notes: list[str]) -> bool:
    return any(n.startswith("collapsed") for n in notes)


class Footnotes:
    """Numbers distinct note texts in order of first use."""

    def __init__(self):
        self.texts: list[str] = []

    def mark(self, notes: list[str]) -> str:
        marks = []
        for text in notes:
            if text not in self.texts:
                self.texts.append(text)
            marks.append(f"[{self.texts.index(text) + 1}]")
        return " ".join(marks)

    def lines(self) -> list[str]:
        return [f"[{i}] {text}" for i, text in enumerate(self.texts, 1)]
