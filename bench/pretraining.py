"""Pre-training a network on a face dataset before it trains on the benchmark's data, leak-safe.

The paper pre-trains its label distribution generator (the LDGN teacher) on FER2013, then
fine-tunes it. Here it, or any other method's network, can pre-train on any registered face
dataset (``ckplus``, ``jaffe``, ``rafdb``, ``fer2013``, ``folder``) through
:class:`FacePretraining`, which a method mixes in; it declares the prefix of its three parameters
(``pretrain_param``: ``<prefix>``, ``<prefix>_root``, ``<prefix>_epochs``), which is how the
protocol and the presets find them.

**Leak-safe by construction** (:func:`pretraining_subjects`): no image of a validation or test
subject of the benchmark's split ever reaches pre-training, even when the benchmark is eye crops
cut from the very same faces. A method that mixes this in declares ``external_data``, so the
protocol passes it the split's held-out subjects as ``fit(..., exclude_subjects=...)``.
"""

from __future__ import annotations

import os
import re
from numbers import Integral
from typing import ClassVar

import numpy as np
import torch
from sklearn.utils._param_validation import Interval

from .classes import CLASSES_7
from .data import load_dataset
from .data.dataset import subject_ids
from .engine import train
from .errors import BenchError


def pretraining_subjects(pretrain_subjects, train_subjects, exclude_subjects=()) -> np.ndarray:
    """Which images of a pre-training set may be used (a boolean mask over ``pretrain_subjects``).

    Subject ids are compared as strings. When the pre-training set shares any subject with the
    training split (eye crops made by ``bench prepare eyes`` keep the face set's ids), it is the
    same people, and only the training subjects may be used: every other subject of it may be a
    validation or test subject. Otherwise it is another population and all of it may be used.
    ``exclude_subjects`` (the protocol passes the split's validation and test subjects) are
    removed in both cases. An unrelated set whose ids merely collide loses subjects: the safe
    side."""
    subjects = np.asarray(pretrain_subjects).astype(str)
    in_train = np.isin(subjects, sorted({str(s) for s in train_subjects}))
    keep = in_train if in_train.any() else np.ones(len(subjects), dtype=bool)
    return keep & ~np.isin(subjects, sorted({str(s) for s in exclude_subjects}))


def pretraining_roots(cls, params: dict) -> list[tuple[str, str | None]]:
    """The (face dataset, root) pairs that a method of class ``cls`` with estimator parameters
    ``params`` pre-trains on (by its ``pretrain_param`` declaration)."""
    prefix = cls.pretrain_param
    return [(params[prefix], params.get(f"{prefix}_root"))] if prefix and params.get(prefix) else []


def pretrain_constraints(prefix: str) -> dict:
    """The parameter constraints (:attr:`bench.EmotionClassifier._parameter_constraints`) of the
    three parameters named by ``prefix``."""
    return {prefix: [str, None], f"{prefix}_root": [str, os.PathLike, None],
            f"{prefix}_epochs": [Interval(Integral, 1, None, closed="left"), None]}


class FacePretraining:
    """Mixin for an :class:`~bench.EmotionClassifier`: pre-train the freshly built network on a
    face dataset, then train as usual. The class names its parameters by ``pretrain_param``:
    ``<prefix>`` (a registered face dataset, ``None`` = no pre-training), ``<prefix>_root`` (its
    folder; default ``$BENCH_DATA/<name>``) and ``<prefix>_epochs`` (default: ``epochs``).

    Only subjects that :func:`pretraining_subjects` allows are used; a subject-disjoint
    ``validation_fraction`` of them (FER2013: its PublicTest rows) chooses the best pre-training
    epoch. ``pretrain_`` (a dict, or ``None``) and ``pretrain_history_`` say what it did."""

    external_data = True
    pretrain_param: ClassVar[str | None] = "face_pretrain"

    def fit(self, X, y, groups=None, *, exclude_subjects=(), **kwargs):
        """Fit; ``exclude_subjects`` never reach pre-training (the protocol passes the split's
        validation and test subjects; ``groups`` are the training subjects)."""
        self._pretrain_subjects = (() if groups is None else np.unique(np.asarray(groups)),
                                   tuple(exclude_subjects))
        try:
            return super().fit(X, y, groups, **kwargs)
        finally:
            del self._pretrain_subjects

    def _prepare_network(self, network, device):
        super()._prepare_network(network, device)
        self.pretrain_history_, self.pretrain_ = [], None
        prefix = self.pretrain_param
        name = getattr(self, prefix)
        if name:
            train_subjects, exclude = getattr(self, "_pretrain_subjects", ((), ()))
            self.pretrain_history_, self.pretrain_ = pretrain_on_faces(
                self, network, device, name, getattr(self, f"{prefix}_root"),
                getattr(self, f"{prefix}_epochs"), train_subjects, exclude)


def pretrain_on_faces(est, network, device: torch.device, dataset: str, root, epochs,
                      train_subjects, exclude_subjects) -> tuple[list, dict]:
    """Train ``network`` (of estimator ``est``, whose ``classes_`` are set) on the allowed faces of
    ``dataset``; returns (the epochs' history, a summary for the record)."""
    unknown = [c for c in est.classes_ if str(c) not in CLASSES_7]
    if unknown:
        raise BenchError(f"pre-training on {dataset} needs emotion class names as labels; "
                         f"{unknown} are not among {list(CLASSES_7)}")
    faces = load_dataset(dataset, root, classes=7, image_size=est.image_size)
    keep = np.isin(faces.label_names, [str(c) for c in est.classes_])
    people = subject_ids(faces)
    if people is not None:
        keep &= pretraining_subjects(people, train_subjects, exclude_subjects)
    elif any(re.fullmatch(r"(train|val|test|all)-row\d+", str(s)) for s in train_subjects):
        raise BenchError(f"{dataset} has no subject ids or files, and the benchmark's images "
                         "look cut from it (`bench prepare` names them <split>-row<N>): held-out "
                         "images cannot be told apart, so it cannot be a pre-training set here; "
                         "pre-train on another dataset")
    used = faces.subset(keep)
    if len(used) < 2:
        raise BenchError(f"pre-training on {dataset}: fewer than two images remain after leaving "
                         "out the benchmark's held-out subjects")
    y = est._encode(used.label_names)
    if used.split is not None and (used.split == "val").any():  # an official list
        fit, val = used.split == "train", used.split == "val"
    else:
        fit_idx, val_idx = est._internal_split(y, used.subjects, est._seed())
        fit, val = np.isin(np.arange(len(y)), fit_idx), np.isin(np.arange(len(y)), val_idx)
    result = train(network, used.images[fit], torch.as_tensor(y[fit]),
                   est._train_config(epochs, desc=f"pre-training {type(est).__name__} on "
                                     f"{dataset}"), device,
                   X_val=used.images[val] if val.any() else None, y_val=y[val], labels=y[fit])
    best = result.history[result.best_epoch - 1]
    summary = {
        "dataset": dataset, "images": int(fit.sum()), "validation_images": int(val.sum()),
        "subjects": None if people is None else int(len(np.unique(people[keep]))),
        "left_out_subjects": None if people is None else int(
            len(np.unique(people)) - len(np.unique(people[keep]))),
        "epochs": len(result.history), "val_accuracy": best.get("val_accuracy")}
    return result.history, summary
