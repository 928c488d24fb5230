"""Leaderboards rendered from saved run records (never edited by hand).

For every (dataset, classes) with records under ``<out>/runs/`` this writes
``<out>/<dataset>-<classes>.csv`` (machine-readable, fixed columns), ``<out>/<dataset>-<classes>.md``
(the same table for people, with the settings and cost conventions stated), one confusion-matrix
PNG per method under ``<out>/confusion/`` and, when two or more methods registered as ablation rows
have records, ``<out>/<dataset>-<classes>-ablation.md`` shaped like the paper's Tables 3 and 4,
and, when personalised methods have records, ``<out>/<dataset>-<classes>-personalisation.md``
(accuracy with and without calibration), ``<out>/<dataset>-<classes>-pairwise.md/.csv/.png``
(paired tests between rows, :mod:`bench.stats`) and ``<out>/<dataset>-<classes>-pareto.png``
(accuracy against cost, :mod:`bench.plots`).
One row per method: mean and standard deviation over the seeds, i.e. over different
subject-disjoint splits. The lines under a board's table come from :mod:`bench.boardnotes`.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay  # noqa: E402

from .boardnotes import (  # noqa: E402
    machines_line,
    quality_lines,
    settings_lines,
    shared_timing_line,
    single_seed_note,
    timing_line,
    training_data_line,
    training_time_line,
)
from .files import atomic_write  # noqa: E402
from .plots import curves_png, pareto_png  # noqa: E402
from .profiling import BUSY_CPUS, MAX_REL_IQR, MIN_BLOCKS, RETRIES  # noqa: E402
from .quality import (  # noqa: E402
    MAJORITY,
    Footnotes,
    best_hard_label_peer,
    calibrated_none,
    is_collapsed,
    majority_reference,
    row_notes,
    selection_key,
)
from .records import (  # noqa: E402
    board_name,
    latency_where,
    load_records,
    settings_diff,
    settings_of,
)
from .registry import list_methods, method_info  # noqa: E402
from .stats import ALPHA, interval_note, pairwise, row_interval  # noqa: E402

COLUMNS = ["method", "n_seeds", "accuracy", "accuracy_std", "accuracy_ci_low", "accuracy_ci_high",
           "macro_precision", "macro_recall", "macro_f1", "macro_f1_std", "macro_f1_ci_low",
           "macro_f1_ci_high", "params_m", "mflops", "latency_ms", "latency_iqr_ms",
           "latency_device", "latency_unstable", "calibration", "train_s", "val_accuracy",
           "min_predicted_classes", "collapsed", "notes"]
PAPER_COLUMNS = ["paper_accuracy", "paper_f1", "gap_accuracy"]


def paper_reference(method: str, dataset: str, classes: int):
    if method not in list_methods():
        return None
    return method_info(method).references.get((dataset, int(classes)))


def calibration_cell(g: pd.DataFrame) -> str:
    """"yes" for a method that declares calibration and was given calibration images; "none
    given" when it declares it but the data had none (no subject ids, or one image per class and
    subject), so the row is not mistaken for a personalised one; "none used" when it was given
    some but its report says it calibrated no test subject in any seed (EMO's K-means needs at
    least as many frames of a subject as classes), so the row is its global model."""
    if not g["calibration"].any():
        return "no"
    if "calibration_images" not in g:
        return "yes"  # records from before the count was kept
    given = sum(sum(c.values()) for c in g["calibration_images"] if isinstance(c, dict))
    if not given:
        return "none given"
    return "none used" if calibrated_none(g.get("method_report", pd.Series(dtype=object))) \
        else "yes"


def summarise(records: list[dict]) -> pd.DataFrame:
    """One row per method (mean over seeds; ``*_std`` is the sample std over seeds), best first.

    ``paper_*`` columns are added when the paper has numbers for this dataset and class count.
    """
    if not records:
        return pd.DataFrame(columns=COLUMNS)
    dataset, classes = records[0]["dataset"], records[0]["classes"]
    runs = pd.DataFrame(records)
    runs["latency_where"] = [latency_where(r) for r in records]
    for column in ("val_accuracy", "n_predicted_classes", "latency_stable"):
        if column not in runs:  # records written before these were kept
            runs[column] = np.nan
    reference = majority_reference(records)
    rows = []
    for method, g in runs.groupby("method", sort=False):
        mine = [r for r in records if r["method"] == method]
        notes = row_notes(mine, records, reference)
        interval = row_interval(mine) or {"accuracy": (np.nan, np.nan), "macro_f1": (np.nan, np.nan)}
        rows.append({
            "method": method,
            "n_seeds": int(g["seed"].nunique()),
            "accuracy": g["accuracy"].mean(),
            "accuracy_std": g["accuracy"].std(ddof=1),
            "accuracy_ci_low": interval["accuracy"][0], "accuracy_ci_high": interval["accuracy"][1],
            "macro_precision": g["macro_precision"].mean(),
            "macro_recall": g["macro_recall"].mean(),
            "macro_f1": g["macro_f1"].mean(),
            "macro_f1_std": g["macro_f1"].std(ddof=1),
            "macro_f1_ci_low": interval["macro_f1"][0], "macro_f1_ci_high": interval["macro_f1"][1],
            "params_m": g["params_m"].mean(),
            "mflops": g["mflops"].mean(),
            "latency_ms": g["latency_ms"].median(),
            "latency_iqr_ms": g["latency_iqr_ms"].median(),
            "latency_unstable": int((g["latency_stable"] == False).sum()),  # noqa: E712 - None: unknown
            "latency_device": ", ".join(sorted(set(g["latency_where"].dropna()))),
            "calibration": calibration_cell(g),
            "train_s": g["train_s"].mean(),
            "val_accuracy": g["val_accuracy"].mean(),
            "min_predicted_classes": g["n_predicted_classes"].min(),
            "collapsed": is_collapsed(notes),
            "notes": " | ".join(notes),
        })
    table = pd.DataFrame(rows, columns=COLUMNS)
    refs = [paper_reference(m, dataset, classes) for m in table["method"]]
    if any(r is not None for r in refs):
        table["paper_accuracy"] = [r.accuracy if r else np.nan for r in refs]
        table["paper_f1"] = [r.f1 if r else np.nan for r in refs]
        table["gap_accuracy"] = table["accuracy"] - table["paper_accuracy"]
    return table.sort_values("accuracy", ascending=False, kind="stable").reset_index(drop=True)


def _pm(mean, std, scale=1.0, digits=1):
    if pd.isna(mean):
        return ""
    text = f"{mean * scale:.{digits}f}"
    return text if pd.isna(std) else f"{text} ± {std * scale:.{digits}f}"


def _ci(low, high, scale, digits) -> str:
    """An interval as ``low-high``; "n/a" for records without stored predictions."""
    if pd.isna(low) or pd.isna(high):
        return "n/a"
    return f"{low * scale:.{digits}f}-{high * scale:.{digits}f}"


def _num(value, fmt):
    return "" if value is None or pd.isna(value) else format(value, fmt)


def one_setting_per_method(records: list[dict]) -> tuple[list[dict], list[str]]:
    """A board never averages runs made with different settings: each method keeps the runs with
    the settings of its newest run. Returns (the kept records, a line per method left out)."""
    kept, left_out = [], []
    for method in dict.fromkeys(r["method"] for r in records):
        mine = [r for r in records if r["method"] == method]
        newest = settings_of(max(mine, key=lambda r: str(r.get("created", ""))))
        kept += [r for r in mine if settings_of(r) == newest]
        other = [r for r in mine if settings_of(r) != newest]
        if other:
            seeds = ", ".join(str(r["seed"]) for r in sorted(other, key=lambda r: r["seed"]))
            left_out.append(f"{method} seed(s) {seeds} ({settings_diff(newest, settings_of(other[0]))})")
    return kept, left_out


def render_markdown(table: pd.DataFrame, records: list[dict], left_out: list[str] = ()) -> str:
    """The leaderboard as a Markdown page (``left_out``: :func:`one_setting_per_method`'s lines)."""
    first = records[0]
    dataset, classes = first.get("board") or first["dataset"], first["classes"]
    if dataset != first["dataset"]:
        dataset = f"{dataset} ({first['dataset']} layout, {first['data']['root']})"
    sizes = sorted({r["cost"]["input_size"] for r in records})
    devices = sorted({d for d in table["latency_device"] if d})
    footnotes = Footnotes()
    marks = [footnotes.mark(n.split(" | ") if n else []) for n in table["notes"]]
    shown = pd.DataFrame({
        "Method": table["method"],
        "Seeds": table["n_seeds"],
        "Accuracy %": [_pm(m, s, 100) for m, s in zip(table["accuracy"], table["accuracy_std"])],
        "Acc. 95 % CI": [_ci(lo, hi, 100, 1) for lo, hi in zip(table["accuracy_ci_low"],
                                                              table["accuracy_ci_high"])],
        "Macro P": [_num(v, ".3f") for v in table["macro_precision"]],
        "Macro R": [_num(v, ".3f") for v in table["macro_recall"]],
        "Macro F1": [_pm(m, s, 1, 3) for m, s in zip(table["macro_f1"], table["macro_f1_std"])],
        "F1 95 % CI": [_ci(lo, hi, 1, 3) for lo, hi in zip(table["macro_f1_ci_low"],
                                                          table["macro_f1_ci_high"])],
        "Params (M)": [_num(v, ".2f") for v in table["params_m"]],
        "MFLOPs": [_num(v, ".2f") for v in table["mflops"]],
        "Latency ms (IQR)": [f"{_num(m, '.2f')} ({_num(q, '.2f')}){' ~' if u else ''}"
                             for m, q, u in zip(table["latency_ms"], table["latency_iqr_ms"],
                                                table["latency_unstable"])],
        "Calibration": table["calibration"],
        "Train s": [_num(v, ".0f") for v in table["train_s"]],
        "Notes": marks,
    })
    reference = majority_reference(records)
    if reference is not None:
        shown.loc[len(shown)] = pd.Series({
            **{c: "" for c in shown.columns}, "Method": f"*{MAJORITY} (reference)*",
            "Seeds": len(reference["seeds"]),
            "Accuracy %": _pm(reference["accuracy"], reference["accuracy_std"], 100),
            "Macro F1": _num(reference["macro_f1"], ".3f")})
    if "paper_accuracy" in table:
        pad = [""] * (len(shown) - len(table))
        shown["Paper acc %"] = [_num(v * 100, ".1f") if pd.notna(v) else ""
                                for v in table["paper_accuracy"]] + pad
        shown["Paper F1"] = [_num(v, ".3f") for v in table["paper_f1"]] + pad
        shown["Gap (points)"] = [_num(v * 100, "+.1f") for v in table["gap_accuracy"]] + pad
    dropped = first.get("data", {}).get("dropped") or {}
    noise = float(first.get("label_noise", 0.0))
    stem = board_name(first.get("board") or first["dataset"], classes, noise)
    lines = [
        f"# {dataset}, {classes} classes ({', '.join(first['class_names'])})"
        + (f", {noise:.0%} noisy training labels" if noise else ""),
        "",
        *([f"Label noise {noise:g}: that fraction of each split's training labels was replaced by "
           "another class, at random with the seed; validation and test labels are clean.", ""]
          if noise else []),
        "Mean ± sample standard deviation over seeds; each seed is a different subject-disjoint "
        "train/validation/test split (official lists where the dataset has no subject ids). "
        "Test images exclude each test subject's calibration images, for every method."
        + single_seed_note(table),
        "",
        f"Cost of the network that runs at inference: parameters and MFLOPs counted by fvcore at "
        f"batch 1, 3x{'/'.join(map(str, sizes))}x{'/'.join(map(str, sizes))} (1 multiply-add = "
        f"1 FLOP); latency: batch 1, median (IQR) on {', '.join(devices) or 'n/a'}"
        + (f"; ~: unstable in {int(table['latency_unstable'].sum())} run(s) (fewer than "
           f"{MIN_BLOCKS} timed blocks, an IQR above {MAX_REL_IQR:.0%} of the median after "
           f"{RETRIES} re-measurements, or other processes busy on {BUSY_CPUS} CPU or more "
           "around the timing): read as approximate" if table["latency_unstable"].any()
           else "") + ".",
        "",
        shown.to_markdown(index=False, disable_numparse=True),
        "",
        f"{interval_note(records)}; n/a: records written before test predictions were kept. Whether two "
        f"rows differ: [{stem}-pairwise.md]({stem}-pairwise.md).",
        "",
        f"![Accuracy against latency and MFLOPs]({stem}-pareto.png)",
        "",
        *quality_lines(footnotes, reference, table, classes),
        "Settings:",
        "",
        *settings_lines(records),
    ]
    if left_out:
        lines += ["", "Left out, made with other settings than the same method's newest run (never "
                  "averaged with it; `bench run --force` with one setting replaces them): "
                  + "; ".join(left_out) + "."]
    if dropped:
        lines += ["", "Images outside the class set, left out: "
                  + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) + "."]
    skipped = first.get("data", {}).get("skipped") or 0
    if skipped:
        lines += ["", f"Unreadable image files, skipped: {skipped} (`--strict` refuses them)."]
    missing = sorted({c for r in records for part in (r.get("missing_classes") or {}).values()
                      for c in part})
    if missing:
        lines += ["", "Classes without training or test images in some seed (see each record's "
                  f"`missing_classes`): {', '.join(missing)}."]
    shared = shared_timing_line(records)
    if shared:
        lines += ["", shared]
    timing = timing_line(records)
    if timing:
        lines += ["", timing]
    data = training_data_line(records)
    if data:
        lines += ["", data]
    lines += ["", machines_line(records), "", training_time_line(records)]
    lines += ["", f"Generated by `bench leaderboard` from {len(records)} run record(s) in runs/.", ""]
    return "\n".join(lines)


def teacher_rows(records: list[dict]) -> list[dict]:
    """One row per (seed, teacher) that taught some record: how good the teacher was."""
    rows, seen = [], set()
    for r in sorted(records, key=lambda r: r["seed"]):
        t = r.get("teacher") or {}
        key = (r["seed"], t.get("val_accuracy"), t.get("epochs"))
        if not t or key in seen:
            continue
        seen.add(key)
        key = selection_key(r)
        best = best_hard_label_peer(r, records, key)
        name = "F1" if key == "val_macro_f1" else "acc %"
        scale = 1 if key == "val_macro_f1" else 100
        pre = t.get("pretrain") or {}
        rows.append({
            "Seed": r["seed"],
            "Epochs (planned)": f"{t.get('epochs')} ({t.get('planned_epochs', t.get('epochs'))})",
            "Best epoch": t.get("best_epoch"),
            "Val acc %": _num(_pct(t.get("val_accuracy")), ".1f"),
            "Val F1": _num(t.get("val_macro_f1"), ".3f"),
            "Acc % on the images it labels": _num(_pct(t.get("labelled_accuracy")), ".1f"),
            "Entropy (of uniform)": _num(t.get("relative_entropy"), ".2f"),
            "Pre-trained on": f"{pre['dataset']} ({pre['images']} images, {pre['left_out_subjects']} "
                              "subjects left out)" if pre else "",
            "Best hard-label row (val acc %, F1)": (
                f"{best['method']} {_pct(best['val_accuracy']):.1f}, {best['val_macro_f1']:.3f}"
                if best and best.get("val_macro_f1") is not None else ""),
            f"Teacher at least as good (val {name})": (
                ("yes" if t.get(key) is not None and t[key] >= best[key] else "no")
                + f" ({t.get(key, float('nan')) * scale:.3g} vs {best[key] * scale:.3g})")
            if best else "",
        })
    return rows


def _pct(value):
    return None if value is None else value * 100


def render_ablation(table: pd.DataFrame, dataset: str, classes: int,
                    records: list[dict] | None = None, pairs: pd.DataFrame | None = None
                    ) -> str | None:
    """The methods registered with an ``ablation`` row label, in registration order, shaped like
    the paper's Tables 3 and 4: measured cost and accuracy with the paper's numbers beside them."""
    measured = table.set_index("method")
    names = [m for m in list_methods() if method_info(m).ablation and m in measured.index]
    if len(names) < 2:
        return None
    rows = []
    for step, name in enumerate(names):
        info, row = method_info(name), measured.loc[name]
        paper = {d: info.references.get((d, int(classes))) for d in ("reed", "emug")}
        rows.append({
            "Model": info.ablation,
            "Method": name,
            "Params (M)": _num(row["params_m"], ".2f"),
            "MFLOPs": _num(row["mflops"], ".2f"),
            "Accuracy %": _pm(row["accuracy"], row["accuracy_std"], 100),
            "Macro F1": _pm(row["macro_f1"], row["macro_f1_std"], 1, 3),
            "vs row above (points, Holm p)": _step(pairs, name, names[step - 1] if step else None),
            "Paper params (M)": _num(info.cost.params_m, ".2f") if info.cost else "",
            "Paper MFLOPs": _num(info.cost.mflops, ".2f") if info.cost else "",
            **{f"Paper {d.upper()}-{classes} %": _num(ref.accuracy * 100, ".1f")
               if ref and ref.accuracy is not None else "" for d, ref in paper.items()},
        })
    return "\n".join([
        f"# Ablation on {dataset}, {classes} classes",
        "",
        f"Measured here: accuracy on {dataset} (mean ± std over seeds, as in the leaderboard) and "
        "the cost of the network that runs at inference (fvcore, batch 1, 3x224x224, 1 multiply-add "
        "= 1 FLOP). Paper: the source paper's Tables 3 and 4 (params and MFLOPs at 4 classes, "
        "accuracy on REED and EMUG). \"vs row above\": the mean paired difference of accuracy "
        "over (seed, test subject) units and its Holm-corrected Wilcoxon p from the board's "
        "pairwise table; * marks a step that differs at 5 %.",
        "",
        pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True),
        "",
        *_teacher_section(records or []),
        "Generated by `bench leaderboard` from the run records in runs/.",
        "",
    ])


def pair_lookup(pairs: pd.DataFrame | None, a: str, b: str) -> tuple[float, float] | None:
    """(mean difference a - b in points, Holm-corrected p) of a pair, in either order."""
    if pairs is None:
        return None
    for first, second, sign in ((a, b, 1), (b, a, -1)):
        hit = pairs[(pairs["method_a"] == first) & (pairs["method_b"] == second)]
        if len(hit):
            return sign * hit["mean_diff_points"].iloc[0], hit["p_holm"].iloc[0]
    return None


def _step(pairs, name: str, previous: str | None) -> str:
    found = pair_lookup(pairs, name, previous) if previous else None
    if found is None or pd.isna(found[1]):
        return ""
    diff, p = found
    return f"{diff:+.1f} (p {p:.3g}){' *' if p < ALPHA else ''}"


def render_pairwise(table: pd.DataFrame, records: list[dict], title: str
                    ) -> tuple[str, pd.DataFrame, bytes] | None:
    """Every pair of the board's methods (:func:`bench.stats.pairwise`): the Markdown page, the
    CSV table and the significance picture; ``None`` when fewer than two rows have predictions."""
    order = list(table["method"])
    pairs = pairwise({m: [r for r in records if r["method"] == m] for m in order})
    if pairs is None:
        return None
    shown = pd.DataFrame({
        "Method A": pairs["method_a"], "Method B": pairs["method_b"], "Units": pairs["units"],
        "A - B (points)": [_num(v, "+.1f") for v in pairs["mean_diff_points"]],
        "p (Wilcoxon)": [_num(v, ".3g") for v in pairs["p"]],
        "p (Holm)": [_num(v, ".3g") for v in pairs["p_holm"]],
        "Differ at 5 %": ["yes" if s else "" for s in pairs["significant"]],
    })
    stem = title.split(",")[0]
    markdown = "\n".join([
        f"# Do the rows differ? {title}", "",
        "Each pair of methods is compared on the same units: a test subject of one seed (its "
        "images together), where both were scored on the same images. A - B is the mean over "
        "units of the difference of accuracies, in points; p is the two-sided Wilcoxon "
        "signed-rank test of those differences (`scipy.stats.wilcoxon`; zero differences "
        "dropped, p = 1 when all are zero), corrected for all pairs of the board by Holm's "
        f"method (`statsmodels`). 'Differ at 5 %': Holm-corrected p below {ALPHA}. With few "
        "subjects per split, a real difference can still fail to reach it.", "",
        f"![Pairwise differences]({stem}-pairwise.png)", "",
        shown.to_markdown(index=False, disable_numparse=True), "",
        "Generated by `bench leaderboard` from the run records in runs/.", ""])
    compared = set(pairs["method_a"]) | set(pairs["method_b"])
    return markdown, pairs, _pairwise_png(pairs, [m for m in order if m in compared])


def _pairwise_png(pairs: pd.DataFrame, order: list[str]) -> bytes:
    """Mean difference (row minus column, points) as colour; a star where Holm's p < 5 %."""
    n = len(order)
    diff = np.full((n, n), np.nan)
    star = np.zeros((n, n), dtype=bool)
    index = {m: i for i, m in enumerate(order)}
    for row in pairs.itertuples():
        i, j = index[row.method_a], index[row.method_b]
        diff[i, j], diff[j, i] = row.mean_diff_points, -row.mean_diff_points
        star[i, j] = star[j, i] = bool(row.significant)
    limit = np.nanmax(np.abs(diff)) if np.isfinite(diff).any() else 1.0
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * n, 0.8 + 0.5 * n), dpi=100)
    image = ax.imshow(diff, cmap="RdBu", vmin=-limit, vmax=limit)
    for i in range(n):
        for j in range(n):
            if np.isfinite(diff[i, j]):
                ax.text(j, i, f"{diff[i, j]:+.0f}{'*' if star[i, j] else ''}", ha="center",
                        va="center", fontsize=7)
    ax.set_xticks(range(n), order, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), order, fontsize=8)
    ax.set_title("accuracy, row minus column (points); * Holm p < 0.05", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _teacher_section(records: list[dict]) -> list[str]:
    rows = teacher_rows(records)
    if not rows:
        return []
    return ["## The label distribution generator (teacher), per seed", "",
            "Validation scores at its chosen epoch; accuracy on, and mean entropy of the "
            "distributions it hands over for, the training images the students learn from "
            "(entropy as a fraction of the uniform distribution's: 1 = no information, 0 = one-"
            "hot); the best row of the same split trained on hard labels, compared on the "
            "validation score the runs chose their epochs by (macro F1 in the quick preset, "
            "accuracy in the paper preset).", "",
            pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True), ""]


def render_personalisation(records: list[dict]) -> str | None:
    """Accuracy with and without calibration for every method that calibrates: the same trained
    model scored before and after ``calibrate``, on the same test images."""
    rows = []
    for method in dict.fromkeys(r["method"] for r in records if r.get("uncalibrated")):
        mine = [r for r in records if r["method"] == method and r.get("uncalibrated")]
        acc = np.array([r["accuracy"] for r in mine])
        base = np.array([r["uncalibrated"]["accuracy"] for r in mine])
        f1 = np.mean([r["macro_f1"] for r in mine])
        f1_base = np.mean([r["uncalibrated"]["macro_f1"] for r in mine])
        per_subject = [n for r in mine for n in r["calibration_images"].values()]
        rows.append({
            "Method": method,
            "Calibration": mine[0]["calibration_kind"],
            "Seeds": len(mine),
            "Images per test subject": _num(np.mean(per_subject), ".1f") if per_subject else "0",
            "Accuracy % without": _num(base.mean() * 100, ".1f"),
            "Accuracy % with": _num(acc.mean() * 100, ".1f"),
            "Gain (points)": _pm((acc - base).mean(), (acc - base).std(ddof=1) if len(mine) > 1
                                 else np.nan, 100),
            "Macro F1 without": _num(f1_base, ".3f"),
            "Macro F1 with": _num(f1, ".3f"),
        })
    if not rows:
        return None
    r0 = records[0]
    return "\n".join([
        f"# Personalisation on {r0.get('board') or r0['dataset']}, {r0['classes']} classes",
        "",
        "Each personalised method scored twice on the same test images: before and after "
        "`calibrate` with each test subject's calibration images (which are never scored). "
        "Gain: mean ± std over seeds of the per-seed difference.",
        "",
        pd.DataFrame(rows).to_markdown(index=False, disable_numparse=True),
        "",
        "Generated by `bench leaderboard` from the run records in runs/.",
        "",
    ])


def confusion_png(records: list[dict]) -> bytes:
    """Row-normalised confusion matrix summed over the records' seeds, as PNG bytes."""
    names = records[0]["class_names"]
    cm = np.sum([np.asarray(r["confusion_matrix"]) for r in records], axis=0)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(names), 0.8 + 0.8 * len(names)), dpi=100)
    ConfusionMatrixDisplay(norm, display_labels=names).plot(
        ax=ax, cmap="Blues", values_format=".2f", colorbar=False, xticks_rotation=45)
    r = records[0]
    ax.set_title(f"{r['method']} on {r['dataset']}-{r['classes']} ({len(records)} seed(s))",
                 fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _board_key(record: dict) -> tuple[str, int, float]:
    return (record.get("board") or record["dataset"], int(record["classes"]),
            float(record.get("label_noise", 0.0)))


def write_leaderboard(out, dataset: str, classes: int, records: list[dict] | None = None,
                      label_noise: float = 0.0) -> tuple[pd.DataFrame, str]:
    """Render and write the board for (dataset, classes, label noise); returns the table and its
    Markdown. Runs on noisy training labels get boards of their own (``-noise<percent>``)."""
    out = Path(out)
    if records is None:
        records = load_records(out)
    key = (dataset, int(classes), float(label_noise))
    records = [r for r in records if _board_key(r) == key]
    stem = board_name(dataset, classes, label_noise)
    if not records:
        raise FileNotFoundError(f"no run records for {stem} under {out / 'runs'}")
    records, left_out = one_setting_per_method(records)
    table = summarise(records)
    markdown = render_markdown(table, records, left_out)
    atomic_write(out / f"{stem}.csv", table.to_csv(index=False, float_format="%.6g"))
    atomic_write(out / f"{stem}.md", markdown)
    picture = pareto_png(table, records, f"{stem}, {classes} classes")
    if picture is not None:
        atomic_write(out / f"{stem}-pareto.png", picture)
    compared = render_pairwise(table, records, f"{stem}, {classes} classes")
    pairs = None
    if compared is None:
        for path in (out / f"{stem}-pairwise.csv", out / f"{stem}-pairwise.png"):
            path.unlink(missing_ok=True)
    else:
        pair_md, pairs, picture = compared
        atomic_write(out / f"{stem}-pairwise.csv", pairs.to_csv(index=False, float_format="%.6g"))
        atomic_write(out / f"{stem}-pairwise.png", picture)
    for suffix, text in (("ablation", render_ablation(table, dataset, classes, records, pairs)),
                         ("personalisation", render_personalisation(records)),
                         ("pairwise", compared[0] if compared else None)):
        path = out / f"{stem}-{suffix}.md"
        if text:
            atomic_write(path, text)
        elif path.exists():  # left from records that are gone
            path.unlink()
    for method in table["method"]:
        mine = [r for r in records if r["method"] == method]
        atomic_write(out / "confusion" / f"{stem}-{method}.png", confusion_png(mine))
    return table, markdown


def write_all(out) -> list[tuple[str, str]]:
    """Re-render every board found under ``<out>/runs``; returns (board name, markdown)."""
    records = load_records(out)
    return [(board_name(d, c, p), write_leaderboard(out, d, c, records, p)[1])
            for d, c, p in sorted({_board_key(r) for r in records})]


def write_curves(out) -> list[Path]:
    """``<out>/curves/<board>-<method>.png`` for every (board, method) with records: the training
    histories of its seeds (:func:`bench.plots.curves_png`)."""
    out = Path(out)
    records = load_records(out)
    if not records:
        raise FileNotFoundError(f"no run records under {out / 'runs'}")
    written = []
    for key in sorted({_board_key(r) for r in records}):
        mine = [r for r in records if _board_key(r) == key]
        stem = board_name(*key)
        for method in sorted({r["method"] for r in mine}):
            runs = [r for r in mine if r["method"] == method]
            written.append(atomic_write(out / "curves" / f"{stem}-{method}.png",
                                        curves_png(runs, f"{method} on {stem}")))
    return written
