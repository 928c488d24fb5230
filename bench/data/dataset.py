"""The in-memory dataset every loader returns, and the shared assembly step behind the loaders.

Loaders only *list* samples (a table with the raw label, subject, sequence, frame, official split
and a source to decode); :func:`assemble` does the rest the same way for every format: class-name
mapping, dropping and counting classes outside the set, decoding (in threads), colour handling,
resizing and a stable (subject, sequence, frame) order.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ..classes import canonical_name, class_set
from ..errors import BenchError, DatasetError, DataWarning
from .images import resize_square, to_common_mode


@dataclass(frozen=True, eq=False)
class EmotionDataset:
    """Images with emotion labels, subject ids and frame order.

    ``images`` is uint8, ``(N, H, W)`` for grey data or ``(N, H, W, 3)`` for colour. ``labels`` are
    indices into ``class_names``. ``subjects``/``sequences``/``frames`` are ``None`` for datasets
    without subject ids (RAF-DB, FER2013), which carry an official ``split`` instead.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    subjects: np.ndarray | None = None
    sequences: np.ndarray | None = None
    frames: np.ndarray | None = None
    split: np.ndarray | None = None
    sources: np.ndarray | None = None
    root: str | None = None
    #: images left out because their class is outside the chosen set, by canonical class name
    dropped: dict[str, int] = field(default_factory=dict)
    #: files that could not be decoded, with the reason
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def label_names(self) -> np.ndarray:
        """Labels as class-name strings."""
        return np.asarray(self.class_names, dtype=object)[self.labels]

    @property
    def has_subjects(self) -> bool:
        return self.subjects is not None

    def subset(self, index) -> EmotionDataset:
        """The samples at ``index`` (an integer array or boolean mask), in that order."""

        def take(a):
            return None if a is None else a[index]

        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            subjects=take(self.subjects),
            sequences=take(self.sequences),
            frames=take(self.frames),
            split=take(self.split),
            sources=take(self.sources),
        )

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(n) for name, n in zip(self.class_names, counts)}

    def summary(self) -> str:
        """A one-paragraph description for logs and reports."""
        shape = "x".join(str(s) for s in self.images.shape[1:])
        parts = [f"{self.name}: {len(self)} images ({shape})"]
        if self.has_subjects:
            parts.append(f"{len(np.unique(self.subjects))} subjects")
        parts.append("classes " + ", ".join(f"{k} {v}" for k, v in self.class_counts().items()))
        if self.dropped:
            parts.append(
                "dropped (outside the class set) "
                + ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()))
            )
        if self.skipped:
            parts.append(f"skipped {len(self.skipped)} unreadable files")
        return "; ".join(parts)


def assemble(
    name: str,
    table: pd.DataFrame,
    decode: Callable[[object], np.ndarray],
    classes: int,
    image_size: int | None,
    root: str | None = None,
    threads: int = 8,
) -> EmotionDataset:
    """Build an :class:`EmotionDataset` from a listing.

    ``table`` has a ``label`` column (raw class names), a ``source`` column (whatever ``decode``
    takes) and optionally ``subject``, ``sequence``, ``frame``, ``split`` and ``file`` (the path
    reported for each image).
    """
    names = class_set(classes)
    if table.empty:
        raise DatasetError(f"{name}: no images found" + (f" under {root}" if root else ""))
    table = table.copy()
    table["class"] = [_class_of(label, where) for label, where in
                      zip(table["label"], table["file"] if "file" in table else table["source"])]
    keep = table["class"].isin(names)
    dropped = dict(Counter(table.loc[~keep, "class"]))
    table = table[keep]
    if table.empty:
        raise DatasetError(
            f"{name}: none of the images belongs to the {classes}-class set {list(names)}"
        )
    order = [c for c in ("subject", "sequence", "frame") if c in table.columns]
    if order:
        table = table.sort_values(order, kind="stable")

    with ThreadPoolExecutor(max_workers=threads) as pool:
        decoded = list(pool.map(lambda s: _safe_decode(decode, s, image_size), table["source"]))
    ok = np.array([isinstance(d, np.ndarray) for d in decoded], dtype=bool)
    where = table["file"] if "file" in table.columns else [f"row {i}" for i in table.index]
    skipped = [f"{src}: {err}" for src, err, good in zip(where, decoded, ok) if not good]
    if skipped:
        warnings.warn(
            f"{name}: skipped {len(skipped)} unreadable image(s), e.g. {skipped[0]}", DataWarning,
            stacklevel=2)
    table = table[ok]
    if table.empty:
        raise DatasetError(f"{name}: none of the images could be read, e.g. {skipped[0]}")
    images = to_common_mode([d for d, good in zip(decoded, ok) if good])
    if images is None:
        raise DatasetError(
            f"{name}: images have different sizes; pass image_size to resize them to a square"
        )

    def column(col, dtype):
        return table[col].to_numpy(dtype=dtype) if col in table.columns else None

    return EmotionDataset(
        name=name,
        images=images,
        labels=np.array([names.index(c) for c in table["class"]], dtype=np.int64),
        class_names=names,
        subjects=column("subject", object),
        sequences=column("sequence", object),
        frames=column("frame", np.int64),
        split=column("split", object),
        sources=column("file", object),
        root=root,
        dropped=dropped,
        skipped=skipped,
    )


def _class_of(label, where) -> str:
    """The canonical class of a raw label; an unknown one names an image that carries it."""
    try:
        return canonical_name(label)
    except BenchError as err:
        raise BenchError(f"{err} (e.g. {where})") from None


def _safe_decode(decode, source, image_size):
    """Decode and resize one image; return the error text instead of raising."""
    try:
        image = decode(source)
        return resize_square(image, image_size) if image_size else image
    except Exception as err:  # noqa: BLE001 - any decoder failure means "unreadable file"
        return f"{type(err).__name__}: {err}".strip()


def safe_name(text: str) -> str:
    """``text`` usable as a folder name (what ``bench prepare`` names subjects and files by)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._") or "x"


def image_subject(split, source) -> str:
    """The subject id ``bench prepare eyes`` gives an image of a dataset without subject ids
    (RAF-DB, FER2013): each image its own subject, ``<official split>-<file stem>``."""
    return safe_name(f"{split}-{Path(str(source)).stem}")


def subject_ids(dataset: EmotionDataset) -> np.ndarray | None:
    """Who is in each image: the dataset's subject ids, or for a dataset without them but with
    files and an official split, :func:`image_subject` of each image (so that eye crops cut from
    it can be matched to their faces); ``None`` when neither is known (FER2013's CSV rows)."""
    if dataset.subjects is not None:
        return np.asarray(dataset.subjects).astype(str)
    if dataset.sources is None or dataset.split is None:
        return None
    return np.array([image_subject(s, f) for s, f in zip(dataset.split, dataset.sources)])
