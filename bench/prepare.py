"""Eye-region datasets made from face datasets: what ``bench prepare eyes`` and ``bench prepare
emug`` do.

Every image of a registered face dataset is decoded, its eye region located by
:class:`bench.eyecrop.EyeCropper` and the crop written in the REED layout,
``OUT/<subject>/<emotion>[/<sequence>]/<name>.png``, which ``--dataset folder`` (and ``emug``) read.
A sequence sub-folder is used only where a subject has several sequences of one emotion (CK+
neutrals, MUG takes), so frame order survives. Datasets without subject ids (RAF-DB, FER2013) get one
subject folder per image, named after its official split, so a later subject-disjoint split is an
image split; the official split is kept in the manifest.

``OUT/manifest.csv`` has one row per source image: source, subject, emotion, sequence, frame,
split, file (relative to OUT; empty when dropped), the box in source pixels and the method
(``detected``, ``fallback`` or ``dropped``). Re-running on the same OUT is safe: files are written
atomically, the manifest last, and crops listed in the previous manifest but not produced again are
removed. A non-empty OUT without a manifest is refused, so nothing of the user's is overwritten.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from .classes import canonical_name, class_set
from .data import list_samples
from .data.dataset import image_subject, safe_name
from .data.folder import MANIFEST, list_folder
from .data.registry import SOURCE
from .errors import DatasetError
from .eyecrop import EyeCropper, Located
from .files import atomic_write

#: The registered formats that hold faces (``reed`` and ``emug`` already hold eyes).
FACE_DATASETS = ("ckplus", "fer2013", "folder", "jaffe", "rafdb")
ON_MISS = ("fallback", "drop")
MUG_LAYOUT = ("ROOT/<subject>/<emotion>/<take>/<frames> (MUG's subjects3 folder, or the folder "
              "holding it), emotion folders anger, disgust, fear, happiness, neutral, sadness, "
              "surprise")


@dataclass
class PrepareReport:
    """What a preparation did; :meth:`summary` is what the CLI prints."""

    out: Path
    images: int = 0
    methods: Counter = field(default_factory=Counter)
    other_classes: Counter = field(default_factory=Counter)
    unreadable: list[str] = field(default_factory=list)
    removed_stale: int = 0

    @property
    def written(self) -> int:
        return self.methods["detected"] + self.methods["fallback"]

    @property
    def detection_rate(self) -> float:
        readable = self.images - len(self.unreadable)
        return self.methods["detected"] / readable if readable else 0.0

    def summary(self) -> str:
        lines = [f"wrote {self.written} eye crops of {self.images} images to {self.out} "
                 f"(detected {self.methods['detected']}, fallback {self.methods['fallback']}, "
                 f"dropped {self.methods['dropped']})"]
        if self.other_classes:
            lines.append("left out (outside the class set): " + ", ".join(
                f"{k} {v}" for k, v in sorted(self.other_classes.items())))
        if self.unreadable:
            lines.append(f"skipped {len(self.unreadable)} unreadable file(s), e.g. "
                         f"{self.unreadable[0]}")
        if self.removed_stale:
            lines.append(f"removed {self.removed_stale} crop(s) left from an earlier run")
        lines.append(f"detection rate: {100 * self.detection_rate:.1f} %")
        return "\n".join(lines)


def prepare_eyes(dataset: str, root, out, classes: int = 7, cropper: EyeCropper | None = None,
                 on_miss: str = "fallback", preview=None, progress: bool = True,
                 seed: int = 0) -> PrepareReport:
    """Crop the eye region of every image of a registered face dataset into ``out``."""
    if dataset not in FACE_DATASETS:
        raise DatasetError(f"cannot crop eyes from {dataset!r}; face datasets: "
                           f"{', '.join(FACE_DATASETS)}")
    listing, path = list_samples(dataset, root, classes)
    _refuse_out_inside(out, path)
    return _prepare(listing.table, listing.decode, dataset, out, classes, cropper, on_miss,
                    preview, progress, seed, source=(dataset, path))


def prepare_emug(mug_root, out, classes: int = 7, cropper: EyeCropper | None = None,
                 on_miss: str = "drop", preview=None, progress: bool = True,
                 seed: int = 0) -> PrepareReport:
    """EMUG as the paper made it: eye crops of every MUG frame, frames without eyes dropped."""
    root = Path(mug_root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"MUG root {root} does not exist. Expected layout: {MUG_LAYOUT}")
    if (root / "subjects3").is_dir():
        root = root / "subjects3"
    _refuse_out_inside(out, root)
    try:
        table = list_folder(root)
    except DatasetError as err:
        raise DatasetError(f"{err}. Expected layout: {MUG_LAYOUT}") from None
    from .data.images import read_image

    return _prepare(table, read_image, "mug", out, classes, cropper, on_miss, preview, progress,
                    seed)


def _refuse_out_inside(out, root: Path | None) -> None:
    """Crops written inside the source folder would be read back as source images next time."""
    if root is None:
        return
    out, root = Path(out).expanduser().resolve(), Path(root).expanduser().resolve()
    if out == root or root in out.parents:
        raise DatasetError(f"--out {out} is inside the data root {root}: the next run would read "
                           "its crops as source images; choose a folder outside it")


def _prepare(table, decode, name, out, classes, cropper, on_miss, preview, progress, seed,
             source=None):
    if on_miss not in ON_MISS:
        raise DatasetError(f"unknown --on-miss {on_miss!r}; valid: {', '.join(ON_MISS)}")
    out = Path(out).expanduser()
    old = _previous_manifest(out)
    cropper = cropper or EyeCropper()
    table = _with_classes(table, classes)
    report = PrepareReport(out=out, images=len(table))
    report.other_classes = Counter(table.loc[~table["keep"], "emotion"])
    table = table[table["keep"]].reset_index(drop=True)
    if table.empty:
        raise DatasetError(f"{name}: none of the images belongs to the {classes}-class set "
                           f"{list(class_set(classes))}")
    report.images = len(table)
    table["subject"] = _subjects(table)
    table["file"] = _out_names(table)

    crops, rows, samples = {}, [], []
    for row in tqdm(table.itertuples(index=False), total=len(table), desc="locating eyes",
                    disable=not progress, leave=False):
        try:
            image = np.asarray(decode(row.source))
        except Exception as err:  # noqa: BLE001 - any decoder failure means "unreadable file"
            report.unreadable.append(f"{row.path}: {type(err).__name__}: {err}")
            continue
        found = cropper.locate(image)
        method = "dropped" if found.method == "fallback" and on_miss == "drop" else found.method
        report.methods[method] += 1
        rows.append(_manifest_row(row, row.path, found, method))
        if method != "dropped":
            crops[row.file] = cropper.crop(image, found.box)
            samples.append((image, found, crops[row.file]))

    if report.unreadable and len(report.unreadable) == len(table):
        raise DatasetError(f"{name}: none of the {len(table)} images could be read, e.g. "
                           f"{report.unreadable[0]}")
    if cropper.detector == "haar" and report.methods["detected"] == 0:
        raise DatasetError(
            f"{name}: no eyes were found in any of the {len(rows)} images; are they faces? "
            "(--detector fixed crops the upper face band without detection)")

    for file, crop in tqdm(crops.items(), desc="writing crops", disable=not progress, leave=False):
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="PNG")
        atomic_write(out / file, buffer.getvalue())
    report.removed_stale = _remove_stale(out, old, set(crops))
    manifest = pd.DataFrame(rows)
    manifest["file"] = manifest["file"].where(manifest["method"] != "dropped", "")
    if source is not None and source[1] is not None:
        write_source(out, *source)
    atomic_write(out / MANIFEST, manifest.to_csv(index=False))
    if preview is not None:
        write_contact_sheet(samples, preview, seed=seed)
    return report


def write_source(out: Path, dataset: str, root: Path) -> None:
    """``OUT/source.json``: the face dataset the crops were cut from, its root relative to OUT, so
    that the folder can be moved with its source (see :func:`bench.data.prepared_source`)."""
    rel = os.path.relpath(Path(root).expanduser().resolve(), Path(out).expanduser().resolve())
    atomic_write(out / SOURCE, json.dumps({"dataset": dataset, "root": rel}, indent=1) + "\n")


def _with_classes(table: pd.DataFrame, classes: int) -> pd.DataFrame:
    table = table.copy()
    table["path"] = (table["file"].astype(str) if "file" in table.columns
                     else [f"row{i}" for i in table.index])  # FER2013: the CSV line
    table["emotion"] = [canonical_name(v) for v in table["label"]]
    table["keep"] = table["emotion"].isin(class_set(classes))
    return table


def _subjects(table: pd.DataFrame) -> list[str]:
    if "subject" in table.columns:
        return [safe_name(s) for s in table["subject"]]
    split = table["split"] if "split" in table.columns else pd.Series("all", index=table.index)
    return [image_subject(s, p) for s, p in zip(split, table["path"])]


def _out_names(table: pd.DataFrame) -> list[str]:
    """``<subject>/<emotion>[/<sequence>]/<name>.png``, unique and stable across runs."""
    has_seq = "sequence" in table.columns
    many = (table.groupby(["subject", "emotion"])["sequence"].transform("nunique") > 1
            if has_seq else pd.Series(False, index=table.index))
    names = []
    for i, row in table.iterrows():
        stem = Path(row["path"]).stem
        parts = [row["subject"], row["emotion"]]
        if many[i]:
            parts.append(safe_name(str(row["sequence"]).replace("/", "_")))
        names.append("/".join(parts + [safe_name(stem) + ".png"]))
    seen = Counter(names)
    if max(seen.values()) > 1:  # same stem twice in one folder (e.g. a.jpg and a.png)
        counts = Counter()
        for k, n in enumerate(names):
            if seen[n] > 1:
                counts[n] += 1
                names[k] = n[:-4] + f"-{counts[n]}.png"
    return names


def _manifest_row(row, source, found: Located, method: str) -> dict:
    return {
        "source": source, "subject": row.subject, "emotion": row.emotion,
        "sequence": getattr(row, "sequence", ""), "frame": getattr(row, "frame", ""),
        "split": getattr(row, "split", ""), "file": row.file,
        "x": found.box.x, "y": found.box.y, "w": found.box.w, "h": found.box.h, "method": method,
    }


def _previous_manifest(out: Path) -> set[str]:
    """Files listed by the last run's manifest; refuses a non-empty folder not made here."""
    if not out.exists():
        return set()
    if not out.is_dir():
        raise DatasetError(f"--out {out} is a file, not a folder")
    manifest = out / MANIFEST
    if not manifest.is_file():
        if any(out.iterdir()):
            raise DatasetError(f"--out {out} is not empty and has no {MANIFEST}, so it was not "
                               "made by bench prepare; choose an empty or new folder")
        return set()
    try:
        files = pd.read_csv(manifest, dtype=str, keep_default_na=False)["file"]
    except (KeyError, pd.errors.ParserError, pd.errors.EmptyDataError):
        raise DatasetError(f"{manifest} is not a bench prepare manifest; choose another --out") from None
    return {f for f in files if f}


def _remove_stale(out: Path, old: set[str], new: set[str]) -> int:
    removed = 0
    for file in sorted(old - new):
        path = (out / file).resolve()
        if out.resolve() in path.parents and path.is_file():
            path.unlink()
            removed += 1
            for parent in path.parents:  # drop folders the removal emptied
                if parent == out.resolve() or any(parent.iterdir()):
                    break
                parent.rmdir()
    return removed


def write_contact_sheet(samples, path, n: int = 24, seed: int = 0) -> Path:
    """A PNG of ``n`` random (face with its box, crop) pairs, to check the crops by eye."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    if not samples:
        raise DatasetError("no crops to preview")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(samples), size=min(n, len(samples)), replace=False)
    cols = 4
    rows = -(-len(chosen) // cols)
    fig, axes = plt.subplots(rows, 2 * cols, figsize=(2 * cols * 1.6, rows * 1.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    colours = {"detected": "lime", "fallback": "orange"}
    for k, index in enumerate(chosen):
        image, found, crop = samples[index]
        face_ax, crop_ax = axes[k // cols, 2 * (k % cols)], axes[k // cols, 2 * (k % cols) + 1]
        face_ax.imshow(image, cmap="gray")
        face_ax.add_patch(Rectangle((found.box.x, found.box.y), found.box.w, found.box.h,
                                    fill=False, lw=1.5, ec=colours[found.method]))
        face_ax.set_title(found.method, fontsize=7)
        crop_ax.imshow(crop, cmap="gray")
    fig.suptitle("eye crops: source face (green box detected, orange fallback) | crop", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(Path(path), buffer.getvalue())
