"""The lines a board prints beside its table: how its numbers were made (settings, pre-training,
where and how its runs trained, when latencies were timed, which images were kept) and what they
are worth (the majority-class reference, notes on rows, one seed). :mod:`bench.leaderboard` lays
them out; they read only the run records.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .errors import BenchError
from .quality import MAJORITY, Footnotes
from .records import latency_where


def single_seed_note(table: pd.DataFrame) -> str:
    """What a row of one seed cannot show: how much another split and initialisation would move
    it. Its bootstrap interval resamples the test subjects of that one split only."""
    single = list(table.loc[table["n_seeds"] == 1, "method"])
    if not single:
        return ""
    which = "Every row comes" if len(single) == len(table) else \
        f"{len(single)} row(s) come ({', '.join(single)})"
    return (f" {which} from one seed, so without a standard deviation: its 95 % CI covers which "
            "subjects were tested, not how much another seed's split and training would change "
            "it; run more seeds (`--seeds 0-2`) before reading differences of a few points.")


def settings_lines(records: list[dict]) -> list[str]:
    """One line per method with the settings its records were made with, including where its
    network (``pretrain``) or its teacher (``teacher.pretrain``) was pre-trained on faces: such a
    row did not start from scratch, and the board says so."""
    lines = []
    for method in dict.fromkeys(r["method"] for r in records):
        mine = [r for r in records if r["method"] == method]
        first = mine[0]
        seeds = ", ".join(str(s) for s in sorted(r["seed"] for r in mine))
        start = "ImageNet init" if first["pretrained"] else "from scratch"
        own = face_pretraining([r.get("pretrain") for r in mine])
        taught = face_pretraining([(r.get("teacher") or {}).get("pretrain") for r in mine])
        if own:
            start = ("ImageNet init, then " if first["pretrained"] else "") + f"pre-trained on {own}"
        if taught:
            start += f"; its teacher pre-trained on {taught}"
        lines.append(f"- **{method}**: preset {first['preset']}, {first['epochs']} epochs at "
                     f"{first['image_size']} px, {start}, seeds {seeds}")
    return lines


def face_pretraining(entries: list[dict | None]) -> str:
    """'ckplus faces (49-50 subjects, 74 left out)' for the runs' pre-training entries, or ''."""
    entries = [e for e in entries if e]
    if not entries:
        return ""

    def span(key):
        values = sorted({e.get(key) for e in entries if e.get(key) is not None})
        return "" if not values else str(values[0]) if len(values) == 1 \
            else f"{values[0]}-{values[-1]}"

    datasets = ", ".join(dict.fromkeys(str(e.get("dataset")) for e in entries))
    left_out = span("left_out_subjects")
    counts = f"{span('subjects')} subjects" + (f", {left_out} left out" if left_out else "")
    return f"{datasets} faces ({counts})"


def shared_timing_line(records: list[dict]) -> str:
    """Which rows share one latency figure: a network is timed once per `bench run` and identical
    networks (same layers and shapes) reuse it (``latency_timed_with``, "<method> seed <k>"). The
    seeds of one method nearly always share; the line names the groups of different methods."""
    if not any(r.get("latency_timed_with") for r in records):
        return ""
    group = {r["method"]: {r["method"]} for r in records}
    for r in records:
        partner = r.get("latency_timed_with")
        if partner:
            other = partner.rsplit(" seed ", 1)[0]
            merged = group[r["method"]] | group.get(other, {other})
            for method in merged:
                group[method] = merged
    groups = sorted({tuple(sorted(g)) for g in group.values() if len(g) > 1})
    line = ("Latency is timed once per network in a `bench run` (or `bench leaderboard --retime`) "
            "and identical networks (same layers and shapes) share that figure (each record's "
            "`latency_timed_with`): the seeds of a method")
    if groups:
        line += ", and " + "; ".join(", ".join(g) for g in groups)
    return line + "."


def training_machine(record: dict) -> str:
    """What decides a run's last bits besides its settings: the GPU, or the processor model and
    PyTorch's thread count (CPU kernels are chosen by instruction set and split by thread)."""
    env = record.get("environment") or {}
    if env.get("gpu") and (record.get("spec") or {}).get("device") != "cpu":
        return env["gpu"]
    threads = env.get("torch_threads")
    return (env.get("cpu") or "unknown processor") + (
        f", {threads} thread{'s' if threads != 1 else ''}" if threads else "")


#: latencies timed further apart than this belong to separate timing passes
TIMING_PASS_GAP = pd.Timedelta(minutes=30)


def timing_line(records: list[dict]) -> str | None:
    """Where and when the board's latencies were timed: on one device or processor or several
    (:func:`~bench.records.latency_where`), in one pass or several (a new pass after a gap of
    more than :data:`TIMING_PASS_GAP` between consecutive timings). Figures from different
    processors, or from different states of a shared machine, should not be compared row
    against row."""
    timed = [r for r in records if r.get("latency_ms") is not None]
    if not timed:
        return None
    where = Counter(latency_where(r) for r in timed)
    places = "" if len(where) == 1 else (
        f"Latencies were timed on {len(where)} devices or processors ("
        + "; ".join(f"{w}: {n} run{'s' if n != 1 else ''}" for w, n in sorted(where.items()))
        + "), whose milliseconds do not compare; `bench leaderboard --retime` times every row "
        "on one machine. ")
    at = sorted(pd.Timestamp(r["latency_timed_at"]) for r in timed if r.get("latency_timed_at"))
    if not at:
        return places + ("When these latencies were timed is not recorded (records written "
                         "before `latency_timed_at` was kept); `bench leaderboard --retime` times "
                         "every row again in one pass.")
    unknown = len(timed) - len(at)
    passes = []
    for t in at:
        if passes and t - passes[-1][-1] <= TIMING_PASS_GAP:
            passes[-1].append(t)
        else:
            passes.append([t])
    listed = ", ".join(f"{p[0]:%Y-%m-%d %H:%M} UTC ({len(p)} run{'s' if len(p) != 1 else ''})"
                       for p in passes)
    if unknown:
        listed += f", {unknown} run(s) timed before the time was recorded"
    if len(passes) == 1 and not unknown:
        return places + f"Latencies timed in one pass, from {listed}."
    return places + (f"Latencies come from separate timing passes: {listed}. A shared machine's "
                     "speed changes between passes, so compare latencies across them with care; "
                     "`bench leaderboard --retime` times every row again in one pass.")


def training_data_line(records: list[dict]) -> str | None:
    """How many of the training subjects' images the runs trained on, when a preset's
    frames-per-sequence rule left some out (records written before ``n_train_available`` was
    kept say nothing): a folder of one long video counts as one sequence and keeps a few frames."""
    seeds = {(r["seed"], r["preset"]): r for r in records if r.get("n_train_available")}
    thinned = [r for r in seeds.values() if r["n_train"] < r["n_train_available"]]
    if not thinned:
        return None
    used = np.mean([r["n_train"] for r in thinned])
    available = np.mean([r["n_train_available"] for r in thinned])
    frames = sorted({r.get("train_frames") for r in thinned if r.get("train_frames")})
    return (f"Training images: {used:.0f} of the training subjects' {available:.0f} per split "
            f"({used / available:.0%}, mean over {len(thinned)} split(s)): the "
            f"{'/'.join(sorted({r['preset'] for r in thinned}))} preset keeps at most "
            f"{'/'.join(map(str, frames))} evenly spaced frames of each training sequence "
            "(neighbouring frames are near-duplicates)"
            + ("; a `<subject>/<emotion>` folder without sequence sub-folders is one sequence"
               if _folder_layout(thinned[0]["dataset"]) else "")
            + "; `--preset paper` keeps every frame.")


def _folder_layout(dataset: str) -> bool:
    from .data import dataset_info

    try:
        return dataset_info(dataset).layout.startswith("ROOT/<subject>/<emotion>")
    except BenchError:
        return False


def training_time_line(records: list[dict]) -> str:
    """What the Train s column measured: a fit's wall time, which runs training beside it on the
    same machine lengthen (a Dask ``LocalCluster`` of N workers trains N runs at once)."""
    ways = Counter()
    for r in records:
        execution, jobs = r.get("execution") or {}, int(r.get("jobs") or 1)
        if execution.get("executor") != "dask" or jobs == 1:
            ways["one run at a time"] += 1
        elif str(execution.get("scheduler", "")).startswith(("tcp://127.0.0.1", "inproc://")):
            ways[f"up to {jobs} runs at once on one machine"] += 1
        else:
            ways[f"on a Dask cluster of {jobs} workers"] += 1
    how = "; ".join(f"{way} ({n} run{'s' if n != 1 else ''})" if len(ways) > 1 else way
                    for way, n in sorted(ways.items(), key=lambda kv: (-kv[1], kv[0])))
    return ("Train s: wall time of a run's fit, its teacher's included (a teacher shared by "
            f"several rows counts in each), trained {how}. Runs training side by side share the "
            "cores and memory bandwidth and take longer than one alone: compare Train s within "
            "a board, not with a run timed alone.")


def machines_line(records: list[dict]) -> str:
    """Where the board's runs were trained; with more than one kind of machine, what that means."""
    kinds = Counter(training_machine(r) for r in records)
    listed = "; ".join(f"{kind} ({n} run{'s' if n != 1 else ''})"
                       for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))
    if len(kinds) == 1:
        return f"Trained on {listed}."
    return (f"Trained on {len(kinds)} kinds of machine: {listed}. Kernels round differently on "
            "another processor or thread count, so one seed's numbers differ between them "
            "(docs/reliability.md): read such rows as samples of their method, not run for run, "
            "and `bench run --force` on one machine where that matters.")


def quality_lines(footnotes: Footnotes, reference: dict | None, table: pd.DataFrame,
                   classes: int) -> list[str]:
    lines = []
    if reference is not None:
        lines += [f"The {MAJORITY} reference predicts each split's most frequent training class "
                  f"({', '.join(reference['classes'])}) for every test image: a row near it has "
                  "learned nothing beyond the class balance. Notes flag rows that are not (or not "
                  "only) the method they name; see docs/protocol.md, \"Rows that mean what they "
                  "say\"." + _below_majority_accuracy(table, reference, classes), ""]
    if footnotes.texts:
        lines += ["Notes:", "", *[f"- {line}" for line in footnotes.lines()], ""]
    return lines


def _below_majority_accuracy(table: pd.DataFrame, reference: dict, classes: int) -> str:
    """Rows under the reference's accuracy but clear of collapse: on imbalanced test data a row
    that spreads its predictions over the classes (class-balanced training, epochs chosen by
    validation macro F1) gives up majority-class hits, which accuracy counts and macro F1 weighs
    as one class of several."""
    below = table[(table["accuracy"] < reference["accuracy"]) & ~table["collapsed"].astype(bool)]
    if below.empty or reference["accuracy"] < 1.5 / classes:  # balanced: nothing to explain
        return ""
    return (f" {len(below)} of {len(table)} rows ({', '.join(below['method'])}) score below its "
            f"accuracy ({reference['accuracy']:.1%}) while above its macro F1: on data this "
            "imbalanced, predictions spread over the classes cost majority-class hits, so compare "
            "such rows by macro F1.")
