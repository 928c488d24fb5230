"""The dataset registry: ``register_dataset``, ``list_datasets`` and ``load_dataset``.

Each format lives in its own module and registers itself with a description, the layout it expects
(quoted verbatim in error messages), and the split rule the protocol applies to it.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from ..errors import BenchError, DatasetError
from .cache import cache_dir, dataset_key, load_cached, store
from .dataset import EmotionDataset, assemble


class Listing(NamedTuple):
    """What a format's lister returns: one row per image (``label``, ``source`` and optionally
    ``subject``, ``sequence``, ``frame``, ``split``, ``file``) and how to decode a ``source``."""

    table: pd.DataFrame
    decode: Callable[[object], object]

#: Subject fractions (train, validation, test) for datasets with subject ids and no rule of their own.
DEFAULT_SPLIT = (0.4, 0.2, 0.4)


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about a dataset format."""

    name: str
    lister: Callable[..., Listing]
    description: str
    layout: str
    #: (train, validation, test) fractions of subjects, or "official" for a fixed file list
    split: tuple[float, float, float] | str = DEFAULT_SPLIT
    #: False for generated datasets that need no files
    needs_root: bool = True
    #: a generic layout (``folder``): boards are named after the data folder, not the format
    named_by_root: bool = False
    #: the root may be a single file (FER2013's CSV); otherwise it must be a folder
    root_may_be_file: bool = False


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, *, description: str, layout: str, split=DEFAULT_SPLIT,
                     needs_root: bool = True, named_by_root: bool = False,
                     root_may_be_file: bool = False):
    """Decorator registering ``lister(root, classes, **options) -> Listing`` under ``name``."""

    def wrap(lister):
        _DATASETS[name] = DatasetInfo(name, lister, description, layout, split, needs_root,
                                      named_by_root, root_may_be_file)
        return lister

    return wrap


#: written by ``bench prepare eyes`` beside its crops: the face dataset they were cut from
SOURCE = "source.json"


def prepared_source(name: str, root=None, *, must_exist: bool = True) -> tuple[str, str] | None:
    """(dataset, root) of the registered face dataset that the eye crops in ``root`` were cut
    from by ``bench prepare eyes``, the root relative to where this process runs; ``None`` for
    any other data, or (with ``must_exist``) when that source is gone."""
    if root is None or not dataset_info(name).named_by_root:
        return None
    try:
        info = json.loads((Path(root).expanduser() / SOURCE).read_text(encoding="utf-8"))
        source = os.path.normpath(os.path.join(root, info["root"]))
        dataset_info(info["dataset"])
    except (OSError, ValueError, KeyError, TypeError, BenchError):
        return None
    return (info["dataset"], source) if Path(source).exists() or not must_exist else None


def dataset_label(name: str, root=None) -> str:
    """What boards and record files call a dataset: its name, or for a generic layout the name of
    its data folder (``--dataset folder --data-root ck-eyes`` makes the board ``ck-eyes-7``;
    ``folder-<name>`` when that folder is named like a registered dataset)."""
    info = dataset_info(name)
    if not (info.named_by_root and root):
        return name
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(root).expanduser().resolve().name).strip("-.")
    if not label:
        return name
    return f"{name}-{label}" if label in _DATASETS else label


def list_datasets() -> list[str]:
    return sorted(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    try:
        return _DATASETS[name]
    except KeyError:
        raise BenchError(
            f"unknown dataset {name!r}; valid datasets: {', '.join(list_datasets())}"
        ) from None


def resolve_root(name: str, root=None) -> Path | None:
    """The data folder: ``root`` if given, else ``$BENCH_DATA/<name>``, else a clear error."""
    info = dataset_info(name)
    if not info.needs_root:
        return Path(root) if root else None
    hint = f"Expected layout: {info.layout}"
    if root is None:
        base = os.environ.get("BENCH_DATA")
        if not base:
            raise DatasetError(
                f"dataset {name!r} needs its data: pass --data-root DIR (or root=...) or set "
                f"$BENCH_DATA so that $BENCH_DATA/{name} holds it. {hint}"
            )
        root = Path(base) / name
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"data root {root} for dataset {name!r} does not exist. {hint}")
    if not root.is_dir() and not info.root_may_be_file:
        raise DatasetError(f"data root {root} for dataset {name!r} is a file, not a folder. {hint}")
    if root.is_dir() and not any(root.iterdir()):
        raise DatasetError(f"data root {root} for dataset {name!r} is empty. {hint}")
    return root


def load_dataset(name: str, root=None, classes: int = 4, image_size: int | None = None,
                 cache: bool = True, **options) -> EmotionDataset:
    """Load a registered dataset.

    Parameters
    ----------
    name : a name from :func:`list_datasets`.
    root : the data folder (or file); default ``$BENCH_DATA/<name>``.
    classes : 4 or 7 (see :mod:`bench.classes`); other classes are dropped and counted.
    image_size : resize every image to this square size; ``None`` keeps the native size.
    cache : read and store the decoded arrays in the on-disk cache (:mod:`bench.data.cache`;
        ``$BENCH_CACHE=off`` turns it off everywhere).
    options : format-specific options (e.g. ``n_subjects`` for ``synthetic``).
    """
    info = dataset_info(name)
    use_cache = cache and cache_dir() is not None
    if use_cache and not info.needs_root:  # generated: the key needs no listing
        _check_options(info, options)
        path = resolve_root(name, root)
        key = dataset_key(name, path, classes, image_size, options, info.lister)
        if (hit := load_cached(key)) is not None:
            return hit
    listing, path = list_samples(name, root, classes, **options)
    if use_cache and info.needs_root:
        key = dataset_key(name, path, classes, image_size, options, info.lister, listing.table,
                          extra_files=[path] if path is not None and path.is_file() else ())
        if (hit := load_cached(key)) is not None:
            return hit
    data = assemble(name, listing.table, listing.decode, classes, image_size,
                    root=None if path is None else str(path))
    if use_cache:
        store(key, data)
    return data


def _check_options(info: DatasetInfo, options: dict) -> None:
    try:
        inspect.signature(info.lister).bind(None, classes=4, **options)
    except TypeError as err:
        raise BenchError(f"dataset {info.name!r}: {err}") from None


def list_samples(name: str, root=None, classes: int = 7, **options) -> tuple[Listing, Path | None]:
    """The images of a dataset without decoding them (e.g. to crop them one by one), and the
    resolved root."""
    info = dataset_info(name)
    path = resolve_root(name, root)
    try:
        return info.lister(path, classes=classes, **options), path
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise BenchError(f"dataset {name!r}: {err}") from None
        raise
    except DatasetError as err:
        if info.needs_root and "Expected layout" not in str(err):
            raise DatasetError(f"{err}. Expected layout: {info.layout}") from None
        raise
