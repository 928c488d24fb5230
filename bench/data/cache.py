"""An on-disk cache of loaded datasets, so that a second load skips decoding and resizing.

A loaded :class:`~bench.data.dataset.EmotionDataset` is stored as ``images.npy`` (read back as a
memory map) and ``meta.json`` in ``$BENCH_CACHE/<key>/`` (default: ``~/.cache/eye-emotion-bench``;
``BENCH_CACHE=off`` disables the cache). The key is a hash of everything the arrays depend on: the
dataset name, resolved root, class set, image size and options, the source code of the format's
module, of the assembly and of the image decoder (a changed loader, generator or decoder is a
different dataset), and for file datasets every listed
file's path, size and modification time, so an added, removed, replaced or edited file misses the
cache. Entries are written to a temporary folder and renamed into place, so an interrupted load
never leaves a half-written entry.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .dataset import EmotionDataset
from .images import read_image

#: bump when the stored layout changes
CACHE_FORMAT = 1
_OFF = {"0", "off", "no", "false", "none"}


def cache_dir() -> Path | None:
    """The cache folder, or ``None`` when ``$BENCH_CACHE`` turns the cache off."""
    value = os.environ.get("BENCH_CACHE")
    if value is not None and value.strip().lower() in _OFF:
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "eye-emotion-bench"


def _module_hash(function) -> str:
    try:
        source = Path(inspect.getsourcefile(function)).read_bytes()
    except (TypeError, OSError):
        source = repr(function).encode()
    return hashlib.sha256(source).hexdigest()


def _file_stats(table: pd.DataFrame) -> list:
    if "file" not in table.columns:
        return []
    stats = []
    for file in table["file"]:
        try:
            st = os.stat(file)
            stats.append((str(file), st.st_size, st.st_mtime_ns))
        except OSError:
            stats.append((str(file), None, None))
    return stats


def dataset_key(name: str, root, classes: int, image_size, options: dict, lister,
                table: pd.DataFrame | None = None, extra_files=()) -> str:
    """The cache key of one load. ``table`` (a listing) adds its rows and its files' stats;
    ``extra_files`` adds the stats of files the listing does not name (e.g. a label list)."""
    digest = hashlib.sha256()
    head = {"format": CACHE_FORMAT, "name": name, "root": None if root is None else str(root),
            "classes": classes, "image_size": image_size, "options": sorted(options.items()),
            "code": [_module_hash(lister), _module_hash(EmotionDataset), _module_hash(read_image)]}
    digest.update(json.dumps(head, default=str).encode())
    if table is not None:
        columns = [c for c in table.columns if c != "source" or "file" not in table.columns]
        hashed = pd.util.hash_pandas_object(table[columns].astype(str), index=True)
        digest.update(hashed.to_numpy().tobytes())
        digest.update(json.dumps(_file_stats(table)).encode())
    for path in extra_files:
        digest.update(json.dumps(_file_stats(pd.DataFrame({"file": [str(path)]}))).encode())
    return digest.hexdigest()[:32]


_ARRAYS = ("labels", "subjects", "sequences", "frames", "split", "sources")


def _read_entry(folder: Path) -> EmotionDataset:
    """The entry in ``folder``; raises when any part is missing, damaged or inconsistent."""
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    images = np.load(folder / "images.npy", mmap_mode="r")
    columns = {k: None if meta[k] is None else np.asarray(
        meta[k], dtype=np.int64 if k in ("labels", "frames") else object) for k in _ARRAYS}
    n = len(columns["labels"])
    if images.dtype != np.uint8 or len(images) != n or any(
            v is not None and len(v) != n for v in columns.values()):
        raise ValueError(f"{len(images)} {images.dtype} images for {n} labels")
    return EmotionDataset(name=meta["name"], images=images, class_names=tuple(meta["class_names"]),
                          root=meta["root"], dropped=meta["dropped"], skipped=meta["skipped"],
                          **columns)


def _discard(folder: Path) -> None:
    """Remove a damaged entry (renamed away first, so no reader sees it half deleted)."""
    try:
        doomed = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.damaged."))
        os.replace(folder, doomed / "entry")
        shutil.rmtree(doomed, ignore_errors=True)
    except OSError:
        pass


def load_cached(key: str) -> EmotionDataset | None:
    """The stored dataset, its images memory-mapped read-only; ``None`` on a miss. A damaged
    entry (unreadable, a key missing, arrays of different lengths) is removed, so it is a miss
    once and rewritten by the load that follows."""
    base = cache_dir()
    if base is None or not (base / key).exists():
        return None
    try:
        return _read_entry(base / key)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        _discard(base / key)
        return None


def store(key: str, data: EmotionDataset) -> None:
    """Write ``data`` under ``key`` atomically; a cache that cannot be written is skipped."""
    base = cache_dir()
    if base is None:
        return
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=base, prefix=f".{key}."))
        try:
            np.save(tmp / "images.npy", np.ascontiguousarray(data.images))
            meta = {k: None if getattr(data, k) is None else getattr(data, k).tolist()
                    for k in _ARRAYS}
            meta.update(name=data.name, class_names=list(data.class_names), root=data.root,
                        dropped=data.dropped, skipped=data.skipped)
            (tmp / "meta.json").write_text(json.dumps(meta, default=str), encoding="utf-8")
            try:
                os.replace(tmp, base / key)
            except OSError:  # another process stored the same entry first
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    except OSError:
        return
