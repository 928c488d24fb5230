"""Datasets: the registry, the in-memory :class:`EmotionDataset`, and one module per format."""

from . import ckplus, fer2013, folder, jaffe, rafdb, synthetic  # noqa: F401  (register formats)
from .dataset import EmotionDataset, assemble
from .registry import (
    DatasetInfo,
    Listing,
    dataset_info,
    dataset_label,
    list_datasets,
    list_samples,
    load_dataset,
    prepared_source,
    register_dataset,
    resolve_root,
)

__all__ = [
    "DatasetInfo",
    "Listing",
    "list_samples",
    "EmotionDataset",
    "assemble",
    "dataset_info",
    "list_datasets",
    "dataset_label",
    "load_dataset",
    "prepared_source",
    "register_dataset",
    "resolve_root",
]
