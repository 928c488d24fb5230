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
