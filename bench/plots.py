"""Pictures drawn from the records (never by hand), with matplotlib's Agg backend (no display):

* :func:`pareto_png`: a board's accuracy against its cost (batch-1 latency, MFLOPs), the trade-off
  the paper claims, with the Pareto front of each panel;
* :func:`curves_png`: one method's training histories on a board (training loss, validation
  accuracy and macro F1 per epoch, the chosen epoch marked), the first thing to look at when a row
  looks wrong;
* :func:`stream_png`: a frame-skipping method's ``bench stream`` table (accuracy and macro F1 with
  and without skipping, FLOP-counted and wall-clock speed-up, against the skip threshold; the
  thresholds chosen on the validation subjects marked).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib import ticker  # noqa: E402

#: how a point is drawn, by what its method needs beyond the training images
MARKERS = {"plain": ("o", "tab:blue", "trains on the training images only"),
           "calibrates": ("s", "tab:orange", "calibrates on each test subject"),
           "teacher": ("^", "tab:green", "learns from a teacher's label distributions")}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def pareto_front(cost: np.ndarray, accuracy: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both lower cost and higher accuracy,
    by increasing cost."""
    order = np.lexsort((-accuracy, cost))
    front, best = [], -np.inf
    for i in order:
        if accuracy[i] > best:
            front.append(i)
            best = accuracy[i]
    return np.asarray(front, dtype=int)


def _kind(method: str, records: list[dict], table_row) -> str:
    if any(r.get("teacher") for r in records if r["method"] == method):
        return "teacher"
    return "calibrates" if table_row["calibration"] == "yes" else "plain"


def pareto_png(table: pd.DataFrame, records: list[dict], title: str) -> bytes | None:
    """Accuracy (mean ± std over seeds) against batch-1 latency and against MFLOPs, both on log
    axes, each point labelled with its method; ``None`` when no row has a latency."""
    rows = table.dropna(subset=["accuracy", "mflops"])
    if rows.empty:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), dpi=100, sharey=True)
    accuracy = rows["accuracy"].to_numpy() * 100
    error = np.nan_to_num(rows["accuracy_std"].to_numpy() * 100)
    kinds = [_kind(m, records, r) for m, (_, r) in zip(rows["method"], rows.iterrows())]
    device = ", ".join(sorted({d for d in rows["latency_device"] if d})) or "n/a"
    for ax, column, label in ((axes[0], "latency_ms", f"batch-1 latency, ms ({device})"),
                              (axes[1], "mflops", "MFLOPs (fvcore, native input)")):
        cost = rows[column].to_numpy(dtype=float)
        known = np.isfinite(cost) & (cost > 0)
        for kind, (marker, colour, meaning) in MARKERS.items():
            mine = known & np.array([k == kind for k in kinds])
            if mine.any():
                ax.errorbar(cost[mine], accuracy[mine], yerr=error[mine], fmt=marker,
                            color=colour, ecolor="0.6", capsize=3, label=meaning)
        for x, y, name in zip(cost[known], accuracy[known], rows["method"][known]):
            ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        if known.sum() >= 1:
            front = np.flatnonzero(known)[pareto_front(cost[known], accuracy[known])]
            ax.step(cost[front], accuracy[front], where="post", color="0.3", linestyle="--",
                    linewidth=1, label="Pareto front")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("test accuracy, % (mean ± std over seeds)")
    axes[0].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Accuracy against cost: {title}", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def curves_png(records: list[dict], title: str) -> bytes:
    """Training loss, validation accuracy and validation macro F1 per epoch, one line per seed,
    the epoch each run kept marked with a dot."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), dpi=100)
    panels = (("train_loss", "training loss"), ("val_accuracy", "validation accuracy"),
              ("val_macro_f1", "validation macro F1"))
    for record in sorted(records, key=lambda r: r["seed"]):
        history = record.get("history") or []
        epochs = [h["epoch"] for h in history]
        best = record.get("best_epoch")
        for ax, (key, _) in zip(axes, panels):
            values = [h.get(key, np.nan) for h in history]
            line, = ax.plot(epochs, values, marker=".", linewidth=1, label=f"seed {record['seed']}")
            if best in epochs:
                ax.plot([best], [values[epochs.index(best)]], "o", markersize=9, mfc="none",
                        color=line.get_color())
    for ax, (_, label) in zip(axes, panels):
        ax.set_xlabel("epoch")
        ax.set_title(label, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7, title="circle: chosen epoch", title_fontsize=7)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _png(fig)


def stream_png(table: pd.DataFrame, title: str) -> bytes | None:
    """One row of two panels per method of a ``bench stream`` table: what skipping changes in test
    accuracy and macro F1 (points against no skipping) against the threshold, and the
    FLOP-counted and wall-clock speed-ups, each the mean over seeds at the thresholds every seed
    replayed (skip rates written beside the FLOP points); the thresholds each seed chose on its validation
    subjects are stars on a dotted line (a seed whose choice was not to skip is named in a
    note). ``None`` when no row has a threshold."""
    rows = table.dropna(subset=["seed"]).copy()
    numbers = [c for c in rows.columns if c not in ("method", "chosen")]
    rows[numbers] = rows[numbers].apply(pd.to_numeric, errors="coerce")
    rows["chosen"] = rows["chosen"].astype(object).fillna(False).astype(str).str.lower() == "true"
    # a chosen row without a threshold: no threshold met the validation budget (no skipping)
    declined = rows[rows["chosen"] & rows["threshold"].isna()]
    rows = rows.dropna(subset=["threshold"])
    if rows.empty:
        return None
    methods = list(dict.fromkeys(rows["method"]))
    fig, axes = plt.subplots(len(methods), 2, figsize=(12, 4.4 * len(methods)), dpi=100,
                             squeeze=False)
    for (left, right), method in zip(axes, methods):
        mine = rows[rows["method"] == method]
        seeds = mine["seed"].nunique()
        common = mine.groupby("threshold")["seed"].nunique()
        curve = (mine[mine["threshold"].isin(common[common == seeds].index)]
                 .groupby("threshold").mean(numeric_only=True).reset_index())
        chosen = mine[mine["chosen"]]
        x = curve["threshold"].to_numpy(dtype=float)
        # what skipping changes, in points, so that each seed's choice sits on the same scale as
        # the mean curve (seeds differ by several points without skipping)
        for column, colour, label in (("accuracy", "tab:blue", "accuracy"),
                                      ("macro_f1", "tab:orange", "macro F1")):
            left.plot(x, (curve[column] - curve[f"{column}_no_skip"]) * 100, marker="o",
                      color=colour, label=label)
            left.plot(chosen["threshold"], (chosen[column] - chosen[f"{column}_no_skip"]) * 100,
                      "*", color=colour, markersize=14, markeredgecolor="black")
        left.axhline(0.0, color="0.5", linewidth=1)
        left.axhline(-1.0, color="tab:red", linestyle="--", linewidth=1, label="one point lost")
        right.plot(x, curve["flops_speedup"], marker="o", color="tab:green",
                   label="FLOP-counted")
        right.plot(x, curve["speedup"], marker="s", linestyle="--", color="tab:purple",
                   label="wall-clock (depends on machine load)")
        for xi, yi, rate in zip(x, curve["flops_speedup"], curve["skip_rate"]):
            right.annotate(f"{rate:.0%}", (xi, yi), textcoords="offset points", xytext=(0, 6),
                           fontsize=7, ha="center")
        right.plot(chosen["threshold"], chosen["flops_speedup"], "*", color="tab:green",
                   markersize=14, markeredgecolor="black")
        right.plot(chosen["threshold"], chosen["speedup"], "*", color="tab:purple",
                   markersize=14, markeredgecolor="black")
        right.axhline(1.0, color="0.5", linewidth=1)
        for ax in (left, right):
            for threshold in chosen["threshold"]:
                ax.axvline(threshold, color="0.4", linestyle=":", linewidth=1)
            ax.set_xlabel("skip threshold (cosine to the last processed frame)")
            ax.grid(True, alpha=0.3)
        left.set_ylabel("test points vs no skipping (mean over seeds)")
        none = declined[declined["method"] == method]["seed"]
        note = ("\nno threshold met the validation budget (no skipping) for seed(s) "
                + ", ".join(f"{s:g}" for s in sorted(none))) if len(none) else ""
        left.set_title(f"{method}: what skipping costs ({seeds} seed(s); star: chosen on "
                       f"validation){note}", fontsize=10)
        right.set_ylabel("speed-up over no skipping (x)")
        right.set_title(f"{method}: speed-up (labels: skip rate)", fontsize=10)
        left.legend(fontsize=7, loc="best")
        right.legend(fontsize=7, loc="best")
    fig.suptitle(f"Frame skipping: {title}", fontsize=11)
    fig.tight_layout()
    return _png(fig)
