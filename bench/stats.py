"""Statistics a reviewer asks for, from the test predictions every record keeps: a confidence
interval per board row and paired tests between methods. Everything statistical is scipy's
(``scipy.stats.bootstrap``, ``scipy.stats.wilcoxon``) or statsmodels' (Holm's correction); this
module only says what is resampled and what is paired.

* **Unit.** A test subject of one seed (one split): images of a subject are not independent (the
  same face, the same session), so they are resampled and compared together. Datasets without
  subject ids (RAF-DB, FER2013) use single images as units.
* **Interval.** A row's point estimate is the mean over seeds of each seed's accuracy (macro F1);
  the bootstrap resamples subjects with replacement within each seed's test set, independently per
  seed, recomputes each seed's metric on the pooled images of the drawn subjects and averages over
  the seeds. Percentile interval, :data:`N_RESAMPLES` resamples, fixed seed: a board re-renders
  to the same numbers.
* **Pairs.** Two methods are compared on the units both were scored on (same seed, same subject,
  hence the same test images): per unit the difference of accuracies, tested with the Wilcoxon
  signed-rank test (two-sided; zero differences dropped; p = 1 when every difference is zero),
  p-values Holm-corrected over all pairs of the board.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats

from .metrics import decode_predictions

N_RESAMPLES = 2000
LEVEL = 0.95
ALPHA = 0.05
SEED = 0
INTERVAL_NOTE = (f"95 % CI: subject-level bootstrap (percentile, {N_RESAMPLES} resamples, subjects "
                 "resampled within each seed's test set, metric averaged over seeds; "
                 "`bench.stats`)")


def interval_note(records: list[dict]) -> str:
    """:data:`INTERVAL_NOTE`, or its image-level form for data without subject ids (RAF-DB,
    FER2013), whose units are single images."""
    for record in records:
        if record.get("predictions"):
            if decode_predictions(record["predictions"])[2] is None:
                return INTERVAL_NOTE.replace("subject-level", "image-level").replace(
                    "subjects resampled", "images resampled (no subject ids)")
            break
    return INTERVAL_NOTE


def unit_confusions(record: dict) -> tuple[list, np.ndarray] | None:
    """(unit names, one confusion matrix per unit ``(U, C, C)``, rows = true class) of a record's
    test predictions; ``None`` for a record written before predictions were kept."""
    stored = record.get("predictions")
    if not stored:
        return None
    true, pred, subjects = decode_predictions(stored)
    n = len(record["class_names"])
    units = subjects if subjects is not None else np.arange(len(true)).astype(str)
    names = list(dict.fromkeys(units.tolist()))
    index = {u: i for i, u in enumerate(names)}
    cms = np.zeros((len(names), n, n), dtype=np.int64)
    np.add.at(cms, (np.array([index[u] for u in units.tolist()], dtype=np.int64), true, pred), 1)
    return names, cms


def scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(accuracy, macro F1) of confusion matrices ``(..., C, C)``, as scikit-learn computes them
    from labels: macro F1 over the classes present in the true or predicted labels, a class
    without true positives scoring 0 (``zero_division=0``)."""
    cm = cm.astype(np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(-1), cm.sum(-2)
    total = support.sum(-1)
    accuracy = np.divide(tp.sum(-1), total, out=np.zeros_like(total), where=total > 0)
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    present = denominator > 0
    macro = np.divide((f1 * present).sum(-1), present.sum(-1),
                      out=np.zeros_like(total), where=present.sum(-1) > 0)
    return accuracy, macro


def row_interval(records: list[dict]) -> dict | None:
    """95 % bootstrap intervals of a row's mean accuracy and mean macro F1 over its seeds:
    ``{"accuracy": (low, high), "macro_f1": (low, high)}``, or ``None`` when a record lacks
    predictions or a seed has fewer than two units."""
    per_seed = [unit_confusions(r) for r in records]
    if not per_seed or any(p is None or len(p[0]) < 2 for p in per_seed):
        return None
    cms = [p[1] for p in per_seed]

    def metric(which: int):
        def statistic(*drawn, axis=-1):  # drawn: one (..., U_s) array of unit indices per seed
            values = [scores(c[np.asarray(d)].sum(axis=-3))[which] for c, d in zip(cms, drawn)]
            return np.mean(values, axis=0)
        return statistic

    samples = [np.arange(len(c)) for c in cms]
    # resamples per vectorised call, so that the drawn confusion matrices stay near 10^7 numbers
    # (a dataset without subject ids has one unit per test image: thousands)
    largest = max(c.shape[0] * c.shape[1] * c.shape[2] for c in cms)
    batch = int(max(1, min(N_RESAMPLES, 10_000_000 // largest)))
    out = {}
    for name, which in (("accuracy", 0), ("macro_f1", 1)):
        result = stats.bootstrap(samples, metric(which), n_resamples=N_RESAMPLES,
                                 confidence_level=LEVEL, method="percentile", vectorized=True,
                                 paired=False, batch=batch,
                                 random_state=np.random.default_rng(SEED))
        out[name] = (float(result.confidence_interval.low), float(result.confidence_interval.high))
    return out


def unit_accuracies(records: list[dict]) -> pd.Series | None:
    """Accuracy per (seed, unit) of one method's records; ``None`` without predictions."""
    parts = []
    for record in records:
        found = unit_confusions(record)
        if found is None:
            return None
        names, cms = found
        accuracy = scores(cms)[0]
        parts.append(pd.Series(accuracy, index=pd.MultiIndex.from_product(
            [[record["seed"]], names], names=["seed", "unit"])))
    return pd.concat(parts) if parts else None


def paired_test(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zeros dropped); 1 when
    every difference is zero (nothing to tell the methods apart)."""
    differences = np.asarray(differences, dtype=np.float64)
    if not np.any(differences != 0):
        return 1.0
    return float(stats.wilcoxon(differences, zero_method="wilcox", alternative="two-sided").pvalue)


def pairwise(by_method: dict[str, list[dict]]) -> pd.DataFrame | None:
    """Every pair of methods of a board: units compared, mean paired difference of accuracy
    (first minus second, in points), Wilcoxon p, Holm-corrected p, significant at 5 %.
    ``None`` when fewer than two methods have predictions."""
    from statsmodels.stats.multitest import multipletests

    per_method = {m: unit_accuracies(rs) for m, rs in by_method.items()}
    per_method = {m: s for m, s in per_method.items() if s is not None}
    if len(per_method) < 2:
        return None
    rows = []
    for a, b in itertools.combinations(per_method, 2):
        joined = pd.concat([per_method[a], per_method[b]], axis=1, join="inner").to_numpy()
        diff = joined[:, 0] - joined[:, 1] if len(joined) else np.array([])
        rows.append({"method_a": a, "method_b": b, "units": len(diff),
                     "mean_diff_points": float(diff.mean() * 100) if len(diff) else np.nan,
                     "p": paired_test(diff) if len(diff) else np.nan})
    table = pd.DataFrame(rows)
    tested = table["p"].notna()
    table["p_holm"] = np.nan
    if tested.any():
        table.loc[tested, "p_holm"] = multipletests(table.loc[tested, "p"], method="holm")[1]
    table["significant"] = table["p_holm"] < ALPHA
    return table
