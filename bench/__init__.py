"""Benchmark and evaluation suite for eye-region emotion recognition.

The public API: the estimator base class, the method and dataset registries, the protocol, cost
profiling and leaderboards. See the README for the command-line interface.
"""

__version__ = "0.1.0"

from .classes import CLASS_SETS, CLASSES_4, CLASSES_7
from .data import EmotionDataset, list_datasets, load_dataset, register_dataset
from .errors import BenchError, DatasetError
from .estimator import EmotionClassifier
from .profiling import CostProfile, profile
from .protocol import RunSpec, run_one
from .registry import (
    Cost,
    MethodInfo,
    Reference,
    get_estimator,
    list_methods,
    method_info,
    register,
)
from .runner import evaluate, run_grid

__all__ = [
    "CLASSES_4",
    "CLASSES_7",
    "CLASS_SETS",
    "BenchError",
    "Cost",
    "CostProfile",
    "DatasetError",
    "EmotionClassifier",
    "EmotionDataset",
    "MethodInfo",
    "Reference",
    "RunSpec",
    "evaluate",
    "get_estimator",
    "list_datasets",
    "list_methods",
    "load_dataset",
    "method_info",
    "profile",
    "register",
    "register_dataset",
    "run_grid",
    "run_one",
]
