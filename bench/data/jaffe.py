"""JAFFE: ``<subject>.<EMOTION><n>.<serial>.tiff`` in one folder (e.g. ``KA.AN1.39.tiff``)."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pandas as pd

from ..errors import DatasetError, DataWarning
from .folder import MANIFEST
from .images import is_image_file, read_image
from .registry import Listing, register_dataset

LAYOUT = "ROOT/<subject>.<EMOTION><n>.<serial>.tiff, emotion codes AN DI FE HA NE SA SU"
NAME = re.compile(r"^([A-Za-z0-9]+)\.([A-Za-z]{2})(\d+)\.(\d+)$")


@register_dataset("jaffe", description="JAFFE: 213 posed faces of 10 Japanese women",
                  layout=LAYOUT)
def list_jaffe(root, classes=7) -> Listing:
    rows, other = [], []
    for path in sorted(p for p in _files(root) if is_image_file(p)):
        m = NAME.match(path.stem)
        if not m:
            other.append(path)  # JAFFE copies often carry a contact sheet beside the images
            continue
        subject, code, n, _serial = m.groups()
        subject = subject.upper()
        rows.append((path, str(path), code, subject, f"{subject}.{code.upper()}", int(n)))
    if not rows:
        raise DatasetError(f"no JAFFE-named images (<subject>.<EMOTION><n>.<serial>.tiff) under {root}")
    if other:
        warnings.warn(f"skipping {len(other)} image(s) not named <subject>.<EMOTION><n>.<serial> "
                      f"under {root}, e.g. {other[0]}", DataWarning, stacklevel=2)
    table = pd.DataFrame(rows, columns=["source", "file", "label", "subject", "sequence", "frame"])
    return Listing(table, read_image)


def _files(root):
    """The files under ``root``, except in folders of eye crops that ``bench prepare`` made (they
    keep JAFFE's names, but are read with ``--dataset folder``), which are named in a warning."""
    for folder, dirs, names in os.walk(root):
        crops = sorted(d for d in dirs if (Path(folder) / d / MANIFEST).is_file())
        if crops:
            warnings.warn(f"skipping {Path(folder) / crops[0]}"
                          + (f" and {len(crops) - 1} more" if len(crops) > 1 else "")
                          + ": eye crops made by `bench prepare` (read them with --dataset "
                          "folder), not JAFFE faces", DataWarning, stacklevel=3)
        dirs[:] = sorted(d for d in dirs if d not in crops and not d.startswith("."))
        yield from (Path(folder) / n for n in names)
