"""FER2013: one CSV with columns ``emotion,pixels,Usage``.

``pixels`` holds 2304 space-separated grey values (48x48); ``emotion`` 0-6 = anger, disgust, fear,
happiness, sadness, surprise, neutral; ``Usage`` Training / PublicTest / PrivateTest is the official
train / validation / test split. The root is the CSV itself or a folder holding ``fer2013.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DatasetError
from .registry import Listing, register_dataset

LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
USAGE = {"training": "train", "publictest": "val", "privatetest": "test"}
LAYOUT = ("ROOT/fer2013.csv (or the CSV path itself) with columns emotion,pixels,Usage; "
          "emotion 0-6, 2304 pixel values per row, Usage Training/PublicTest/PrivateTest")


def decode_pixels(text: str) -> np.ndarray:
    values = np.array(text.split(), dtype=np.int64)
    side = int(round(np.sqrt(values.size)))
    if side * side != values.size or values.size == 0:
        raise ValueError(f"{values.size} pixel values do not form a square image")
    if values.min() < 0 or values.max() > 255:
        raise ValueError("pixel values outside 0-255")
    return values.astype(np.uint8).reshape(side, side)


@register_dataset("fer2013", description="FER2013: 35,887 48x48 grey faces, official "
                  "Training/PublicTest/PrivateTest split", layout=LAYOUT, split="official",
                  root_may_be_file=True)
def list_fer2013(root, classes=7) -> Listing:
    csv = root / "fer2013.csv" if root.is_dir() else root
    if not csv.is_file():
        raise DatasetError(f"no fer2013.csv in {root}")
    try:
        raw = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DatasetError(f"{csv} is not a readable CSV: {err}") from None
    raw.columns = [c.strip().lower() for c in raw.columns]
    missing = {"emotion", "pixels", "usage"} - set(raw.columns)
    if missing:
        found = ", ".join(repr(c[:20] + ("..." if len(c) > 20 else "")) for c in raw.columns[:5])
        more = f" and {len(raw.columns) - 5} more" if len(raw.columns) > 5 else ""
        hint = "" if set(raw.columns) & {"emotion", "pixels", "usage"} else \
            " (is its header line emotion,pixels,Usage missing?)"
        raise DatasetError(f"{csv} lacks column(s) {sorted(missing)}; found {found}{more}{hint}")
    emotion = pd.to_numeric(raw["emotion"], errors="coerce")
    bad = ~emotion.isin(range(len(LABELS)))
    if bad.any():
        row = int(np.flatnonzero(bad)[0]) + 2
        raise DatasetError(f"{csv}:{row}: emotion must be 0-6, got {raw['emotion'].iloc[row - 2]!r}")
    usage = raw["usage"].str.strip().str.lower().map(USAGE)
    if usage.isna().any():
        row = int(np.flatnonzero(usage.isna())[0]) + 2
        raise DatasetError(f"{csv}:{row}: Usage must be Training, PublicTest or PrivateTest, "
                           f"got {raw['usage'].iloc[row - 2]!r}")
    table = pd.DataFrame({
        "label": [LABELS[int(e)] for e in emotion],
        "source": raw["pixels"],
        "split": usage,
    })
    table.index = table.index + 2  # so that skipped rows are reported by their CSV line number
    return Listing(table, decode_pixels)
