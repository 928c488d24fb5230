"""Eye datasets in the REED layout: ``ROOT/<subject>/<emotion>/<frames>``.

``reed`` and ``emug`` are this layout with the paper's subject splits (10/5/10 of 25 and 28/12/12
of 52 subjects, kept as fractions when a copy has a different subject count); ``folder`` is the same
layout at any root, for a user's own data. An emotion folder may hold its frames directly (one
sequence) or in sub-folders (one sequence each, e.g. REED's two recordings per emotion). Frames are
ordered by natural file-name order (``2.png`` before ``10.png``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import DatasetError
from .images import is_image_file, read_image
from .registry import Listing, register_dataset

LAYOUT = (
    "ROOT/<subject>/<emotion>/<frame images> (or ROOT/<subject>/<emotion>/<sequence>/<frames>); "
    "emotion folders are named like anger/angry, disgust, fear, happiness/happy, sadness/sad, "
    "surprise, neutral/calm, and .png/.jpg/.bmp/.tif files are read"
)


def natural_key(text: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]


def list_folder(root: Path) -> pd.DataFrame:
    """One row per image file of the subject/emotion[/sequence] layout."""
    rows = []
    for subject_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for emotion_dir in sorted(p for p in subject_dir.iterdir() if p.is_dir()):
            files = sorted(
                (p for p in emotion_dir.rglob("*") if is_image_file(p)),
                key=lambda p: natural_key(str(p.relative_to(emotion_dir))),
            )
            for frame, path in enumerate(files):
                sub = path.parent.relative_to(emotion_dir).as_posix()
                seq = f"{subject_dir.name}/{emotion_dir.name}" + ("" if sub == "." else f"/{sub}")
                rows.append((path, str(path), emotion_dir.name, subject_dir.name, seq, frame))
    table = pd.DataFrame(rows, columns=["source", "file", "label", "subject", "sequence", "frame"])
    if table.empty:
        raise DatasetError(f"no images in the subject/emotion layout under {root}")
    return table


def lister(root, classes=4) -> Listing:
    return Listing(list_folder(root), read_image)


register_dataset("folder", description="your own eye (or face) images in the REED layout, any root",
                 layout=LAYOUT)(lister)
register_dataset("reed", description="REED: infrared eye frames, 25 subjects, 7 emotions (private)",
                 layout=LAYOUT, split=(0.4, 0.2, 0.4))(lister)
register_dataset("emug", description="EMUG: eye crops of the MUG faces, 52 subjects (`bench "
                 "prepare emug` makes it from MUG)", layout=LAYOUT,
                 split=(28 / 52, 12 / 52, 12 / 52))(lister)
