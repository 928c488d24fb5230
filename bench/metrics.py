"""Accuracy metrics, all from scikit-learn.

Macro precision/recall/F1 average over the classes present in the test labels or predictions
(scikit-learn's default), with ``zero_division=0``. Per-class recall is reported for every class of
the set, ``None`` for a class absent from the test labels (rather than a misleading 0).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support


def classification_metrics(y_true, y_pred, class_names) -> dict:
    """Accuracy, macro P/R/F1, per-class recall and the confusion matrix (rows = true class)."""
    labels = list(class_names)
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, average="macro", zero_division=0)
    per_class = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=np.nan)[1]
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
        "per_class_recall": {c: (None if np.isnan(r) else float(r)) for c, r in zip(labels, per_class)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


#: one character per class index (0-9, then a-z): a record stores its test predictions as text
DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def encode_predictions(y_true, y_pred, groups, class_names) -> dict:
    """What a record keeps of its scored test images so that a board can be re-analysed without
    retraining (``bench.stats``): true and predicted class indices in ``class_names``, one
    character per image, and the images' subjects as runs (``[[subject, count], ...]``, in
    image order; ``None`` for datasets without subject ids)."""
    index = {c: i for i, c in enumerate(class_names)}
    if len(class_names) > len(DIGITS):
        raise ValueError(f"at most {len(DIGITS)} classes can be encoded")
    runs = None
    if groups is not None:
        runs = []
        for subject in map(str, np.asarray(groups).tolist()):
            if runs and runs[-1][0] == subject:
                runs[-1][1] += 1
            else:
                runs.append([subject, 1])
    return {"true": "".join(DIGITS[index[c]] for c in np.asarray(y_true).tolist()),
            "pred": "".join(DIGITS[index[c]] for c in np.asarray(y_pred).tolist()),
            "subjects": runs}


def decode_predictions(stored: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(true indices, predicted indices, subject of each image or ``None``) of
    :func:`encode_predictions`'s dict."""
    true = np.array([DIGITS.index(c) for c in stored["true"]], dtype=np.int64)
    pred = np.array([DIGITS.index(c) for c in stored["pred"]], dtype=np.int64)
    runs = stored.get("subjects")
    subjects = None if runs is None else np.repeat([s for s, _ in runs], [n for _, n in runs])
    if len(true) != len(pred) or (subjects is not None and len(subjects) != len(true)):
        raise ValueError("stored predictions of different lengths")
    return true, pred, subjects
