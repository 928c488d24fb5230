"""Eye datasets in the REED layout: ``ROOT/<subject>/<emotion>/<frames>``.

``reed`` and ``emug`` are this layout with the paper's subject splits (10/5/10 of 25 and 28/12/12
of 52 subjects, kept as fractions when a copy has a different subject count); ``folder`` is the same
layout at any root, for a user's own data. An emotion folder may hold its frames directly (one
sequence) or in sub-folders (one sequence each, e.g. REED's two recordings per emotion). Frames are
ordered by natural file-name order (``2.png`` before ``10.png``).
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import pandas as pd

from ..errors import BenchError, DatasetError, DataWarning
from .images import IMAGE_SUFFIXES, read_image
from .registry import SOURCE, Listing, dataset_info, register_dataset

#: written by ``bench prepare`` beside its crops (see :mod:`bench.prepare`)
MANIFEST = "manifest.csv"

LAYOUT = (
    "ROOT/<subject>/<emotion>/<frame images> (or ROOT/<subject>/<emotion>/<sequence>/<frames>); "
    "emotion folders are named like anger/angry, disgust, fear, happiness/happy, sadness/sad, "
    "surprise, neutral/calm, and .png/.jpg/.bmp/.tif files are read"
)


def natural_key(text: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def list_folder(root: Path) -> pd.DataFrame:
    """One row per image file of the subject/emotion[/sequence] layout (``os.scandir``, since
    a warm cached load is mostly this walk)."""
    rows = []
    for subject in _dirs(str(root)):
        for emotion in _dirs(os.path.join(root, subject)):
            base = os.path.join(root, subject, emotion)
            files = []
            for folder, dirs, names in os.walk(base):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                rel = os.path.relpath(folder, base)
                files += [(rel, n) for n in names
                          if n.lower().endswith(IMAGE_SUFFIXES) and not n.startswith(".")]
            files.sort(key=lambda f: natural_key(f[1] if f[0] == "." else f"{f[0]}/{f[1]}"))
            for frame, (rel, name) in enumerate(files):
                path = os.path.join(base, name) if rel == "." else os.path.join(base, rel, name)
                seq = f"{subject}/{emotion}" + ("" if rel == "." else "/" + rel.replace(os.sep, "/"))
                rows.append((path, path, emotion, subject, seq, frame))
    table = pd.DataFrame(rows, columns=["source", "file", "label", "subject", "sequence", "frame"])
    if table.empty:
        flat = _flat_images(root)
        hint = (f": its {flat} images lie directly in it, not in subject/emotion folders (JAFFE's "
                f"flat folder is read by --dataset jaffe)") if flat else ""
        raise DatasetError(f"no images in the subject/emotion layout under {root}{hint}")
    return table


def _dirs(path: str) -> list[str]:
    """The visible sub-folders of ``path``. Plain files there, and links that cannot be followed
    (one that points at itself), are left out with one warning per folder that counts and names
    them: a misplaced file is likely a mistake, and the user should know it was not read."""
    names, stray = [], []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError as err:  # e.g. ELOOP: a link to itself
                warnings.warn(f"skipping {entry.path}: {err.strerror}", DataWarning, stacklevel=2)
                continue
            if is_dir:
                names.append(entry.name)
            elif not entry.name.lower().endswith((".json", ".csv", ".txt", ".md")):
                stray.append(entry.name)
    if stray:
        stray.sort(key=natural_key)
        warnings.warn(f"skipping {len(stray)} file(s) in {path} where the layout has folders "
                      f"({LAYOUT.split(';')[0]}), e.g. {stray[0]}", DataWarning, stacklevel=2)
    return sorted(names)


def _flat_images(root) -> int:
    """How many images lie directly in ``root``: a flat folder (JAFFE's, or a class-less dump)
    deserves an error that says so rather than "no images"."""
    with os.scandir(root) as entries:
        return sum(e.is_file() and e.name.lower().endswith(IMAGE_SUFFIXES) for e in entries)


def lister(root, classes=4) -> Listing:
    table = list_folder(root)
    split = prepared_official_split(root, table)
    if split is not None:
        table["split"] = split
    return Listing(table, read_image)


def prepared_official_split(root: Path, table: pd.DataFrame) -> list[str] | None:
    """Each image's official split, for eye crops that ``bench prepare eyes`` cut from a dataset
    that has official lists instead of subject ids (RAF-DB, FER2013): read from its manifest, so
    that the crops are split as their faces are. ``None`` for any other folder, or (with a
    warning) when some images are not in the manifest."""
    try:
        source = json.loads((Path(root) / SOURCE).read_text(encoding="utf-8"))["dataset"]
        if dataset_info(source).split != "official":
            return None
        manifest = pd.read_csv(Path(root) / MANIFEST, dtype=str, keep_default_na=False)
        by_file = dict(zip(manifest["file"], manifest["split"]))
    except (OSError, ValueError, KeyError, TypeError, BenchError):
        return None
    files = [os.path.relpath(f, root).replace(os.sep, "/") for f in table["file"]]
    split = [by_file.get(f) for f in files]
    missing = [f for f, s in zip(files, split) if s not in ("train", "val", "test")]
    if missing:
        warnings.warn(f"{len(missing)} image(s) under {root} have no official split in its "
                      f"{MANIFEST} (e.g. {missing[0]}): the crops are split by subject instead",
                      DataWarning, stacklevel=2)
        return None
    return split


register_dataset("folder", description="your own eye (or face) images in the REED layout, any root",
                 layout=LAYOUT, named_by_root=True)(lister)
register_dataset("reed", description="REED: infrared eye frames, 25 subjects, 7 emotions (private)",
                 layout=LAYOUT, split=(0.4, 0.2, 0.4))(lister)
register_dataset("emug", description="EMUG: eye crops of the MUG faces, 52 subjects (`bench "
                 "prepare emug` makes it from MUG)", layout=LAYOUT,
                 split=(28 / 52, 12 / 52, 12 / 52))(lister)
