"""Subject-disjoint splits and per-subject calibration sets.

Consecutive frames are near-duplicates, so images of one subject never appear in two of train,
validation and test. Each seed draws a different split (scikit-learn's ``GroupShuffleSplit``).
Datasets without subject ids use their official lists; when those have no validation list, a
stratified share of the official training list is held out, drawn per seed. So do eye crops that
``bench prepare eyes`` cut from such a dataset (their manifest keeps each image's official split).

Calibration: personalised methods need a few images of each test subject before they predict. For
every test subject the protocol sets aside, per class with ``n`` images, ``k = max(1, round(share *
n))`` images when ``n >= 2`` (none when the class has a single image, so it stays scorable): the
middle images of ``k`` equal runs of the class's images in (sequence, frame) order. Evenly spaced
frames represent the whole recording (onset and apex); the first frames alone would be the weakest
expressions, and the remaining frames stay in order with small gaps. The set depends only on the
dataset, the seed and the share, never on which methods run, and it is removed from scoring for
every method, so all methods are scored on the same images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupShuffleSplit, StratifiedShuffleSplit

from .data import EmotionDataset
from .errors import BenchError

OFFICIAL_VALIDATION_SHARE = 0.1
CALIBRATION_SHARE = 0.2


@dataclass(frozen=True)
class Split:
    """Index arrays into a dataset. ``test`` excludes ``calibration``."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    calibration: np.ndarray

    def subjects(self, dataset: EmotionDataset, part: str) -> list[str]:
        if not dataset.has_subjects:
            return []
        return sorted(set(dataset.subjects[getattr(self, part)]))


def subject_counts(n_subjects: int, fractions) -> tuple[int, int, int]:
    """(train, val, test) subject counts; e.g. 25 -> 10/5/10 and 52 -> 28/12/12 for the paper's
    REED and EMUG fractions."""
    if n_subjects < 3:
        raise BenchError(f"a subject-disjoint split needs at least 3 subjects, the data has "
                         f"{n_subjects}")
    _, f_val, f_test = fractions
    n_val = max(1, int(round(f_val * n_subjects)))
    n_test = max(1, int(round(f_test * n_subjects)))
    n_train = n_subjects - n_val - n_test
    if n_train < 1:
        raise BenchError(f"{n_subjects} subjects are too few for a {fractions} split")
    return n_train, n_val, n_test


def subject_split(dataset: EmotionDataset, seed: int, fractions) -> tuple[np.ndarray, ...]:
    subjects = dataset.subjects
    found = np.unique(subjects)
    if len(found) < 3:  # often a data root one level off: name what was read as subjects
        raise BenchError(f"a subject-disjoint split needs at least 3 subjects, the data has "
                         f"{len(found)} ({', '.join(map(str, found))}); is the data root the "
                         "folder that holds the subject folders?")
    _, n_val, n_test = subject_counts(len(found), fractions)
    everything = np.arange(len(dataset))
    rest, test = next(GroupShuffleSplit(1, test_size=n_test, random_state=seed)
                      .split(everything, groups=subjects))
    train, val = next(GroupShuffleSplit(1, test_size=n_val, random_state=seed + 1)
                      .split(rest, groups=subjects[rest]))
    return rest[train], rest[val], test


def official_split(dataset: EmotionDataset, seed: int) -> tuple[np.ndarray, ...]:
    parts = {p: np.flatnonzero(dataset.split == p) for p in ("train", "val", "test")}
    if not len(parts["train"]) or not len(parts["test"]):
        raise BenchError(f"{dataset.name}: the official split needs both training and test images "
                         f"(found {len(parts['train'])} and {len(parts['test'])})")
    if not len(parts["val"]):
        train = parts["train"]
        try:
            keep, val = next(StratifiedShuffleSplit(1, test_size=OFFICIAL_VALIDATION_SHARE,
                                                    random_state=seed)
                             .split(train, dataset.labels[train]))
        except ValueError:  # a class with a single image cannot be stratified
            rng = np.random.default_rng(seed)
            val_mask = rng.random(len(train)) < OFFICIAL_VALIDATION_SHARE
            keep, val = np.flatnonzero(~val_mask), np.flatnonzero(val_mask)
        parts["train"], parts["val"] = train[keep], train[val]
    return parts["train"], parts["val"], parts["test"]


def evenly_spaced(n: int, k: int) -> np.ndarray:
    """Positions of ``k`` of ``n`` items: the middle one of each of ``k`` equal runs."""
    return ((np.arange(k) + 0.5) * n / k).astype(int)


def thin_sequences(dataset: EmotionDataset, idx: np.ndarray, max_frames: int | None) -> np.ndarray:
    """Keep at most ``max_frames`` evenly spaced frames of every sequence in ``idx`` (shorter
    sequences, like CK+'s, are kept whole): neighbouring video frames are near-duplicates, so a
    training budget is better spent on more sequences than on more frames of one."""
    if max_frames is None or dataset.sequences is None:
        return idx
    kept = []
    for seq in np.unique(dataset.sequences[idx]):
        mine = idx[dataset.sequences[idx] == seq]
        if len(mine) > max_frames:
            mine = mine[np.argsort(dataset.frames[mine], kind="stable")][evenly_spaced(len(mine), max_frames)]
        kept.append(mine)
    return np.sort(np.concatenate(kept)) if kept else idx


def calibration_set(dataset: EmotionDataset, test: np.ndarray, share: float) -> np.ndarray:
    """The calibration images of the test subjects (see the module docstring)."""
    if not dataset.has_subjects or share <= 0:
        return test[:0]
    chosen = []
    for subject in np.unique(dataset.subjects[test]):
        mine = test[dataset.subjects[test] == subject]
        for label in np.unique(dataset.labels[mine]):
            idx = mine[dataset.labels[mine] == label]
            if len(idx) < 2:
                continue
            order = np.lexsort((dataset.frames[idx], dataset.sequences[idx].astype(str)))
            chosen.append(idx[order][evenly_spaced(len(idx), max(1, int(round(share * len(idx)))))])
    return np.sort(np.concatenate(chosen)) if chosen else test[:0]


def make_split(dataset: EmotionDataset, seed: int, rule,
               calibration_share: float = CALIBRATION_SHARE) -> Split:
    """Split ``dataset`` for one seed by ``rule`` (subject fractions or ``"official"``)."""
    if rule == "official" or not dataset.has_subjects or dataset.split is not None:
        if dataset.split is None:
            raise BenchError(f"{dataset.name} has neither subject ids nor an official split")
        train, val, test = official_split(dataset, seed)
    else:
        train, val, test = subject_split(dataset, seed, rule)
    calibration = calibration_set(dataset, test, calibration_share)
    test = np.setdiff1d(test, calibration)
    return Split(np.sort(train), np.sort(val), test, calibration)


def noisy_labels(labels: np.ndarray, class_names, fraction: float, seed: int) -> np.ndarray:
    """``labels`` with ``round(fraction * N)`` of them, chosen at random with ``seed``, replaced by
    another class drawn uniformly from the rest."""
    if not 0 <= fraction < 1:
        raise BenchError(f"label noise must be in [0, 1), got {fraction}")
    labels = np.array(labels, dtype=object)
    rng = np.random.default_rng([seed, 104729])
    for i in rng.choice(len(labels), size=int(round(fraction * len(labels))), replace=False):
        labels[i] = rng.choice([c for c in class_names if c != labels[i]])
    return labels
